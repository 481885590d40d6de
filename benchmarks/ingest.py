#!/usr/bin/env python3
"""Ingest CPU: N concurrent ~3 Mbit/s RTMP publishers into mediasrv vs nginx-rtmp (issue 2).

For each server in turn (never both at once), in one invocation:

1. start the server on free loopback ports (nginx-rtmp: generated config, ``live on``,
   no HLS, one worker; mediasrv: ``mediasrv serve --set ...``);
2. start N ``ffmpeg -re -stream_loop -1 -i input.flv -c copy -f flv rtmp://…/live/streamK``;
3. check the server really has the streams (mediasrv: ``/api/streams`` lists all N;
   both: ``ffprobe`` pulls ``stream0`` back), then let it settle for ``--warmup`` seconds;
4. measure for ``--seconds``: CPU seconds (user + sys) of the server's process tree from
   /proc/PID/stat, and the bytes it read from its N RTMP connections (``ss -ti``) as a
   cross-check that all N streams kept arriving at their bitrate; every publisher must
   still be running at the end of the window;
5. kill publishers and server.

``--servers nginx-rtmp,mediasrv,mediasrv-live-only`` adds the like-for-like row:
mediasrv doing what nginx-rtmp's ``live on`` does (``LIVE_ONLY_SETTINGS``: no HLS
packaging, no recording, no thumbnails after the first), beside mediasrv's defaults.
``nginx-rtmp-hls`` is the fair peer of those defaults: nginx-rtmp with ``hls on``
(``NGINX_HLS_FRAGMENT`` fragments, a playlist as long as mediasrv's default window),
writing MPEG-TS fragments and playlists into the run's temp dir.

The publishers' CPU is not counted. The input (1280x720 30 fps H.264 High with B-frames
+ AAC, ~3.2 Mbit/s, 25 s, FLV) is made once with the FFmpeg CLI and cached in the temp
dir. Prints one Markdown table on stdout (progress goes to stderr); ``--append-results``
also appends it, with the command line, date and machine, to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/ingest.py --streams 4 --seconds 30
    .venv/bin/python benchmarks/ingest.py --servers nginx-rtmp,mediasrv,mediasrv-live-only
    .venv/bin/python benchmarks/ingest.py --streams 12 \
        --servers nginx-rtmp,nginx-rtmp-hls,mediasrv,mediasrv-live-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FFMPEG,
    FFPROBE,
    HOST,
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    free_port,
    load_average,
    machine_description,
    Managed,
    markdown_table,
    nginx_argv,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
    tcp_bytes_read,
    wait_for_tcp,
    write_nginx_rtmp_conf,
)

SECTION = "## Ingest CPU (issue 2)"
INPUT_SECONDS = 25


def note(msg: str) -> None:
    print(f"[ingest] {msg}", file=sys.stderr, flush=True)


class BenchmarkError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------
# Input


def make_input(cache_dir: Path) -> Path:
    """1280x720 30 fps H.264 (B-frames, 2 s GOP) + AAC, ~3 Mbit/s, 25 s, FLV; cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"ingest-720p30-3M-bframes-{INPUT_SECONDS}s.flv"
    if path.exists() and path.stat().st_size > 1_000_000:
        return path
    note(f"making the input {path} (once) ...")
    part = path.with_suffix(".part.flv")
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(INPUT_SECONDS),
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-bf", "3", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
            "-b:v", "3M", "-maxrate", "3M", "-bufsize", "6M",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            "-f", "flv", str(part),
        ],
        check=True,
        timeout=600,
    )
    part.rename(path)
    return path


