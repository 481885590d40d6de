"""Fixtures and helpers of the HLS tests: real encoded streams turned into MediaUnits (as
ingest makes them), synthetic units, an RFC 8216 playlist checker, a hub + HLS app.

External tools: ``tests.support.tools.require_tool`` (skips locally with the reason, fails
when ``CI=true``), re-exported here.
"""

from __future__ import annotations

import fractions
import functools
import math
import re
import io
from dataclasses import dataclass, field

import av
import numpy as np
import pytest

from mediasrv.media.ingest import track_from_config
from mediasrv.media.types import Codec, MediaUnit, TrackInfo, TrackKind
from tests.support.tools import require_tool  # noqa: F401  (re-exported for the HLS tests)


@dataclass(frozen=True)
class Encoded:
    units: tuple[MediaUnit, ...]
    video: TrackInfo | None
    audio: TrackInfo | None

    @property
    def video_units(self) -> list[MediaUnit]:
        return [u for u in self.units if u.kind is TrackKind.VIDEO]

    @property
    def audio_units(self) -> list[MediaUnit]:
        return [u for u in self.units if u.kind is TrackKind.AUDIO]


def _image(index: int, width: int, height: int) -> np.ndarray:
    x = (np.arange(width, dtype=np.uint16) + index * 4) % 256
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = x[None, :]
    image[:, :, 1] = (np.arange(height, dtype=np.uint16)[:, None] + index * 2) % 256
    image[:, :, 2] = (index * 7) % 256
    return image


