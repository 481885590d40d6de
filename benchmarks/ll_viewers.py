#!/usr/bin/env python3
"""LL-HLS viewers (issue 10): N concurrent viewer sessions doing blocking playlist
reloads; how long after a part is ready does each get its answer (p50/p99)?

- server: mediasrv (``create_app``, its defaults plus ``transcode.enabled=false`` and
  ``recording.enabled=false``: this is about HTTP fan-out) in THIS process, on uvloop as
  ``mediasrv serve`` runs; the rendition condition's ``notify_all`` (which wakes the held
  requests when the muxer completes a part) is wrapped to note, with CLOCK_MONOTONIC,
  when each part became ready;
- publisher: FFmpeg looping a 640x360 25 fps H.264+AAC file in real time (``-re -c copy``);
- viewers: ``--processes`` worker processes (``ll_viewers.py --worker``), each an asyncio
  loop (uvloop) with its share of the sessions, each one keep-alive HTTP/1.1 connection
  (a minimal client, far cheaper than aiohttp's): master playlist (a session token), media
  playlist, then again and again the blocking reload for the next part
  (``_HLS_msn=M&_HLS_part=P+1``, RFC 8216bis §6.2.5.2) — what an LL-HLS player does
  between part downloads (the parts themselves are not fetched here: with
  ``--fetch-parts`` each viewer downloads every part too). A worker notes when each
  answer's body has arrived (CLOCK_MONOTONIC is system-wide, so the clocks compare).

Latency of one answer = its arrival − the moment its request could first be satisfied
(the part it asked for, or a later one, was ready). Answers in the first ``--warmup``
seconds are left out (all sessions joining at once).

    .venv/bin/python benchmarks/ll_viewers.py --viewers 2000 [--append-results]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The server runs in this process: import this checkout's mediasrv (not whatever the
# venv's editable install points at), so a worktree measures its own code.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import (  # noqa: E402
    FFMPEG,
    HOST,
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    load_average,
    machine_description,
    markdown_table,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
)

SECTION = "## Load (issue 10)"
STREAM = "llv"


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------------------
# Viewers (in the worker processes)

_PART = re.compile(r"^#EXT-X-PART:")


def last_part(playlist: str) -> tuple[int, int] | None:
    """(msn, index) of the last part listed in an LL-HLS media playlist."""
    sequence = segments = 0
    parts_open = -1
    last = None
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif _PART.match(line):
            parts_open += 1
            last = (sequence + segments, parts_open)
        elif line and not line.startswith("#"):
            segments += 1
            parts_open = -1
    return last


def part_uri(playlist: str) -> str | None:
    """The URI of the last EXT-X-PART."""
    uri = None
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PART:"):
            m = re.search(r'URI="([^"]+)"', line)
            uri = m.group(1) if m else uri
    return uri


class Connection:
    """A minimal HTTP/1.1 keep-alive client on one connection (GET, Content-Length
    bodies): a fraction of aiohttp's client CPU, so that one worker process can play
    hundreds of viewers without being what is measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: ll-viewer\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def viewer(host: str, port: int, deadline: float, fetch_parts: bool, out: list, errors: dict) -> None:
    """One LL-HLS session until ``deadline``; appends (msn, part, arrival) per answer."""
    conn = Connection(host, port)
    while time.monotonic() < deadline:
        try:
            status, body = await conn.get(f"/live/{STREAM}/index.m3u8")
            if status != 200:
                raise RuntimeError(f"master {status}")
            variant = next(l for l in body.decode().splitlines() if l.startswith("source/"))
            media = f"/live/{STREAM}/{variant}"
            sep = "&" if "?" in media else "?"
            status, body = await conn.get(media)
            if status != 200:
                raise RuntimeError(f"playlist {status}")
            text = body.decode()
            while time.monotonic() < deadline:
                last = last_part(text)
                if last is None:
                    raise RuntimeError("no part listed")
                msn, index = last
                status, body = await conn.get(f"{media}{sep}_HLS_msn={msn}&_HLS_part={index + 1}")
                arrived = time.monotonic()
                if status != 200:
                    raise RuntimeError(f"reload {status}")
                out.append((msn, index + 1, arrived))
                text = body.decode()
                if fetch_parts:
                    uri = part_uri(text)
                    if uri:
                        status, _ = await conn.get(f"/live/{STREAM}/source/{uri}")
                        if status != 200:
                            raise RuntimeError(f"part {status}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted, then the session starts over
            key = str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__
            errors[key] = errors.get(key, 0) + 1
            conn.close()
            await asyncio.sleep(0.5)
    conn.close()


async def worker_main(base: str, viewers: int, seconds: float, fetch_parts: bool) -> dict:
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    deadline = time.monotonic() + seconds
    out: list = []
    errors: dict = {}
    await asyncio.gather(*(viewer(host, int(port), deadline, fetch_parts, out, errors) for _ in range(viewers)))
    return {"answers": out, "errors": errors}


def run_worker(args) -> int:
    raise_fd_limit()
    try:
        import uvloop
        result = uvloop.run(worker_main(args.url, args.viewers, args.seconds, args.fetch_parts))
    except ImportError:
        result = asyncio.run(worker_main(args.url, args.viewers, args.seconds, args.fetch_parts))
    json.dump(result, sys.stdout)
    return 0


# ---------------------------------------------------------------------------------------
# Measuring (in the server's process)


class PartClock:
    """Watches one rendition's condition: when did (msn, part) first become reached?"""

    def __init__(self) -> None:
        #: (time, last part (msn, index) or None, last complete msn) at every change.
        self.times: list[float] = []
        self.states: list[tuple[tuple[int, int] | None, int]] = []

    def _note(self, rendition) -> None:
        seg = rendition.segmenter
        state = (seg.last_part(), seg.last_msn)
        if not self.states or self.states[-1] != state:
            self.times.append(time.monotonic())
            self.states.append(state)

    async def watch(self, service, stream: str, stop: asyncio.Event) -> None:
        """Wrap the rendition's ``changed.notify_all`` (the muxer calls it when a part is
        complete): the time is taken as the held requests are woken, before any of them
        runs (a waiter of our own would be woken after hundreds of them)."""
        attached = None
        while not stop.is_set():
            rendition = service.rendition(stream, "source")
            if rendition is not None and rendition is not attached:
                condition = rendition.changed
                original = condition.notify_all

                def notify_all(rendition=rendition, original=original):
                    self._note(rendition)
                    original()

                condition.notify_all = notify_all
                self._note(rendition)
                attached = rendition
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    def ready_at(self, msn: int, part: int) -> float | None:
        """When a blocking reload for (msn, part) could first be answered (the server's
        rule: that part or a later one listed, or segment msn complete)."""
        def reached(state) -> bool:
            last, last_msn = state
            return (last is not None and last >= (msn, part)) or last_msn > msn

        lo, hi = 0, len(self.states)
        while lo < hi:  # reached() is monotonic over time
            mid = (lo + hi) // 2
            if reached(self.states[mid]):
                hi = mid
            else:
                lo = mid + 1
        return self.times[lo] if lo < len(self.states) else None


@dataclass
class Outcome:
    viewers: int
    seconds: float
    answers: int
    latencies_ms: list[float]
    errors: dict = field(default_factory=dict)
    cpu_percent: float = 0.0
    unmatched: int = 0

    def percentile(self, q: float) -> float:
        values = self.latencies_ms
        return values[min(len(values) - 1, int(q * (len(values) - 1)))] if values else float("nan")


async def measure(service, http_port: int, *, viewers: int, processes: int, seconds: float, warmup: float,
                  fetch_parts: bool = False, stream: str = STREAM) -> Outcome:
    """Run the viewers in ``processes`` subprocesses against the server in this process."""
    clock = PartClock()
    stop = asyncio.Event()
    watcher = asyncio.ensure_future(clock.watch(service, stream, stop))
    per = [viewers // processes + (1 if i < viewers % processes else 0) for i in range(processes)]
    started = time.monotonic()
    cpu0 = cpu_seconds(os.getpid(), include_children=False)
    # subprocess.Popen, not the loop's create_subprocess_exec: uvloop's spawn runs
    # Python's after-fork hooks in the forked child, which hangs on a lock when another
    # thread of this process (the server's) held it at the fork, and the loop waits for
    # that child synchronously. Popen's child runs no Python code before exec.
    procs = [subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--url", f"http://{HOST}:{http_port}",
         "--viewers", str(n), "--seconds", str(seconds), *(["--fetch-parts"] if fetch_parts else [])],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) for n in per if n]
    try:
        outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate) for p in procs))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        stop.set()
        await watcher
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(os.getpid(), include_children=False) - cpu0
    latencies, errors, answers, unmatched = [], {}, 0, 0
    for out, _ in outputs:
        result = json.loads(out)
        for k, n in result["errors"].items():
            errors[k] = errors.get(k, 0) + n
        for msn, part, arrived in result["answers"]:
            if arrived < started + warmup:
                continue
            answers += 1
            ready = clock.ready_at(msn, part)
            if ready is None:
                unmatched += 1
                continue
            latencies.append((arrived - ready) * 1000)
    latencies.sort()
    return Outcome(viewers, seconds - warmup, answers, latencies, errors, 100 * cpu / elapsed, unmatched)


