"""Real players against a live stream served over HTTP: FFmpeg's and GStreamer's HLS clients.

The app serves on 127.0.0.1 (ephemeral port) while MediaUnits are pushed into the hub.
Each player is started while the stream is live (its first playlist has no ENDLIST, so
it runs its live-reload logic), the rest of the stream is pushed once it has loaded the
playlist, then the stream ends and the player must have decoded every frame.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from aiohttp.test_utils import TestServer

from mediasrv.httpkit.keys import HLS_SERVICE
from tests.hls.conftest import Publisher, hls_config, make_app, until
from tests.support.tools import require_gst_element, require_tool

pytestmark = pytest.mark.e2e


async def _serve_and_play(encoded, container: str, player_args, *, timeout: float = 60):
    """Push the first second, start the player, push the rest after its first playlist
    load, end the stream; return (exit status, stdout, stderr)."""
    app, hub = make_app(hls_config(format=container, segment_duration=1.0, window=6))
    playlist_served = asyncio.Event()

    async def on_prepare(request, response):
        if request.path.endswith("/source/index.m3u8") and response.status == 200:
            playlist_served.set()

    app.on_response_prepare.append(on_prepare)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        service = app[HLS_SERVICE]
        publication = hub.publish("p", Publisher())
        units = encoded.units
        head = [u for u in units if u.dts < 1500]
        for unit in head:
            publication.push(unit)
        await until(service, "p", lambda s: len(s.segments) == 1)
        url = f"http://127.0.0.1:{server.port}/live/p/index.m3u8"
        proc = await asyncio.create_subprocess_exec(
            *player_args(url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            communicate = asyncio.ensure_future(proc.communicate())
            await asyncio.wait_for(playlist_served.wait(), timeout)
            assert "#EXT-X-ENDLIST" not in service.media_playlist("p", "source")
            for unit in units[len(head):]:
                publication.push(unit)
            publication.detach(clean=True)
            out, err = await asyncio.wait_for(communicate, timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode, out, err
    finally:
        await server.close()


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
async def test_ffmpeg_plays_every_frame(h264_aac, container):
    ffmpeg = require_tool("ffmpeg")

    def args(url):
        return [ffmpeg, "-nostdin", "-v", "error", "-live_start_index", "0", "-i", url,
                "-map", "0:v", "-map", "0:a", "-f", "framemd5", "-"]

    status, out, err = await _serve_and_play(h264_aac, container, args)
    assert status == 0, err.decode(errors="replace")
    lines = out.decode().splitlines()
    kinds = {}
    for line in lines:
        if line.startswith("#media_type"):
            index, kind = line.split()[1].rstrip(":"), line.split()[2]
            kinds[index] = kind
    counts = {"video": 0, "audio": 0}
    for line in lines:
        if line and not line.startswith("#"):
            counts[kinds[line.split(",")[0].strip()]] += 1
    assert counts["video"] == len(h264_aac.video_units) == 100
    # FFmpeg's AAC decoder returns every frame it is given.
    assert counts["audio"] == len(h264_aac.audio_units)
    assert b"rror" not in err


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
async def test_gstreamer_hlsdemux_plays_every_frame(h264_aac, container, tmp_path):
    gst = require_tool("gst-launch-1.0")
    for element in ("souphttpsrc", "hlsdemux", "decodebin"):
        require_gst_element(element)
    raw = tmp_path / "video.yuv"

    def args(url):
        return [gst, "-q", "souphttpsrc", f"location={url}", "!", "hlsdemux", "!", "decodebin", "name=d",
                "d.", "!", "queue", "!", "videoconvert", "!", "video/x-raw,format=I420", "!",
                "filesink", f"location={raw}",
                "d.", "!", "queue", "!", "audioconvert", "!", "fakesink"]

    status, out, err = await _serve_and_play(h264_aac, container, args)
    assert status == 0, (out + err).decode(errors="replace")
    assert os.path.getsize(raw) == 100 * 320 * 240 * 3 // 2