@functools.lru_cache(maxsize=None)
def encode(
    codec: str = "libx264",
    seconds: float = 4.0,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    gop: int = 25,
    audio: bool = True,
    video: bool = True,
    sample_rate: int = 48000,
) -> Encoded:
    """Encode a synthetic stream (B-frames, fixed GOP, AAC) into MP4 in memory with PyAV,
    demux it, and return its packets as MediaUnits (ms timestamps, DTS starting at 0,
    interleaved by DTS as an RTMP publisher sends them)."""
    buffer = io.BytesIO()
    out = av.open(buffer, "w", format="mp4")
    vs = as_ = None
    if video:
        if codec == "libx264":
            options = {"preset": "ultrafast", "tune": "zerolatency",
                       "x264-params": f"bframes=2:b-adapt=0:keyint={gop}:min-keyint={gop}:scenecut=0:rc-lookahead=0"}
            options.pop("tune")
        elif codec == "libx265":
            options = {"preset": "ultrafast",
                       "x265-params": f"bframes=2:keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error"}
        else:
            raise ValueError(codec)
        vs = out.add_stream(codec, rate=fps, options=options)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.time_base = fractions.Fraction(1, fps)
    if audio:
        as_ = out.add_stream("aac", rate=sample_rate)
        as_.layout = "stereo"
        as_.bit_rate = 96000
    frames = int(round(seconds * fps))
    packets = []  # encode everything first: the muxer starts once every codec is open
    for index in range(frames if video else 0):
        frame = av.VideoFrame.from_ndarray(_image(index, width, height), format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        frame.time_base = vs.time_base
        packets += vs.encode(frame)
    if vs is not None:
        packets += vs.encode(None)
    samples = 0
    total_samples = int(seconds * sample_rate)
    while as_ is not None and samples < total_samples:
        t = (np.arange(1024) + samples) / sample_rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        frame.pts = samples
        frame.time_base = fractions.Fraction(1, sample_rate)
        samples += 1024
        packets += as_.encode(frame)
    if as_ is not None:
        packets += as_.encode(None)
    for packet in packets:
        out.mux(packet)
    out.close()

    buffer.seek(0)
    units: list[MediaUnit] = []
    video_track = audio_track = None
    with av.open(buffer, "r") as demux:
        tracks = {}
        for stream in demux.streams:
            if stream.type == "video":
                c = Codec.H264 if stream.codec_context.name == "h264" else Codec.HEVC
                video_track = tracks[stream.index] = track_from_config(c, bytes(stream.codec_context.extradata))
            elif stream.type == "audio":
                audio_track = tracks[stream.index] = track_from_config(Codec.AAC, bytes(stream.codec_context.extradata))
        for packet in demux.demux():
            if packet.size == 0 or packet.dts is None:
                continue
            tb = packet.time_base
            dts = round(packet.dts * tb * 1000)
            pts = round(packet.pts * tb * 1000)
            units.append(MediaUnit(tracks[packet.stream.index], dts, pts, bool(packet.is_keyframe), bytes(packet)))
    shift = -min(u.dts for u in units)
    units = [MediaUnit(u.track, u.dts + shift, u.pts + shift, u.keyframe, u.data) for u in units]
    # Interleave by DTS (video first on ties), like an RTMP publisher.
    units.sort(key=lambda u: (u.dts, u.kind is not TrackKind.VIDEO))
    return Encoded(tuple(units), video_track, audio_track)


@pytest.fixture(scope="session")
def h264_aac() -> Encoded:
    return encode()


def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:
        return False


# --- synthetic units (no encoder: for the pure segmenter tests) ------------------------------

#: A real avcC (x264, Main, 320x240) and AudioSpecificConfig (AAC-LC 48 kHz stereo).
AVCC = bytes.fromhex("014d400dffe10017674d400deca0a0fd080000030008000003019078a14cb001000468ce0fc8")
ASC = bytes.fromhex("119056e500")
VIDEO = TrackInfo(Codec.H264, AVCC, "avc1.4d400d", width=320, height=240)
AUDIO = TrackInfo(Codec.AAC, ASC, "mp4a.40.2", sample_rate=48000, channels=2)


def synthetic(
    seconds: float,
    *,
    fps: float = 25,
    gop: int = 25,
    audio: bool = True,
    video: bool = True,
    start_ms: float = 0,
    video_track: TrackInfo = VIDEO,
    audio_track: TrackInfo = AUDIO,
    first_discontinuity: bool = False,
) -> list[MediaUnit]:
    """Video at ``fps`` (keyframe every ``gop`` frames, pts = dts + 2 frames) and AAC at 48 kHz,
    interleaved by DTS; ms timestamps rounded as ingest rounds them. Data: one fake NAL."""
    units = []
    if video:
        frames = int(round(seconds * fps))
        for i in range(frames):
            dts = round(start_ms + i * 1000 / fps)
            key = i % gop == 0
            nal = bytes([0x65 if key else 0x41]) + bytes(50 + (1000 if key else 0))
            units.append(MediaUnit(video_track, dts, dts + round(2000 / fps), key, len(nal).to_bytes(4, "big") + nal))
    if audio:
        frames = int(seconds * 48000 / 1024)
        for k in range(frames):
            dts = round(start_ms + k * 1024 / 48)
            units.append(MediaUnit(audio_track, dts, dts, True, bytes([0x21]) + bytes(100)))
    units.sort(key=lambda u: (u.dts, u.kind is not TrackKind.VIDEO))
    if first_discontinuity and units:
        first = units[0]
        units[0] = MediaUnit(first.track, first.dts, first.pts, first.keyframe, first.data, discontinuity=True)
    return units


# --- a playlist parser and the RFC 8216 rules, shared by the tests ----------------------------------

@dataclass
class ParsedPart:
    uri: str
    duration: float
    independent: bool


@dataclass
class ParsedSegment:
    uri: str
    duration: float
    discontinuity: bool
    map_uri: str | None
    program_date_time: str | None
    #: EXT-X-PART lines before its EXTINF (Low-Latency HLS).
    parts: list[ParsedPart] = field(default_factory=list)


@dataclass
class ParsedPlaylist:
    version: int | None
    target_duration: int | None
    media_sequence: int
    discontinuity_sequence: int
    independent: bool
    ended: bool
    segments: list[ParsedSegment]
    lines: list[str]
    # Low-Latency HLS (rfc8216bis): attribute lists as dicts of strings.
    part_target: float | None = None
    server_control: dict | None = None
    skipped_segments: int | None = None
    #: Parts after the last EXTINF (the segment being built), with the tags before them.
    partial_parts: list[ParsedPart] = field(default_factory=list)
    partial_discontinuity: bool = False
    partial_map_uri: str | None = None
    partial_program_date_time: str | None = None
    preload_hints: list[dict] = field(default_factory=list)
    rendition_reports: list[dict] = field(default_factory=list)

    @property
    def next_msn(self) -> int:
        """Media sequence number of the segment after the last complete one."""
        return self.media_sequence + (self.skipped_segments or 0) + len(self.segments)


_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)(?:,|$)')


