"""Helpers of the fault tests: ``mediasrv serve`` as a real process, and /proc lookups."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    http_port: int
    rtmp_port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def start_serve(data_dir: Path, *overrides: str, log_name: str = "serve.log") -> Served:
    """Start ``python -m mediasrv.cli serve`` on ephemeral ports; wait for its banner.
    Its stderr (the log) goes to ``data_dir/../log_name``."""
    log_path = data_dir.parent / log_name
    log = open(log_path, "ab")
    sets = [f"data_dir={data_dir}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0", *overrides]
    argv = [sys.executable, "-m", "mediasrv.cli", "serve"]
    for kv in sets:
        argv += ["--set", kv]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=log)
    log.close()
    lines: list[str] = []
    try:
        while not any("API:" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, "the server exited before its banner:\n" + log_path.read_text(errors="replace")[-3000:]
            lines.append(line.decode())
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    banner = "".join(lines)
    rtmp = re.search(r"Server:\s+rtmp://127\.0\.0\.1:(\d+)/", banner)
    http = re.search(r"Watch:\s+http://127\.0\.0\.1:(\d+)/", banner)
    assert rtmp and http, banner
    # Nothing reads stdout after the banner; the server prints nothing more there.
    return Served(proc, int(http.group(1)), int(rtmp.group(1)), log_path)


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` if it still runs (test clean-up)."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


def children(pid: int) -> list[int]:
    """Live descendants of ``pid`` (from /proc parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read().decode("ascii", "replace")
            ppid = int(data[data.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return False
    return data[data.rindex(")") + 2:].split()[0] != "Z"


class LoopErrors:
    """Collects whatever reaches the event loop's exception handler while installed."""

    def __init__(self) -> None:
        self.contexts: list[dict] = []

    def __enter__(self) -> "LoopErrors":
        self.loop = asyncio.get_running_loop()
        self.previous = self.loop.get_exception_handler()
        self.loop.set_exception_handler(lambda loop, context: self.contexts.append(context))
        return self

    def __exit__(self, *exc) -> None:
        self.loop.set_exception_handler(self.previous)
