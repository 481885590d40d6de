"""Real RTMP clients and players, each pushing or pulling a synthetic stream.

- PyAV's libavformat RTMP client (``av.open(url, "w", format="flv")``), run in a thread;
- the FFmpeg CLI; GStreamer ``rtmp2sink`` and the librtmp-based ``rtmpsink``.
Each synthetic stream is H.264 (with B-frames) + AAC unless said otherwise.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import time
from dataclasses import dataclass

import av
import numpy as np

from tests.support.tools import require_gst_element, require_tool


@dataclass
class PushResult:
    video_frames: int
    audio_frames: int
    #: Presentation times in ms of every video frame pushed, in presentation order.
    video_pts_ms: list[int]


def _frame_image(index: int, width: int, height: int) -> np.ndarray:
    # Moving bars plus a per-frame brightness so every frame differs (encoders make real
    # P- and B-frames, not empty skips).
    x = (np.arange(width, dtype=np.uint16) + index * 4) % 256
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = x[None, :]
    image[:, :, 1] = ((np.arange(height, dtype=np.uint16)[:, None] + index * 2) % 256)
    image[:, :, 2] = (index * 7) % 256
    return image


def pyav_push(
    url: str,
    *,
    seconds: float = 3.0,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    codec: str = "libx264",
    audio: bool = True,
    realtime: bool = False,
    gop: int | None = None,
    bit_rate: int | None = None,
    keep_every: tuple[float, float, int] | None = None,
    still: tuple[float, float] | None = None,
) -> PushResult:
    """Publish a synthetic stream with PyAV (blocking; run it with ``asyncio.to_thread``).

    To push an encoder in trouble: ``bit_rate`` sets a video target (x264 ABR) instead of
    the default quality; ``keep_every=(start, end, n)`` keeps only every n-th frame
    between ``start`` and ``end`` seconds (the frame rate drops, timestamps stay real);
    ``still=(start, end)`` freezes the picture between those seconds (the encoder has
    nothing left to spend bits on: the bitrate collapses)."""
    gop = gop or fps
    frames = int(round(seconds * fps))
    options: dict[str, str] = {}
    if codec == "libx264":
        options = {"preset": "superfast", "x264-params": f"bframes=2:keyint={gop}:min-keyint={gop}:scenecut=0"}
    elif codec == "libx265":
        options = {"preset": "ultrafast", "x265-params": f"bframes=2:keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error"}
    elif codec == "libsvtav1":
        options = {"preset": "12", "svtav1-params": f"keyint={gop}"}
    container = av.open(url, "w", format="flv")
    try:
        video = container.add_stream(codec, rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, fps)
        if bit_rate:
            video.bit_rate = bit_rate
        if codec == "libsvtav1":
            video.codec_context.gop_size = gop
        aud = None
        if audio:
            aud = container.add_stream("aac", rate=44100)
            aud.layout = "stereo"
            aud.bit_rate = 64000
        audio_frames = 0
        samples_sent = 0
        start = time.monotonic()
        pts_ms = []
        for index in range(frames):
            skipped = keep_every is not None and (
                keep_every[0] * fps <= index < keep_every[1] * fps and index % keep_every[2])
            if not skipped:
                frozen = still is not None and still[0] * fps <= index < still[1] * fps
                image = _frame_image(int(still[0] * fps) if frozen else index, width, height)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts = index
                frame.time_base = video.codec_context.time_base
                pts_ms.append(round(index * 1000 / fps))
                for packet in video.encode(frame):
                    container.mux(packet)
            if aud is not None:
                # Keep audio up to the video clock, in 1024-sample AAC frames.
                while samples_sent < (index + 1) * 44100 / fps:
                    t = (np.arange(1024) + samples_sent) / 44100
                    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                    aframe = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                    aframe.sample_rate = 44100
                    aframe.pts = samples_sent
                    aframe.time_base = fractions.Fraction(1, 44100)
                    samples_sent += 1024
                    for packet in aud.encode(aframe):
                        container.mux(packet)
                        audio_frames += 1
            if realtime:
                ahead = (index + 1) / fps - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)  # pacing a live encoder, not synchronisation
        for packet in video.encode(None):
            container.mux(packet)
        if aud is not None:
            for packet in aud.encode(None):
                container.mux(packet)
                audio_frames += 1
    finally:
        container.close()
    return PushResult(len(pts_ms), audio_frames, pts_ms)


async def run_process(*args: str, timeout: float = 60, env: dict | None = None) -> tuple[int, str]:
    """Run a command; return (exit status, stderr+stdout text). Killed after ``timeout``."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -9, out.decode(errors="replace")
    except asyncio.CancelledError:
        # A caller that stops waiting stops the process too: no orphan encoder.
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(errors="replace")


