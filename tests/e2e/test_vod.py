"""Save or discard, end to end: real RTMP pushes into the server, the recording saved or
discarded through the API, the VOD played by real players.

- saved: FFmpeg (``ffmpeg -i …/vod/ID/index.m3u8``) decodes exactly the frames pushed,
  hls.js in headless Chromium plays it to the end, and the MP4 download decodes (PyAV)
  to every frame, without re-encoding;
- discarded: nothing of it is left on disk;
- disk full while live (a 1 MiB tmpfs): the push and live HLS go on, the recording fails
  with the reason, and what was written before can still be saved and played;
- kill -9 of the server (a real ``mediasrv serve`` process) mid-stream, restart: the
  recording up to the last complete segment is pending a decision, is saved and plays.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys

import aiohttp
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.httpkit.keys import RECORDER
from mediasrv.media.types import TrackKind
from tests.recording.conftest import decode_file, tiny_filesystem, until
from tests.support.browser import chromium, open_player
from tests.support.clients import ffmpeg_push, ffmpeg_push_args, pyav_push_process, run_process
from tests.support.server import StreamRecorder, running_server
from tests.support.tools import missing, require_tool

pytestmark = pytest.mark.e2e

PLAYER_TIMEOUT = 60


async def api(session: aiohttp.ClientSession, method: str, url: str) -> tuple[int, dict]:
    async with session.request(method, url) as response:
        return response.status, await response.json()


async def recording_of(session, base: str, stream: str, *states: str, timeout: float = 30) -> dict:
    async def check():
        status, body = await api(session, "GET", f"{base}/api/recordings?stream={stream}")
        rows = [r for r in body.get("recordings", []) if not states or r["state"] in states]
        return rows[0] if status == 200 and rows else None

    return await until(check, timeout, interval=0.1)


async def ffmpeg_frames(url: str) -> dict[str, int]:
    """``ffmpeg -i URL`` decoding everything (framecrc): frames per media type."""
    ffmpeg = require_tool("ffmpeg")
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-v", "error", "-i", url, "-map", "0:v", "-map", "0:a", "-f", "framecrc", "-",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), PLAYER_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.communicate()
        raise AssertionError(f"ffmpeg did not finish playing {url}")
    assert proc.returncode == 0, err.decode(errors="replace")
    assert not err.strip(), err.decode(errors="replace")
    counts = {"video": 0, "audio": 0}  # output stream 0 is the video (-map 0:v first)
    for line in out.decode().splitlines():
        if line and not line.startswith("#"):
            counts["video" if line.split(",")[0].strip() == "0" else "audio"] += 1
    return counts


async def hlsjs_plays_to_the_end(url: str) -> float:
    """hls.js in headless Chromium plays the VOD until ``ended`` (or within 0.5 s of the
    end); returns the duration it saw. No fatal error, no HTTP error."""
    async with chromium() as browser:
        player = await open_player(browser, url, low_latency=False)
        page = player.page
        await page.wait_for_function(
            """() => { const v = document.getElementById('v');
                       return window.playerErrors.length > 0 ||
                              (v.duration > 0 && (v.ended || v.currentTime >= v.duration - 0.5)); }""",
            timeout=PLAYER_TIMEOUT * 1000)
        errors = await player.errors()
        assert not errors["fatal"], errors
        assert not player.bad_responses() and not player.failures, (player.bad_responses(), player.failures)
        assert player.requested(".m4s")
        return await page.evaluate("document.getElementById('v').duration")


async def test_saved_broadcast_plays_in_ffmpeg_hlsjs_and_as_mp4(tmp_path):
    name = "vodsave"
    async with running_server(tmp_path) as srv, aiohttp.ClientSession() as session:
        base = srv.http_url
        hub_units = StreamRecorder(srv.hub)
        pushed = await pyav_push_process(srv.rtmp_url(name), seconds=5, fps=25)
        units = await hub_units.wait_ended(name)
        hub_video = sum(1 for u in units if u.kind is TrackKind.VIDEO)
        hub_audio = len(units) - hub_video
        assert hub_video == pushed.video_frames == 125

        recording = await recording_of(session, base, name, "pending_decision")
        assert recording["video_frames"] == pushed.video_frames
        status, saved = await api(session, "POST", f"{base}/api/recordings/{recording['id']}/save")
        assert status == 200 and saved["state"] == "saved"

        played = await ffmpeg_frames(saved["playlist_url"])
        assert played == {"video": pushed.video_frames, "audio": hub_audio}, played

        duration = await hlsjs_plays_to_the_end(saved["playlist_url"])
        assert duration == pytest.approx(saved["duration"], abs=0.5)

        mp4 = tmp_path / "download.mp4"
        async with session.get(saved["download_url"]) as response:
            assert response.status == 200
            mp4.write_bytes(await response.read())
        video_ms, audio = decode_file(mp4)
        assert len(video_ms) == pushed.video_frames and audio == hub_audio
        hub_pts = sorted(u.pts for u in units if u.kind is TrackKind.VIDEO)
        first = hub_pts[0]
        assert [round(v - video_ms[0]) for v in sorted(video_ms)] == pytest.approx(
            [p - first for p in hub_pts], abs=1)  # same frames at the same times (no re-encode)


async def test_discarded_broadcast_leaves_nothing_on_disk(tmp_path):
    name = "voddrop"
    async with running_server(tmp_path) as srv, aiohttp.ClientSession() as session:
        base = srv.http_url
        status, output = await ffmpeg_push(srv.rtmp_url(name), seconds=3)
        assert status == 0, output
        recording = await recording_of(session, base, name, "pending_decision")
        root = srv.app[RECORDER].root
        assert os.listdir(root) == [recording["id"]] and os.listdir(root / recording["id"])
        status, body = await api(session, "POST", f"{base}/api/recordings/{recording['id']}/discard")
        assert status == 200 and body["state"] == "discarded"
        assert os.listdir(root) == []
        assert (await session.get(f"{base}/vod/{recording['id']}/index.m3u8")).status == 404
        status, body = await api(session, "GET", f"{base}/api/recordings/{recording['id']}")
        assert body["state"] == "discarded" and body["decided_by"] == "creator"


async def test_disk_full_while_live_fails_the_recording_not_the_stream(tmp_path):
    name = "vodfull"
    small = tmp_path / "small"
    with tiny_filesystem(small, "1m") as mounted:
        if mounted is None:
            missing("mounting a tmpfs is not permitted here (tests/recording covers disk full by injection)")
        async with running_server(tmp_path, f"recording.dir={small}", "recording.min_free_bytes=0") as srv, \
                aiohttp.ClientSession() as session:
            base = srv.http_url
            hub_units = StreamRecorder(srv.hub)
            # 2.5 Mbit/s: one 2 s segment (~625 kB) fits on the disk, the second does not.
            status, output = await run_process(*ffmpeg_push_args(
                srv.rtmp_url(name), seconds=6, size="640x360", video_bitrate="2500k"), timeout=90)
            assert status == 0, output  # the publisher never noticed
            units = await hub_units.wait_ended(name)
            assert sum(1 for u in units if u.kind is TrackKind.VIDEO) == 150
            hls = srv.app[HLS_SERVICE].rendition(name, "source")
            assert hls is not None and hls.segmenter.stats.video_frames == 150  # live HLS went on

            recording = await recording_of(session, base, name, "failed")
            assert "disk full" in recording["error"] and "No space left on device" in recording["error"]
            assert recording["segments"] >= 1 and recording["ended_at"] is not None
            assert not [f for f in os.listdir(small / recording["id"]) if f.endswith(".tmp")]
            # What was written before the disk filled up can be kept, and plays.
            status, saved = await api(session, "POST", f"{base}/api/recordings/{recording['id']}/save")
            assert status == 200
            played = await ffmpeg_frames(saved["playlist_url"])
            assert played["video"] == recording["video_frames"] > 0


async def test_server_shutdown_mid_stream_finalises_the_recording(tmp_path):
    """The shutdown order of the app: the hub ends every stream first, then the recorder
    writes the segment in progress and marks the recording ended — every frame the hub
    got is in it."""
    from mediasrv.recording import files as rf
    from mediasrv.store.recordings import RecordingStore

    name = "vodstop"
    push = None
    async with running_server(tmp_path) as srv:
        hub_units = StreamRecorder(srv.hub)
        push = asyncio.ensure_future(ffmpeg_push(srv.rtmp_url(name), seconds=20, realtime=True))
        async with aiohttp.ClientSession() as session:
            live = await until(lambda: _with_segments(session, srv.http_url, name, 1), timeout=30)
    try:
        status, _ = await push  # the server went away under the encoder
    finally:
        if not push.done():
            push.cancel()
    units = await hub_units.wait_ended(name)
    store = RecordingStore(tmp_path / "mediasrv.db")
    try:
        final = store.get(live["id"])
    finally:
        store.close()
    assert final.state.value == "pending_decision" and final.ended_at is not None
    assert final.video_frames == sum(1 for u in units if u.kind is TrackKind.VIDEO) > 0
    assert final.segments >= live["segments"]
    assert rf.load_manifest(tmp_path / "recordings" / live["id"]).ended_at is not None


async def start_server(data_dir) -> tuple[asyncio.subprocess.Process, int, int]:
    """``python -m mediasrv.cli serve`` on ephemeral ports: (process, http port, rtmp port)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediasrv.cli", "serve",
        "--set", "rtmp.listen=127.0.0.1:0", "--set", "http.listen=127.0.0.1:0",
        "--set", f"data_dir={data_dir}", "--set", "transcode.enabled=false",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    lines = []
    while not any("API:" in line for line in lines):
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            proc.kill()
            await proc.wait()
            raise AssertionError("the server exited before printing its banner")
        lines.append(line.decode())
    banner = "".join(lines)
    rtmp = int(re.search(r"Server:\s+rtmp://127\.0\.0\.1:(\d+)/live", banner).group(1))
    http = int(re.search(r"Watch:\s+http://127\.0\.0\.1:(\d+)/live", banner).group(1))
    return proc, http, rtmp


