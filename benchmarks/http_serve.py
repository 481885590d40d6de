#!/usr/bin/env python3
"""HTTP serving (issue 3): HLS requests per second from mediasrv vs nginx serving the same
files statically, with the same load generator in the same run; and the time from a
keyframe's arrival to its segment being listed.

One invocation:

1. start mediasrv (``python -m mediasrv.cli serve --set …``, free loopback ports,
   ``transcode.enabled=false``) and one publisher: ``ffmpeg -re -stream_loop -1 -i
   input.flv -c copy -f flv rtmp://…/live/bench`` (input: 1280x720 30 fps H.264 High with
   B-frames, 2 s GOP, ~3 Mbit/s, + AAC; made once with the FFmpeg CLI and cached);
2. list latency (before any load): a second stream, ``latency``, published for
   ``--latency-seconds`` from the same file by a minimal RTMP publisher in this process
   (``FlvPublisher``: paced like ``-re``, it notes when each keyframe was sent in full),
   while its media playlist is polled every ``--poll-ms``. Segment N is closed by the
   keyframe at the sum of EXTINF 0..N (ms-exact); latency = the first poll that lists N −
   the send time of that keyframe, so it includes loopback transfer, mediasrv's RTMP
   parsing, hub, muxer and up to one poll interval plus one request. (``ffmpeg -re``
   cannot tell when it sent a packet; it releases each one a frame or so before its DTS.
   The server's ``HlsStats.list_latency_*`` counts only the segmenter's share and is not
   reachable from outside yet);
3. save what mediasrv serves (master playlist, media playlist, init segment, a segment)
   into a temp dir under the same paths (``/live/bench/…``) and serve that dir with nginx
   (generated config: ``daemon off; master_process off; worker_processes 1;``, sendfile,
   ``open_file_cache``, the same headers as mediasrv's);
4. for a segment URL and for a media-playlist URL, run ``wrk -tT -cC -dDs`` against each
   server, ``--rounds`` times, alternating which one goes first (the segment is the newest
   listed one, re-saved for nginx just before, so both serve the same bytes at the same
   URL), with CPU seconds of each server's process from /proc/PID/stat over the run; any
   non-2xx response or socket error fails the run. Reported: req/s and their ratio per
   round and its median (the goal: mediasrv ≥ 0.5× nginx), and requests per CPU-second of
   the server, which does not depend on how the two shared cores were split;
5. kill everything it started (also on errors, Ctrl-C and SIGTERM).

The publisher keeps running during every wrk run (mediasrv ingests and segments
meanwhile; nginx shares the machine with that same background). Prints Markdown tables on
stdout (progress on stderr); ``--append-results`` appends them with the exact command,
date, git revision and machine to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/http_serve.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FFMPEG,
    HOST,
    NGINX,
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    free_port,
    machine_description,
    Managed,
    markdown_table,
    nginx_argv,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
    wait_for_tcp,
)

SECTION = "## HTTP serving (issue 3)"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
STREAM = "bench"
INPUT_SECONDS = 20

# The headers mediasrv sends (mediasrv/delivery/routes.py), so nginx does the same work.
PLAYLIST_CACHE = "max-age=1"
SEGMENT_CACHE = "public, max-age=86400, immutable"


def note(msg: str) -> None:
    print(f"[http_serve] {msg}", file=sys.stderr, flush=True)


class BenchmarkError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------
# Input and publisher


def make_input(cache_dir: Path) -> Path:
    """1280x720 30 fps H.264 High (B-frames, 2 s GOP) + AAC, ~3 Mbit/s, FLV; cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"http-720p30-3M-gop60-{INPUT_SECONDS}s.flv"
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