async def start_ffmpeg_push(url: str, *, seconds: float, realtime: bool = True, **push_args) -> asyncio.subprocess.Process:
    """An FFmpeg CLI publisher (``ffmpeg_push_args``) running in the background, its
    output discarded; the caller waits for or kills it."""
    return await asyncio.create_subprocess_exec(
        *ffmpeg_push_args(url, seconds=seconds, realtime=realtime, **push_args),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


def ffmpeg_push_args(url: str, *, seconds: float = 3, fps: int = 25, realtime: bool = False,
                     size: str = "320x240", video_bitrate: str | None = None, gop: int | None = None) -> list[str]:
    """FFmpeg publishing a test pattern and a tone; ``gop``: frames between keyframes
    (default one second's worth; OBS's "auto" is 250)."""
    ffmpeg = require_tool("ffmpeg")
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin"]
    if realtime:
        args.append("-re")
    gop = gop or fps
    args += [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "superfast", "-pix_fmt", "yuv420p",
        "-x264-params", f"bframes=2:keyint={gop}:min-keyint={gop}:scenecut=0",
    ]
    if video_bitrate:
        args += ["-b:v", video_bitrate, "-maxrate", video_bitrate, "-bufsize", video_bitrate]
    args += ["-c:a", "aac", "-b:a", "64k", "-ac", "2", "-f", "flv", url]
    return args


async def ffmpeg_push(url: str, *, seconds: float = 3, fps: int = 25, realtime: bool = False) -> tuple[int, str]:
    return await run_process(*ffmpeg_push_args(url, seconds=seconds, fps=fps, realtime=realtime), timeout=60 + seconds)


def gst_push_args(url: str, sink: str, *, frames: int = 75, fps: int = 25) -> list[str]:
    """A GStreamer pipeline: videotestsrc → x264enc (B-frames) + audiotestsrc → AAC → flvmux → sink."""
    require_gst_element(sink)
    for element in ("x264enc", "avenc_aac", "flvmux"):
        require_gst_element(element)
    audio_buffers = int(frames / fps * 44100 / 1024) + 1
    location = url if sink == "rtmp2sink" else f"{url} live=1"
    return [
        require_tool("gst-launch-1.0"), "-q", "-e",
        "flvmux", "name=mux", "streamable=true", "!", "queue", "!", sink, f"location={location}",
        "videotestsrc", f"num-buffers={frames}", "is-live=false", "!",
        f"video/x-raw,width=320,height=240,framerate={fps}/1", "!",
        "x264enc", "bframes=2", f"key-int-max={fps}", "speed-preset=superfast", "!",
        "video/x-h264,profile=main", "!", "h264parse", "!", "queue", "!", "mux.",
        "audiotestsrc", f"num-buffers={audio_buffers}", "samplesperbuffer=1024", "is-live=false", "!",
        "audio/x-raw,rate=44100,channels=2", "!", "audioconvert", "!", "avenc_aac", "!", "aacparse", "!",
        "queue", "!", "mux.",
    ]


def decode_units(units, codec_name: str | None = None) -> int:
    """Decode every video unit with PyAV; return the number of decoded frames."""
    from mediasrv.media.types import TrackKind

    video = [u for u in units if u.kind is TrackKind.VIDEO]
    if not video:
        return 0
    track = video[0].track
    name = codec_name or {"h264": "h264", "hevc": "hevc", "av1": "libdav1d", "vp9": "vp9"}[track.codec.value]
    ctx = av.CodecContext.create(name, "r")
    ctx.extradata = track.config
    decoded = 0
    for unit in video:
        if unit.track is not track:  # new configuration mid-stream
            track = unit.track
            ctx = av.CodecContext.create(name, "r")
            ctx.extradata = track.config
        packet = av.Packet(unit.data)
        packet.pts, packet.dts = unit.pts, unit.dts
        decoded += len(ctx.decode(packet))
    decoded += len(ctx.decode(None))
    return decoded


async def pyav_push_process(url: str, *, timeout: float = 120, **options) -> PushResult:
    """Run ``pyav_push`` in a child process and return its result.

    PyAV holds the GIL while libavformat's RTMP client does network I/O, so pushing from
    a thread of the process that runs the server would starve the server's event loop.
    """
    import json
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.clients", url, json.dumps(options),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=root,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"PyAV push to {url} did not finish within {timeout} s") from None
    if proc.returncode != 0:
        raise AssertionError(f"PyAV push failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return PushResult(**json.loads(out))


if __name__ == "__main__":  # child process entry of pyav_push_process
    import dataclasses
    import json
    import sys

    result = pyav_push(sys.argv[1], **json.loads(sys.argv[2]))
    print(json.dumps(dataclasses.asdict(result)))