def parse_attributes(text: str) -> dict[str, str]:
    """An attribute list (§4.2) as a dict; quoted-string values lose their quotes."""
    out: dict[str, str] = {}
    position = 0
    while position < len(text):
        m = _ATTRIBUTE.match(text, position)
        assert m, f"malformed attribute list {text!r} at {position}"
        key, value = m.group(1), m.group(2)
        assert key not in out, f"attribute {key} twice in {text!r}"
        out[key] = value[1:-1] if value.startswith('"') else value
        position = m.end()
    return out


def parse_media_playlist(text: str) -> ParsedPlaylist:
    lines = text.splitlines()
    assert lines and lines[0] == "#EXTM3U", "a playlist starts with #EXTM3U"
    pl = ParsedPlaylist(None, None, 0, 0, False, False, [], lines)
    pending_duration = None
    discontinuity = False
    current_map = None
    pdt = None
    parts: list[ParsedPart] = []
    for line in lines[1:]:
        assert line == line.strip() and line, f"blank or padded line {line!r}"
        if line.startswith("#EXT-X-VERSION:"):
            pl.version = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            assert pl.target_duration is None, "TARGETDURATION twice"
            pl.target_duration = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            assert not pl.segments, "MEDIA-SEQUENCE must come before the first segment"
            pl.media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            assert not pl.segments, "DISCONTINUITY-SEQUENCE must come before the first segment"
            pl.discontinuity_sequence = int(line.split(":", 1)[1])
        elif line == "#EXT-X-INDEPENDENT-SEGMENTS":
            pl.independent = True
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line.startswith("#EXT-X-MAP:"):
            m = re.fullmatch(r'#EXT-X-MAP:URI="([^"]+)"', line)
            assert m, line
            current_map = m.group(1)
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = line.split(":", 1)[1]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)", pdt), pdt
        elif line.startswith("#EXTINF:"):
            m = re.fullmatch(r"#EXTINF:(\d+(?:\.\d+)?),.*", line)
            assert m, line
            pending_duration = float(m.group(1))
        elif line == "#EXT-X-ENDLIST":
            pl.ended = True
        elif line.startswith("#EXT-X-PART-INF:"):
            assert pl.part_target is None, "PART-INF twice"
            pl.part_target = float(parse_attributes(line.split(":", 1)[1])["PART-TARGET"])
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            assert pl.server_control is None, "SERVER-CONTROL twice"
            pl.server_control = parse_attributes(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            assert not pl.segments and pl.skipped_segments is None, "EXT-X-SKIP comes once, before the segments"
            pl.skipped_segments = int(parse_attributes(line.split(":", 1)[1])["SKIPPED-SEGMENTS"])
        elif line.startswith("#EXT-X-PART:"):
            attributes = parse_attributes(line.split(":", 1)[1])
            assert set(attributes) <= {"DURATION", "URI", "INDEPENDENT", "BYTERANGE", "GAP"}, line
            assert attributes.get("INDEPENDENT", "YES") in ("YES", "NO"), line
            parts.append(ParsedPart(attributes["URI"], float(attributes["DURATION"]), attributes.get("INDEPENDENT") == "YES"))
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            pl.preload_hints.append(parse_attributes(line.split(":", 1)[1]))
        elif line.startswith("#EXT-X-RENDITION-REPORT:"):
            pl.rendition_reports.append(parse_attributes(line.split(":", 1)[1]))
        elif line.startswith("#"):
            raise AssertionError(f"unexpected tag {line}")
        else:
            assert pending_duration is not None, f"URI {line} without EXTINF"
            pl.segments.append(ParsedSegment(line, pending_duration, discontinuity, current_map, pdt, parts))
            pending_duration, discontinuity, pdt, parts = None, False, None, []
    assert pending_duration is None, "EXTINF without URI"
    pl.partial_parts = parts
    if parts:
        pl.partial_discontinuity, pl.partial_map_uri, pl.partial_program_date_time = discontinuity, current_map, pdt
    return pl


def check_media_playlist(text: str, *, fmp4: bool) -> ParsedPlaylist:
    """The RFC 8216 rules one playlist must satisfy on its own."""
    pl = parse_media_playlist(text)
    assert pl.target_duration is not None, "EXT-X-TARGETDURATION is required"
    for s in pl.segments:
        # §4.3.3.1: EXTINF rounded to the nearest integer <= TARGETDURATION.
        assert math.floor(s.duration + 0.5) <= pl.target_duration, (s.duration, pl.target_duration)
        assert s.duration > 0
    if fmp4:
        assert pl.version is not None and pl.version >= 6, "EXT-X-MAP in a media playlist needs version 6+"
        for s in pl.segments:
            assert s.map_uri is not None, f"{s.uri}: fMP4 segment without a preceding EXT-X-MAP"
        first_map = next((i for i, line in enumerate(pl.lines) if line.startswith("#EXT-X-MAP")), None)
        first_inf = next((i for i, line in enumerate(pl.lines) if line.startswith("#EXTINF")), None)
        if first_inf is not None:
            assert first_map is not None and first_map < first_inf
    else:
        assert pl.version is not None and pl.version >= 3, "decimal EXTINF needs version 3+"
        assert not any(line.startswith("#EXT-X-MAP") for line in pl.lines)
    if pl.ended:
        assert pl.lines[-1] == "#EXT-X-ENDLIST"
    return pl


def check_playlist_update(old: ParsedPlaylist, new: ParsedPlaylist) -> None:
    """§6.2.1/6.2.2 rules between two successive versions of one media playlist."""
    removed = [s for s in old.segments if s.uri not in {n.uri for n in new.segments}]
    assert new.media_sequence == old.media_sequence + len(removed), "MEDIA-SEQUENCE +1 per removed segment"
    assert new.discontinuity_sequence == old.discontinuity_sequence + sum(s.discontinuity for s in removed), (
        "DISCONTINUITY-SEQUENCE counts removed discontinuities"
    )
    # Removal only from the front; the rest keep their sequence numbers and attributes.
    assert [s.uri for s in old.segments[len(removed):]] == [s.uri for s in new.segments[: len(old.segments) - len(removed)]]
    for s_old, s_new in zip(old.segments[len(removed):], new.segments):
        assert (s_old.duration, s_old.discontinuity) == (s_new.duration, s_new.discontinuity)
    assert new.target_duration >= old.target_duration
    if old.ended:
        assert new.lines == old.lines


# --- a hub + the HLS routes in an aiohttp app, for the HTTP, service and player tests ------------

class Publisher:
    """A PublisherHandle that remembers being kicked."""

    def __init__(self) -> None:
        self.kicked: list[str] = []

    def kick(self, reason: str) -> None:
        self.kicked.append(reason)


def hls_config(**overrides):
    from types import SimpleNamespace

    values = dict(format="fmp4", segment_duration=1.0, window=6, reconnect_grace=10.0,
                  keep_after_end=300.0, low_latency=False, part_duration=0.333)
    values.update(overrides)
    return SimpleNamespace(hls=SimpleNamespace(**values))


def make_app(config, *, reader_queue_units: int = 2048):
    """(app, hub): a bare aiohttp app with only the HLS routes."""
    from aiohttp import web

    from mediasrv.delivery import routes as hls_routes
    from mediasrv.delivery.hls_service import HlsService
    from mediasrv.httpkit.keys import HLS_SERVICE
    from mediasrv.hub import Hub

    hub = Hub(reconnect_grace=config.hls.reconnect_grace, reader_queue_units=reader_queue_units)
    service = HlsService(config.hls, hub)
    app = web.Application()
    app[HLS_SERVICE] = service
    hls_routes.setup(app, service)

    async def run_service(app):  # what the composition root does for the HLS service
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(run_service)
    return app, hub


async def until(service, stream: str, predicate, *, rendition: str = "source", timeout: float = 10.0):
    """Wait on the rendition's condition (no polling) until ``predicate(segmenter)``."""
    import asyncio

    async def wait():
        while True:
            r = service.rendition(stream, rendition)
            if r is None:
                raise AssertionError(f"no rendition {stream}/{rendition}")
            async with r.changed:
                if predicate(r.segmenter):
                    return r.segmenter
                await r.changed.wait()

    return await asyncio.wait_for(wait(), timeout)
