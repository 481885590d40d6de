"""Shared helpers for the benchmark scripts (stdlib only, Linux).

- processes: :class:`ProcessGroup` starts subprocesses in their own sessions, with a
  parent-death signal, and kills every one of them (and their process groups) on exit,
  on an exception, on Ctrl-C and on SIGTERM;
- CPU accounting: :func:`cpu_seconds` reads ``/proc/PID/stat`` (user + system of the
  process, of its live descendants and of its reaped children);
- TCP accounting: :func:`tcp_bytes_read` sums, over the established connections to a
  local port, the bytes the application has read (``ss -ti``: bytes_received − Recv-Q);
- ports: :func:`free_port`, :func:`wait_for_tcp`;
- nginx-rtmp: :func:`find_rtmp_module`, :func:`write_nginx_rtmp_conf`;
- reporting: :func:`markdown_table`, :func:`machine_description`, :func:`append_to_section`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Sequence

#: The checkout's root and where every benchmark records its figures.
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
#: Benchmarks talk to 127.0.0.1 only.
HOST = "127.0.0.1"
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"

CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------
# Processes


def _set_parent_death_signal() -> None:
    """In the child before exec: die with SIGKILL when the benchmark process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class Managed:
    name: str
    popen: subprocess.Popen
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class ProcessGroup:
    """Owns subprocesses; ``stop_all()`` (also run by ``__exit__``) leaves no orphans.

    Each child runs in its own session (so a terminal's Ctrl-C reaches only us and we
    decide the order of shutdown) with PR_SET_PDEATHSIG=SIGKILL (so even a SIGKILL of
    the benchmark does not leave a server or publisher behind). Stopping sends SIGTERM
    to the child's whole process group, waits, then SIGKILLs the group.
    """

    def __init__(self) -> None:
        self.procs: list[Managed] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path | None = None,
        cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        parent_death_signal: bool = True,
    ) -> Managed:
        """Start ``argv``. ``parent_death_signal=False`` for a benchmark that runs threads
        (a server in its own process): the signal is set by Python code run in the
        forked child (``preexec_fn``), which can hang there on a lock another thread
        held at the fork; without it the child runs no Python code before exec (the
        child is still stopped by ``stop``/``stop_all`` and on SIGTERM, not on SIGKILL)."""
        log = open(log_path, "wb") if log_path is not None else None
        out = log if log is not None else subprocess.DEVNULL
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_set_parent_death_signal if parent_death_signal else None,
        )
        managed = Managed(name, popen, log_path, log)
        self.procs.append(managed)
        return managed

    def stop(self, proc: Managed, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process group, wait up to ``timeout``, then SIGKILL it."""
        if proc.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Kill whatever is left in the group (the leader or its own children).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout)
        if proc._log is not None:
            proc._log.close()
            proc._log = None
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.popen.returncode

    def stop_all(self, timeout: float = 5.0) -> None:
        for proc in list(reversed(self.procs)):
            if proc.alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in list(reversed(self.procs)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
        for proc in list(reversed(self.procs)):
            self.stop(proc, timeout=2.0, sig=signal.SIGKILL)

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt so ``finally`` blocks run (SIGINT
    too, because a shell starts background jobs with SIGINT ignored)."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------------------------
# /proc accounting


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the ``(comm)``; index 0 is field 3 (state)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    return data[data.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (by scanning /proc for parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def cpu_seconds(pid: int, *, include_children: bool = True) -> float:
    """User + system CPU seconds of ``pid`` (all its threads).

    With ``include_children``: plus its live descendants' own user + system time, plus
    the reaped children's time (cutime + cstime) of ``pid`` and of those descendants.
    A difference of two readings is the CPU the process tree used in between.
    """
    pids = [pid] + (descendants(pid) if include_children else [])
    ticks = 0
    for i, p in enumerate(pids):
        try:
            f = _stat_fields(p)
        except OSError:
            if i == 0:
                raise
            continue  # a descendant that just exited; its time moves to cutime
        ticks += int(f[11]) + int(f[12])  # utime, stime
        if include_children:
            ticks += int(f[13]) + int(f[14])  # cutime, cstime
    return ticks / CLK_TCK


def tcp_bytes_read(port: int) -> tuple[int, int]:
    """``(connections, bytes)`` for established TCP connections whose local port is
    ``port``: bytes the kernel received on them minus those still unread (Recv-Q), i.e.
    what the listening application has read so far. Uses ``ss`` from iproute2.

    (``rchar`` of /proc/PID/io does not count ``recv()`` on sockets, so it cannot tell.)
    """
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout
    conns = total = 0
    recv_q = 0
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):  # "Recv-Q Send-Q local peer"
            conns += 1
            recv_q = int(line.split()[0])
            continue
        m = re.search(r"\bbytes_received:(\d+)", line)
        if m:
            total += int(m.group(1)) - recv_q
    return conns, total


# ---------------------------------------------------------------------------------------
# Network


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just gave us for ``host`` (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_tcp(host: str, port: int, timeout: float, proc: Managed | None = None) -> None:
    """Wait until ``host:port`` accepts a connection; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with status {proc.popen.returncode} before listening on "
                f"{host}:{port}\n{proc.log_tail()}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:g} s") from None
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------
# nginx-rtmp

