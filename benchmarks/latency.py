#!/usr/bin/env python3
"""Latency (issue 5): from a frame's capture to (a) its part (or segment) being
downloadable at the server and (b) the frame being shown by hls.js in Chromium, for
mediasrv with Low-Latency HLS, mediasrv with plain HLS, and nginx-rtmp's HLS.

One scenario at a time, each with a fresh server and the same publisher:

- publisher: a child process (``latency.py --pusher``) encodes a synthetic 25 fps picture
  with PyAV (x264 ``tune=zerolatency``: no B-frames, no lookahead; 1 s GOP; AAC) and
  publishes it over RTMP in real time. Each frame carries its number drawn as 16 large
  black/white blocks (and their complement below, as a check); the publisher notes the
  wall-clock time each frame was made (its capture time) and writes them out at the end.
- (a) in this process: a client that plays the playlist's game, as a player would but
  without a picture: with LL-HLS a blocking reload for the next part, every time
  (``_HLS_msn``/``_HLS_part``); otherwise the playlist polled every 20 ms. Each new part
  or segment is downloaded at once and read (fMP4: the video ``tfdt`` and sample count;
  MPEG-TS: PyAV) to know which frames it holds; a frame's (a) = the time its part/segment
  was first listed − its capture time. (Both clocks are this machine's wall clock.)
- (b) hls.js (the vendored 1.7) in headless Debian Chromium plays the stream with its own
  defaults (``lowLatencyMode`` on for LL, off otherwise): in low-latency mode it aims at
  the playlist's PART-HOLD-BACK. Every frame presented (``requestVideoFrameCallback``) is
  drawn into a canvas, its number read from the blocks; (b) = the expected display time −
  the frame's capture time. ``hls.latency`` (hls.js's own estimate of its distance to the
  live edge) is sampled too. The player is pinned to the source rendition by default
  (``--player-level auto`` lets ABR choose).
- mediasrv runs as ``python -m mediasrv.cli serve`` with its defaults (so the default
  transcoding ladder runs when the transcoder works: rungs taller than the source are
  left out) plus ``--set`` options; nginx-rtmp with ``hls on; hls_fragment 1s;
  hls_playlist_length 6s`` (MPEG-TS; it cuts at keyframes, so 1 s fragments here) served
  by nginx's own HTTP server.

Frames captured during the first ``--warmup`` seconds are not counted. Percentiles are
over frames (so one part's first frame, which waits a whole part, counts as much as its
last). Goals of issue 5 for LL-HLS: (a) p99 ≤ PART-TARGET + 100 ms, (b) p50 ≤ 1.5 s.

    .venv/bin/python benchmarks/latency.py [--append-results]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import re
import shutil
import statistics
import struct
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
    NGINX,
    RESULTS,
    ROOT,
    append_to_section,
    code_revision,
    command_line,
    cpu_seconds,
    find_rtmp_module,
    free_port,
    load_average,
    machine_description,
    markdown_table,
    nginx_argv,
    ProcessGroup,
    sigterm_as_keyboard_interrupt,
    wait_for_tcp,
)

SECTION = "## Latency (issue 5)"
HLS_JS = ROOT / "mediasrv" / "web" / "vendor" / "hls.js" / "hls.min.js"
CHROMIUM = "/usr/bin/chromium"
STREAM = "lat"
FPS = 25
BITS = 16


def note(msg: str) -> None:
    print(f"[latency] {msg}", file=sys.stderr, flush=True)


class BenchmarkError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------
# The publisher (child process)


def run_pusher(url: str, seconds: float, width: int, height: int, out: Path) -> None:
    """Encode and publish ``seconds`` of numbered frames in real time; write capture times.

    ``url`` is ``rtmp://…/live/NAME`` (FLV: H.264 + AAC) or ``http://…/whip#NAME`` (FFmpeg
    8's ``whip`` muxer: H.264 + Opus, NAME as the bearer token, an ECDSA P-256 DTLS pair:
    its GnuTLS default P-224 key is refused by OpenSSL peers, ../shared/WHIP-INTEROP.md)."""
    import fractions

    import av
    import numpy as np

    frames = int(seconds * FPS)
    whip = url.startswith("http")
    if whip:
        url, token = url.split("#", 1)
        cert, key = out.with_suffix(".cert.pem"), out.with_suffix(".key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=latency"],
                       check=True, capture_output=True)
        container = av.open(url, "w", format="whip", options={
            "authorization": token, "cert_file": str(cert), "key_file": str(key), "whip_flags": "dtls_active"})
    else:
        container = av.open(url, "w", format="flv")
    video = container.add_stream("libx264", rate=FPS, options={
        "preset": "veryfast", "tune": "zerolatency",
        "x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0:bframes=0",
        # WHIP: the offer's profile-level-id comes from the profile, and WebRTC peers
        # (aiortc, browsers) take constrained baseline; RTMP keeps x264's default.
        **({"profile": "baseline"} if whip else {}),
    })
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.bit_rate = int(2_500_000 * width * height / (1280 * 720))
    video.codec_context.time_base = fractions.Fraction(1, FPS)
    audio = container.add_stream("libopus" if whip else "aac", rate=48000)
    audio.layout = "stereo"
    audio.bit_rate = 128000
    audio_frame = 960 if whip else 1024  # Opus: 20 ms frames; AAC: 1024 samples
    x = np.arange(width, dtype=np.int32)
    y = np.arange(height, dtype=np.int32)[:, None]
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    block_w = width // BITS
    rows = [(int(height * 0.02), int(height * 0.10)), (int(height * 0.12), int(height * 0.20))]
    captures: list[float] = []
    samples = 0
    start = time.time() + 0.2
    for i in range(frames):
        delay = start + i / FPS - time.time()
        if delay > 0:
            time.sleep(delay)  # a camera delivers frame i at start + i/fps
        captures.append(time.time())
        luma = ((x[None, :] + y + i * 6) % 200 + 28).astype(np.uint8)
        for b in range(BITS):
            bit = (i >> (BITS - 1 - b)) & 1
            for row, value in zip(rows, (bit, 1 - bit)):
                luma[row[0]:row[1], b * block_w + 4:(b + 1) * block_w - 4] = 235 if value else 16
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = i
        frame.time_base = fractions.Fraction(1, FPS)
        for packet in video.encode(frame):
            container.mux(packet)
        while samples < (i + 1) * 48000 / FPS:
            t = (np.arange(audio_frame) + samples) / 48000
            tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            aframe = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            aframe.sample_rate = 48000
            aframe.pts = samples
            aframe.time_base = fractions.Fraction(1, 48000)
            samples += audio_frame
            for packet in audio.encode(aframe):
                container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    out.write_text(json.dumps({"captures": captures}))


# ---------------------------------------------------------------------------------------
# Reading which frames a file holds


def fmp4_video_frames(data: bytes) -> list[int]:
    """Decode times (ms) of the video samples of every moof in an fMP4 part/segment
    (track 1 is video in mediasrv's files; sample durations from the trun)."""
    out: list[int] = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"moof":
            inner = pos + 8
            while inner < pos + size:
                isize, ikind = struct.unpack_from(">I4s", data, inner)
                if ikind == b"traf":
                    track, base, durations = _traf(data, inner + 8, inner + isize)
                    if track == 1:
                        t = base
                        for d in durations:
                            out.append(round(t / 90))
                            t += d
                inner += isize
        pos += max(size, 8)
    return out


def _traf(data: bytes, start: int, end: int) -> tuple[int, int, list[int]]:
    track, base, durations = 0, 0, []
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"tfhd":
            track = struct.unpack_from(">I", data, pos + 12)[0]
        elif kind == b"tfdt":
            version = data[pos + 8]
            base = struct.unpack_from(">Q" if version == 1 else ">I", data, pos + 12)[0]
        elif kind == b"trun":
            flags = struct.unpack_from(">I", data, pos + 8)[0] & 0xFFFFFF
            count = struct.unpack_from(">I", data, pos + 12)[0]
            p = pos + 16 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
            per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
            for _ in range(count):
                durations.append(struct.unpack_from(">I", data, p)[0] if flags & 0x100 else 0)
                p += per
        pos += size
    return track, base, durations


def ts_video_frames(data: bytes) -> list[int]:
    import av

    out = []
    with av.open(io.BytesIO(data), format="mpegts") as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                out.append(round(float(packet.pts * packet.time_base) * 1000))
    return sorted(out)


# ---------------------------------------------------------------------------------------
# Playlists (just what the clients need)


@dataclass
class Listing:
    segments: list[str]
    parts: list[str]  # every EXT-X-PART URI, in order
    partial: int  # parts after the last complete segment
    next_msn: int
    ended: bool
    part_target: float | None


def parse_playlist(text: str) -> Listing:
    segments, parts = [], []
    partial = 0
    sequence = 0
    ended = False
    part_target = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            sequence += int(re.search(r"SKIPPED-SEGMENTS=(\d+)", line).group(1))
        elif line.startswith("#EXT-X-PART-INF:"):
            part_target = float(re.search(r"PART-TARGET=([\d.]+)", line).group(1))
        elif line.startswith("#EXT-X-PART:"):
            parts.append(re.search(r'URI="([^"]+)"', line).group(1))
            partial += 1
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line and not line.startswith("#"):
            segments.append(line)
            partial = 0
    return Listing(segments, parts, partial, sequence + len(segments), ended, part_target)


# ---------------------------------------------------------------------------------------
# (a): when each frame became downloadable at the server


@dataclass
class Availability:
    #: frame number -> wall-clock time its part/segment was first listed.
    frames: dict[int, float] = field(default_factory=dict)
    files: int = 0
    requests: int = 0
    part_target: float | None = None
    zero_ms: float | None = None  # decode time of frame 0

    def add(self, times_ms: list[int], listed_at: float) -> None:
        if not times_ms:
            return
        if self.zero_ms is None:
            self.zero_ms = min(times_ms)
        for t in times_ms:
            index = round((t - self.zero_ms) * FPS / 1000)
            self.frames.setdefault(index, listed_at)


async def follow(session, playlist_url: str, kind: str, stop: asyncio.Event, into: Availability) -> None:
    """``kind``: ``ll`` (blocking reloads), ``fmp4`` or ``ts`` (polling every 20 ms)."""
    import aiohttp

    base = playlist_url.rsplit("/", 1)[0] + "/"
    seen: set[str] = set()
    url = playlist_url
    while not stop.is_set():
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
                body = await response.text()
                listed_at = time.time()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)
            continue
        into.requests += 1
        if status != 200:
            url = playlist_url
            await asyncio.sleep(0.05)
            continue
        listing = parse_playlist(body)
        into.part_target = into.part_target or listing.part_target
        names = listing.parts if kind == "ll" else listing.segments
        if into.zero_ms is None and kind == "ll" and listing.segments and listing.next_msn == len(listing.segments):
            names = [listing.segments[0]] + names  # the first segment: frame 0 of the stream
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            async with session.get(base + name) as response:
                data = await response.read()
            into.files += 1
            into.add(ts_video_frames(data) if kind == "ts" else fmp4_video_frames(data), listed_at)
        if listing.ended:
            return
        if kind == "ll" and listing.part_target:
            msn, part = (listing.next_msn, listing.partial) if listing.partial else (listing.next_msn, 0)
            url = f"{playlist_url}?_HLS_msn={msn}&_HLS_part={part}"
        else:
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------
# (b): when hls.js showed each frame