class FlvPublisher:
    """A minimal RTMP publisher (plain handshake, AMF0 commands) that sends an FLV file's
    tags paced by their timestamps, like ``ffmpeg -re -c copy``, and notes the wall-clock
    time (``time.time()``) at which each video keyframe was handed to the kernel in full.

    Used for the list latency only: it knows exactly when each keyframe went out, which
    no external publisher reports. Stdlib only, independent of mediasrv's own RTMP code.
    """

    CHUNK = 4096

    def __init__(self, host: str, port: int, app: str, stream: str, path: Path, seconds: float) -> None:
        self.host, self.port, self.app, self.stream = host, port, app, stream
        self.tags = [t for t in _flv_tags(path.read_bytes()) if t[1] <= seconds * 1000]
        #: FLV timestamp (ms) of each video keyframe -> time.time() when it was sent.
        self.keyframes_sent: dict[int, float] = {}
        self.error: BaseException | None = None
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="flv-publisher", daemon=True)

    def start(self) -> "FlvPublisher":
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.close()
            raise BenchmarkError("the latency publisher did not finish")
        if self.error is not None:
            raise BenchmarkError(f"the latency publisher failed: {self.error!r}")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass

    def _run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.close()

    def _publish(self) -> None:
        sock = self._sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))
        s0s1s2 = _recv_exactly(sock, 1 + 1536 + 1536)
        sock.sendall(s0s1s2[1:1537])  # C2 echoes S1
        received = bytearray()
        sock.sendall(_chunks(2, 1, 0, 0, struct.pack(">I", self.CHUNK), 128))
        tc_url = f"rtmp://{self.host}:{self.port}/{self.app}"
        self._command(["connect", 1, {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0",
                                      "tcUrl": tc_url}], 0)
        _recv_until(sock, received, b"NetConnection.Connect.Success")
        self._command(["releaseStream", 2, None, self.stream], 0)
        self._command(["FCPublish", 3, None, self.stream], 0)
        self._command(["createStream", 4, None], 0)
        _recv_until(sock, received, b"\x02\x00\x07_result\x00\x40\x10")  # _result of transaction 4
        self._command(["publish", 5, None, self.stream, "live"], 1)
        _recv_until(sock, received, b"NetStream.Publish.Start")
        reader = threading.Thread(target=_drain, args=(sock,), daemon=True)
        reader.start()
        start = time.monotonic()
        for kind, ts, data in self.tags:
            delay = start + ts / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a live encoder, as ffmpeg -re does
            csid = 6 if kind == 9 else 4
            sock.sendall(_chunks(csid, kind, ts, 1, data, self.CHUNK))
            if kind == 9 and data[0] >> 4 == 1 and data[1] == 1:  # keyframe, AVC NALUs
                self.keyframes_sent[ts] = time.time()
        self._command(["FCUnpublish", 6, None, self.stream], 0)
        self._command(["deleteStream", 7, None, 1], 0)

    def _command(self, values: list, stream_id: int) -> None:
        assert self._sock is not None
        self._sock.sendall(_chunks(3, 20, 0, stream_id, b"".join(_amf0(v) for v in values), self.CHUNK))