def probe_bitrate(path: Path) -> float:
    """Bits per second of the whole file (container overhead included)."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration,bit_rate", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    )
    fmt = json.loads(out.stdout)["format"]
    return float(fmt.get("bit_rate") or path.stat().st_size * 8 / float(fmt["duration"]))


# ---------------------------------------------------------------------------------------
# Servers


@dataclass
class Result:
    server: str
    streams: int
    seconds: float
    cpu: float
    mbit_in: float
    checks: str

    @property
    def per_stream_minute(self) -> float:
        return self.cpu / (self.streams * self.seconds / 60.0)


class Server:
    """One server under test: ``start`` it, ``verify`` it has the streams."""

    name = ""
    proc: Managed

    def __init__(self, procs: ProcessGroup, workdir: Path) -> None:
        self.procs = procs
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rtmp_port = free_port(HOST)

    def rtmp_url(self, stream: str) -> str:
        return f"rtmp://{HOST}:{self.rtmp_port}/live/{stream}"

    def start(self) -> None:
        raise NotImplementedError

    def verify_streams(self, names: list[str], timeout: float) -> list[str]:
        """Wait until the server has every stream; return what was checked."""
        return []

    def stop(self) -> None:
        self.procs.stop(self.proc, timeout=8.0)


class NginxRtmp(Server):
    name = "nginx-rtmp"

    def start(self) -> None:
        conf = write_nginx_rtmp_conf(self.workdir, self.rtmp_port, host=HOST, workers=1)
        self.proc = self.procs.start(
            "nginx", nginx_argv(conf, self.workdir), log_path=self.workdir / "stdout.log"
        )
        wait_for_tcp(HOST, self.rtmp_port, 10.0, self.proc)


#: nginx-rtmp's HLS as the peer of mediasrv's defaults (``hls.segment_duration`` 2 s,
#: ``hls.window`` 6 segments): 2 s fragments (cut at the input's 2 s keyframes) and a
#: 12 s playlist. Its HLS is plain (no LL-HLS parts) and it does no recording or
#: thumbnails, so it is still less work than mediasrv's defaults, not more.
NGINX_HLS_FRAGMENT = "2s"
NGINX_HLS_PLAYLIST_LENGTH = "12s"


class NginxRtmpHls(Server):
    """nginx-rtmp with ``hls on``: every stream also packaged as HLS into ``hls/``."""

    name = "nginx-rtmp-hls"

    def start(self) -> None:
        self.hls_dir = self.workdir / "hls"
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        conf = write_nginx_rtmp_conf(
            self.workdir, self.rtmp_port, host=HOST, workers=1,
            extra_application=(
                f"hls on;\n"
                f"            hls_path {self.hls_dir};\n"
                f"            hls_fragment {NGINX_HLS_FRAGMENT};\n"
                f"            hls_playlist_length {NGINX_HLS_PLAYLIST_LENGTH};"
            ),
        )
        self.proc = self.procs.start(
            "nginx", nginx_argv(conf, self.workdir), log_path=self.workdir / "stdout.log"
        )
        wait_for_tcp(HOST, self.rtmp_port, 10.0, self.proc)

    def verify_streams(self, names: list[str], timeout: float) -> list[str]:
        """Every stream has a playlist listing at least one fragment (the first one is
        written after ~2 s, at the second keyframe)."""
        deadline = time.monotonic() + timeout
        missing = list(names)
        while time.monotonic() < deadline:
            missing = [n for n in names if not self._has_fragment(n)]
            if not missing:
                return [f"HLS playlists with fragments for {len(names)}"]
            time.sleep(0.5)
        raise BenchmarkError(
            f"nginx-rtmp-hls: no HLS playlist with a fragment after {timeout:g} s for {missing}\n"
            f"{self.proc.log_tail()}"
        )

    def _has_fragment(self, name: str) -> bool:
        try:
            playlist = (self.hls_dir / f"{name}.m3u8").read_text()
        except OSError:
            return False
        return any(line.endswith(".ts") for line in playlist.splitlines())


class Mediasrv(Server):
    name = "mediasrv"

    def __init__(self, procs: ProcessGroup, workdir: Path, extra_sets: list[str]) -> None:
        super().__init__(procs, workdir)
        self.http_port = free_port(HOST)
        self.extra_sets = extra_sets

    def start(self) -> None:
        # ``-m`` from the checkout's root imports this checkout's mediasrv (the current
        # directory comes first on sys.path), whatever the venv's editable install points
        # at: a worktree measures its own code.
        argv = [sys.executable, "-m", "mediasrv.cli"]
        argv += [
            "serve",
            "--set", f"rtmp.listen={HOST}:{self.rtmp_port}",
            "--set", f"http.listen={HOST}:{self.http_port}",
            "--set", f"data_dir={self.workdir / 'data'}",
            "--set", "log.level=warning",
            # Every publisher is on this machine: lift the per-address caps (issue 18).
            "--set", "rtmp.max_connections_per_address=1000000", "--set", "rtmp.max_handshakes_per_address=1000000",
            # Like for like with nginx-rtmp's `live on`: no transcoding ladder (its CPU is
            # measured by benchmarks/transcode.py). HLS packaging stays on: it is part of
            # what mediasrv does with every stream it ingests.
            "--set", "transcode.enabled=false",
        ]
        for kv in self.extra_sets:
            argv += ["--set", kv]
        self.imported = imported_mediasrv()
        self.proc = self.procs.start("mediasrv", argv, log_path=self.workdir / "mediasrv.log", cwd=ROOT)
        wait_for_tcp(HOST, self.http_port, 30.0, self.proc)
        wait_for_tcp(HOST, self.rtmp_port, 10.0, self.proc)

    def live_streams(self) -> set[str]:
        url = f"http://{HOST}:{self.http_port}/api/streams"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
        return {s["name"] for s in body.get("streams", [])}

    def verify_streams(self, names: list[str], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            try:
                seen = self.live_streams()
            except OSError:
                seen = set()
            if set(names) <= seen:
                return [f"mediasrv from {self.imported}", f"/api/streams listed {len(names)}"]
            time.sleep(0.5)
        raise BenchmarkError(
            f"mediasrv: /api/streams lists {sorted(seen)} after {timeout:g} s, expected {names}\n"
            f"{self.proc.log_tail()}"
        )


def imported_mediasrv() -> str:
    """The mediasrv package ``python -m mediasrv.cli`` run from ROOT imports; refuses to
    measure another checkout's code."""
    out = subprocess.run(
        [sys.executable, "-c", "import mediasrv, os; print(os.path.dirname(mediasrv.__file__))"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=30,
    ).stdout.strip()
    if Path(out).resolve() != (ROOT / "mediasrv").resolve():
        raise BenchmarkError(f"python -m mediasrv.cli from {ROOT} would import {out}, not this checkout")
    return out


#: mediasrv doing what nginx-rtmp's ``live on`` does: ingest into the hub (RTMP playback
#: from it), no HLS packaging, no recording, thumbnails left to their first one (taken
#: before the window; ``thumbnails.interval`` has no "off").
LIVE_ONLY_SETTINGS = ("hls.enabled=false", "recording.enabled=false", "thumbnails.interval=3600")


class MediasrvLiveOnly(Mediasrv):
    """The like-for-like row: mediasrv with ``LIVE_ONLY_SETTINGS`` (then ``--mediasrv-set``)."""

    name = "mediasrv-live-only"

    def __init__(self, procs: ProcessGroup, workdir: Path, extra_sets: list[str]) -> None:
        super().__init__(procs, workdir, [*LIVE_ONLY_SETTINGS, *extra_sets])


def ffprobe_stream(url: str, timeout: float) -> str:
    """Pull ``url`` briefly; return e.g. 'h264 1280x720 + aac' or raise."""
    try:
        out = subprocess.run(
            [FFPROBE, "-v", "error", "-rw_timeout", str(int(timeout * 1e6)),
             "-show_entries", "stream=codec_name,width,height", "-of", "json", url],
            capture_output=True, text=True, timeout=timeout + 5,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"ffprobe {url}: no answer in {timeout:g} s") from None
    streams = json.loads(out.stdout or "{}").get("streams", []) if out.returncode == 0 else []
    if not streams:
        raise BenchmarkError(f"ffprobe {url}: status {out.returncode}: {out.stderr.strip()[-400:]}")
    parts = []
    for s in streams:
        size = f" {s['width']}x{s['height']}" if s.get("width") else ""
        parts.append(f"{s['codec_name']}{size}")
    return " + ".join(parts)


# ---------------------------------------------------------------------------------------
# One measurement


def run_one(server: Server, procs: ProcessGroup, args, input_path: Path, input_bps: float) -> Result:
    note(f"{server.name}: starting")
    server.start()
    names = [f"stream{i}" for i in range(args.streams)]
    publishers: list[Managed] = []
    try:
        guard = args.warmup + args.seconds + 60  # a publisher never outlives a hung benchmark
        for name in names:
            publishers.append(
                procs.start(
                    f"publisher {name}",
                    [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                     "-stream_loop", "-1", "-i", str(input_path), "-t", str(guard),
                     "-c", "copy", "-f", "flv", server.rtmp_url(name)],
                    log_path=server.workdir / f"publisher-{name}.log",
                )
            )
        checks = server.verify_streams(names, timeout=15.0)
        checks.append(f"ffprobe stream0: {ffprobe_stream(server.rtmp_url(names[0]), 10.0)}")
        _check_publishers(server, publishers)
        note(f"{server.name}: {args.streams} streams up ({'; '.join(checks)}); "
             f"settling {args.warmup:g} s")
        time.sleep(args.warmup)
        _check_publishers(server, publishers)

        pid = server.proc.pid
        profiler = None
        if args.profile and isinstance(server, Mediasrv):
            profiler = start_profiler(procs, pid, args)
        conns0, bytes0 = tcp_bytes_read(server.rtmp_port)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        note(f"{server.name}: measuring {args.seconds:g} s")
        end = t0 + args.seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            _check_publishers(server, publishers)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        conns1, bytes1 = tcp_bytes_read(server.rtmp_port)
        if profiler is not None:
            finish_profiler(procs, profiler, args)

        # After the window, so the checks cost the server nothing inside it.
        _check_publishers(server, publishers)
        if isinstance(server, Mediasrv):
            live = server.live_streams()
            if not set(names) <= live:
                raise BenchmarkError(f"mediasrv: after the window /api/streams lists {sorted(live)}")
        if min(conns0, conns1) < args.streams:
            raise BenchmarkError(f"{server.name}: {conns0} then {conns1} RTMP connections, "
                                 f"expected {args.streams}")
        elapsed = t1 - t0
        mbit = (bytes1 - bytes0) * 8 / elapsed / 1e6
        expected = args.streams * input_bps / 1e6
        if mbit < 0.8 * expected:
            raise BenchmarkError(
                f"{server.name} read {mbit:.1f} Mbit/s, expected ~{expected:.1f} "
                f"({args.streams} × {input_bps / 1e6:.2f}): streams did not all arrive"
            )
        checks.append(f"read {mbit:.1f} Mbit/s of ~{expected:.1f} sent on {conns1} connections")
        return Result(server.name, args.streams, elapsed, cpu1 - cpu0, mbit, "; ".join(checks))
    finally:
        for p in publishers:
            procs.stop(p, timeout=3.0)
        server.stop()


def start_profiler(procs: ProcessGroup, pid: int, args) -> Managed:
    """``py-spy record`` of mediasrv for the window (raw collapsed stacks, idle excluded)."""
    exe = ROOT / ".venv" / "bin" / "py-spy"
    spy = str(exe) if exe.exists() else shutil.which("py-spy")
    if spy is None:
        raise BenchmarkError("--profile needs py-spy (.venv/bin/pip install py-spy)")
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / "mediasrv.collapsed.txt"
    return procs.start(
        "py-spy",
        [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(args.seconds))),
         "--rate", "250", "--function", "--nonblocking", "--format", "raw", "-o", str(out)],
        log_path=args.profile / "py-spy.log",
    )