PAGE = """<!doctype html><html><body>
<video id="v" muted playsinline style="width:640px"></video>
<canvas id="c" width="320" height="180" style="display:none"></canvas>
<script>%(hls)s</script>
<script>
window.shown = []; window.latencies = []; window.errors = []; window.levels = [];
window.requests = 0;
const video = document.getElementById('v');
const ctx = document.getElementById('c').getContext('2d', {willReadFrequently: true});
const hls = new Hls(%(config)s);
const urlOf = (l) => (typeof l.url === 'string' ? l.url : (l.url && l.url[0])) || l.uri || '';
window.hls = hls;
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.errors.push(d.type + ':' + d.details); });
hls.on(Hls.Events.FRAG_LOADING, () => { window.requests++; });
hls.on(Hls.Events.LEVEL_LOADING, () => { window.requests++; });
hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => window.levels.push(urlOf(hls.levels[d.level]) || String(d.level)));
hls.on(Hls.Events.MANIFEST_PARSED, () => {
  const pin = %(pin)s;
  if (pin) {
    const index = hls.levels.findIndex(l => urlOf(l).includes(pin));
    if (index >= 0) { hls.startLevel = index; hls.currentLevel = index; }
  }
  video.play().catch(e => window.errors.push('play:' + e));
});
function read() {
  ctx.drawImage(video, 0, 0, 320, 180);
  const d = ctx.getImageData(0, 0, 320, 180).data;
  let value = 0;
  for (let b = 0; b < %(bits)d; b++) {
    const x = Math.floor((b + 0.5) * 320 / %(bits)d);
    const lum = (y) => { const i = (Math.floor(y) * 320 + x) * 4; return (d[i] + d[i + 1] + d[i + 2]) / 3; };
    const one = lum(180 * 0.06) > 128, check = lum(180 * 0.16) > 128;
    if (one === check) return -1;
    value = value * 2 + (one ? 1 : 0);
  }
  return value;
}
function onFrame(now, meta) {
  const index = read();
  const at = performance.timeOrigin + (meta.expectedDisplayTime || now);
  if (index >= 0) window.shown.push([index, at]);
  video.requestVideoFrameCallback(onFrame);
}
video.requestVideoFrameCallback(onFrame);
setInterval(() => { if (hls.latency) window.latencies.push(hls.latency); }, 500);
hls.loadSource(%(url)s);
hls.attachMedia(video);
</script></body></html>"""