def _flv_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, timestamp ms, payload) of the audio and video tags of an FLV file."""
    if data[:3] != b"FLV":
        raise BenchmarkError("not an FLV file")
    pos = int.from_bytes(data[5:9], "big") + 4
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
        if kind in (8, 9):
            tags.append((kind, ts, data[pos + 11:pos + 11 + size]))
        pos += 11 + size + 4
    return tags


def _chunks(csid: int, msg_type: int, ts: int, stream_id: int, payload: bytes, chunk: int) -> bytes:
    """One RTMP message: a type-0 chunk header, then type-3 continuation chunks."""
    out = [bytes([csid]) + min(ts, 0xFFFFFF).to_bytes(3, "big") + len(payload).to_bytes(3, "big")
           + bytes([msg_type]) + struct.pack("<I", stream_id)]
    ext = struct.pack(">I", ts) if ts >= 0xFFFFFF else b""
    out.append(ext)
    for i in range(0, len(payload), chunk):
        if i:
            out.append(bytes([0xC0 | csid]) + ext)
        out.append(payload[i:i + chunk])
    return b"".join(out)


def _amf0(value) -> bytes:
    if value is None:
        return b"\x05"
    if isinstance(value, bool):
        return b"\x01" + bytes([value])
    if isinstance(value, (int, float)):
        return b"\x00" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return b"\x02" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, dict):
        body = b"".join(struct.pack(">H", len(k)) + k.encode() + _amf0(v) for k, v in value.items())
        return b"\x03" + body + b"\x00\x00\x09"
    raise TypeError(value)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise BenchmarkError("mediasrv closed the RTMP connection")
        data += chunk
    return bytes(data)


def _recv_until(sock: socket.socket, received: bytearray, marker: bytes) -> None:
    """Read (bounded by the socket timeout) until ``marker`` appeared; consume through it."""
    while marker not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchmarkError(f"mediasrv closed the RTMP connection before {marker!r}")
        received += chunk
    del received[: received.index(marker) + len(marker)]


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


# ---------------------------------------------------------------------------------------
# Servers


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


class Mediasrv:
    def __init__(self, procs: ProcessGroup, workdir: Path, extra_sets: list[str]) -> None:
        self.procs = procs
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.rtmp_port = free_port(HOST)
        self.http_port = free_port(HOST)
        self.extra_sets = extra_sets
        self.proc: Managed | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "mediasrv.cli", "serve",
                "--set", f"rtmp.listen={HOST}:{self.rtmp_port}",
                "--set", f"http.listen={HOST}:{self.http_port}",
                "--set", f"data_dir={self.workdir / 'data'}",
                "--set", "log.level=warning",
                "--set", "transcode.enabled=false"]
        for kv in self.extra_sets:
            argv += ["--set", kv]
        self.proc = self.procs.start("mediasrv", argv, log_path=self.workdir / "mediasrv.log", cwd=ROOT)
        wait_for_tcp(HOST, self.http_port, 30.0, self.proc)
        wait_for_tcp(HOST, self.rtmp_port, 10.0, self.proc)

    def check_alive(self) -> None:
        if self.proc is None or not self.proc.alive():
            code = self.proc.popen.returncode if self.proc else "?"
            raise BenchmarkError(f"mediasrv exited ({code})\n{self.proc.log_tail() if self.proc else ''}")


def write_nginx_http_conf(prefix: Path, root: Path, port: int) -> Path:
    """``PREFIX/nginx.conf``: static files under ROOT on HOST:PORT, foreground, one process,
    the content types, Cache-Control and CORS header mediasrv sends."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp4 mp4 m4s;
        video/mp2t ts;
    }}
    default_type application/octet-stream;

    server {{
        listen {HOST}:{port};
        root {root};
        add_header Access-Control-Allow-Origin "*";
        location ~ \\.m3u8$ {{
            add_header Access-Control-Allow-Origin "*";
            add_header Cache-Control "{PLAYLIST_CACHE}";
        }}
        location ~ \\.(mp4|m4s|ts)$ {{
            add_header Access-Control-Allow-Origin "*";
            add_header Cache-Control "{SEGMENT_CACHE}";
        }}
    }}
}}
"""
    )
    return conf


# ---------------------------------------------------------------------------------------
# Playlists


@dataclass
class Listed:
    uri: str
    duration: float
    program_date_time: float | None


def parse_media(text: str) -> tuple[list[Listed], str | None]:
    """Segments of a media playlist (uri, EXTINF, PROGRAM-DATE-TIME as unix seconds) and
    the EXT-X-MAP URI."""
    out: list[Listed] = []
    duration = pdt = None
    init = None
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].replace("Z", "+00:00")
            pdt = dt.datetime.fromisoformat(stamp).timestamp()
        elif line.startswith("#EXT-X-MAP:"):
            init = re.search(r'URI="([^"]+)"', line).group(1)
        elif line and not line.startswith("#"):
            out.append(Listed(line, duration or 0.0, pdt))
            duration = pdt = None
    return out, init


def wait_for_segments(server: Mediasrv, count: int, timeout: float) -> str:
    url = f"{server.base}/live/{STREAM}/source/index.m3u8"
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        status, body, _ = http_get(url, timeout=20)
        if status == 200 and len(parse_media(body.decode())[0]) >= count:
            return body.decode()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"mediasrv listed fewer than {count} segments after {timeout:g} s "
                                 f"(last status {status})\n{server.proc.log_tail() if server.proc else ''}")
        time.sleep(0.2)


def measure_list_latency(server: Mediasrv, input_path: Path, seconds: float, poll: float) -> list[float]:
    """Seconds from the moment each keyframe was sent (in full) to the listing of the
    segment it closes, for a second stream published by :class:`FlvPublisher`."""
    name = "latency"
    publisher = FlvPublisher(HOST, server.rtmp_port, "live", name, input_path, seconds).start()
    url = f"{server.base}/live/{name}/source/index.m3u8"
    seen_at: dict[str, float] = {}
    listed: dict[str, Listed] = {}
    try:
        while True:
            status, body, _ = http_get(url, timeout=20)
            now = time.time()
            if status == 200:
                segments, _ = parse_media(body.decode())
                for segment in segments:
                    if segment.uri not in seen_at:
                        seen_at[segment.uri] = now
                        listed[segment.uri] = segment
                if "#EXT-X-ENDLIST" in body.decode():
                    break
            elif status != 404 or publisher.error is not None:
                raise BenchmarkError(f"latency stream: HTTP {status} ({publisher.error!r})")
            if not publisher._thread.is_alive() and status != 200:
                break
            time.sleep(poll)
    finally:
        publisher.join(seconds + 30)
    # Segment MSN n ends where n+1 starts: at the sum of the EXTINFs of 0..n after the first
    # keyframe (DTS in ms, EXTINF has ms precision), which is that keyframe's FLV timestamp.
    ordered = sorted(listed.values(), key=lambda s: int(s.uri.rsplit("_", 1)[1].split(".")[0]))
    if not ordered or not ordered[0].uri.rsplit("_", 1)[1].startswith("0."):
        raise BenchmarkError("the latency stream's first segment was not seen")
    first_key = min(publisher.keyframes_sent)
    latencies = []
    end_ms = first_key
    for segment in ordered[:-1]:  # the last one is closed by the end, not by a keyframe
        end_ms += round(segment.duration * 1000)
        match = [ts for ts in publisher.keyframes_sent if abs(ts - end_ms) <= 1]
        if not match:
            raise BenchmarkError(f"no keyframe sent at {end_ms} ms closes {segment.uri}")
        latencies.append(seen_at[segment.uri] - publisher.keyframes_sent[match[0]])
    if not latencies:
        raise BenchmarkError(f"no segment completed in {seconds:g} s")
    return latencies


def snapshot(server: Mediasrv, root: Path) -> dict[str, str]:
    """Save master, media playlist, init and the newest segment under ROOT with the same
    paths as mediasrv's URLs; return {kind: path} (paths start with /live/)."""
    base = f"/live/{STREAM}"
    paths = {}
    status, master, _ = http_get(server.base + f"{base}/index.m3u8")
    status2, media, _ = http_get(server.base + f"{base}/source/index.m3u8")
    if status != 200 or status2 != 200:
        raise BenchmarkError(f"playlists: HTTP {status}, {status2}")
    segments, init = parse_media(media.decode())
    files = {"master": (f"{base}/index.m3u8", master), "playlist": (f"{base}/source/index.m3u8", media)}
    wanted = {"segment": segments[-1].uri}
    if init:
        wanted["init"] = init
    for kind, name in wanted.items():
        status, data, _ = http_get(server.base + f"{base}/source/{name}")
        if status != 200:
            raise BenchmarkError(f"{name}: HTTP {status}")
        files[kind] = (f"{base}/source/{name}", data)
    for kind, (path, data) in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        paths[kind] = path
    return paths


