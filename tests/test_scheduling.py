"""The scheduling guard puts real-time threads of the run's process tree back on
SCHED_OTHER, and leaves other processes alone."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.scheduling import demote_realtime
from tests.support.tools import missing


def _fifo(pid: int) -> None:
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        missing("setting SCHED_FIFO needs root (CAP_SYS_NICE)")


def test_a_real_time_child_is_demoted_and_a_stranger_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # A process that is not below the given root: started here, but the guard is asked
    # about the child's tree only.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fifo(child.pid)
        _fifo(stranger.pid)
        assert os.sched_getscheduler(child.pid) == os.SCHED_FIFO
        assert demote_realtime(child.pid) >= 1
        assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER
        assert os.sched_getscheduler(stranger.pid) == os.SCHED_FIFO
        assert demote_realtime(child.pid) == 0  # nothing left to do
    finally:
        for proc in (child, stranger):
            proc.kill()
            proc.wait()