# ---------------------------------------------------------------------------------------
# The benchmark


def publisher_argv(source: Path, url: str) -> list[str]:
    return [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(source),
            "-c", "copy", "-f", "flv", url]


async def run_level(args, viewers: int, procs: ProcessGroup, workdir: Path) -> Outcome:
    from aiohttp import web

    from mediasrv.config import load_config
    from mediasrv.httpkit.keys import RTMP_SERVER
    from mediasrv.app.root import create_app
    from mediasrv.httpkit.keys import HLS_SERVICE
    from soak import make_input

    source = args.cache_dir / "llv-640x360.mp4"
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(make_input, source, "640x360", 60)
    data = workdir / f"data-{viewers}"
    config = load_config(None, [f"data_dir={data}", f"rtmp.listen={HOST}:0", f"http.listen={HOST}:0",
                                "transcode.enabled=false", "recording.enabled=false", "log.level=warning",
                                *args.set])
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    http_port = runner.addresses[0][1]
    publisher = procs.start("publisher", publisher_argv(source, f"rtmp://{HOST}:{app[RTMP_SERVER].port}/live/{STREAM}"),
                            log_path=workdir / f"publisher-{viewers}.log",
                            parent_death_signal=False)  # the server's threads run here
    try:
        service = app[HLS_SERVICE]
        deadline = time.monotonic() + 30
        while not (service.rendition(STREAM, "source") and service.rendition(STREAM, "source").segmenter.segments):
            assert time.monotonic() < deadline, "the stream did not start"
            await asyncio.sleep(0.1)
        return await measure(service, http_port, viewers=viewers, processes=args.processes,
                             seconds=args.seconds + args.warmup, warmup=args.warmup, fetch_parts=args.fetch_parts)
    finally:
        procs.stop(publisher)
        await runner.cleanup()