# ---------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    server: str
    kind: str
    path: str
    size: int
    requests_per_s: float
    mbyte_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    cpu_s: float
    seconds: float

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_s / self.seconds

    @property
    def per_cpu_second(self) -> float:
        """Requests per CPU-second of the server (independent of how the shared cores
        were split between the server, wrk and everything else)."""
        return self.requests_per_s * self.seconds / max(self.cpu_s, 1e-3)


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(procs: ProcessGroup, workdir: Path, server_name: str, pid: int, url: str, kind: str,
            size: int, args) -> WrkResult:
    log = workdir / f"wrk-{server_name}-{kind}.log"
    argv = [WRK, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url]
    note(f"{server_name}: {' '.join(argv[1:])}")
    cpu0, t0 = cpu_seconds(pid, include_children=False), time.monotonic()
    proc = procs.start(f"wrk {server_name} {kind}", argv, log_path=log)
    try:
        proc.popen.wait(args.duration + 30)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"wrk against {server_name} did not finish") from None
    cpu1, t1 = cpu_seconds(pid, include_children=False), time.monotonic()
    procs.stop(proc)
    out = log.read_text()
    if proc.popen.returncode != 0:
        raise BenchmarkError(f"wrk failed ({proc.popen.returncode}):\n{out}")
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise BenchmarkError(f"wrk against {server_name} {url} saw errors:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not rps:
        raise BenchmarkError(f"cannot read wrk's output:\n{out}")
    mbyte = 0.0
    if transfer:
        mbyte = float(transfer.group(1)) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}.get(transfer.group(2), 0)
    # wrk's duration is the window; the CPU window is the wrk process's life (start-up ~ms).
    return WrkResult(server_name, kind, url.split(":", 2)[2].split("/", 1)[1], size, float(rps.group(1)), mbyte,
                     _ms(p50.group(1)) if p50 else float("nan"), _ms(p99.group(1)) if p99 else float("nan"),
                     cpu1 - cpu0, t1 - t0)