def finish_profiler(procs: ProcessGroup, profiler: Managed, args) -> None:
    try:
        profiler.popen.wait(20)
    except subprocess.TimeoutExpired:
        pass
    procs.stop(profiler, timeout=5.0, sig=2)
    out = args.profile / "mediasrv.collapsed.txt"
    if not out.exists():
        note(f"py-spy wrote nothing:\n{profiler.log_tail()}")
        return
    summary = summarize_collapsed(out)
    (args.profile / "mediasrv.top.txt").write_text(summary)
    note(f"profile: {out}\n{summary}")


def summarize_collapsed(path: Path, top: int = 20) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples (non-idle)", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", "incl % function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines) + "\n"


def _check_publishers(server: Server, publishers: list[Managed]) -> None:
    if not server.proc.alive():
        raise BenchmarkError(
            f"{server.name} exited with status {server.proc.popen.returncode}\n{server.proc.log_tail()}"
        )
    for p in publishers:
        if not p.alive():
            raise BenchmarkError(
                f"{p.name} into {server.name} exited with status {p.popen.returncode}\n{p.log_tail()}"
            )


# ---------------------------------------------------------------------------------------
# Report


#: The server each row is judged against (issue 15): the like-for-like row against
#: nginx-rtmp's ``live on``, mediasrv's defaults against nginx-rtmp with HLS.
PEERS = {"mediasrv-live-only": "nginx-rtmp", "mediasrv": "nginx-rtmp-hls"}


