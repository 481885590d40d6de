"""End to end, real client in, real players out: RTMP push → mediasrv → HLS players.

For each container (fMP4, MPEG-TS) and each publisher (PyAV in a child process, the
FFmpeg CLI), a realtime push of a few seconds into the whole app (``running_server``):

- while it is live: ``/api/streams`` and ``/api/streams/NAME`` list its tracks, the
  ``source`` rendition and the playback URL, and the playback URL serves the master playlist;
- three real players follow it live from the master playlist: ``ffmpeg -i …/index.m3u8``,
  GStreamer ``hlsdemux`` and hls.js in headless Chromium. FFmpeg and GStreamer must decode
  every video frame pushed (they join when the first segment is listed and stop at
  EXT-X-ENDLIST); hls.js must start, advance ``currentTime`` and see no HTTP error;
- after the push: the playlist has EXT-X-ENDLIST (the window holds the whole stream), and
  the init segment + every segment fetched over HTTP decode with PyAV to exactly the
  frames the hub received (count, and presentation times to the millisecond).
"""

from __future__ import annotations

import asyncio
import io
import json
import os

import aiohttp
import av
import pytest

from mediasrv.hls import mpegts
from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.media.types import TrackKind
from tests.hls.conftest import check_media_playlist, until
from tests.support.browser import chromium, open_player, wait_playing
from tests.support.clients import ffmpeg_push, pyav_push_process
from tests.support.server import StreamRecorder, running_server
from tests.support.tools import require_gst_element, require_tool

pytestmark = pytest.mark.e2e

PUSH_SECONDS = 5
FPS = 25
WIDTH, HEIGHT = 320, 240
PLAYER_TIMEOUT = 40


# --- fetching and decoding what the server serves ---------------------------------------------

async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes, dict]:
    async with session.get(url) as response:
        return response.status, await response.read(), dict(response.headers)


async def fetch_all(session: aiohttp.ClientSession, playlist_url: str, *, fmp4: bool):
    """(parsed playlist, init + segment bytes joined per init) of an ended media playlist."""
    status, body, headers = await fetch(session, playlist_url)
    assert status == 200, playlist_url
    assert headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    playlist = check_media_playlist(body.decode(), fmp4=fmp4)
    assert playlist.ended, "the playlist of an ended stream has EXT-X-ENDLIST"
    base = playlist_url.rsplit("/", 1)[0]
    blobs: list[bytes] = []
    current_map = None
    for segment in playlist.segments:
        if segment.map_uri != current_map or not blobs:
            blobs.append(b"")
            if segment.map_uri is not None:
                status, init, headers = await fetch(session, f"{base}/{segment.map_uri}")
                assert status == 200 and headers["Content-Type"] == "video/mp4"
                assert "immutable" in headers["Cache-Control"]
                blobs[-1] += init
            current_map = segment.map_uri
        status, data, headers = await fetch(session, f"{base}/{segment.uri}")
        assert status == 200, segment.uri
        assert headers["Content-Type"] == ("video/mp4" if fmp4 else "video/mp2t")
        assert "immutable" in headers["Cache-Control"]
        blobs[-1] += data
    return playlist, blobs


def decode_blobs(blobs: list[bytes], *, fmp4: bool) -> tuple[list[float], int]:
    """PyAV-decode each init+segments run: (video presentation times in ms, audio frames)."""
    offset = 0 if fmp4 else mpegts.TS_TIME_OFFSET / 90
    video: list[float] = []
    audio = 0
    for blob in blobs:
        with av.open(io.BytesIO(blob), format="mp4" if fmp4 else "mpegts") as container:
            for frame in container.decode(*container.streams):
                if isinstance(frame, av.VideoFrame):
                    assert (frame.width, frame.height) == (WIDTH, HEIGHT)
                    video.append(float(frame.pts * frame.time_base * 1000) - offset)
                else:
                    audio += 1
    return video, audio


def check_every_frame(units, blobs: list[bytes], *, fmp4: bool) -> None:
    """Every video unit the hub received decodes from the served segments, at its time."""
    video_units = [u for u in units if u.kind is TrackKind.VIDEO]
    audio_units = [u for u in units if u.kind is TrackKind.AUDIO]
    video_ms, audio_frames = decode_blobs(blobs, fmp4=fmp4)
    assert len(video_ms) == len(video_units)
    pushed = sorted(u.pts for u in video_units)
    decoded = sorted(video_ms)
    assert all(abs(d - p) <= 1.0 for d, p in zip(decoded, pushed)), list(zip(decoded, pushed))[:10]
    assert audio_frames == len(audio_units)


# --- players ---------------------------------------------------------------------------------

async def _communicate(args: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"{args[0]} did not finish in {timeout} s: {err.decode(errors='replace')[-2000:]}")
    return proc.returncode, out, err


async def ffmpeg_play(url: str) -> dict[str, int]:
    """``ffmpeg -i URL`` decoding everything to framecrc: frames per media type."""
    ffmpeg = require_tool("ffmpeg")
    status, out, err = await _communicate(
        [ffmpeg, "-nostdin", "-v", "error", "-live_start_index", "0", "-i", url,
         "-map", "0:v", "-map", "0:a", "-f", "framecrc", "-"], PLAYER_TIMEOUT)
    assert status == 0, err.decode(errors="replace")
    assert not err.strip(), err.decode(errors="replace")
    counts = {"video": 0, "audio": 0}
    for line in out.decode().splitlines():
        if line and not line.startswith("#"):
            counts["video" if line.split(",")[0].strip() == "0" else "audio"] += 1
    return counts