def check_same_bytes(nginx_url: str, mediasrv_url: str) -> int:
    """Both servers answer 200 with the same body at the same path; return its size."""
    s1, b1, h1 = http_get(nginx_url)
    s2, b2, h2 = http_get(mediasrv_url)
    if s1 != 200 or s2 != 200:
        raise BenchmarkError(f"{nginx_url}: {s1}, {mediasrv_url}: {s2}")
    if not mediasrv_url.endswith(".m3u8") and b1 != b2:
        raise BenchmarkError(f"nginx and mediasrv serve different bytes for {mediasrv_url}")
    if h1.get("Content-Type") != h2.get("Content-Type"):
        raise BenchmarkError(f"content types differ: {h1.get('Content-Type')} vs {h2.get('Content-Type')}")
    return len(b2)


# ---------------------------------------------------------------------------------------
# Reference servers (optional, --references): what Python can do with the same bytes

REFERENCE_SERVER = r'''
"""Serve every file under ROOT from memory at its path, with mediasrv's headers.

aiohttp: one route, web.Response per request (mediasrv's stack without mediasrv).
raw: an asyncio.Protocol that answers plain GETs itself (keep-alive HTTP/1.1 only).
"""
import asyncio, os, sys, time
import uvloop

kind, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
FILES = {}
for base, _, names in os.walk(root):
    for name in names:
        path = os.path.join(base, name)
        FILES["/" + os.path.relpath(path, root)] = open(path, "rb").read()
TYPES = {"m3u8": "application/vnd.apple.mpegurl", "mp4": "video/mp4", "m4s": "video/mp4", "ts": "video/mp2t"}
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, Age, Date"}


def headers(path):
    return {"Content-Type": TYPES[path.rsplit(".", 1)[1]],
            "Cache-Control": "max-age=1" if path.endswith(".m3u8") else "public, max-age=86400, immutable", **CORS}


async def serve_aiohttp():
    from aiohttp import web

    async def handler(request):
        body = FILES.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, headers=headers(request.path))

    app = web.Application()
    app.router.add_get("/live/{tail:.+}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


HEADS = {p: ("HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers(p).items())
             + f"Content-Length: {len(b)}\r\n").encode() for p, b in FILES.items()}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Raw(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        buffer = self.buffer + data
        out = []
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            line = buffer[:buffer.find(b"\r\n")]
            buffer = buffer[end + 4:]
            method, target, _ = line.split(b" ", 2)
            path = target.decode("latin-1")
            body = FILES.get(path) if method == b"GET" else None
            if body is None:
                out.append(NOT_FOUND)
                continue
            date = time.strftime("Date: %a, %d %b %Y %H:%M:%S GMT\r\n\r\n", time.gmtime()).encode()
            out += (HEADS[path], date, body)
        self.buffer = buffer
        if out:
            self.transport.writelines(out)


async def serve_raw():
    await asyncio.get_running_loop().create_server(Raw, "127.0.0.1", port)
    await asyncio.Event().wait()


uvloop.run(serve_aiohttp() if kind == "aiohttp" else serve_raw())
'''


