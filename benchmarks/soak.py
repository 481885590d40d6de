#!/usr/bin/env python3
"""Soak (issue 10): does mediasrv's resident memory stay flat with a ladder running?

- mediasrv runs as ``python -m mediasrv.cli serve`` with its defaults (the default
  transcoding ladder: rungs taller than the source are left out; recording on), ports and
  ``data_dir`` aside;
- one FFmpeg publisher loops a short H.264/AAC file in real time (``-re -stream_loop -1
  -c copy``, so it costs next to no CPU); the file is made once with FFmpeg's test source
  (``--size``, 25 fps, 2 s GOP);
- ``--viewers`` simulated LL-HLS players (aiohttp, in this process) each fetch the master
  playlist, then for every part the preload-hinted part (held until complete) and the
  blocking reload that lists it (RFC 8216bis §6.2.5.2); they alternate between the
  source and the transcoded rungs. A viewer that hits an error starts over from the
  master playlist (counted);
- every ``--interval`` seconds: the resident set (VmRSS) of the server's process tree
  (the server and its transcoder worker), its open file descriptors and its threads.

Samples taken during the first ``--warmup`` seconds are not judged (caches, the GOP
cache, the playlists' windows and the allocator fill up). The baseline is the median of
the samples in the first minute after warm-up, the end the median of the last minute;
drift = (end − baseline) / baseline and max drift = the largest |sample − baseline| /
baseline after warm-up. Goal: |drift| ≤ 5 %.

It takes ``--warmup`` + ``--duration`` seconds (default 5 + 30 minutes); run it in the
background:

    nohup .venv/bin/python benchmarks/soak.py --append-results > /tmp/soak.log 2>&1 &
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FFMPEG,
    HOST,
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    descendants,
    free_port,
    load_average,
    machine_description,
    markdown_table,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
    wait_for_tcp,
)

SECTION = "## Soak (issue 10)"
STREAM = "soak"


def note(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# /proc sampling


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class Sample:
    at: float  # seconds since the start
    rss_kib: int  # the server's process tree
    rss_server_kib: int
    fds: int
    threads: int
    processes: int
    load1: float  # the machine's 1-minute load average (shared with other work)


def sample(pid: int, started: float) -> Sample:
    """VmRSS of ``pid`` and its descendants, and ``pid``'s open fds and threads."""
    own = _status_kib(pid, "VmRSS")
    total = own
    pids = descendants(pid)
    for child in pids:
        try:
            total += _status_kib(child, "VmRSS")
        except OSError:
            pass  # exited between the scan and the read
    return Sample(
        at=time.monotonic() - started,
        rss_kib=total,
        rss_server_kib=own,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=_status_kib(pid, "Threads"),
        processes=1 + len(pids),
        load1=float(open("/proc/loadavg").read().split()[0]),
    )


# ---------------------------------------------------------------------------------------
# Input and publisher


def make_input(path: Path, size: str, seconds: int) -> None:
    """A looping source: FFmpeg's test pattern and a tone, H.264 (2 s GOP, no scene cuts)
    and AAC in MP4."""
    if path.exists():
        return
    w, h = size.split("x")
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-b:v", "1500k",
         "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
         "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        check=True, timeout=300,
    )


def publisher_argv(source: Path, url: str) -> list[str]:
    return [FFMPEG, "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i", str(source),
            "-c", "copy", "-f", "flv", url]


# ---------------------------------------------------------------------------------------
# Viewers

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def _attrs(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}


def parse_media_playlist(text: str) -> tuple[int, int, str | None]:
    """``(msn, index)`` of the last part listed and the preload hint's URI."""
    sequence = 0
    segments = 0
    parts_in_open = -1
    last = (-1, -1)
    hint = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART:"):
            parts_in_open += 1
            last = (sequence + segments, parts_in_open)
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            attrs = _attrs(line)
            if attrs.get("TYPE") == "PART":
                hint = attrs.get("URI")
        elif line and not line.startswith("#"):
            segments += 1
            parts_in_open = -1
    return last[0], last[1], hint


@dataclass
class ViewerStats:
    parts: int = 0
    bytes: int = 0
    restarts: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def viewer(session, base: str, rendition_pick: int, stop: asyncio.Event, stats: ViewerStats) -> None:
    """An LL-HLS player without a picture; starts over after an error (counted)."""
    while not stop.is_set():
        try:
            async with session.get(f"{base}/live/{STREAM}/index.m3u8") as r:
                if r.status != 200:
                    raise RuntimeError(f"master {r.status}")
                variants = [l for l in (await r.text()).splitlines() if l and not l.startswith("#")]
            variant = variants[rendition_pick % len(variants)]
            rendition_dir = f"{base}/live/{STREAM}/{variant.split('/')[0]}"
            media = f"{base}/live/{STREAM}/{variant}"
            sep = "&" if "?" in media else "?"
            async with session.get(media) as r:
                if r.status != 200:
                    raise RuntimeError(f"playlist {r.status}")
                text = await r.text()
            while not stop.is_set():
                msn, index, hint = parse_media_playlist(text)
                if hint is None or msn < 0:
                    raise RuntimeError("no part or preload hint")
                async with session.get(f"{rendition_dir}/{hint}") as r:
                    if r.status != 200:
                        raise RuntimeError(f"part {r.status}")
                    stats.bytes += len(await r.read())
                    stats.parts += 1
                async with session.get(f"{media}{sep}_HLS_msn={msn}&_HLS_part={index + 1}") as r:
                    if r.status != 200:
                        raise RuntimeError(f"reload {r.status}")
                    text = await r.text()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a soak counts failures and goes on
            key = type(exc).__name__ + (f": {exc}" if isinstance(exc, RuntimeError) else "")
            stats.errors[key] = stats.errors.get(key, 0) + 1
            stats.restarts += 1
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass


async def stream_renditions(session, base: str) -> list[str]:
    try:
        async with session.get(f"{base}/live/{STREAM}/index.m3u8") as r:
            if r.status != 200:
                return []
            return sorted({l.split("/")[0] for l in (await r.text()).splitlines() if l and not l.startswith("#")})
    except Exception:  # noqa: BLE001
        return []


# ---------------------------------------------------------------------------------------
# The run


@dataclass
class Outcome:
    samples: list[Sample]
    warmup: float
    stats: list[ViewerStats]
    renditions: list[str]
    publisher_restarts: int
    cpu_note: str


async def run(args, workdir: Path, procs: ProcessGroup) -> Outcome:
    import aiohttp

    source = args.cache_dir / f"soak-{args.size}.mp4"
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    note(f"making the input {source}")
    await asyncio.to_thread(make_input, source, args.size, 60)

    rtmp_port, http_port = free_port(HOST), free_port(HOST)
    argv = [sys.executable, "-m", "mediasrv.cli", "serve",
            "--set", f"rtmp.listen={HOST}:{rtmp_port}", "--set", f"http.listen={HOST}:{http_port}",
            "--set", f"data_dir={workdir / 'data'}", "--set", "log.level=warning"]
    for kv in args.set:
        argv += ["--set", kv]
    server = procs.start("mediasrv", argv, log_path=workdir / "mediasrv.log", cwd=ROOT)
    await asyncio.to_thread(wait_for_tcp, HOST, http_port, 60.0, server)
    await asyncio.to_thread(wait_for_tcp, HOST, rtmp_port, 10.0, server)
    url = f"rtmp://{HOST}:{rtmp_port}/live/{STREAM}"
    base = f"http://{HOST}:{http_port}"
    publisher = procs.start("publisher", publisher_argv(source, url), log_path=workdir / "publisher.log")
    publisher_restarts = 0

    started = time.monotonic()
    total = args.warmup + args.duration
    stop = asyncio.Event()
    samples: list[Sample] = []
    stats = [ViewerStats() for _ in range(args.viewers)]
    renditions: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    cpu0 = _tree_cpu(server.pid)
    async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "soak-viewer"}) as session:
        # Wait until the stream is listed before the viewers start.
        while time.monotonic() - started < 60 and not await stream_renditions(session, base):
            await asyncio.sleep(0.5)
        tasks = [asyncio.ensure_future(viewer(session, base, i, stop, s)) for i, s in enumerate(stats)]
        next_report = 0.0
        try:
            while time.monotonic() - started < total:
                if not server.alive():
                    raise RuntimeError(f"mediasrv exited ({server.popen.returncode}):\n{server.log_tail()}")
                if not publisher.alive():
                    publisher_restarts += 1
                    note(f"publisher exited ({publisher.popen.returncode}); restarting\n{publisher.log_tail(5)}")
                    procs.stop(publisher)
                    publisher = procs.start("publisher", publisher_argv(source, url),
                                            log_path=workdir / f"publisher-{publisher_restarts}.log")
                s = sample(server.pid, started)
                samples.append(s)
                now = await stream_renditions(session, base)
                renditions = sorted(set(renditions) | set(now))
                if s.at >= next_report:
                    parts = sum(v.parts for v in stats)
                    note(f"t={s.at:5.0f}s rss tree {s.rss_kib / 1024:.1f} MiB (server {s.rss_server_kib / 1024:.1f}), "
                         f"fds {s.fds}, threads {s.threads}, procs {s.processes}, renditions {','.join(now) or '-'}, "
                         f"parts fetched {parts}, viewer restarts {sum(v.restarts for v in stats)}")
                    next_report = s.at + 60
                await asyncio.sleep(args.interval)
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    cpu = _tree_cpu(server.pid) - cpu0
    load = load_average()
    cpu_note = f"server process tree used {100 * cpu / elapsed:.0f} % of a core on average; load average at the end {load}"
    return Outcome(samples, args.warmup, stats, renditions, publisher_restarts, cpu_note)


def _tree_cpu(pid: int) -> float:
    from common import cpu_seconds

    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


# ---------------------------------------------------------------------------------------
# Report


@dataclass
class Verdict:
    baseline_kib: float
    end_kib: float
    drift: float
    max_drift: float
    flat: bool


