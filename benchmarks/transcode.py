#!/usr/bin/env python3
"""Transcode: our ladder (PyAV worker process) vs the FFmpeg command line (issue 4).

One input file (1280x720 30 fps H.264 High with B-frames, 2 s GOP, + AAC, 30 s; made once
with the FFmpeg CLI and cached in the temp dir) goes through, in one invocation:

- **mediasrv**: the real worker (``python -m mediasrv.transcode.worker``, the process the
  server runs per stream) fed over its pipe with the file's compressed packets, as fast
  as it takes them (``live: false``: it blocks instead of shedding), with the aligned
  keyframes the server would plan; every packet it sends back is read and counted;
- **FFmpeg CLI** (the ``imageio-ffmpeg`` build, the nearest library version to PyAV's, and
  Debian's ``/usr/bin/ffmpeg``): ``-filter_complex split+scale`` into the same ladder with
  the same settings, ``-f null``.

Same settings on both sides: the default ladder of ``mediasrv.config`` (720p 2.8 Mbit/s,
480p 1.4, 360p 0.8, VBV maxrate/bufsize as configured), libx264 ``preset veryfast``,
``tune zerolatency``, no scene cut, closed 2 s GOPs, bicubic scaling, one AAC encode at
128 kbit/s. Wall time includes process start. Runs are interleaved (A B C, A B C, ...)
and the median of ``--runs`` is reported: realtime factor (media seconds / wall
seconds), CPU seconds (user + sys of the processes, and for mediasrv of the feeding
process too) and the ratio of realtime factors.

Then **live capacity**: N workers at once in live mode (``max_queue_seconds`` 2, as the
server runs them), each fed the input paced in real time for ``--live-seconds``;
N holds real time when no worker shed a rung or dropped a frame (every rung encoded
every frame). N goes up from 1 until it fails or reaches ``--live-max``.

Progress goes to stderr, the tables to stdout; ``--append-results`` also appends them,
with the command line, date and machine, to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/transcode.py --runs 5 --append-results
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    machine_description,
    markdown_table,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
)

sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from mediasrv.config import TranscodeConfig  # noqa: E402
from mediasrv.hls.segmenter import CUT_FRACTION  # noqa: E402
from mediasrv.transcode.service import WorkerProcess  # noqa: E402
from mediasrv.transcode import protocol  # noqa: E402
from mediasrv.transcode.ladder import KeyframePlanner, plan_ladder  # noqa: E402
from mediasrv.transcode.protocol import AUDIO_INDEX, MessageType  # noqa: E402

SECTION = "## Transcode (issue 4)"
INPUT_SECONDS = 30
FPS = 30
SEGMENT = 2.0
AUDIO_BITRATE = 128_000
LADDER = TranscodeConfig().ladder
DEBIAN_FFMPEG = "/usr/bin/ffmpeg"


def note(msg: str) -> None:
    print(f"[transcode] {msg}", file=sys.stderr, flush=True)


class BenchmarkError(RuntimeError):
    pass


def imageio_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg as iio
    except ImportError:
        return None
    try:
        return iio.get_ffmpeg_exe()
    except RuntimeError:
        return None


def tool_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=10).stdout
        return out.split("\n")[0].split(" Copyright")[0].replace("ffmpeg version ", "")
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


# ---------------------------------------------------------------------------------------
# Input


def make_input(cache_dir: Path) -> Path:
    """1280x720 30 fps H.264 High (B-frames, 2 s closed GOP) + AAC 128k, 30 s, MP4; cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"transcode-720p30-4M-bframes-{INPUT_SECONDS}s.mp4"
    if path.exists() and path.stat().st_size > 1_000_000:
        return path
    ffmpeg = shutil.which("ffmpeg") or DEBIAN_FFMPEG
    note(f"making the input {path} (once) ...")
    part = path.with_suffix(".part.mp4")
    subprocess.run(
        [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(INPUT_SECONDS),
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-bf", "3", "-g", str(2 * FPS), "-keyint_min", str(2 * FPS), "-sc_threshold", "0",
            "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            "-f", "mp4", str(part),
        ],
        check=True,
        timeout=600,
    )
    part.rename(path)
    return path