def run_references(procs: ProcessGroup, workdir: Path, static_root: Path, path: str, size: int,
                   args) -> list[WrkResult]:
    """wrk on ``path`` against a bare aiohttp app and a bare asyncio protocol (uvloop both)
    serving the same bytes from memory: how much of mediasrv's cost is aiohttp's."""
    script = workdir / "reference_server.py"
    script.write_text(REFERENCE_SERVER)
    results = []
    for kind in ("aiohttp", "raw"):
        port = free_port(HOST)
        proc = procs.start(f"reference {kind}", [sys.executable, str(script), kind, str(port), str(static_root)],
                           log_path=workdir / f"reference-{kind}.log", cwd=ROOT)
        try:
            wait_for_tcp(HOST, port, 20.0, proc)
            status, body, _ = http_get(f"http://{HOST}:{port}{path}")
            if status != 200 or len(body) != size:
                raise BenchmarkError(f"reference {kind}: {path} answered {status}, {len(body)} bytes")
            time.sleep(1.0)
            results.append(run_wrk(procs, workdir, f"python {kind}", proc.pid, f"http://{HOST}:{port}{path}",
                                   "playlist", size, args))
        finally:
            procs.stop(proc)
    return results


# ---------------------------------------------------------------------------------------
# Profiling (optional)


def start_profiler(procs: ProcessGroup, pid: int, seconds: float, out_dir: Path, label: str) -> Managed:
    exe = ROOT / ".venv" / "bin" / "py-spy"
    spy = str(exe) if exe.exists() else shutil.which("py-spy")
    if spy is None:
        raise BenchmarkError("--profile needs py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    return procs.start(
        f"py-spy {label}",
        [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "250",
         "--nonblocking", "--format", "raw", "-o", str(out_dir / f"mediasrv-{label}.collapsed.txt")],
        log_path=out_dir / f"py-spy-{label}.log",
    )


def summarize_profile(path: Path, top: int = 25) -> str:
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
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for f in set(frames):
                incl[f] = incl.get(f, 0) + n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", "incl % function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The run


def run(args, workdir: Path, procs: ProcessGroup) -> tuple[list[WrkResult], list[float], dict]:
    input_path = make_input(args.cache_dir)
    server = Mediasrv(procs, workdir / "mediasrv", args.mediasrv_set)
    note("starting mediasrv")
    server.start()
    guard = 600 + args.latency_seconds + 4 * (args.duration + 10) * args.rounds
    publisher = procs.start(
        "publisher",
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
         "-i", str(input_path), "-t", str(guard), "-c", "copy", "-f", "flv",
         f"rtmp://{HOST}:{server.rtmp_port}/live/{STREAM}"],
        log_path=workdir / "publisher.log",
    )
    note("publisher started; waiting for 3 segments")
    wait_for_segments(server, 3, timeout=30)
    if not publisher.alive():
        raise BenchmarkError(f"publisher exited\n{publisher.log_tail()}")

    note(f"list latency: a second stream for {args.latency_seconds:g} s, its playlist polled every {args.poll_ms:g} ms")
    latencies = measure_list_latency(server, input_path, args.latency_seconds, args.poll_ms / 1000)

    static_root = workdir / "static"
    nginx_dir = workdir / "nginx"
    nginx_port = free_port(HOST)
    conf = write_nginx_http_conf(nginx_dir, static_root, nginx_port)
    paths = snapshot(server, static_root)
    nginx = procs.start("nginx", nginx_argv(conf, nginx_dir), log_path=nginx_dir / "stdout.log")
    wait_for_tcp(HOST, nginx_port, 10.0, nginx)
    nginx_base = f"http://{HOST}:{nginx_port}"
    facts = {"input": input_path.name, "paths": paths}

    results: list[WrkResult] = []
    for round_ in range(args.rounds):
        for kind in ("segment", "playlist"):
            if kind == "segment":
                paths = snapshot(server, static_root)  # the newest segment, on both servers
            path = paths[kind]
            size = check_same_bytes(nginx_base + path, server.base + path)
            facts[f"{kind}_bytes"] = size
            # Alternate who goes first, so a drift of the shared machine's load favours neither.
            order = ("nginx", "mediasrv") if round_ % 2 == 0 else ("mediasrv", "nginx")
            profiler = None
            for who in order:
                server.check_alive()
                if who == "nginx":
                    results.append(run_wrk(procs, workdir, "nginx", nginx.pid, nginx_base + path, kind, size, args))
                else:
                    if args.profile:
                        profiler = start_profiler(procs, server.proc.pid, args.duration, args.profile, f"{kind}{round_}")
                    results.append(run_wrk(procs, workdir, "mediasrv", server.proc.pid, server.base + path, kind,
                                           size, args))
                time.sleep(1.0)  # let the machine go quiet between runs
            if profiler is not None:
                try:
                    profiler.popen.wait(args.duration + 20)
                except subprocess.TimeoutExpired:
                    pass
                procs.stop(profiler, sig=2)
                out = args.profile / f"mediasrv-{kind}{round_}.collapsed.txt"
                if out.exists():
                    summary = summarize_profile(out)
                    (args.profile / f"mediasrv-{kind}{round_}.top.txt").write_text(summary)
                    note(f"profile of mediasrv, {kind}:\n{summary}")
            # mediasrv must still serve it (a segment may not expire during the run).
            status, _, _ = http_get(server.base + path)
            if status != 200:
                raise BenchmarkError(f"mediasrv: {path} answered {status} after the run")
    if not publisher.alive():
        raise BenchmarkError(f"publisher exited during the run\n{publisher.log_tail()}")
    server.check_alive()
    if args.references:
        size = (static_root / paths["playlist"].lstrip("/")).stat().st_size  # the snapshot's
        facts["references"] = run_references(procs, workdir, static_root, paths["playlist"], size, args)
    return results, latencies, facts