async def gstreamer_play(url: str, raw_path) -> int:
    """GStreamer souphttpsrc ! hlsdemux ! decodebin: number of raw I420 video frames."""
    gst = require_tool("gst-launch-1.0")
    for element in ("souphttpsrc", "hlsdemux", "decodebin"):
        require_gst_element(element)
    status, out, err = await _communicate(
        [gst, "-q", "souphttpsrc", f"location={url}", "!", "hlsdemux", "!", "decodebin", "name=d",
         "d.", "!", "queue", "!", "videoconvert", "!", "video/x-raw,format=I420", "!",
         "filesink", f"location={raw_path}",
         "d.", "!", "queue", "!", "audioconvert", "!", "fakesink"], PLAYER_TIMEOUT)
    assert status == 0, (out + err).decode(errors="replace")
    size = os.path.getsize(raw_path)
    frame = WIDTH * HEIGHT * 3 // 2
    assert size % frame == 0
    return size // frame


async def hlsjs_play(url: str) -> tuple[float, list]:
    """hls.js in headless Chromium: (currentTime reached, HTTP errors seen)."""
    async with chromium() as browser:
        player = await open_player(browser, url)
        reached = await wait_playing(player, advance=2.0, timeout_ms=PLAYER_TIMEOUT * 1000)
        assert player.requested(".m4s") or player.requested(".ts"), player.responses
        assert not player.failures, player.failures
        return reached, player.bad_responses()


# --- the API while live -------------------------------------------------------------------------

async def check_api(session: aiohttp.ClientSession, srv, name: str) -> str:
    """/api/streams and /api/streams/NAME during the push; returns the playback URL."""
    status, body, _ = await fetch(session, f"{srv.http_url}/api/streams")
    assert status == 200
    listed = {s["name"]: s for s in json.loads(body)["streams"]}
    assert name in listed
    status, body, _ = await fetch(session, f"{srv.http_url}/api/streams/{name}")
    assert status == 200
    info = json.loads(body)
    assert info == {**listed[name], "bitrate_in_kbps": info["bitrate_in_kbps"]}
    assert info["state"] == "live"
    tracks = {t["kind"]: t for t in info["tracks"]}
    assert tracks["video"]["codec"] == "h264" and tracks["video"]["codec_string"].startswith("avc1.")
    assert (tracks["video"]["width"], tracks["video"]["height"]) == (WIDTH, HEIGHT)
    assert tracks["audio"]["codec"] == "aac" and tracks["audio"]["codec_string"] == "mp4a.40.2"
    assert tracks["audio"]["channels"] == 2
    renditions = {r["name"]: r for r in info["renditions"]}
    source = renditions["source"]
    assert (source["width"], source["height"]) == (WIDTH, HEIGHT)
    assert source["codecs"] == f"{tracks['video']['codec_string']},mp4a.40.2"
    assert source["bandwidth"] > 0 and source["playlist"] == "source/index.m3u8"
    assert info["playback_url"] == f"{srv.http_url}/live/{name}/index.m3u8"
    return info["playback_url"]


# --- the test --------------------------------------------------------------------------------------

@pytest.mark.parametrize("publisher", ["pyav", "ffmpeg"])
@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
async def test_live_push_plays_in_ffmpeg_gstreamer_and_hlsjs(tmp_path, container, publisher):
    fmp4 = container == "fmp4"
    name = f"play-{publisher}-{container}"
    async with running_server(tmp_path, f"hls.format={container}", "hls.window=20") as srv, \
            aiohttp.ClientSession() as session:
        recorder = StreamRecorder(srv.hub)
        service = srv.app[HLS_SERVICE]
        if publisher == "pyav":
            push = asyncio.ensure_future(pyav_push_process(
                srv.rtmp_url(name), seconds=PUSH_SECONDS, fps=FPS, width=WIDTH, height=HEIGHT, realtime=True))
        else:
            push = asyncio.ensure_future(ffmpeg_push(srv.rtmp_url(name), seconds=PUSH_SECONDS, fps=FPS, realtime=True))
        try:
            await recorder.wait_started(name)
            assert await service.wait_ready(name, timeout=15), "no segment listed"
            master_url = await check_api(session, srv, name)

            status, body, headers = await fetch(session, master_url)
            assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl"
            assert headers["Access-Control-Allow-Origin"] == "*"
            master = body.decode()
            assert f"RESOLUTION={WIDTH}x{HEIGHT}" in master and "mp4a.40.2" in master
            assert "#EXT-X-ENDLIST" not in (await fetch(session, f"{srv.http_url}/live/{name}/source/index.m3u8"))[1].decode()

            # All three players join now, while the stream is live, and follow it.
            ffmpeg_counts, gst_frames, (reached, http_errors) = await asyncio.gather(
                ffmpeg_play(master_url),
                gstreamer_play(master_url, tmp_path / "gst.yuv"),
                hlsjs_play(master_url),
            )
            if publisher == "pyav":
                pushed_frames = (await push).video_frames
            else:
                status, output = await push
                assert status == 0, output
                pushed_frames = PUSH_SECONDS * FPS
        finally:
            if not push.done():
                push.cancel()
        units = await recorder.wait_ended(name)
        video_units = [u for u in units if u.kind is TrackKind.VIDEO]
        assert len(video_units) == pushed_frames

        assert reached >= 2.0
        assert not http_errors, f"hls.js saw HTTP errors: {http_errors}"
        assert ffmpeg_counts["video"] == pushed_frames, ffmpeg_counts
        assert ffmpeg_counts["audio"] == len(units) - len(video_units), ffmpeg_counts
        assert gst_frames == pushed_frames

        await until(service, name, lambda s: s.ended)
        _, blobs = await fetch_all(session, f"{srv.http_url}/live/{name}/source/index.m3u8", fmp4=fmp4)
        assert len(blobs) == 1
        check_every_frame(units, blobs, fmp4=fmp4)
