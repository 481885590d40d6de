#!/usr/bin/env python3
"""Chat fan-out: N WebSocket clients in one room on 127.0.0.1, M messages per second
broadcast; p50/p99 delivery latency and the largest N that holds p99 ≤ 200 ms.

One level (N) at a time, each with a fresh server:

- server: ``python -m mediasrv.cli serve`` (its defaults, plus ``transcode.enabled=false``,
  ``recording.enabled=false``, a bootstrapped admin, and a chat rate limit above M so
  the sender is never refused), in its own process;
- clients: ``--processes`` worker processes (``chat.py --worker``), each an asyncio loop
  with N/processes raw WebSocket connections (a minimal RFC 6455 client: the upgrade, frame
  parsing, pong; no JSON decoding) reading the room ``/live/bench/chat`` anonymously;
- sender: this process, logged in as the admin over one more WebSocket, sends M messages a
  second for ``--seconds`` seconds, paced on a schedule (message i at start + i/M). Each
  message's text carries its CLOCK_MONOTONIC send time (the clock is system-wide, so
  the workers compare it with their own readings); a worker's delivery latency is its
  read time − that send time, kept in a 0.1 ms histogram per process.

A level holds when p99 ≤ ``--p99-limit`` ms, every client received every message and no
client was disconnected (the server drops a member whose ``chat.send_buffer`` fills).
CPU = user + system seconds of the server process over the sending window.

    .venv/bin/python benchmarks/chat.py --clients 1000,2000,5000 --rate 50 [--append-results]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    HOST,
    RESULTS,
    ROOT,
    _set_parent_death_signal,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    free_port,
    load_average,
    machine_description,
    markdown_table,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
    wait_for_tcp,
)

SECTION = "## Chat fan-out (issue 8)"
ROOM = "bench"
ADMIN_PASSWORD = "bench-admin-password"
#: Histogram resolution and range (latencies above the range count in the last bin).
BIN_SECONDS = 0.0001
BINS = 600_000  # 60 s
#: Sockets per connect wave of a worker (the server's listen backlog is 128 by default).
CONNECT_WAVE = 100


def note(text: str) -> None:
    print(f"[chat] {text}", file=sys.stderr, flush=True)


def raise_nofile(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards ``wanted`` (children inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# ---------------------------------------------------------------------------------------
# Worker: many raw WebSocket readers in one process


class Reader(asyncio.Protocol):
    """One reading client: the HTTP upgrade, then frames; latency from each message's text."""

    def __init__(self, worker: "Worker", request: bytes) -> None:
        self.worker = worker
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.received = 0
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the first frame: {exc}"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(bytes(buffer[:end]).decode(errors="replace")))
                self.transport.close()
                return
            del buffer[:end + 4]
            self.upgraded = True
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            first, length = buffer[offset], buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2:offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2:offset + 10], "big")
                start = offset + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1:
                self.on_text(buffer, start, end)
            elif opcode == 9:  # ping: answer with a (masked) pong carrying its payload
                self.send(0xA, bytes(buffer[start:end]))
            elif opcode == 8:
                self.transport.close()
            offset = end
        if offset:
            del buffer[:offset]

    def on_text(self, buffer: bytearray, start: int, end: int) -> None:
        if not self.ready.done():
            self.ready.set_result(None)  # the room's state frame: joined
            return
        at = buffer.find(b'"text":"b ', start, end)
        if at < 0:
            return
        stop = buffer.find(b'"', at + 10, end)
        sent_at = float(buffer[at + 10:stop].split(b" ")[1])
        self.received += 1
        self.worker.record(time.monotonic() - sent_at)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


