#!/usr/bin/env python3
"""WHIP ingest CPU (issue 17): what one WHIP 720p30 stream costs the server next to an
RTMP stream of the same picture, and how many concurrent WHIP streams 2 cores hold in
real time.

One invocation, one server at a time (``mediasrv serve`` on free loopback ports,
``auth.mode=open`` so a stream's bearer token is its public name):

1. The clip is made once with PyAV: ``--size`` at ``--fps``, a moving picture, H.264
   (x264 ``veryfast``, no B-frames, 2 s GOP, ~2.5 Mbit/s at 720p) + Opus 48 kHz stereo,
   in Matroska.
2. Publishers replay the clip's packets in real time without re-encoding them, so their
   own CPU is small and the same picture arrives either way:
   - WHIP: a child process (``whip.py --pusher``) muxes the packets with FFmpeg 8's
     ``whip`` muxer through PyAV (an ECDSA P-256 DTLS certificate, see
     ../shared/WHIP-INTEROP.md; FFmpeg answers no consent checks, so every push here
     lasts under 30 s);
   - RTMP: ``ffmpeg -re -i clip.mkv -c:v copy -c:a aac -f flv`` (AAC: RTMP carries no
     Opus; the audio encode is the publisher's cost, not the server's).
3. Measured for ``--seconds`` after ``--warmup``: CPU seconds (user + system) of the
   server's process tree (its transcoder worker included) from /proc, and each stream's
   ingest frame rate as the server sees it (``mediasrv_stream_video_frames_per_second``
   in ``/metrics``, sampled every second). A WHIP stream is decoded (by aiortc) and
   re-encoded to H.264 + AAC by the server; an RTMP stream is passed through.
4. Rows: ``rtmp-1`` and ``whip-1``, then ``whip-N`` for N = 2, 3, … until a row does not
   hold real time (a stream's median frame rate below 95 % of ``--fps`` or a
   publisher gone) or ``--max-streams``. Transcoding is off in every row unless
   ``--ladder`` (then the default ladder runs too, for every stream).

    .venv/bin/python benchmarks/whip.py [--max-streams 6] [--append-results]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fractions
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FFMPEG,
    HOST,
    RESULTS,
    ROOT,
    ProcessGroup,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    free_port,
    load_average,
    machine_description,
    markdown_table,
    wait_for_tcp,
)

SECTION = "## WHIP ingest (issue 17)"
FPS_METRIC = re.compile(r'^mediasrv_stream_video_frames_per_second\{stream="([^"]+)"\} ([0-9.eE+-]+)$', re.M)


def note(msg: str) -> None:
    print(f"[whip] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The clip and the publishers


def make_clip(path: Path, seconds: float, width: int, height: int, fps: int) -> None:
    """Encode ``seconds`` of a moving picture (H.264 without B-frames + Opus) into ``path``."""
    import av
    import numpy as np

    container = av.open(str(path), "w", format="matroska")
    video = container.add_stream("libx264", rate=fps, options={
        "preset": "veryfast", "profile": "baseline",
        "x264-params": f"keyint={2 * fps}:min-keyint={2 * fps}:scenecut=0:bframes=0",
    })
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.bit_rate = int(2_500_000 * width * height / (1280 * 720))
    video.codec_context.time_base = fractions.Fraction(1, fps)
    audio = container.add_stream("libopus", rate=48000)
    audio.layout = "stereo"
    audio.bit_rate = 96000
    x = np.arange(width, dtype=np.int32)
    y = np.arange(height, dtype=np.int32)[:, None]
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    samples = 0
    for i in range(int(seconds * fps)):
        luma = ((x[None, :] * 2 + y + i * 6) % 200 + 28).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = i
        frame.time_base = fractions.Fraction(1, fps)
        for packet in video.encode(frame):
            container.mux(packet)
        while samples < (i + 1) * 48000 / fps:
            t = (np.arange(960) + samples) / 48000
            tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            aframe = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            aframe.sample_rate = 48000
            aframe.pts = samples
            aframe.time_base = fractions.Fraction(1, 48000)
            samples += 960
            for packet in audio.encode(aframe):
                container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()


def make_dtls_pair(workdir: Path) -> tuple[Path, Path]:
    """An ECDSA P-256 certificate for FFmpeg's DTLS (its GnuTLS default is P-224, which
    OpenSSL-based peers refuse: ../shared/WHIP-INTEROP.md)."""
    cert, key = workdir / "dtls-cert.pem", workdir / "dtls-key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=bench"],
                       check=True, capture_output=True)
    return cert, key


def run_pusher(url: str, token: str, clip: Path, seconds: float, cert: Path, key: Path) -> None:
    """Replay ``clip``'s packets in real time into FFmpeg's ``whip`` muxer (child process)."""
    import av

    source = av.open(str(clip))
    out = av.open(url, "w", format="whip", options={
        "authorization": token, "cert_file": str(cert), "key_file": str(key), "whip_flags": "dtls_active"})
    mapping = {}
    for stream in source.streams:
        if stream.type in ("video", "audio"):
            mapping[stream.index] = out.add_stream_from_template(stream)
    start = time.monotonic()
    for packet in source.demux():
        if packet.dts is None or packet.stream.index not in mapping:
            continue
        at = float(packet.dts * packet.time_base)
        if at > seconds:
            break
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # a camera delivers this packet's frame at its time
        packet.stream = mapping[packet.stream.index]
        out.mux(packet)
    out.close()


# ---------------------------------------------------------------------------------------
# The server and one row


class Server:
    def __init__(self, procs: ProcessGroup, workdir: Path, sets: list[str]) -> None:
        self.procs, self.workdir = procs, workdir
        self.rtmp_port, self.http_port = free_port(HOST), free_port(HOST)
        self.argv = [sys.executable, "-m", "mediasrv.cli", "serve",
                     "--set", f"rtmp.listen={HOST}:{self.rtmp_port}", "--set", f"http.listen={HOST}:{self.http_port}",
                     "--set", f"data_dir={workdir / 'data'}", "--set", "log.level=warning",
                     "--set", "auth.mode=open", "--set", "webrtc.max_sessions=64",
                     # Every publisher is on this machine: lift the per-address cap (issue 18).
                     "--set", "webrtc.max_sessions_per_address=64"]
        for kv in sets:
            self.argv += ["--set", kv]
        self.proc = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = self.procs.start("mediasrv", self.argv, log_path=self.workdir / "mediasrv.log", cwd=ROOT,
                                     parent_death_signal=False)
        wait_for_tcp(HOST, self.http_port, 60.0, self.proc)
        wait_for_tcp(HOST, self.rtmp_port, 10.0, self.proc)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.http_port}"


@dataclass
class Row:
    name: str
    streams: int
    cpu_percent: float = 0.0
    fps_median: dict[str, float] = field(default_factory=dict)
    publishers_alive: int = 0
    held: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def per_stream(self) -> float:
        return self.cpu_percent / self.streams


async def fps_by_stream(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    return {name: float(value) for name, value in FPS_METRIC.findall(text)}


async def wait_live(session: aiohttp.ClientSession, base: str, names: set[str], timeout: float) -> None:
    """Until the server reports a frame rate for every stream in ``names``."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {k for k, v in (await fps_by_stream(session, base)).items() if v > 0}
        if names <= seen:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not live after {timeout:.0f} s: {sorted(names - seen)}")
        await asyncio.sleep(0.25)  # polling the server's state, not synchronising