@dataclass
class Input:
    path: Path
    video_codec: str
    video_config: bytes
    audio_config: bytes
    width: int
    height: int
    #: ("video"|"audio", dts ms, pts ms, keyframe, data), in file (DTS) order.
    units: list[tuple[str, int, int, bool, bytes]]

    @property
    def video_frames(self) -> int:
        return sum(1 for u in self.units if u[0] == "video")

    def first(self, seconds: float) -> list[tuple[str, int, int, bool, bytes]]:
        return [u for u in self.units if u[1] < seconds * 1000]


def load_input(path: Path) -> Input:
    units = []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        for packet in container.demux(video, audio):
            if packet.size == 0 or packet.pts is None:
                continue
            tb = packet.time_base
            dts = packet.dts if packet.dts is not None else packet.pts
            units.append((packet.stream.type, round(dts * tb * 1000), round(packet.pts * tb * 1000),
                          bool(packet.is_keyframe), bytes(packet)))
        info = Input(path, video.codec_context.name, bytes(video.codec_context.extradata),
                     bytes(audio.codec_context.extradata), video.codec_context.width, video.codec_context.height,
                     [])
    shift = -min(u[1] for u in units)
    info.units = [(k, d + shift, p + shift, key, data) for k, d, p, key, data in units]
    return info


# ---------------------------------------------------------------------------------------
# Our pipeline


def worker_config(live: bool) -> dict:
    return {
        "rungs": [{"name": r.name, "height": r.height, "video_bitrate": r.video_bitrate, "maxrate": r.maxrate,
                   "bufsize": r.bufsize, "max_fps": r.max_fps, "preset": r.preset} for r in LADDER],
        "audio_bitrate": AUDIO_BITRATE,
        "max_queue_seconds": 2.0,
        "live": live,
    }


@dataclass
class Run:
    side: str
    wall: float
    cpu: float
    checks: str = ""
    #: Wall seconds from the pipeline being ready (worker process started, imports done)
    #: to the end; None for the FFmpeg CLI (its start is part of ``wall``, ~0.1 s).
    steady_wall: float | None = None
    #: Per rung name: (frames, keyframes, bits per second).
    rungs: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    @property
    def realtime(self) -> float:
        return INPUT_SECONDS / self.wall

    @property
    def steady_realtime(self) -> float:
        return INPUT_SECONDS / (self.steady_wall or self.wall)


class _Collector:
    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.frames: dict[int, int] = {}
        self.keyframes: dict[int, int] = {}
        self.bytes: dict[int, int] = {}
        self.stats: dict = {}
        self.events: list[str] = []
        self.first_message_at: float | None = None

    def __call__(self, kind: MessageType, value) -> None:
        if self.first_message_at is None:
            self.first_message_at = time.perf_counter()
        if kind is MessageType.PACKET:
            i = value.index
            self.frames[i] = self.frames.get(i, 0) + 1
            self.keyframes[i] = self.keyframes.get(i, 0) + value.keyframe
            self.bytes[i] = self.bytes.get(i, 0) + len(value.data)
        elif kind is MessageType.RUNG:
            self.names[value["index"]] = value["name"]
        elif kind is MessageType.STATS:
            self.stats = value
        elif kind is MessageType.EVENT:
            self.events.append(f"{value.get('level')}: {value.get('message')}")