class Worker:
    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.histogram = [0] * BINS
        self.readers: list[Reader] = []

    def record(self, seconds: float) -> None:
        index = int(seconds / BIN_SECONDS)
        self.histogram[min(max(index, 0), BINS - 1)] += 1

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for first in range(0, self.count, CONNECT_WAVE):
            wave = []
            for _ in range(first, min(first + CONNECT_WAVE, self.count)):
                key = base64.b64encode(os.urandom(16)).decode()
                request = (f"GET /live/{ROOM}/chat HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
                reader = Reader(self, request)
                wave.append(reader)
                await loop.create_connection(lambda r=reader: r, HOST, self.port)
            await asyncio.gather(*(r.ready for r in wave))
            self.readers.extend(wave)

    def result(self) -> dict:
        return {
            "clients": len(self.readers),
            "disconnected": sum(r.closed for r in self.readers),
            "received": [r.received for r in self.readers],
            "histogram": {i: n for i, n in enumerate(self.histogram) if n},
        }


async def worker_main(port: int, count: int) -> None:
    worker = Worker(port, count)
    try:
        await worker.connect()
    except (OSError, ConnectionError) as exc:
        print(json.dumps({"error": f"connect: {exc}"}), flush=True)
        return
    print(json.dumps({"ready": len(worker.readers)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    print(json.dumps(worker.result()), flush=True)
    for reader in worker.readers:
        if reader.transport is not None:
            reader.transport.abort()


# ---------------------------------------------------------------------------------------
# Coordinator


@dataclass
class Level:
    clients: int
    rate: float
    sent: int = 0
    send_seconds: float = 0.0
    late_sends: int = 0
    received: int = 0
    complete_clients: int = 0
    disconnected: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_cpu: float = 0.0
    clients_cpu: float = 0.0
    errors: list[str] = field(default_factory=list)

    def holds(self, p99_limit: float) -> bool:
        return (not self.errors and self.disconnected == 0 and self.complete_clients == self.clients
                and self.sent > 0 and self.p99_ms <= p99_limit)


def percentile(histogram: dict[int, int], fraction: float) -> float:
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank = fraction * total
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return (index + 1) * BIN_SECONDS * 1000  # the bin's upper edge, ms
    return float("nan")


def start_server(procs: ProcessGroup, workdir: Path, port: int, args):
    data_dir = workdir / f"data-{port}"
    argv = [sys.executable, "-m", "mediasrv.cli", "serve",
            "--set", f"http.listen={HOST}:{port}", "--set", f"rtmp.listen={HOST}:0", "--set", f"data_dir={data_dir}",
            "--set", "transcode.enabled=false", "--set", "recording.enabled=false",
            "--set", f"accounts.admin_password={ADMIN_PASSWORD}", "--set", "log.level=warning",
            "--set", "chat.rate=1000", "--set", "chat.per=1", "--set", "chat.burst=1000"]
    for item in args.mediasrv_set:
        argv += ["--set", item]
    proc = procs.start("mediasrv", argv, log_path=workdir / f"server-{port}.log", cwd=ROOT)
    wait_for_tcp(HOST, port, 30, proc)
    return proc


def start_workers(procs: ProcessGroup, port: int, clients: int, processes: int) -> list:
    counts = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    workers = []
    for count in (c for c in counts if c):
        popen = subprocess.Popen([sys.executable, __file__, "--worker", str(port), str(count)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                 start_new_session=True, preexec_fn=_set_parent_death_signal)
        workers.append(popen)
    return workers


async def run_level(clients: int, args, workdir: Path, procs: ProcessGroup) -> Level:
    import aiohttp

    level = Level(clients, args.rate)
    port = free_port()
    server = start_server(procs, workdir, port, args)
    workers = start_workers(procs, port, clients, args.processes)
    try:
        loop = asyncio.get_running_loop()
        for worker in workers:
            line = await asyncio.wait_for(loop.run_in_executor(None, worker.stdout.readline), args.connect_timeout)
            status = json.loads(line or '{"error": "the worker exited"}')
            if "error" in status:
                level.errors.append(status["error"])
        if level.errors:
            return level
        note(f"{clients} clients connected")
        url = f"http://{HOST}:{port}"
        async with aiohttp.ClientSession(url) as http:
            async with http.post("/api/login", json={"handle": "admin", "password": ADMIN_PASSWORD}) as response:
                token = (await response.json())["token"]
            ws = await http.ws_connect(f"/live/{ROOM}/chat", headers={"Authorization": f"Bearer {token}"})
            drain = loop.create_task(_drain(ws))
            count = int(args.seconds * args.rate)
            cpu_before = cpu_seconds(server.pid)
            clients_before = sum(cpu_seconds(worker.pid) for worker in workers)
            start = time.monotonic()
            for index in range(count):
                due = start + index / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the sender, not synchronisation
                elif delay < -0.01:
                    level.late_sends += 1
                await ws.send_str(json.dumps({"type": "message", "text": f"b {index} {time.monotonic():.6f}"}))
            level.sent = count
            level.send_seconds = time.monotonic() - start
            await asyncio.sleep(args.grace)  # let the last messages arrive (bounded wait)
            level.server_cpu = cpu_seconds(server.pid) - cpu_before
            level.clients_cpu = sum(cpu_seconds(worker.pid) for worker in workers) - clients_before
            drain.cancel()
            await ws.close()
        histogram: dict[int, int] = {}
        for worker in workers:
            worker.stdin.write("stop\n")
            worker.stdin.flush()
        for worker in workers:
            line = await asyncio.wait_for(loop.run_in_executor(None, worker.stdout.readline), 60)
            result = json.loads(line)
            level.disconnected += result["disconnected"]
            level.received += sum(result["received"])
            level.complete_clients += sum(1 for n in result["received"] if n >= level.sent)
            for index, n in result["histogram"].items():
                histogram[int(index)] = histogram.get(int(index), 0) + n
        level.p50_ms = percentile(histogram, 0.50)
        level.p99_ms = percentile(histogram, 0.99)
        level.max_ms = (max(histogram) + 1) * BIN_SECONDS * 1000 if histogram else float("nan")
        return level
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        procs.stop(server)


async def _drain(ws) -> None:
    async for _ in ws:
        pass


def report(levels: list[Level], args) -> str:
    rows = []
    for level in levels:
        rows.append([level.clients, f"{level.rate:g}", level.sent, f"{level.clients * level.rate:,.0f}",
                     f"{level.p50_ms:.1f}", f"{level.p99_ms:.1f}", f"{level.max_ms:.0f}",
                     f"{level.complete_clients}/{level.clients}", level.disconnected, level.late_sends,
                     f"{level.server_cpu / max(level.send_seconds + args.grace, 1e-9) * 100:.0f}%",
                     f"{level.clients_cpu / max(level.send_seconds + args.grace, 1e-9) * 100:.0f}%",
                     f"{level.server_cpu / max(level.received, 1) * 1e6:.1f}",
                     "yes" if level.holds(args.p99_limit) else "no" + (f" ({'; '.join(level.errors)})" if level.errors else "")])
    table = markdown_table(
        ["clients", "msg/s", "sent", "deliveries/s", "p50 ms", "p99 ms", "max ms", "got all", "dropped",
         "late sends", "server CPU", "clients CPU", "server µs/delivery", f"p99 ≤ {args.p99_limit:g} ms"], rows)
    holding = [level.clients for level in levels if level.holds(args.p99_limit)]
    verdict = (f"Largest N measured that holds p99 ≤ {args.p99_limit:g} ms at {args.rate:g} messages/s: "
               f"**{max(holding)}**." if holding else
               f"No level measured holds p99 ≤ {args.p99_limit:g} ms at {args.rate:g} messages/s.")
    return f"{table}\n\n{verdict}\n"


def record(text: str, args) -> None:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    code = code_revision()
    load = load_average()
    body = (f"### {when}\n\n```\n{command_line()}\n```\n\n"
            f"Machine: {machine_description()}; load average at the end {load}. mediasrv at {code}.\n"
            f"{args.processes} client processes, {args.seconds:g} s of sending per level, {args.grace:g} s grace.\n\n"
            f"{text}")
    append_to_section(RESULTS, SECTION, body)
    note(f"appended to {RESULTS.relative_to(ROOT)}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default="500,1000,2000,3000,5000",
                   help="comma-separated N to measure, one level each (default 500,1000,2000,3000,5000)")
    p.add_argument("--rate", type=float, default=50.0, help="messages per second (default 50)")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds of sending per level (default 15)")
    p.add_argument("--grace", type=float, default=2.0, help="seconds to wait for deliveries after the last send")
    p.add_argument("--processes", type=int, default=2, help="client worker processes (default 2)")
    p.add_argument("--p99-limit", type=float, default=200.0, help="the p99 a level must hold, ms (default 200)")
    p.add_argument("--connect-timeout", type=float, default=120.0, help="seconds for the clients to join")
    p.add_argument("--stop-after-failures", type=int, default=0,
                   help="stop after this many levels in a row that do not hold (default 0: run every level)")
    p.add_argument("--mediasrv-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for mediasrv")
    p.add_argument("--json", type=Path, help="also write the levels as JSON to this file")
    p.add_argument("--append-results", action="store_true", help=f"append to {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    args.clients = [int(v) for v in args.clients.split(",") if v.strip()]
    if not args.clients or min(args.clients) < 1 or args.rate <= 0 or args.processes < 1:
        p.error("--clients, --rate and --processes must be positive")
    return args


async def amain(args, workdir: Path, procs: ProcessGroup) -> list[Level]:
    levels = []
    failures = 0
    for clients in args.clients:
        note(f"level: {clients} clients, {args.rate:g} messages/s for {args.seconds:g} s")
        level = await run_level(clients, args, workdir, procs)
        note(f"  p50 {level.p50_ms:.1f} ms, p99 {level.p99_ms:.1f} ms, got all {level.complete_clients}/{clients}, "
             f"dropped {level.disconnected}{', errors: ' + '; '.join(level.errors) if level.errors else ''}")
        levels.append(level)
        failures = 0 if level.holds(args.p99_limit) else failures + 1
        if args.stop_after_failures and failures >= args.stop_after_failures:
            break
    return levels


def main(argv=None) -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        raise_nofile(int(sys.argv[3]) + 256)
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        asyncio.run(worker_main(int(sys.argv[2]), int(sys.argv[3])))
        return 0
    args = parse_args(argv)
    # The server holds every client's socket: raise the limit it inherits.
    limit = raise_nofile(max(args.clients) + 1024)
    if limit < max(args.clients) + 64:
        print(f"chat: RLIMIT_NOFILE is {limit}, too low for {max(args.clients)} clients", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-chat-"))
    try:
        with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
            levels = asyncio.run(amain(args, workdir, procs))
    except (RuntimeError, TimeoutError, asyncio.TimeoutError, OSError) as exc:
        print(f"chat benchmark failed: {exc!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chat benchmark interrupted; every process stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(levels, args)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps([{**level.__dict__, "holds": level.holds(args.p99_limit)}
                                         for level in levels], indent=2))
    if args.append_results:
        record(text, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