def tables(results: list[WrkResult], latencies: list[float], args, facts: dict) -> str:
    rows = []
    summary = []
    for kind in ("segment", "playlist"):
        ratios = []
        efficiency = []
        for index, round_results in enumerate(_rounds(results, kind)):
            by = {r.server: r for r in round_results}
            n, m = by["nginx"], by["mediasrv"]
            ratio = m.requests_per_s / n.requests_per_s
            ratios.append(ratio)
            efficiency.append(m.per_cpu_second / n.per_cpu_second)
            rows.append([
                kind, index + 1, f"{m.size:,}", f"{n.requests_per_s:,.0f}", f"{m.requests_per_s:,.0f}",
                f"{ratio:.2f}", f"{n.mbyte_per_s:,.0f}", f"{m.mbyte_per_s:,.0f}",
                f"{n.latency_p50_ms:.2f} / {n.latency_p99_ms:.2f}", f"{m.latency_p50_ms:.2f} / {m.latency_p99_ms:.2f}",
                f"{n.cpu_percent:.0f}", f"{m.cpu_percent:.0f}",
                f"{n.per_cpu_second:,.0f}", f"{m.per_cpu_second:,.0f}",
            ])
        summary.append([kind, len(ratios), f"{statistics.median(ratios):.2f}", f"{min(ratios):.2f}",
                        f"{max(ratios):.2f}", f"{statistics.median(efficiency):.2f}"])
    throughput = markdown_table(
        ["URL", "round", "bytes", "nginx req/s", "mediasrv req/s", "ratio", "nginx MiB/s", "mediasrv MiB/s",
         "nginx p50/p99 ms", "mediasrv p50/p99 ms", "nginx CPU %", "mediasrv CPU %",
         "nginx req/CPU-s", "mediasrv req/CPU-s"],
        rows, align="lrrrrrrrrrrrrr",
    )
    ratio_table = markdown_table(
        ["URL", "rounds", "median req/s ratio (goal ≥ 0.5)", "min", "max", "median req/CPU-s ratio"],
        summary, align="lrrrrr",
    )
    references = ""
    if facts.get("references"):
        playlist = [r for r in results if r.kind == "playlist"]
        rows = []
        for name in ("nginx", "mediasrv"):
            mine = [r for r in playlist if r.server == name]
            rows.append([name + " (median of rounds)", f"{statistics.median(r.requests_per_s for r in mine):,.0f}",
                         f"{statistics.median(r.per_cpu_second for r in mine):,.0f}"])
        for r in facts["references"]:
            rows.append([r.server, f"{r.requests_per_s:,.0f}", f"{r.per_cpu_second:,.0f}"])
        references = ("\n\nThe same playlist bytes from two bare Python servers on uvloop (one run each, after "
                      "the rounds): `aiohttp` = one route returning `web.Response`, `raw` = an asyncio.Protocol "
                      "answering GETs itself:\n\n"
                      + markdown_table(["server", "playlist req/s", "req/CPU-s"], rows, align="lrr"))
    ms = sorted(x * 1000 for x in latencies)
    latency = markdown_table(
        ["segments", "min ms", "median ms", "max ms", "poll interval ms"],
        [[len(ms), f"{ms[0]:.0f}", f"{statistics.median(ms):.0f}", f"{ms[-1]:.0f}", f"{args.poll_ms:g}"]],
    )
    return (f"{throughput}\n\n{ratio_table}{references}\n\n"
            f"Keyframe sent → its segment listed (before the wrk runs; includes up to one poll interval):\n\n{latency}")


