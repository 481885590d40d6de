#!/usr/bin/env python3
"""Publisher churn (issue 10): rounds of N publishers connecting at once and leaving;
do the server's open files, threads and resident memory come back to the same level?

- server: ``python -m mediasrv.cli serve`` with its defaults (recording on; the ladder
  is on but a 64x64 source is smaller than every rung, so nothing is transcoded) plus
  ``hls.reconnect_grace=1`` and ``hls.keep_after_end=2`` so that every round's streams
  are gone before the next (with the defaults, 10 s and 300 s, they would linger by
  design);
- publishers: in this process, the raw RTMP publisher of the tests
  (``tests/support/rawpublisher.py``): a plain handshake, FFmpeg's commands, one second
  of a tiny H.264+AAC clip; half leave cleanly (FCUnpublish, deleteStream), half with an
  RST (their streams end when the grace runs out);
- after each round, once ``GET /api/streams`` is empty again and the ended playlists have
  expired: the server's open fds, threads and VmRSS (from /proc).

    .venv/bin/python benchmarks/churn.py --publishers 100 --rounds 30 [--append-results]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import (  # noqa: E402
    HOST,
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    free_port,
    load_average,
    machine_description,
    markdown_table,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
    wait_for_tcp,
)
from tests.support.rawpublisher import churn_publisher  # noqa: E402

SECTION = "## Load (issue 10)"


def proc_status(pid: int) -> dict[str, int]:
    out = {"fds": len(os.listdir(f"/proc/{pid}/fd"))}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "Threads"):
                out[key] = int(line.split()[1])
    return out


def streams(http_port: int) -> int:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/api/streams", timeout=10) as r:
        body = json.loads(r.read())
    return len(body["streams"] if isinstance(body, dict) else body)


async def run(args, procs: ProcessGroup, workdir: Path) -> list[list]:
    from tests.support.rawpublisher import tiny_clip

    tiny_clip(30)  # encode the clip before the server starts (PyAV, once)
    rtmp_port, http_port = free_port(HOST), free_port(HOST)
    argv = [sys.executable, "-m", "mediasrv.cli", "serve", "--set", f"rtmp.listen={HOST}:{rtmp_port}",
            "--set", f"http.listen={HOST}:{http_port}", "--set", f"data_dir={workdir / 'data'}",
            "--set", "log.level=warning", "--set", "hls.reconnect_grace=1", "--set", "hls.keep_after_end=2",
            # Every publisher is on this machine: lift the per-address caps (issue 18).
            "--set", "rtmp.max_connections_per_address=1000000", "--set", "rtmp.max_handshakes_per_address=1000000"]
    for kv in args.set:
        argv += ["--set", kv]
    server = procs.start("mediasrv", argv, log_path=workdir / "mediasrv.log", cwd=ROOT)
    await asyncio.to_thread(wait_for_tcp, HOST, http_port, 60.0, server)
    rows = []
    started = time.monotonic()
    for index in range(args.rounds + 1):
        t0 = time.monotonic()
        await asyncio.gather(*(churn_publisher(rtmp_port, f"churn{i}", clean=i % 2 == 0, timeout=60)
                               for i in range(args.publishers)))
        deadline = time.monotonic() + 60
        while await asyncio.to_thread(streams, http_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"round {index}: streams still listed after 60 s")
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.5)  # hls.keep_after_end=2: the ended playlists expire
        if not server.alive():
            raise RuntimeError("mediasrv exited:\n" + server.log_tail())
        s = proc_status(server.pid)
        rows.append([index, f"{time.monotonic() - t0:.1f}", s["fds"], s["Threads"], f"{s['VmRSS'] / 1024:.1f}"])
        print(f"[churn] round {index}: {rows[-1]}", flush=True)
    print(f"[churn] {args.rounds + 1} rounds of {args.publishers} in {time.monotonic() - started:.0f} s", flush=True)
    return rows


def report(rows: list[list], args) -> str:
    table = markdown_table(["round", "seconds", "server fds", "threads", "RSS MiB"], rows)
    first, last = rows[1], rows[-1]  # round 0 is the warm-up
    rss0, rss1 = float(first[4]), float(last[4])
    return (table + f"\n\n- after round 1 → after round {last[0]}: fds {first[2]} → {last[2]}, threads {first[3]} → "
            f"{last[3]}, RSS {rss0:.1f} → {rss1:.1f} MiB ({100 * (rss1 - rss0) / rss0:+.1f} %) over "
            f"{(len(rows) - 2) * args.publishers} more publishes")


def record(text: str, args) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    code = code_revision()
    load = load_average()
    body = (f"### Publisher churn, {when}\n\n```\n{command_line()}\n```\n\n"
            f"Machine: {machine_description()}; shared with other engineers' test runs; load average at the end "
            f"{load}. mediasrv at {code}. Each round: {args.publishers} publishers at once, one second of 64x64 "
            f"H.264+AAC each, half leaving cleanly, half with an RST; measured once every stream has ended.\n\n{text}")
    append_to_section(RESULTS, SECTION, body)
    print(f"appended to {RESULTS.relative_to(ROOT)}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--publishers", type=int, default=100)
    p.add_argument("--rounds", type=int, default=30, help="rounds after the warm-up round (default 30)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra mediasrv setting")
    p.add_argument("--append-results", action="store_true")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-churn-"))
    with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
        rows = asyncio.run(run(args, procs, workdir))
    text = report(rows, args)
    print(text, flush=True)
    if args.append_results:
        record(text, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
