"""End to end: real RTMP clients publish into the server; we check what the hub received."""

from __future__ import annotations

import asyncio

import aiohttp
import av
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.media.types import Codec, TrackKind
from tests.support.clients import (
    decode_units,
    ffmpeg_push,
    gst_push_args,
    pyav_push_process,
    run_process,
)
from tests.support.server import StreamRecorder, running_server
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e


def _video(units):
    return [u for u in units if u.kind is TrackKind.VIDEO]


def _audio(units):
    return [u for u in units if u.kind is TrackKind.AUDIO]


def check_h264_aac(units, frames: int, *, fps: int = 25, width: int = 320, height: int = 240) -> None:
    video, audio = _video(units), _audio(units)
    assert len(video) == frames
    track = video[0].track
    assert track.codec is Codec.H264
    assert (track.width, track.height) == (width, height)
    assert track.codec_string.startswith("avc1.")
    # libx264's own SPS matches the avcC we received
    assert track.config[0] == 1 and len(track.config) > 7
    assert video[0].keyframe
    # DTS monotonic, B-frames present (some pts != dts), pts cover 0..frames-1 at fps.
    dts = [u.dts for u in video]
    assert dts == sorted(dts)
    assert any(u.pts != u.dts for u in video), "expected B-frames (composition offsets)"
    pts = sorted(u.pts - video[0].dts for u in video)
    step = 1000 / fps
    assert all(abs((p - pts[0]) - round(i * step)) <= 1 for i, p in enumerate(pts))
    assert decode_units(units) == frames
    assert audio, "audio track missing"
    assert audio[0].track.codec is Codec.AAC
    assert audio[0].track.sample_rate == 44100 and audio[0].track.channels == 2
    assert audio[0].track.codec_string == "mp4a.40.2"


async def test_pyav_publish(server, recorder):
    result = await pyav_push_process(server.rtmp_url("pyav"), seconds=3)
    units = await recorder.wait_ended("pyav")
    check_h264_aac(units, result.video_frames)
    assert len(_audio(units)) == result.audio_frames


async def test_ffmpeg_cli_publish(server, recorder):
    status, output = await ffmpeg_push(server.rtmp_url("ffcli"), seconds=3)
    assert status == 0, output
    units = await recorder.wait_ended("ffcli")
    check_h264_aac(units, 75)


@pytest.mark.parametrize("sink", ["rtmp2sink", "rtmpsink"])
async def test_gstreamer_publish(server, recorder, sink):
    args = gst_push_args(server.rtmp_url(f"gst-{sink}"), sink, frames=75)
    status, output = await run_process(*args, timeout=90)
    assert status == 0, output
    units = await recorder.wait_ended(f"gst-{sink}")
    check_h264_aac(units, 75)


async def test_hevc_over_enhanced_rtmp(server, recorder):
    if "libx265" not in av.codecs_available:
        pytest.fail("PyAV's build has no libx265")
    result = await pyav_push_process(server.rtmp_url("hevc"), seconds=2, codec="libx265")
    units = await recorder.wait_ended("hevc")
    video = _video(units)
    assert len(video) == result.video_frames
    track = video[0].track
    assert track.codec is Codec.HEVC
    assert track.codec_string.startswith("hvc1.")
    assert (track.width, track.height) == (320, 240)
    assert decode_units(units) == result.video_frames


async def test_av1_over_enhanced_rtmp(server, recorder):
    if "libsvtav1" not in av.codecs_available:
        pytest.fail("PyAV's build has no libsvtav1")
    result = await pyav_push_process(server.rtmp_url("av1"), seconds=2, codec="libsvtav1", audio=False)
    units = await recorder.wait_ended("av1")
    video = _video(units)
    assert len(video) == result.video_frames
    assert video[0].track.codec is Codec.AV1
    assert video[0].track.codec_string.startswith("av01.")
    assert decode_units(units) == result.video_frames


async def ffmpeg_pull(ffmpeg: str, url: str, out) -> tuple[int, str, list]:
    """``ffmpeg -i URL -c copy OUT`` (RTMP playback until the stream ends): its exit
    status, its output and the video frames PyAV decodes from what it wrote."""
    status, output = await run_process(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", url, "-c", "copy", "-f", "flv", str(out),
        timeout=30,
    )
    frames = []
    if status == 0:
        with av.open(str(out)) as container:
            frames = list(container.decode(video=0))
    return status, output, frames


async def test_ffmpeg_pulls_what_was_published(server, recorder, tmp_path):
    """``ffmpeg -i rtmp://…/live/NAME`` plays a live stream (RTMP playback)."""
    ffmpeg = require_tool("ffmpeg")
    push = asyncio.create_task(ffmpeg_push(server.rtmp_url("pullme"), seconds=4, realtime=True))
    await recorder.wait_started("pullme")
    status, output, frames = await ffmpeg_pull(ffmpeg, server.rtmp_url("pullme"), tmp_path / "pulled.flv")
    push_status, push_output = await push
    assert push_status == 0, push_output
    assert status == 0, output
    pushed = _video(await recorder.wait_ended("pullme"))
    # The player joined at the GOP cache: it gets every frame from a keyframe on.
    assert len(pushed) - 25 <= len(frames) <= len(pushed)
    assert frames[0].key_frame
    assert (frames[-1].width, frames[-1].height) == (320, 240)


async def test_hls_disabled_node_relays_rtmp_without_packaging(tmp_path):
    """``hls.enabled=false``: an RTMP-only relay (nginx-rtmp ``live on``). Publishing and
    RTMP playback work; no HLS muxer reads the stream and its HLS URLs are 404 at once
    (no wait for a first segment that will never come)."""
    ffmpeg = require_tool("ffmpeg")
    async with running_server(tmp_path / "srv", "hls.enabled=false", "recording.enabled=false") as srv:
        recorder = StreamRecorder(srv.hub)
        push = asyncio.create_task(ffmpeg_push(srv.rtmp_url("relay"), seconds=4, realtime=True))
        await recorder.wait_started("relay")
        stream = srv.hub.get("relay")
        assert not any(reader.name.startswith("hls:") for reader in stream.readers)
        async with aiohttp.ClientSession() as session:
            for path in ("/live/relay/index.m3u8", "/live/relay/source/index.m3u8"):
                # Well under the 6 s a playlist request may wait for a first segment.
                async with asyncio.timeout(1.5):
                    async with session.get(srv.http_url + path) as response:
                        assert response.status == 404, path
        status, output, frames = await ffmpeg_pull(ffmpeg, srv.rtmp_url("relay"), tmp_path / "pulled.flv")
        push_status, push_output = await push
        assert push_status == 0, push_output
        assert status == 0, output
        pushed = _video(await recorder.wait_ended("relay"))
        assert len(pushed) - 25 <= len(frames) <= len(pushed) and frames[0].key_frame
        assert srv.app[HLS_SERVICE].stats.streams_started == 0
