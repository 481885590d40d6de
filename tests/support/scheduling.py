"""Keeps the test run and everything it starts under the normal scheduler.

On this machine something outside the suite can put a running process tree on
SCHED_FIFO at priority 99 (seen: the pytest process itself, and so every browser and
encoder it started afterwards). A real-time process that spins — a hung Chromium renderer
did — then starves the 2-core machine and the test times out with everything else
frozen. Resetting once at start is not enough, so a daemon thread checks every thread of
the run's own process tree once a second and puts any real-time one back on SCHED_OTHER.
It only ever lowers priority, and only in our own descendants.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

INTERVAL = 1.0
_REALTIME = {getattr(os, "SCHED_FIFO", 1), getattr(os, "SCHED_RR", 2)}


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def demote_realtime(root: int) -> int:
    """Put every real-time thread of ``root``'s process tree on SCHED_OTHER; return how many."""
    demoted = 0
    for pid in _descendants(root):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                if os.sched_getscheduler(tid) in _REALTIME:
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                    demoted += 1
            except OSError:
                pass  # gone, or not ours to change
    return demoted


def start_guard() -> None:
    """Demote now, then once a second for the life of this process (a daemon thread)."""
    if not hasattr(os, "sched_getscheduler") or not Path("/proc/self/task").exists():
        return
    root = os.getpid()
    demote_realtime(root)

    def guard() -> None:
        stop = threading.Event()
        while not stop.wait(INTERVAL):
            demote_realtime(root)

    threading.Thread(target=guard, name="scheduling-guard", daemon=True).start()