async def test_kill_9_mid_stream_then_restart_recovers_saves_and_plays(tmp_path):
    name = "vodcrash"
    server, http, rtmp = await start_server(tmp_path)
    push = None
    try:
        base = f"http://127.0.0.1:{http}"
        push = asyncio.ensure_future(ffmpeg_push(f"rtmp://127.0.0.1:{rtmp}/live/{name}", seconds=20, realtime=True))
        async with aiohttp.ClientSession() as session:
            live = await until(lambda: _with_segments(session, base, name, 2), timeout=30)
        assert live["state"] == "recording"
        server.send_signal(signal.SIGKILL)
        assert await server.wait() == -signal.SIGKILL
        status, _ = await push  # the encoder lost its server
        assert status != 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        if push is not None and not push.done():
            push.cancel()

    server, http, rtmp = await start_server(tmp_path)
    try:
        base = f"http://127.0.0.1:{http}"
        async with aiohttp.ClientSession() as session:
            status, recovered = await api(session, "GET", f"{base}/api/recordings/{live['id']}")
            assert status == 200 and recovered["state"] == "pending_decision", recovered
            # Up to the last complete segment: at least what was listed before the kill.
            assert recovered["segments"] >= live["segments"] >= 2
            assert recovered["video_frames"] >= live["video_frames"] > 0
            directory = tmp_path / "recordings" / live["id"]
            assert not [f for f in os.listdir(directory) if f.endswith(".tmp")]
            status, saved = await api(session, "POST", f"{base}/api/recordings/{live['id']}/save")
            assert status == 200 and saved["state"] == "saved"
            played = await ffmpeg_frames(saved["playlist_url"])
            assert played["video"] == recovered["video_frames"], (played, recovered)
            mp4 = tmp_path / "download.mp4"
            async with session.get(saved["download_url"]) as response:
                assert response.status == 200
                mp4.write_bytes(await response.read())
            assert len(decode_file(mp4)[0]) == recovered["video_frames"]
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 20) == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def _with_segments(session, base, name, count):
    try:
        status, body = await api(session, "GET", f"{base}/api/recordings?stream={name}")
    except aiohttp.ClientError:
        return None
    rows = body.get("recordings", []) if status == 200 else []
    return rows[0] if rows and rows[0]["segments"] >= count else None