def report(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        rows.append([o.viewers, f"{o.answers / o.seconds:.0f}", o.answers, f"{o.percentile(0.5):.0f}",
                     f"{o.percentile(0.9):.0f}", f"{o.percentile(0.99):.0f}", f"{o.latencies_ms[-1]:.0f}" if o.latencies_ms else "-",
                     f"{o.cpu_percent:.0f}", sum(o.errors.values())])
    table = markdown_table(["viewers", "answers/s", "answers", "p50 ms", "p90 ms", "p99 ms", "max ms",
                            "server CPU %", "errors"], rows)
    notes = [f"- {o.viewers} viewers: errors {o.errors}" for o in outcomes if o.errors]
    notes += [f"- {o.viewers} viewers: {o.unmatched} answers before any matching part (left out)" for o in outcomes if o.unmatched]
    return table + ("\n\n" + "\n".join(notes) if notes else "")


def record(text: str, args) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    code = code_revision()
    load = load_average()
    body = (
        f"### LL-HLS viewers, {when}\n\n```\n{command_line()}\n```\n\n"
        f"Machine: {machine_description({'ffmpeg': [FFMPEG, '-version']})}; shared with other engineers' "
        f"test runs; load average at the end {load}. mediasrv at {code} (imported from "
        f"{Path(sys.modules['mediasrv'].__file__).parent}). Server in the benchmark's process "
        f"(uvloop), viewers in {args.processes} worker processes on the same 2 cores; "
        f"{args.seconds:g} s measured after {args.warmup:g} s; "
        f"{'each viewer also downloads every part' if args.fetch_parts else 'blocking reloads only (parts not downloaded)'}. "
        f"Latency = answer received − the part it asked for (or a later one) ready at the server.\n\n{text}"
    )
    append_to_section(RESULTS, SECTION, body)
    print(f"appended to {RESULTS.relative_to(ROOT)}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--viewers", default="2000", help="comma-separated viewer counts (default 2000)")
    p.add_argument("--processes", type=int, default=2, help="viewer worker processes (default 2)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds measured per level (default 20)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start (default 5)")
    p.add_argument("--fetch-parts", action="store_true", help="viewers download every part too")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra mediasrv setting")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "mediasrv-bench")
    p.add_argument("--append-results", action="store_true", help=f"append to {RESULTS.name}")
    # worker mode
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        args.viewers = int(args.viewers)
        return run_worker(args)
    raise_fd_limit()
    levels = [int(v) for v in args.viewers.split(",") if v.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-llv-"))

    async def amain(procs: ProcessGroup) -> list[Outcome]:
        out = []
        for n in levels:
            print(f"[ll_viewers] {n} viewers ...", flush=True)
            o = await run_level(args, n, procs, workdir)
            print(f"[ll_viewers] {n} viewers: {o.answers} answers, p50 {o.percentile(0.5):.0f} ms, "
                  f"p99 {o.percentile(0.99):.0f} ms, CPU {o.cpu_percent:.0f} %, errors {o.errors}", flush=True)
            out.append(o)
        return out

    with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
        try:
            import uvloop
            outcomes = uvloop.run(amain(procs))
        except ImportError:
            outcomes = asyncio.run(amain(procs))
    text = report(outcomes)
    print(text, flush=True)
    if args.append_results:
        record(text, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