def _messages(info: Input, units) -> list[bytes]:
    """The framed input the server would send: tracks, then units with planned keyframes."""
    planner = KeyframePlanner(int(SEGMENT * 1000 * CUT_FRACTION), int(3 * SEGMENT * 1000))
    out = [
        protocol.json_message(MessageType.VIDEO_TRACK, {"codec": info.video_codec, "config": protocol.b64(info.video_config),
                                                        "width": info.width, "height": info.height, "fps": FPS}),
        protocol.json_message(MessageType.AUDIO_TRACK, {"codec": "aac", "config": protocol.b64(info.audio_config)}),
    ]
    for kind, dts, pts, key, data in units:
        if kind == "video":
            out.append(protocol.video_message(dts, pts, data, keyframe=key, force_keyframe=planner.decide(pts, key)))
        else:
            out.append(protocol.audio_message(dts, pts, data))
    return out


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all processes), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _workers_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid, include_children=False) for pid in pids)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def run_ours(info: Input) -> Run:
    messages = _messages(info, info.units)
    collector = _Collector()
    cpu0, self0, t0 = _children_cpu(), time.process_time(), time.perf_counter()
    worker = WorkerProcess("bench", collector)
    await worker.start(worker_config(live=False))
    try:
        for data in messages:
            worker.send(data)
            if worker.backlog() > 4 * 1024 * 1024:
                await worker.proc.stdin.drain()
        worker.send(protocol.frame(MessageType.END))
        await worker.proc.stdin.drain()
        status = await asyncio.wait_for(worker.exited, 600)
    finally:
        await worker.stop()
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0 + time.process_time() - self0
    if status != 0:
        raise BenchmarkError(f"the worker exited with {status}: {list(worker.stderr_tail)[-5:]}")
    run = Run("mediasrv (PyAV worker)", wall, cpu,
              steady_wall=t0 + wall - collector.first_message_at if collector.first_message_at else None)
    expected = info.video_frames
    for index, name in collector.names.items():
        if index == AUDIO_INDEX:
            continue
        run.rungs[name] = (collector.frames.get(index, 0), collector.keyframes.get(index, 0),
                           collector.bytes.get(index, 0) * 8 / INPUT_SECONDS)
    bad = [n for n, (frames, _, _) in run.rungs.items() if frames != expected]
    if bad or len(run.rungs) != len(LADDER):
        raise BenchmarkError(f"rungs {run.rungs} (expected {len(LADDER)} rungs of {expected} frames)")
    run.checks = (", ".join(f"{n} {f} frames {k} keyframes {b / 1e6:.2f} Mbit/s" for n, (f, k, b) in run.rungs.items())
                  + f"; audio {collector.frames.get(AUDIO_INDEX, 0)} AAC frames")
    return run


# ---------------------------------------------------------------------------------------
# FFmpeg CLI


def ffmpeg_argv(binary: str, info: Input) -> list[str]:
    plans = plan_ladder(info.width, info.height, LADDER)
    n = len(plans)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale={p.width}:{p.height}:flags=bicubic[o{i}]" for i, p in enumerate(plans))
    argv = [binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(info.path),
            "-filter_complex", graph]
    for i in range(n):
        argv += ["-map", f"[o{i}]"]
    argv += ["-map", "0:a", "-c:v", "libx264", "-tune", "zerolatency",
             "-g", str(int(SEGMENT * FPS)), "-keyint_min", str(int(SEGMENT * FPS)), "-sc_threshold", "0",
             "-flags", "+cgop", "-x264-params", "scenecut=0:open-gop=0", "-pix_fmt", "yuv420p"]
    for i, p in enumerate(plans):
        argv += [f"-preset:v:{i}", p.preset, f"-b:v:{i}", str(p.video_bitrate), f"-maxrate:v:{i}", str(p.maxrate),
                 f"-bufsize:v:{i}", str(p.bufsize)]
    argv += ["-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-f", "null", "-"]
    return argv


def run_ffmpeg(procs: ProcessGroup, label: str, binary: str, info: Input, workdir: Path) -> Run:
    log = workdir / f"ffmpeg-{label}.log"
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = procs.start(label, ffmpeg_argv(binary, info), log_path=log)
    status = proc.popen.wait(600)
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    procs.stop(proc)
    if status != 0:
        raise BenchmarkError(f"{label} exited with {status}: {proc.log_tail()}")
    return Run(f"FFmpeg CLI {label}", wall, cpu, checks="exit 0, no error output" if not log.read_text().strip()
               else log.read_text().strip()[-300:])


# ---------------------------------------------------------------------------------------
# Live capacity


@dataclass
class Live:
    streams: int
    holds: bool
    cpu_percent: float
    #: CPU the rest of the machine used meanwhile (other processes; the machine is shared).
    others_percent: float
    sheds: int
    dropped: int
    queue_delay_max: float
    min_speed: float
    detail: str