def _rounds(results: list[WrkResult], kind: str) -> list[list[WrkResult]]:
    mine = [r for r in results if r.kind == kind]
    return [mine[i:i + 2] for i in range(0, len(mine), 2)]


def record(text: str, facts: dict, args) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    code = code_revision()
    machine = machine_description({"nginx": [NGINX, "-v"], "ffmpeg": [FFMPEG, "-version"], "wrk": [WRK, "-v"]})
    extra = f"; extra settings: {' '.join(args.mediasrv_set)}" if args.mediasrv_set else ""
    body = (
        f"### {when}\n\n"
        f"```\n{command_line()}\n```\n\n"
        f"Machine: {machine}. mediasrv at {code}{extra}.\n"
        f"Input: {facts['input']} published with `ffmpeg -re -stream_loop -1 -c copy`; "
        f"wrk `-t{args.threads} -c{args.connections} -d{args.duration}s` on "
        f"`{facts['paths']['segment']}` (segment) and `{facts['paths']['playlist']}` (media playlist), "
        f"{args.rounds} rounds, alternating which server goes first; same URL and bytes on both.\n\n"
        f"{text}\n"
    )
    append_to_section(RESULTS, SECTION, body)
    note(f"appended to {RESULTS.relative_to(ROOT)}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--rounds", type=int, default=3,
                   help="repeat the four wrk runs, alternating who goes first (default 3)")
    p.add_argument("--latency-seconds", type=float, default=15.0,
                   help=f"length of the list-latency stream, at most {INPUT_SECONDS - 1} (default 15)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="playlist poll interval there (default 5)")
    p.add_argument("--references", action="store_true",
                   help="also run wrk on the playlist against a bare aiohttp app and a bare asyncio "
                        "protocol serving the same bytes (what is aiohttp's share of the cost)")
    p.add_argument("--mediasrv-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for mediasrv (repeatable)")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "mediasrv-bench",
                   help="where the generated input is cached")
    p.add_argument("--keep-workdir", action="store_true", help="keep configs, snapshots and logs")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="py-spy record mediasrv during its wrk runs into DIR (not with --append-results)")
    p.add_argument("--append-results", action="store_true",
                   help=f"append the tables, command and date to {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if args.profile and args.append_results:
        p.error("--profile and --append-results exclude each other (the profiler perturbs the run)")
    if not 4 <= args.latency_seconds <= INPUT_SECONDS - 1:
        p.error(f"--latency-seconds must be within 4..{INPUT_SECONDS - 1}")
    if args.duration < 1 or args.rounds < 1 or args.connections < args.threads:
        p.error("--duration and --rounds must be ≥ 1, --connections ≥ --threads")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool in (WRK, NGINX, FFMPEG):
        if not os.path.exists(tool):
            print(f"http_serve: {tool} is missing (make system-deps)", file=sys.stderr)
            return 1
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-http-"))
    try:
        with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
            results, latencies, facts = run(args, workdir, procs)
    except (BenchmarkError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
        print(f"http_serve benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("http_serve benchmark interrupted; every process stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_workdir:
            note(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = tables(results, latencies, args, facts)
    print(text)
    if args.append_results:
        record(text, facts, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