async def measure(kind: str, streams: int, args, workdir: Path, clip: Path, pair: tuple[Path, Path]) -> Row:
    row = Row(f"{kind}-{streams}", streams)
    sets = [] if args.ladder else ["transcode.enabled=false"]
    with ProcessGroup() as procs:
        server = Server(procs, workdir / row.name, sets + args.mediasrv_set)
        server.start()
        names = [f"bench{i}" for i in range(streams)]
        pushers = []
        push_seconds = args.warmup + args.seconds + 6
        for name in names:
            if kind == "whip":
                argv = [sys.executable, __file__, "--pusher", f"{server.base}/whip", name, str(clip),
                        str(push_seconds), str(pair[0]), str(pair[1])]
            else:
                argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-t", str(push_seconds), "-i", str(clip),
                        "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-f", "flv",
                        f"rtmp://{HOST}:{server.rtmp_port}/live/{name}"]
            pushers.append(procs.start(f"pusher-{name}", argv, log_path=workdir / row.name / f"{name}.log"))
        async with aiohttp.ClientSession() as session:
            await wait_live(session, server.base, set(names), 30.0)
            await asyncio.sleep(args.warmup)  # let the encoders and the ladder settle: a measured warm-up
            samples: dict[str, list[float]] = {n: [] for n in names}
            cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
            while time.monotonic() - t0 < args.seconds:
                await asyncio.sleep(1.0)  # one sample a second
                for name, value in (await fps_by_stream(session, server.base)).items():
                    if name in samples:
                        samples[name].append(value)
            cpu1, t1 = cpu_seconds(server.proc.pid), time.monotonic()
        row.cpu_percent = 100 * (cpu1 - cpu0) / (t1 - t0)
        row.fps_median = {n: statistics.median(v) if v else 0.0 for n, v in samples.items()}
        row.publishers_alive = sum(p.alive() for p in pushers)
        row.held = row.publishers_alive == streams and min(row.fps_median.values()) >= 0.95 * args.fps
        if row.publishers_alive < streams:
            for p in pushers:
                if not p.alive():
                    row.notes.append(f"{p.name} exited: {p.log_tail(3)!r}")
    note(f"{row.name}: CPU {row.cpu_percent:.0f} % of a core, fps medians {row.fps_median}, held={row.held}")
    return row


