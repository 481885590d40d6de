"""Real WHIP clients for the tests: FFmpeg 8's ``whip`` muxer (through PyAV, in a child
process) and, in ``tests/whip``, headless Chromium.

FFmpeg's muxer, as PyAV's wheels bundle it (built with GnuTLS), makes an ECDSA P-224 DTLS
key by default, which OpenSSL peers such as aiortc refuse ("wrong curve"): the push
gets a P-256 pair made with the openssl CLI (``dtls_pair``). ``whip_flags=dtls_active``
makes FFmpeg the DTLS client, which sets up ~4x faster (/work/shared/WHIP-INTEROP.md).
FFmpeg answers no STUN consent check once streaming (RFC 7675), so a receiver that
enforces consent freshness closes the session after ~30 s: pushes stay well under that.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import av.logging
import numpy as np

from tests.support.tools import require_tool


@dataclass
class WhipPushResult:
    video_frames: int
    audio_frames: int
    #: Seconds ``av.open`` took: the POST, ICE and DTLS (the muxer opens the session there).
    setup_seconds: float
    #: Seconds from the first frame written to the container's close (the DELETE).
    push_seconds: float
    width: int
    height: int


def dtls_pair(directory: Path) -> tuple[Path, Path]:
    """An ECDSA P-256 certificate and key for FFmpeg's DTLS (``cert_file``/``key_file``)."""
    openssl = require_tool("openssl")
    cert, key = directory / "whip-dtls.crt", directory / "whip-dtls.key"
    if not cert.exists():
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "1", "-subj", "/CN=whip-test", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60)
    return cert, key


def _picture(index: int, width: int, height: int) -> np.ndarray:
    # Moving bars and a per-frame shade: every frame differs (real P-frames), and the
    # left half is brighter than the right so a rotation or a crop would show.
    x = (np.arange(width, dtype=np.uint16) + index * 4) % 200
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = x[None, :]
    image[:, :, 1] = (np.arange(height, dtype=np.uint16)[:, None] + index * 2) % 256
    image[:, :, 2] = (index * 7) % 256
    image[:, : width // 2] |= 0x40
    return image


def whip_push(url: str, key: str, cert: str, cert_key: str, *, seconds: float = 6.0, fps: int = 30,
              width: int = 640, height: int = 360, audio: bool = True, hold: float = 0.0) -> WhipPushResult:
    """Publish a synthetic H.264 (Constrained Baseline, no B-frames) + Opus stream over
    WHIP in real time (blocking). ``hold``: seconds to keep the session open after the
    last frame, sending nothing, before closing it (which sends the DELETE)."""
    started = time.monotonic()
    container = av.open(url, "w", format="whip", options={
        "authorization": key, "cert_file": cert, "key_file": cert_key, "whip_flags": "dtls_active"})
    setup = time.monotonic() - started
    video = container.add_stream("libx264", rate=fps, options={
        "preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
        "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0:repeat-headers=1"})
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.time_base = fractions.Fraction(1, fps)
    sound = None
    if audio:
        sound = container.add_stream("libopus", rate=48000)
        sound.layout = "stereo"
    frames = int(round(seconds * fps))
    video_frames = audio_frames = 0
    sample = 0
    begin = time.monotonic()
    try:
        for index in range(frames):
            due = begin + index / fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # real time: a live camera, not a file
            frame = av.VideoFrame.from_ndarray(_picture(index, width, height), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
            video_frames += 1
            if sound is not None:
                while sample < (index + 1) * 48000 // fps:
                    tone = np.sin(2 * np.pi * 440 * (sample + np.arange(960)) / 48000).astype(np.float32) * 0.2
                    chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                    chunk.sample_rate, chunk.pts = 48000, sample
                    for packet in sound.encode(chunk):
                        container.mux(packet)
                    sample += 960
                    audio_frames += 1
        for packet in video.encode(None):
            container.mux(packet)
        if hold:
            time.sleep(hold)
    finally:
        container.close()
    return WhipPushResult(video_frames, audio_frames, round(setup, 3), round(time.monotonic() - begin, 3),
                          width, height)


async def start_whip_push(url: str, key: str, pair: tuple[Path, Path], **options) -> asyncio.subprocess.Process:
    """``whip_push`` in a child process (PyAV holds the GIL in libavformat's network I/O:
    a push from a thread of the server's process would starve its event loop). Its last
    line of output is the ``WhipPushResult`` as JSON."""
    root = Path(__file__).resolve().parents[2]
    args = {"url": url, "key": key, "cert": str(pair[0]), "cert_key": str(pair[1]), **options}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.whip_clients", json.dumps(args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})


async def whip_push_process(url: str, key: str, pair: tuple[Path, Path], *, timeout: float = 90,
                            **options) -> WhipPushResult:
    """Run ``whip_push`` in a child process to its end; its result."""
    proc = await start_whip_push(url, key, pair, **options)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"WHIP push to {url} did not finish within {timeout} s") from None
    if proc.returncode != 0:
        raise AssertionError(f"WHIP push failed ({proc.returncode}): {err.decode(errors='replace')[-3000:]}")
    return WhipPushResult(**json.loads(out.decode().strip().splitlines()[-1]))


if __name__ == "__main__":  # the child process of whip_push_process
    # FFmpeg's errors on stderr (PyAV silences FFmpeg's log by default): what went wrong
    # for a failed push, and how the client saw the server end a session (its RTP
    # writes refused: "Failed to write packet ... ret=-111", ECONNREFUSED).
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(name)s: %(message)s")
    av.logging.set_level(av.logging.ERROR)
    options = json.loads(sys.argv[1])
    result = whip_push(options.pop("url"), options.pop("key"), options.pop("cert"), options.pop("cert_key"),
                       **options)
    print(json.dumps(asdict(result)), flush=True)