NGINX = "/usr/sbin/nginx"
RTMP_MODULE_CANDIDATES = (
    "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    "/usr/lib64/nginx/modules/ngx_rtmp_module.so",
    "/usr/local/nginx/modules/ngx_rtmp_module.so",
)


def find_rtmp_module() -> str:
    """Absolute path of ngx_rtmp_module.so (Debian: libnginx-mod-rtmp)."""
    for path in RTMP_MODULE_CANDIDATES:
        if os.path.exists(path):
            return path
    conf = Path("/usr/share/nginx/modules-available/mod-rtmp.conf")
    if conf.exists():  # "load_module modules/ngx_rtmp_module.so;" relative to /usr/share/nginx
        for token in conf.read_text().replace(";", " ").split():
            if token.endswith(".so"):
                for base in ("/usr/share/nginx", "/usr/lib/nginx", "/etc/nginx"):
                    path = os.path.realpath(os.path.join(base, token))
                    if os.path.exists(path):
                        return path
    raise FileNotFoundError("ngx_rtmp_module.so not found (apt-get install libnginx-mod-rtmp)")


def write_nginx_rtmp_conf(
    prefix: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    app: str = "live",
    workers: int = 1,
    master_process: bool = False,
    chunk_size: int = 4096,
    extra_application: str = "",
) -> Path:
    """Write ``PREFIX/nginx.conf``: RTMP only (no HTTP, no HLS), foreground, files in PREFIX.

    ``master_process off`` (default): one process does the work, so its /proc/PID/stat is
    the whole cost and the parent-death signal covers it (with a master, a worker
    survives a SIGKILL of the benchmark).

    Start it with ``nginx -c CONF -p PREFIX -e PREFIX/error.log``.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""\
load_module {find_rtmp_module()};
daemon off;
master_process {"on" if master_process else "off"};
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 1024;
}}

rtmp {{
    server {{
        listen {host}:{port};
        chunk_size {chunk_size};
        application {app} {{
            live on;
            {extra_application}
        }}
    }}
}}
"""
    )
    return conf


def nginx_argv(conf: Path, prefix: Path, nginx: str = NGINX) -> list[str]:
    return [nginx, "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log")]


# ---------------------------------------------------------------------------------------
# Reporting


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub Markdown table. ``align``: one of ``l``/``r`` per column (default: text
    left, numbers right)."""
    cells = [[str(c) for c in row] for row in rows]
    if align is None:
        align = "".join(
            "r" if rows and all(isinstance(r[i], (int, float)) or _numeric(str(r[i])) for r in rows) else "l"
            for i in range(len(headers))
        )
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(
            v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(values, widths, align)
        ) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("×x%"))
        return True
    except ValueError:
        return text in ("-", "—", "n/a")


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
        line = (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"
    # "nginx version: nginx/1.22.1", "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ..."
    line = line.split(" Copyright")[0]
    return line.split("version:", 1)[-1].strip() if "version:" in line else line


def tree_digest(root: Path, pattern: str = "*.py") -> str:
    """Short SHA-256 of the files matching ``pattern`` under ``root`` (names and bytes):
    identifies the code measured even when it is not committed yet."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(root.rglob(pattern)):
        if "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine_description(tools: dict[str, Sequence[str]] | None = None) -> str:
    """One line: cores, CPU model, memory, kernel, Python, and versions of ``tools``."""
    mem_gib = "?"
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem_gib = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    parts = [
        f"{os.cpu_count()} cores ({cpu_model()})",
        f"{mem_gib} RAM",
        f"Linux {platform.release()}",
        f"Python {platform.python_version()}",
    ]
    for name, argv in (tools or {}).items():
        parts.append(f"{name}: {_first_line(argv)}")
    return ", ".join(parts)



def code_revision() -> str:
    """The mediasrv code measured: its git revision, and a digest of mediasrv/*.py when
    that tree has uncommitted changes."""
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "mediasrv"],
                           capture_output=True, text=True).stdout.strip()
    if not dirty:
        return f"git {git}"
    return f"git {git} + uncommitted changes (mediasrv/*.py sha256 {tree_digest(ROOT / 'mediasrv')})"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])

def command_line() -> str:
    """The command that is running, as a user would type it again."""
    return " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable)] + sys.argv)


def append_to_section(path: Path, heading: str, text: str) -> None:
    """Append ``text`` at the end of the section ``heading`` (a ``## …`` line) of ``path``,
    before the next heading of the same or a higher level; create the section if needed."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = path.read_text().splitlines() if path.exists() else []
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == heading.strip())
    except StopIteration:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", heading, ""]
        start = len(lines) - 2
    end = len(lines)
    for i in range(start + 1, len(lines)):
        stripped = lines[i].lstrip()
        hashes = len(stripped) - len(stripped.lstrip("#"))
        if 0 < hashes <= level and stripped[hashes : hashes + 1] == " ":
            end = i
            break
    before, after = lines[:end], lines[end:]
    while before and not before[-1].strip():
        before.pop()
    block = [""] + text.rstrip("\n").splitlines() + ([""] if after else [])
    path.write_text("\n".join(before + block + after).rstrip("\n") + "\n")