@dataclass
class Shown:
    frames: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    requests_per_second: float = 0.0


async def watch(browser, url: str, *, low_latency: bool, pin: str | None, seconds: float,
                catch_up: float | None = None) -> Shown:
    options: dict = {"lowLatencyMode": low_latency}
    if catch_up and low_latency:
        options["maxLiveSyncPlaybackRate"] = catch_up
    config = json.dumps(options)
    html = PAGE % {"hls": HLS_JS.read_text(), "config": config, "url": json.dumps(url), "bits": BITS,
                   "pin": json.dumps(pin or "")}
    page = await browser.new_page()
    try:
        await page.set_content(html)
        started = time.monotonic()
        requests_at_start = None
        while time.monotonic() - started < seconds:
            await asyncio.sleep(1.0)
            if requests_at_start is None and time.monotonic() - started > seconds / 3:
                requests_at_start = (time.monotonic(), await page.evaluate("window.requests"))
        result = await page.evaluate("({shown: window.shown, latencies: window.latencies, errors: window.errors,"
                                     " levels: window.levels, requests: window.requests})")
        out = Shown(latencies=result["latencies"], errors=result["errors"], levels=result["levels"])
        for index, at_ms in result["shown"]:
            out.frames.setdefault(int(index), at_ms / 1000)
        if requests_at_start is not None:
            out.requests_per_second = (result["requests"] - requests_at_start[1]) / (time.monotonic() - requests_at_start[0])
        return out
    finally:
        await page.close()


