"""Fault: SIGTERM to ``mediasrv serve`` while a stream is live, with the default ladder.

- a blocking playlist reload held at the time of the signal is answered with the
  playlist's end (EXT-X-ENDLIST), on the source and on a transcoded rung: players stop
  cleanly instead of hitting a refused connection;
- the process exits with status 0 within a bounded time (10 s), and takes its transcoder
  worker with it;
- the recording is finalised: its manifest has its end line, no temporary file is left,
  every listed file is there; after a restart it awaits a decision with every segment,
  and once saved its VOD playlist ends with EXT-X-ENDLIST.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import aiohttp
import pytest

from mediasrv.recording import files as rf
from tests.faults.support import alive, children, start_serve, stop
from tests.support.clients import start_ffmpeg_push

pytestmark = pytest.mark.e2e

EXIT_WITHIN = 10.0


def last_msn(playlist: str) -> int:
    sequence = int(next(l for l in playlist.splitlines() if l.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
    return sequence + sum(1 for l in playlist.splitlines() if l.startswith("seg_")) - 1


async def poll(check, timeout: float, interval: float = 0.2):
    """Poll a resource that has no event for it (another process) until ``check()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


async def requests_read(port: int, count: int) -> bool:
    """True once ``count`` connections to ``port`` are established and the server has read
    everything sent on them (Recv-Q 0): the held requests are in its hands."""
    proc = await asyncio.create_subprocess_exec(
        "ss", "-tnH", "state", "established", f"( sport = :{port} )",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    queues = [int(line.split()[0]) for line in out.decode().splitlines() if line.strip()]
    return len(queues) >= count and not any(queues)


async def test_sigterm_ends_playlists_finalises_the_recording_and_exits(tmp_path):
    data = tmp_path / "data"
    srv = await start_serve(data, "hls.segment_duration=1", "transcode.enabled=true")
    publisher = await start_ffmpeg_push(srv.rtmp_url("live1"), seconds=60, size="640x360")
    try:
        async with aiohttp.ClientSession(srv.http_url) as http:
            async def renditions_ready():
                async with http.get("/live/live1/index.m3u8") as r:
                    if r.status != 200:
                        return None
                    text = await r.text()
                variants = [l for l in text.splitlines() if l and not l.startswith("#")]
                return variants if any(v.startswith("360p/") for v in variants) else None

            variants = await poll(renditions_ready, 60)
            recordings_dir = data / "recordings"

            def recorded_segments() -> int:
                dirs = list(recordings_dir.iterdir()) if recordings_dir.exists() else []
                manifest = rf.load_manifest(dirs[0]) if dirs else None
                return len(manifest.segments) if manifest else 0

            async def two_segments_everywhere():
                if recorded_segments() < 2:
                    return False
                for variant in variants:
                    async with http.get(f"/live/live1/{variant}") as r:
                        if r.status != 200 or last_msn(await r.text()) < 1:
                            return False
                return True

            await poll(two_segments_everywhere, 60)
            workers = children(srv.proc.pid)
            assert workers, "the transcoder worker should be running"

            # Blocking reloads for a segment two ahead: held by the server (1 s segments).
            held = {}
            for variant in (next(v for v in variants if v.startswith("source/")), next(v for v in variants if v.startswith("360p/"))):
                async with http.get(f"/live/live1/{variant}") as r:
                    msn = last_msn(await r.text())
                sep = "&" if "?" in variant else "?"
                held[variant] = asyncio.ensure_future(http.get(f"/live/live1/{variant}{sep}_HLS_msn={msn + 2}"))
            await poll(lambda: requests_read(srv.http_port, len(held)), 10, interval=0.02)
            assert not any(t.done() for t in held.values())  # they wait there for 1-2 s

            srv.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            for variant, task in held.items():
                response = await asyncio.wait_for(task, EXIT_WITHIN)
                assert response.status == 200, variant
                body = await response.text()
                assert body.rstrip().endswith("#EXT-X-ENDLIST"), (variant, body[-300:])
            status = await asyncio.wait_for(srv.proc.wait(), EXIT_WITHIN)
            took = time.monotonic() - signalled
        assert status == 0, srv.log()[-3000:]
        assert took < EXIT_WITHIN
        print(f"\nSIGTERM with a live ladder: held reloads answered with EXT-X-ENDLIST, exit 0 after {took:.2f} s")
        assert not [pid for pid in workers if alive(pid)], "a transcoder worker outlived the server"
        assert "Traceback" not in srv.log(), srv.log()[-3000:]

        # The recording was finalised on the way down.
        (path,) = list((data / "recordings").iterdir())
        manifest = rf.load_manifest(path)
        assert manifest.ended_at is not None
        assert len(manifest.segments) >= 2
        assert not [f for f in path.iterdir() if f.name.endswith(".tmp")]
        for name in manifest.files():
            assert (path / name).stat().st_size > 0, name
        assert json.loads((path / rf.MANIFEST).read_text().splitlines()[-1]).get("end") is not None
    finally:
        await stop(publisher)
        await stop(srv.proc)

    # After a restart: awaiting a decision with every segment; saved, it is a whole VOD.
    again = await start_serve(data, "transcode.enabled=false", log_name="serve2.log")
    try:
        async with aiohttp.ClientSession(again.http_url) as http:
            async with http.get("/api/recordings?stream=live1") as r:
                assert r.status == 200
                (recording,) = (await r.json())["recordings"]
            assert recording["state"] == "pending_decision"
            assert recording["segments"] == len(manifest.segments)
            async with http.post(f"/api/recordings/{recording['id']}/save") as r:
                assert r.status == 200, await r.text()
            async with http.get(f"/vod/{recording['id']}/index.m3u8") as r:
                assert r.status == 200
                vod = await r.text()
            assert vod.rstrip().endswith("#EXT-X-ENDLIST")
            assert [l for l in vod.splitlines() if l.startswith("seg_")] == [s.uri for s in manifest.segments]
        again.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.proc.wait(), EXIT_WITHIN) == 0
    finally:
        await stop(again.proc)