def table(results: list[Result]) -> str:
    by_name = {r.server: r for r in results}
    base = by_name.get("nginx-rtmp")

    def ratio(r: Result, other: Result | None) -> str:
        return f"{r.per_stream_minute / other.per_stream_minute:.2f}" if other and other.cpu > 0 else "—"

    rows = []
    for r in results:
        peer = by_name.get(PEERS.get(r.server, ""))
        rows.append([
            r.server, r.streams, f"{r.seconds:.1f}", f"{r.cpu:.2f}", f"{r.per_stream_minute:.3f}",
            ratio(r, base), f"{ratio(r, peer)} ({peer.server})" if peer else "—", f"{r.mbit_in:.1f}",
        ])
    return markdown_table(
        ["server", "streams", "seconds", "CPU s", "CPU s per stream-minute", "ratio vs nginx-rtmp",
         "ratio vs peer", "Mbit/s in"],
        rows,
        align="lrrrrrlr",
    )


def record(results: list[Result], input_path: Path, input_bps: float, args) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    code = code_revision()
    machine = machine_description({
        "nginx": ["/usr/sbin/nginx", "-v"],
        "ffmpeg": [FFMPEG, "-version"],
    })
    checks = "\n".join(f"- {r.server}: {r.checks}" for r in results)
    text = (
        f"### {when}\n\n"
        f"```\n{command_line()}\n```\n\n"
        f"Machine: {machine}. mediasrv at {code}"
        f"{'; extra settings: ' + ' '.join(args.mediasrv_set) if args.mediasrv_set else ''}"
        f"{'; mediasrv-live-only = mediasrv with ' + ' '.join(LIVE_ONLY_SETTINGS) if 'mediasrv-live-only' in args.servers else ''}"
        f"{'; nginx-rtmp-hls = nginx-rtmp with hls on, hls_fragment ' + NGINX_HLS_FRAGMENT + ', hls_playlist_length ' + NGINX_HLS_PLAYLIST_LENGTH if 'nginx-rtmp-hls' in args.servers else ''}"
        f". Load average (1, 5, 15 min) before the first server: {args.load_before}; at the end: {load_average()}.\n"
        f"Input: {input_path.name}, {input_bps / 1e6:.2f} Mbit/s, "
        f"published with `ffmpeg -re -stream_loop -1 -c copy`; warmup {args.warmup:g} s.\n\n"
        f"{table(results)}\n\n"
        f"Checks:\n{checks}\n"
    )
    append_to_section(RESULTS, SECTION, text)
    note(f"appended to {RESULTS.relative_to(ROOT)}")