# ---------------------------------------------------------------------------------------
# Servers


class Mediasrv:
    def __init__(self, procs: ProcessGroup, workdir: Path, sets: list[str]) -> None:
        self.procs, self.workdir, self.sets = procs, workdir, sets
        self.rtmp_port, self.http_port = free_port(HOST), free_port(HOST)
        self.proc = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "mediasrv.cli", "serve",
                "--set", f"rtmp.listen={HOST}:{self.rtmp_port}", "--set", f"http.listen={HOST}:{self.http_port}",
                "--set", f"data_dir={self.workdir / 'data'}", "--set", "log.level=warning"]
        for kv in self.sets:
            argv += ["--set", kv]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = self.procs.start("mediasrv", argv, log_path=self.workdir / "mediasrv.log", cwd=ROOT)
        wait_for_tcp(HOST, self.http_port, 60.0, self.proc)
        wait_for_tcp(HOST, self.rtmp_port, 10.0, self.proc)

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://{HOST}:{self.rtmp_port}/live/{STREAM}"

    @property
    def whip_url(self) -> str:
        """The WHIP endpoint, and after ``#`` the bearer token (in ``auth.mode: open``, the name)."""
        return f"http://{HOST}:{self.http_port}/whip#{STREAM}"

    @property
    def master_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/live/{STREAM}/index.m3u8"

    @property
    def media_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/live/{STREAM}/source/index.m3u8"