# ---------------------------------------------------------------------------------------


def report(rows: list[Row], args) -> str:
    table = markdown_table(
        ["row", "streams", "server CPU % of a core", "CPU % per stream", "lowest stream fps (median)",
         "publishers alive", "real time"],
        [[r.name, r.streams, f"{r.cpu_percent:.0f}", f"{r.per_stream:.0f}", f"{min(r.fps_median.values()):.1f}",
          f"{r.publishers_alive}/{r.streams}", "yes" if r.held else "no"] for r in rows],
    )
    lines = [
        f"### {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", "", "```", command_line(), "```", "",
        f"Machine: {machine_description({'ffmpeg': [FFMPEG, '-version']})}; load average at the end "
        f"{load_average()}. mediasrv at {code_revision()}.",
        f"Clip: {args.size} {args.fps} fps H.264 baseline (x264 veryfast, 2 s GOP, no B-frames) + Opus, replayed "
        f"in real time (WHIP: FFmpeg's whip muxer via PyAV; RTMP: ffmpeg -c:v copy, AAC). Transcoding "
        f"{'on (default ladder)' if args.ladder else 'off'}; {args.seconds:g} s measured after {args.warmup:g} s.",
        "", table, "",
    ]
    held = [r.streams for r in rows if r.name.startswith("whip") and r.held]
    rtmp = next((r for r in rows if r.name == "rtmp-1"), None)
    whip = next((r for r in rows if r.name == "whip-1"), None)
    if rtmp and whip:
        lines.append(f"- One stream: WHIP {whip.cpu_percent:.0f} % vs RTMP {rtmp.cpu_percent:.0f} % of a core "
                     f"({whip.cpu_percent / max(rtmp.cpu_percent, 0.1):.1f}×): the server decodes and re-encodes "
                     "a WHIP stream, an RTMP one is passed through.")
    lines.append(f"- Most concurrent WHIP streams held in real time: {max(held) if held else 0}.")
    for r in rows:
        for n in r.notes:
            lines.append(f"- {r.name}: {n}")
    return "\n".join(lines) + "\n"


async def amain(args, workdir: Path) -> list[Row]:
    clip = workdir / "clip.mkv"
    width, height = (int(v) for v in args.size.split("x"))
    note("making the clip")
    make_clip(clip, args.warmup + args.seconds + 10, width, height, args.fps)
    pair = make_dtls_pair(workdir)
    rows = [await measure("rtmp", 1, args, workdir, clip, pair)]
    for n in [1] + list(range(max(2, args.start_streams), args.max_streams + 1)):
        row = await measure("whip", n, args, workdir, clip, pair)
        rows.append(row)
        if not row.held:
            break
    return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per row (default 15)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (default 5)")
    p.add_argument("--size", default="1280x720")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--max-streams", type=int, default=6)
    p.add_argument("--start-streams", type=int, default=2,
                   help="the first N of the ramp after whip-1 (default 2): skip rows known to hold")
    p.add_argument("--ladder", action="store_true", help="keep the default transcoding ladder on")
    p.add_argument("--mediasrv-set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--append-results", action="store_true", help=f"append to {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if args.warmup + args.seconds > 24:
        p.error("warm-up + measured seconds must stay under 24: FFmpeg's whip muxer answers no consent "
                "checks, so the server ends its sessions after about 30 s")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--pusher":
        url, token, clip, seconds, cert, key = argv[1:7]
        run_pusher(url, token, Path(clip), float(seconds), Path(cert), Path(key))
        return 0
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mediasrv-whip-bench-") as tmp:
        rows = asyncio.run(amain(args, Path(tmp)))
    text = report(rows, args)
    print(text)
    if args.append_results:
        append_to_section(RESULTS, SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