SERVERS = ("nginx-rtmp", "nginx-rtmp-hls", "mediasrv", "mediasrv-live-only")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=4, help="concurrent publishers (default 4)")
    p.add_argument("--seconds", type=float, default=30.0, help="measured window per server (default 30)")
    p.add_argument("--warmup", type=float, default=3.0,
                   help="seconds between 'all streams up' and the window (default 3)")
    p.add_argument("--servers", default="nginx-rtmp,mediasrv",
                   help="comma-separated, run in this order (default nginx-rtmp,mediasrv); "
                        "mediasrv-live-only is mediasrv with " + " ".join(LIVE_ONLY_SETTINGS)
                        + ", the like-for-like row; nginx-rtmp-hls is nginx-rtmp with hls on "
                        "(2 s fragments), the peer of mediasrv's defaults")
    p.add_argument("--mediasrv-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for mediasrv (repeatable)")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "mediasrv-bench",
                   help="where the generated input is cached")
    p.add_argument("--keep-workdir", action="store_true", help="keep configs and logs of the run")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="py-spy record mediasrv during its window into DIR and print the hot "
                        "spots (a profiled run is not recorded)")
    p.add_argument("--append-results", action="store_true",
                   help=f"append the table, command and date to {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if args.streams < 1 or args.seconds <= 0:
        p.error("--streams must be ≥ 1 and --seconds > 0")
    if args.profile and args.append_results:
        p.error("--profile and --append-results exclude each other (the profiler perturbs the run)")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r} ({', '.join(SERVERS)})")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.load_before = load_average()
    note(f"load average {args.load_before}")
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-ingest-"))
    results: list[Result] = []
    try:
        with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
            input_path = make_input(args.cache_dir)
            input_bps = probe_bitrate(input_path)
            note(f"input {input_path} at {input_bps / 1e6:.2f} Mbit/s")
            for name in args.servers:
                if name == "nginx-rtmp":
                    server: Server = NginxRtmp(procs, workdir / "nginx")
                elif name == "nginx-rtmp-hls":
                    server = NginxRtmpHls(procs, workdir / name)
                elif name == "mediasrv-live-only":
                    server = MediasrvLiveOnly(procs, workdir / name, args.mediasrv_set)
                else:
                    server = Mediasrv(procs, workdir / "mediasrv", args.mediasrv_set)
                results.append(run_one(server, procs, args, input_path, input_bps))
                time.sleep(1.0)  # let the machine go quiet between servers
    except BenchmarkError as exc:
        print(f"ingest benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ingest benchmark interrupted; every process stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_workdir:
            note(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    if args.append_results:
        record(results, input_path, input_bps, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