class NginxRtmp:
    def __init__(self, procs: ProcessGroup, workdir: Path) -> None:
        self.procs, self.workdir = procs, workdir
        self.rtmp_port, self.http_port = free_port(HOST), free_port(HOST)

    def start(self) -> None:
        prefix = self.workdir
        hls = prefix / "hls"
        hls.mkdir(parents=True, exist_ok=True)
        temp = "\n".join(f"    {k}_temp_path {prefix}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = prefix / "nginx.conf"
        conf.write_text(f"""load_module {find_rtmp_module()};
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen {HOST}:{self.rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            hls on;
            hls_path {hls};
            hls_fragment 1s;
            hls_playlist_length 6s;
        }}
    }}
}}
http {{
    access_log off;
{temp}
    server {{
        listen {HOST}:{self.http_port};
        location /hls/ {{
            alias {hls}/;
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            add_header Cache-Control no-cache;
            add_header Access-Control-Allow-Origin *;
        }}
    }}
}}
""")
        proc = self.procs.start("nginx-rtmp", nginx_argv(conf, prefix), log_path=prefix / "stdout.log")
        wait_for_tcp(HOST, self.http_port, 10.0, proc)
        wait_for_tcp(HOST, self.rtmp_port, 10.0, proc)

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://{HOST}:{self.rtmp_port}/live/{STREAM}"

    @property
    def master_url(self) -> str:
        return self.media_url

    @property
    def media_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/hls/{STREAM}.m3u8"


async def sample_warnings(session, server, stop: asyncio.Event, into: set[str], renditions: set[str]) -> None:
    """While live: mediasrv's health warnings for the stream (e.g. a transcoder rung behind
    real time) and the renditions it serves."""
    base = f"http://{HOST}:{server.http_port}/api/streams/{STREAM}"
    while not stop.is_set():
        try:
            async with session.get(base + "/stats") as response:
                if response.status == 200:
                    for warning in (await response.json()).get("warnings", []):
                        into.add(re.sub(r"\d+\.\d+x", "<1x", str(warning)))
            async with session.get(base) as response:
                if response.status == 200:
                    renditions.update(r["name"] for r in (await response.json()).get("renditions", []))
        except Exception:  # noqa: BLE001 - best effort
            pass
        await asyncio.sleep(2.0)


# ---------------------------------------------------------------------------------------
# One scenario


@dataclass
class Scenario:
    name: str
    server: str  # mediasrv | nginx-rtmp
    sets: list[str] = field(default_factory=list)
    low_latency: bool = True
    publisher: str = "rtmp"  # rtmp | whip (mediasrv only)


@dataclass
class Outcome:
    scenario: Scenario
    available: Availability
    shown: Shown | None
    captures: list[float]
    warmup: float
    notes: list[str] = field(default_factory=list)

    def latencies(self, table: dict[int, float]) -> list[float]:
        start = self.captures[0] + self.warmup
        return [table[i] - self.captures[i] for i in table
                if 0 <= i < len(self.captures) and self.captures[i] >= start]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    low = int(k)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


async def run_scenario(scenario: Scenario, args, workdir: Path, procs: ProcessGroup, browser) -> Outcome:
    import aiohttp

    note(f"scenario {scenario.name}: starting {scenario.server}")
    if scenario.server == "mediasrv":
        server = Mediasrv(procs, workdir / scenario.name, args.mediasrv_set + scenario.sets)
    else:
        server = NginxRtmp(procs, workdir / scenario.name)
    await asyncio.to_thread(server.start)
    captures_path = workdir / f"{scenario.name}-captures.json"
    seconds = args.warmup + args.seconds + 2
    width, height = (int(v) for v in args.size.split("x"))
    url = server.whip_url if scenario.publisher == "whip" else server.rtmp_url
    pusher = procs.start("pusher", [sys.executable, str(Path(__file__).resolve()), "--pusher", url,
                                    str(seconds), str(width), str(height), str(captures_path)],
                         log_path=workdir / f"{scenario.name}-pusher.log", cwd=ROOT)
    stop = asyncio.Event()
    available = Availability()
    kind = "ts" if scenario.server == "nginx-rtmp" else ("ll" if scenario.low_latency else "fmp4")
    notes: list[str] = []
    async with aiohttp.ClientSession() as session:
        follower = asyncio.ensure_future(follow(session, server.media_url, kind, stop, available))
        warnings: set[str] = set()
        renditions: set[str] = set()
        sampler = asyncio.ensure_future(sample_warnings(session, server, stop, warnings, renditions)) \
            if scenario.server == "mediasrv" else None
        server_proc = next(m for m in procs.procs if m.name in ("mediasrv", "nginx-rtmp"))
        cpu_start = (time.monotonic(), cpu_seconds(server_proc.pid))
        shown = None
        try:
            # The player joins once the stream plays (like a viewer opening the page).
            deadline = time.monotonic() + 30
            while not available.frames:
                if time.monotonic() > deadline or not pusher.alive():
                    raise BenchmarkError(f"{scenario.name}: no media listed\n{pusher.log_tail()}")
                await asyncio.sleep(0.2)
            if browser is not None:
                remaining = seconds - 3
                pin = None if args.player_level == "auto" or scenario.server != "mediasrv" else "/source/"
                shown = await watch(browser, server.master_url, low_latency=scenario.low_latency, pin=pin,
                                    seconds=remaining, catch_up=args.catch_up)
            while pusher.alive():
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - cpu_start[0]
            cpu = cpu_seconds(server_proc.pid) - cpu_start[1]
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
            notes.append(f"server CPU {100 * cpu / elapsed:.0f} % of a core (its process tree), load average {load}")
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            follower.cancel()
            if sampler is not None:
                sampler.cancel()
            await asyncio.gather(follower, *([sampler] if sampler else []), return_exceptions=True)
    if renditions:
        notes.append("renditions served: " + ", ".join(sorted(renditions)))
    if warnings:
        notes.append("health warnings seen: " + "; ".join(sorted(warnings)))
    procs.stop(pusher)
    for managed in list(procs.procs):
        if managed.name in ("mediasrv", "nginx-rtmp"):
            procs.stop(managed)
    if not captures_path.exists():
        raise BenchmarkError(f"{scenario.name}: the publisher wrote no capture times\n{pusher.log_tail()}")
    captures = json.loads(captures_path.read_text())["captures"]
    late = max(c - (captures[0] + i / FPS) for i, c in enumerate(captures))
    if late > 0.1:
        notes.append(f"the publisher fell behind real time by up to {late * 1000:.0f} ms (CPU)")
    return Outcome(scenario, available, shown, captures, args.warmup, notes)


# ---------------------------------------------------------------------------------------
# Report


def report(outcomes: list[Outcome], args) -> str:
    rows = []
    for o in outcomes:
        a = o.latencies(o.available.frames)
        b = o.latencies(o.shown.frames) if o.shown is not None else []
        target = o.available.part_target
        hls_latency = statistics.median(o.shown.latencies[len(o.shown.latencies) // 3:]) if o.shown and o.shown.latencies else None
        rows.append([
            o.scenario.name,
            f"{target:.3f}" if target else "—",
            f"{percentile(a, 0.5) * 1000:.0f}", f"{percentile(a, 0.99) * 1000:.0f}", len(a),
            f"{percentile(b, 0.5) * 1000:.0f}" if b else "—", f"{percentile(b, 0.99) * 1000:.0f}" if b else "—", len(b),
            f"{hls_latency:.2f}" if hls_latency else "—",
            f"{o.shown.requests_per_second:.1f}" if o.shown else "—",
        ])
    table = markdown_table(
        ["scenario", "PART-TARGET s", "(a) p50 ms", "(a) p99 ms", "(a) frames", "(b) p50 ms", "(b) p99 ms",
         "(b) frames", "hls.latency s", "player req/s"], rows)
    lines = [table, ""]
    for o in outcomes:
        if o.scenario.server == "mediasrv" and o.scenario.low_latency and o.available.part_target:
            a = o.latencies(o.available.frames)
            b = o.latencies(o.shown.frames) if o.shown is not None else []
            goal_a = o.available.part_target + 0.1
            verdict_a = "met" if percentile(a, 0.99) <= goal_a else "NOT met"
            line = (f"- {o.scenario.name}: goal (a) p99 ≤ {goal_a * 1000:.0f} ms: {verdict_a} "
                    f"({percentile(a, 0.99) * 1000:.0f} ms)")
            if b:
                verdict_b = "met" if percentile(b, 0.5) <= 1.5 else "NOT met"
                line += f"; goal (b) p50 ≤ 1500 ms: {verdict_b} ({percentile(b, 0.5) * 1000:.0f} ms)"
            lines.append(line)
        for text in o.notes:
            lines.append(f"- {o.scenario.name}: {text}")
        if o.shown is not None:
            if o.shown.errors:
                lines.append(f"- {o.scenario.name}: hls.js fatal errors: {', '.join(o.shown.errors)}")
            played = sorted({level.split('/')[-2] if '/' in level else level for level in o.shown.levels})
            if played:
                lines.append(f"- {o.scenario.name}: hls.js played {', '.join(played)}")
    return "\n".join(lines) + "\n"


def record(text: str, args) -> None:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    code = code_revision()
    machine = machine_description({"nginx": [NGINX, "-v"], "ffmpeg": [FFMPEG, "-version"], "chromium": [CHROMIUM, "--version"]})
    load = load_average()
    body = (
        f"### {when}\n\n```\n{command_line()}\n```\n\n"
        f"Machine: {machine}; load average at the end {load}. mediasrv at {code}.\n"
        f"Publisher: PyAV x264 veryfast zerolatency {args.size} {FPS} fps, 1 s GOP, no B-frames, AAC; "
        f"{args.seconds:g} s measured after {args.warmup:g} s. (a) = capture → part/segment listed "
        f"(LL: blocking reload; plain/nginx: playlist polled every 20 ms); (b) = capture → frame presented by "
        f"hls.js 1.7 in headless Chromium (its defaults, lowLatencyMode on for LL"
        f"{f', maxLiveSyncPlaybackRate {args.catch_up:g}' if args.catch_up else ''}).\n\n{text}"
    )
    append_to_section(RESULTS, SECTION, body)
    note(f"appended to {RESULTS.relative_to(ROOT)}")


def scenarios(args) -> list[Scenario]:
    out = []
    for duration in args.part_durations:
        suffix = "" if len(args.part_durations) == 1 else f"-{duration:g}"
        out.append(Scenario(f"mediasrv-ll{suffix}", "mediasrv", [f"hls.part_duration={duration}"] if duration else []))
    if args.read_batch_comparison:
        sets = [f"hls.part_duration={args.part_durations[0]}"] if args.part_durations[0] else []
        out.append(Scenario("mediasrv-ll-batch0", "mediasrv", sets + ["rtmp.read_batch_ms=0"]))
    if "whip" in args.servers:
        # The same picture over WHIP (decoded and re-encoded by the server); FFmpeg's whip
        # muxer answers no consent checks, so keep warm-up + measured seconds under ~28.
        sets = [f"hls.part_duration={args.part_durations[0]}"] if args.part_durations[0] else []
        out.append(Scenario("mediasrv-whip-ll", "mediasrv", sets, publisher="whip"))
    if "plain" in args.servers:
        out.append(Scenario("mediasrv-plain", "mediasrv", ["hls.low_latency=false"], low_latency=False))
    if "nginx" in args.servers:
        out.append(Scenario("nginx-rtmp", "nginx-rtmp", low_latency=False))
    if "ll" not in args.servers:
        out = [s for s in out if not s.name.startswith("mediasrv-ll")]
    return out


def no_realtime_scheduling_for_children() -> None:
    """Run as root, Chromium puts its audio threads on SCHED_FIFO, which can starve a small
    machine (and every figure here): drop RLIMIT_RTPRIO and CAP_SYS_NICE for what this
    process starts (as tests/support/browser.py does for the tests)."""
    import ctypes
    import ctypes.util
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    except (ValueError, OSError):
        pass
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(24, 23, 0, 0, 0)  # PR_CAPBSET_DROP, CAP_SYS_NICE; fails harmlessly when not root


async def amain(args, workdir: Path, procs: ProcessGroup) -> list[Outcome]:
    outcomes = []
    browser = None
    playwright = None
    try:
        if not args.no_browser:
            from playwright.async_api import async_playwright

            no_realtime_scheduling_for_children()
            playwright = await async_playwright().start()
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--disable-background-networking"])
        for scenario in scenarios(args):
            outcomes.append(await run_scenario(scenario, args, workdir, procs, browser))
    finally:
        if browser is not None:
            await browser.close()
        if playwright is not None:
            await playwright.stop()
    return outcomes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds per scenario (default 30)")
    p.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring (default 8)")
    p.add_argument("--size", default="1280x720", help="publisher picture size (default 1280x720)")
    p.add_argument("--part-durations", default="", help="comma-separated hls.part_duration values for LL "
                   "(default: mediasrv's configured default)")
    p.add_argument("--servers", default="ll,plain,nginx", help="which of ll,whip,plain,nginx (default ll,plain,nginx; whip: the LL scenario published over WHIP)")
    p.add_argument("--read-batch-comparison", action="store_true",
                   help="also run LL with --set rtmp.read_batch_ms=0")
    p.add_argument("--player-level", choices=["source", "auto"], default="source",
                   help="pin hls.js to mediasrv's source rendition (default) or let ABR choose")
    p.add_argument("--mediasrv-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for mediasrv in every scenario (e.g. transcode.enabled=false)")
    p.add_argument("--catch-up", type=float, metavar="RATE",
                   help="hls.js maxLiveSyncPlaybackRate for LL (default: hls.js's 1, no catching up "
                        "after a stall); e.g. 1.5")
    p.add_argument("--no-browser", action="store_true", help="measure (a) only")
    p.add_argument("--keep-workdir", action="store_true")
    p.add_argument("--append-results", action="store_true", help=f"append to {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    args.part_durations = [float(v) for v in args.part_durations.split(",") if v.strip()] or [0.0]
    args.servers = {s.strip() for s in args.servers.split(",") if s.strip()}
    return args


def main(argv=None) -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--pusher":
        url, seconds, width, height, out = sys.argv[2:7]
        run_pusher(url, float(seconds), int(width), int(height), Path(out))
        return 0
    args = parse_args(argv)
    if "nginx" in args.servers:
        try:
            find_rtmp_module()
        except FileNotFoundError as exc:
            print(f"latency: {exc}", file=sys.stderr)
            return 1
    workdir = Path(tempfile.mkdtemp(prefix="mediasrv-bench-latency-"))
    try:
        with sigterm_as_keyboard_interrupt(), ProcessGroup() as procs:
            outcomes = asyncio.run(amain(args, workdir, procs))
    except (BenchmarkError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
        print(f"latency benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("latency benchmark interrupted; every process stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_workdir:
            note(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(outcomes, args)
    print(text)
    if args.append_results:
        record(text, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