async def run_live(info: Input, streams: int, seconds: float) -> Live:
    units = info.first(seconds)
    messages = _messages(info, units)
    due = [0.0, 0.0] + [u[1] / 1000 for u in units]
    expected = sum(1 for u in units if u[0] == "video")
    collectors = [_Collector() for _ in range(streams)]
    workers = [WorkerProcess(f"live{i}", c) for i, c in enumerate(collectors)]
    for worker in workers:
        await worker.start(worker_config(live=True))
    await asyncio.sleep(1.0)  # interpreter start and imports are not part of live operation
    pids = [w.pid for w in workers]
    cpu0, busy0, self0 = _workers_cpu(pids), _machine_busy(), time.process_time()
    try:
        start = time.monotonic()
        for data, at in zip(messages, due):
            ahead = at - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing live publishers
            for worker in workers:
                worker.send(data)
        elapsed = time.monotonic() - start
        cpu = _workers_cpu(pids) - cpu0
        others = _machine_busy() - busy0 - cpu - (time.process_time() - self0)
        for worker in workers:
            worker.send(protocol.frame(MessageType.END))
        statuses = [await asyncio.wait_for(w.exited, 120) for w in workers]
    finally:
        for worker in workers:
            await worker.stop()
    if any(s != 0 for s in statuses):
        raise BenchmarkError(f"live workers exited with {statuses}")
    sheds = dropped = 0
    delay = 0.0
    speeds = []
    short = []
    for c in collectors:
        s = c.stats
        sheds += int(s.get("sheds", 0))
        dropped += int(s.get("input_dropped", 0))
        delay = max(delay, float(s.get("queue_delay_max", 0.0)))
        for r in (s.get("rungs") or {}).values():
            dropped += int(r.get("frames_dropped", 0))
            speeds.append(float(r.get("speed", 0.0)))
            if int(r.get("frames_encoded", 0)) != expected:
                short.append(f"{r.get('name')} {r.get('frames_encoded')}/{expected}")
    holds = sheds == 0 and dropped == 0 and not short
    detail = (f"{len(short)} rungs short of frames (e.g. {short[0]})" if short
              else "every rung encoded every frame")
    events = [e for c in collectors for e in c.events]
    if events:
        detail += f"; first event: {events[0]}"
    return Live(streams, holds, 100 * cpu / elapsed, max(0.0, 100 * others / elapsed), sheds, dropped, delay,
                min(speeds or [0.0]), detail)


# ---------------------------------------------------------------------------------------
# Report


def _median(values: list[float]) -> float:
    return statistics.median(values)


def compare_table(runs: dict[str, list[Run]]) -> str:
    ours = runs["ours"]
    ours_rt = _median([r.realtime for r in ours])
    ours_steady = _median([r.steady_realtime for r in ours])
    rows = []
    for key in ("ours", "imageio", "debian"):
        if key not in runs:
            continue
        side = runs[key]
        rt = _median([r.realtime for r in side])
        steady = _median([r.steady_realtime for r in side])
        rows.append([
            side[0].side,
            len(side),
            f"{_median([r.wall for r in side]):.2f}",
            f"{rt:.2f}×",
            f"{steady:.2f}×" if key == "ours" else "—",
            f"{_median([r.cpu for r in side]):.1f}",
            " ".join(f"{r.realtime:.2f}" for r in side),
            "—" if key == "ours" else f"{ours_rt / rt:.2f} / {ours_steady / rt:.2f}",
        ])
    return markdown_table(
        ["pipeline", "runs", "wall s", "realtime factor", "without process start", "CPU s",
         "realtime factor of each run", "mediasrv ÷ this (with / without start)"],
        rows, align="lrrrrrlr",
    )


def live_table(lives: list[Live]) -> str:
    rows = [[l.streams, "yes" if l.holds else "no", f"{l.cpu_percent:.0f}%", f"{l.others_percent:.0f}%", l.sheds,
             l.dropped, f"{l.queue_delay_max:.2f}", f"{l.min_speed:.2f}×", l.detail] for l in lives]
    return markdown_table(["live 720p30 ladders", "real time", "workers' CPU (of 200%)", "other processes' CPU",
                           "rungs shed", "frames dropped", "max queue delay s", "slowest rung speed", "detail"],
                          rows, align="rlrrrrrrl")


