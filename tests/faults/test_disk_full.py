"""Fault: ``data_dir`` fills up while a broadcast is recorded — end to end, with the
database on the same (full) file system.

``data_dir`` is a 2 MiB tmpfs (we run as root in CI; where mounting is not permitted,
``recording.min_free_bytes`` larger than the free space stands in for it, the documented
early stop), ``recording.min_free_bytes=0`` so the disk really fills. A real FFmpeg
publisher sends ~3 Mb/s for 8 s. The recording fails with the reason, the stream is not
disturbed (every frame reaches the hub's readers, live HLS lists the whole broadcast and
ends it), no exception reaches the event loop, and the API still answers.

(The recorder alone on a full disk, with the failed state's details, is
``tests/recording/test_recorder.py::test_disk_full_fails_the_recording_and_the_stream_goes_on``.)
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from tests.faults.support import LoopErrors
from tests.recording.conftest import tiny_filesystem
from tests.support.clients import ffmpeg_push_args, run_process
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

SECONDS = 8


async def test_data_dir_full_while_recording(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    data = tmp_path / "data"
    with tiny_filesystem(data, "2m") as mounted:
        how = ["recording.min_free_bytes=0"] if mounted else [f"recording.min_free_bytes={1 << 50}"]
        async with running_server(data, *how, "hls.segment_duration=1", "hls.window=30") as srv, \
                aiohttp.ClientSession(srv.http_url) as http:
            recorder = StreamRecorder(srv.hub)
            with LoopErrors() as loop_errors:
                status, output = await run_process(
                    *ffmpeg_push_args(srv.rtmp_url("full"), seconds=SECONDS, realtime=True, size="640x360",
                                      video_bitrate="3M"), timeout=60)
                assert status == 0, output  # the publisher was never disturbed
                units = await recorder.wait_ended("full")
                assert sum(1 for u in units if u.kind.value == "video") == SECONDS * 25

                # Live HLS (from memory) has the whole broadcast, ended.
                async with http.get("/live/full/source/index.m3u8") as r:
                    assert r.status == 200
                    playlist = await r.text()
                assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
                durations = [float(l.split(":")[1].rstrip(",")) for l in playlist.splitlines() if l.startswith("#EXTINF:")]
                assert abs(sum(durations) - SECONDS) < 0.5, durations
                assert srv.app[HLS_SERVICE] is not None

                # The recording failed with the reason; the API answers.
                async def failed():
                    async with http.get("/api/recordings?stream=full") as r:
                        assert r.status == 200, await r.text()
                        rows = (await r.json())["recordings"]
                    return rows[0] if rows and rows[0]["state"] == "failed" and rows[0]["ended_at"] else None

                for _ in range(100):
                    row = await failed()
                    if row:
                        break
                    await asyncio.sleep(0.1)
                assert row, "the recording should be marked failed"
                assert "disk full" in row["error"] or "free" in row["error"], row["error"]
                async with http.get("/healthz") as r:
                    assert r.status == 200
            assert loop_errors.contexts == [], loop_errors.contexts
        bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not bad, [r.getMessage() for r in bad]
        print("data_dir full through", "a 2 MiB tmpfs" if mounted else "recording.min_free_bytes", "-", row["error"])