def judge(samples: list[Sample], warmup: float, window: float = 60.0, limit: float = 0.05) -> Verdict:
    after = [s for s in samples if s.at >= warmup]
    if len(after) < 2:
        raise RuntimeError("no samples after the warm-up")
    first = [s.rss_kib for s in after if s.at < warmup + window] or [after[0].rss_kib]
    end_at = after[-1].at
    last = [s.rss_kib for s in after if s.at > end_at - window] or [after[-1].rss_kib]
    baseline = statistics.median(first)
    end = statistics.median(last)
    drift = (end - baseline) / baseline
    max_drift = max(abs(s.rss_kib - baseline) / baseline for s in after)
    return Verdict(baseline, end, drift, max_drift, abs(drift) <= limit)


def report(outcome: Outcome, args) -> str:
    v = judge(outcome.samples, outcome.warmup)
    rows = []
    step = 300.0
    next_at = 0.0
    for s in outcome.samples:
        if s.at >= next_at or s is outcome.samples[-1]:
            rows.append([f"{s.at / 60:.1f}", f"{s.rss_kib / 1024:.1f}", f"{s.rss_server_kib / 1024:.1f}",
                         s.fds, s.threads, s.processes])
            next_at = (s.at // step + 1) * step
    table = markdown_table(["minute", "RSS tree MiB", "RSS server MiB", "fds", "threads", "processes"], rows)
    parts = sum(x.parts for x in outcome.stats)
    restarts = sum(x.restarts for x in outcome.stats)
    errors: dict[str, int] = {}
    for x in outcome.stats:
        for k, n in x.errors.items():
            errors[k] = errors.get(k, 0) + n
    fds_after = [s.fds for s in outcome.samples if s.at >= outcome.warmup]
    lines = [
        table,
        "",
        f"- RSS of the server's process tree after warm-up: baseline {v.baseline_kib / 1024:.1f} MiB "
        f"(median of the first minute), end {v.end_kib / 1024:.1f} MiB (median of the last minute): "
        f"drift {100 * v.drift:+.2f} %, max drift {100 * v.max_drift:.2f} % — "
        f"{'flat (within 5 %)' if v.flat else 'NOT flat (beyond 5 %)'}",
        f"- the machine's 1-minute load average during the run: {min(s.load1 for s in outcome.samples):.2f}–"
        f"{max(s.load1 for s in outcome.samples):.2f} (median {statistics.median(s.load1 for s in outcome.samples):.2f})",
        f"- open fds of the server after warm-up: {min(fds_after)}–{max(fds_after)}",
        f"- renditions served: {', '.join(outcome.renditions) or 'none'}",
        f"- {args.viewers} viewers fetched {parts} parts ({sum(x.bytes for x in outcome.stats) / 1e6:.0f} MB); "
        f"viewer restarts after an error: {restarts}"
        + (f" ({', '.join(f'{k} ×{n}' for k, n in sorted(errors.items()))})" if errors else ""),
        f"- publisher restarts: {outcome.publisher_restarts}",
        f"- {outcome.cpu_note}",
    ]
    return "\n".join(lines)



def record(text: str, args, code: str, started_at: str) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    machine = machine_description({"ffmpeg": [FFMPEG, "-version"]})
    body = (
        f"### {when} (started {started_at})\n\n```\n{command_line()}\n```\n\n"
        f"Machine: {machine}; shared with other engineers' test runs during the soak. mediasrv at {code}.\n"
        f"Publisher: FFmpeg `-re -stream_loop -1 -c copy` of a 60 s {args.size} 25 fps H.264 (1.5 Mb/s, 2 s GOP) "
        f"+ AAC file; mediasrv defaults (ladder, LL-HLS, recording) plus "
        f"{', '.join(args.set) if args.set else 'nothing'}; {args.viewers} LL-HLS viewers; RSS sampled every "
        f"{args.interval:g} s; {args.warmup / 60:g} min warm-up + {args.duration / 60:g} min judged.\n\n{text}"
    )
    append_to_section(RESULTS, SECTION, body)
    note(f"appended to {RESULTS.relative_to(ROOT)}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=1800.0, help="seconds judged after the warm-up (default 1800)")
    p.add_argument("--warmup", type=float, default=300.0, help="seconds of warm-up not judged (default 300)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    p.add_argument("--viewers", type=int, default=4, help="simulated LL-HLS viewers (default 4)")
    p.add_argument("--size", default="854x480", help="publisher picture size (default 854x480: 480p and 360p rungs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra --set for mediasrv")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "mediasrv-bench")
    p.add_argument("--append-results", action="store_true", help=f"append the figures to {RESULTS.name}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-soak-"))
    code = code_revision()
    started_at = dt.datetime.now().astimezone().strftime("%H:%M %Z")
    note(f"work directory {workdir}; {args.warmup:g} s warm-up + {args.duration:g} s")
    with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
        outcome = asyncio.run(run(args, workdir, procs))
    text = report(outcome, args)
    print(text, flush=True)
    if args.append_results:
        record(text, args, code, started_at)
    return 0 if judge(outcome.samples, outcome.warmup).flat else 1


if __name__ == "__main__":
    sys.exit(main())