def record(text: str) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    code = code_revision()
    block = (f"### {when}\n\n```\n{command_line()}\n```\n\nmediasrv at {code}.\n\n{text}")
    append_to_section(RESULTS, SECTION, block)
    note(f"appended to {RESULTS.relative_to(ROOT)}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each pipeline (default 5; the median is reported)")
    p.add_argument("--sides", default="ours,imageio,debian",
                   help="comma-separated: ours, imageio (imageio-ffmpeg's CLI), debian (/usr/bin/ffmpeg)")
    p.add_argument("--live-max", type=int, default=4, help="most concurrent live ladders to try (0: skip)")
    p.add_argument("--live-seconds", type=float, default=20.0, help="seconds of live input per try (default 20)")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "mediasrv-bench",
                   help="where the generated input is cached")
    p.add_argument("--append-results", action="store_true",
                   help=f"append the tables, command and date to {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if "ours" not in args.sides:
        p.error("--sides must include ours")
    for s in args.sides:
        if s not in ("ours", "imageio", "debian"):
            p.error(f"unknown side {s!r}")
    if args.runs < 0 or args.live_seconds < 5 or args.live_seconds > INPUT_SECONDS:
        p.error("--runs must be >= 0 (0: live capacity only) and --live-seconds within 5-30")
    if args.runs == 0 and args.live_max < 1:
        p.error("nothing to do: --runs 0 and --live-max 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-transcode-"))
    binaries = {}
    if "imageio" in args.sides:
        binaries["imageio"] = imageio_ffmpeg()
        if binaries["imageio"] is None:
            print("imageio-ffmpeg is not installed (pip install imageio-ffmpeg, or the test extra)", file=sys.stderr)
            return 1
    if "debian" in args.sides:
        if not os.path.exists(DEBIAN_FFMPEG):
            print(f"{DEBIAN_FFMPEG} is missing (apt-get install ffmpeg)", file=sys.stderr)
            return 1
        binaries["debian"] = DEBIAN_FFMPEG
    runs: dict[str, list[Run]] = {side: [] for side in args.sides}
    lives: list[Live] = []
    load = os.getloadavg()
    try:
        with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
            info = load_input(make_input(args.cache_dir))
            note(f"input {info.path.name}: {info.width}x{info.height}, {info.video_frames} frames")
            for round_ in range(args.runs):
                for side in args.sides:
                    if side == "ours":
                        run = asyncio.run(run_ours(info))
                    else:
                        run = run_ffmpeg(procs, f"{side} {tool_version(binaries[side])}", binaries[side], info, workdir)
                    runs[side].append(run)
                    note(f"round {round_ + 1}/{args.runs}: {run.side}: {run.wall:.2f} s wall, "
                         f"{run.realtime:.2f}× real time, {run.cpu:.1f} CPU s")
                    time.sleep(1.0)
            for n in range(1, args.live_max + 1):
                note(f"live: {n} ladder(s) for {args.live_seconds:g} s ...")
                live = asyncio.run(run_live(info, n, args.live_seconds))
                lives.append(live)
                note(f"live: {n}: {'holds' if live.holds else 'does not hold'} real time "
                     f"(CPU {live.cpu_percent:.0f}%, {live.detail})")
                if not live.holds:
                    break
                time.sleep(2.0)
    except BenchmarkError as exc:
        print(f"transcode benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("transcode benchmark interrupted; every process stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    held = [l.streams for l in lives if l.holds]
    machine = machine_description({"ffmpeg (Debian)": [DEBIAN_FFMPEG, "-version"]} if "debian" in args.sides else {})
    libs = av.library_versions
    text = (
        f"Machine: {machine}; load average {load[0]:.2f} at the start (the machine is shared).\n"
        f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, libs['libavcodec']))}); FFmpeg CLIs: "
        + ", ".join(f"{side} {tool_version(b)}" for side, b in binaries.items()) + ".\n"
        f"Input: {info.path.name} ({info.width}x{info.height} {FPS} fps H.264 High, B-frames, 2 s GOP, AAC, "
        f"{INPUT_SECONDS} s). Ladder: "
        + ", ".join(f"{p.name} {p.width}x{p.height} {p.video_bitrate / 1e6:g}/{p.maxrate / 1e6:g}/{p.bufsize / 1e6:g} Mbit "
                    f"{p.preset}" for p in plan_ladder(info.width, info.height, LADDER))
        + f"; zerolatency, closed 2 s GOPs, bicubic, AAC {AUDIO_BITRATE // 1000}k.\n\n"
    )
    if args.runs:
        text += (
            f"Medians of {args.runs} interleaved runs (as fast as each goes). \"Without process start\": from the "
            f"worker's first heartbeat (its interpreter and imports ready) to the end, as a live stream sees it; "
            f"the FFmpeg CLI's own start (~0.1 s) stays in its figure.\n\n"
            f"{compare_table(runs)}\n\n"
            f"Checks (mediasrv, last run): {runs['ours'][-1].checks}.\n\n"
        )
    if lives:
        text += (f"{live_table(lives)}\n\nConcurrent live 720p30 ladders holding real time with no dropped frame: "
                 f"**{max(held) if held else 0}**"
                 f"{' (the most tried)' if held and max(held) == args.live_max else ''}.\n")
    print(text)
    if args.append_results:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
