"""Real media bitstreams for tests, generated in memory with PyAV.

Each sample is encoded by a real libavcodec encoder (libx264 with B-frames, libx265,
SVT-AV1/libaom/rav1e, libvpx-vp9, the native AAC encoder) and muxed by libavformat's FLV
muxer, so the tag bodies are exactly what an FFmpeg publisher sends over RTMP: legacy
AVC/AAC tags, Enhanced RTMP tags for HEVC/AV1/VP9. Results are cached per process.

    from tests.media import samples          # or: from . import samples (inside tests/media)

    if samples.has_encoder("hevc"):
        s = samples.video("hevc")            # 320x240, 10 frames, 30 fps (+ 10 AAC frames)
        s.tags                               # [FlvTag(type, timestamp, body)] in file order
        s.video_tags / s.audio_tags          # the same, filtered
        s.video_config                       # hvcC as written in the sequence-header tag
        s.extradata                          # encoder extradata (Annex B for x264/x265, OBUs for AV1)
        s.probe                              # Probe: what libav reports demuxing the FLV
        s.packets                            # [DemuxedPacket]: libav's demuxed packets (ms)
        s.flv                                # the whole FLV file

    samples.write_flv(tags)                  # FLV file from tag bodies (to feed libav)
    samples.read_flv(data)                   # FLV file → [FlvTag]
    samples.probe_flv(data)                  # libav's view of an FLV file (+ decoded frame count)
    samples.dash_codec_strings(flv, tmp_dir) # RFC 6381 strings libavformat's DASH muxer derives

PyAV is only ever imported by tests; the server's ``media`` package stays stdlib-only.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import av
import numpy as np

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

#: Candidate libavcodec encoders per codec, best first.
ENCODERS = {
    "h264": ("libx264",),
    "hevc": ("libx265",),
    "av1": ("libsvtav1", "libaom-av1", "librav1e"),
    "vp9": ("libvpx-vp9",),
}

_ENCODER_OPTIONS = {
    "libx264": {"preset": "veryfast", "bf": "2"},
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error:bframes=2"},
    "libsvtav1": {"preset": "12", "svtav1-params": "log-level=0"},
    "libaom-av1": {"cpu-used": "8", "usage": "realtime"},
    "librav1e": {"speed": "10"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
}


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One FLV tag: type (8 audio, 9 video, 18 script), timestamp (ms) and body."""

    type: int
    timestamp: int
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamProbe:
    """What libavformat/libavcodec report for one stream of an FLV file."""

    kind: str  # "video" / "audio"
    codec: str  # libavcodec decoder name, e.g. "h264", "hevc", "libdav1d", "vp9", "aac"
    width: int
    height: int
    profile: str | None
    level: int | None
    sample_rate: int
    channels: int
    extradata: bytes
    decoded_frames: int


@dataclass(frozen=True, slots=True)
class DemuxedPacket:
    kind: str
    dts: int  # ms
    pts: int  # ms
    keyframe: bool
    size: int


@dataclass(frozen=True, slots=True)
class Sample:
    """An encoded clip: FLV tags written by libavformat plus libav's view of them."""

    encoder: str
    extradata: bytes
    flv: bytes
    tags: tuple[FlvTag, ...]
    probe: dict[str, StreamProbe]  # by kind ("video"/"audio")
    packets: tuple[DemuxedPacket, ...]

    @property
    def video_tags(self) -> list[FlvTag]:
        return [t for t in self.tags if t.type == TAG_VIDEO]

    @property
    def audio_tags(self) -> list[FlvTag]:
        return [t for t in self.tags if t.type == TAG_AUDIO]

    @property
    def video_config(self) -> bytes:
        """The configuration record of the first video sequence-header tag."""
        body = self.video_tags[0].body
        return body[5:]  # legacy: 1 + 1 + SI24; E-RTMP: 1 + FourCC

    @property
    def audio_config(self) -> bytes:
        """The AudioSpecificConfig of the first audio sequence-header tag."""
        return self.audio_tags[0].body[2:]


def encoder_for(codec: str) -> str | None:
    """The first available libavcodec encoder for ``codec`` ("h264", "hevc", "av1", "vp9")."""
    return next((e for e in ENCODERS[codec] if e in av.codecs_available), None)


def has_encoder(codec: str) -> bool:
    return encoder_for(codec) is not None


def _test_pattern(index: int, width: int, height: int) -> av.VideoFrame:
    """A moving testsrc-like pattern: gradients plus a bouncing square."""
    img = np.empty((height, width, 3), np.uint8)
    img[:, :, 0] = (np.arange(width)[None, :] * 255 // max(1, width - 1) + index * 9) % 256
    img[:, :, 1] = (np.arange(height)[:, None] * 255 // max(1, height - 1) + index * 5) % 256
    img[:, :, 2] = 96
    size = min(width, height) // 4
    x = (index * 13) % max(1, width - size)
    y = (index * 7) % max(1, height - size)
    img[y : y + size, x : x + size] = 255
    return av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")


def _add_audio(out: av.container.OutputContainer, sample_rate: int, channels: int):
    stream = out.add_stream("aac", rate=sample_rate)
    stream.layout = "stereo" if channels == 2 else "mono"
    return stream


def _encode_audio(stream, frames: int, sample_rate: int, channels: int) -> Iterable:
    t = np.arange(1024 * frames) / sample_rate
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for i in range(frames):
        chunk = np.tile(tone[i * 1024 : (i + 1) * 1024], (channels, 1))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo" if channels == 2 else "mono")
        frame.sample_rate = sample_rate
        frame.pts = i * 1024
        yield from stream.encode(frame)
    yield from stream.encode()


def _finish(encoder: str, extradata: bytes, flv: bytes) -> Sample:
    probe, packets = probe_flv(flv)
    return Sample(encoder, extradata, flv, tuple(read_flv(flv)), probe, tuple(packets))


@functools.lru_cache(maxsize=None)
def video(
    codec: str, width: int = 320, height: int = 240, frames: int = 10, audio_frames: int = 10,
    pix_fmt: str = "yuv420p", options: tuple[tuple[str, str], ...] = (),
) -> Sample:
    """Encode ``frames`` video frames (30 fps) and ``audio_frames`` AAC frames into an FLV.

    ``options`` (pairs, for hashability) are added to the encoder's default options, e.g.
    ``(("x264-params", "cqm=jvt:tff=1"),)``; ``pix_fmt`` selects chroma format/bit depth.
    """
    encoder = encoder_for(codec)
    if encoder is None:
        raise RuntimeError(f"no encoder for {codec} in this PyAV build")
    buf = io.BytesIO()
    out = av.open(buf, "w", format="flv")
    vs = out.add_stream(encoder, rate=30)
    vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
    vs.options = {**_ENCODER_OPTIONS.get(encoder, {}), **dict(options)}
    if encoder == "libx264":
        vs.codec_context.max_b_frames = 2
    aus = _add_audio(out, 44100, 2) if audio_frames else None
    packets = []
    for i in range(frames):
        frame = _test_pattern(i, width, height)
        if pix_fmt != "yuv420p":
            frame = frame.reformat(format=pix_fmt)
        frame.pts = i
        packets.extend(vs.encode(frame))
    packets.extend(vs.encode())
    if aus is not None:
        packets.extend(_encode_audio(aus, audio_frames, 44100, 2))
    # Interleave by DTS in ms, as a live publisher would.
    packets.sort(key=lambda p: float(p.dts * p.time_base))
    for p in packets:
        out.mux(p)
    extradata = bytes(vs.codec_context.extradata or b"")
    out.close()
    return _finish(encoder, extradata, buf.getvalue())


@functools.lru_cache(maxsize=None)
def audio(sample_rate: int = 44100, channels: int = 2, frames: int = 10) -> Sample:
    """Encode ``frames`` AAC-LC frames of a 440 Hz tone into an audio-only FLV."""
    buf = io.BytesIO()
    out = av.open(buf, "w", format="flv")
    stream = _add_audio(out, sample_rate, channels)
    for p in _encode_audio(stream, frames, sample_rate, channels):
        out.mux(p)
    extradata = bytes(stream.codec_context.extradata or b"")
    out.close()
    return _finish("aac", extradata, buf.getvalue())


# --------------------------------------------------------------------------- FLV files


def write_flv(tags: Iterable[FlvTag]) -> bytes:
    """An FLV file (FLV spec §E.2–E.3) holding ``tags`` in order."""
    tags = list(tags)
    flags = (4 if any(t.type == TAG_AUDIO for t in tags) else 0) | (1 if any(t.type == TAG_VIDEO for t in tags) else 0)
    out = bytearray(b"FLV\x01" + bytes([flags]) + (9).to_bytes(4, "big") + bytes(4))
    for t in tags:
        ts = t.timestamp & 0xFFFFFFFF
        out += bytes([t.type]) + len(t.body).to_bytes(3, "big")
        out += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + bytes(3)
        out += t.body
        out += (11 + len(t.body)).to_bytes(4, "big")
    return bytes(out)


def read_flv(data: bytes) -> list[FlvTag]:
    """The tags of an FLV file."""
    if data[:3] != b"FLV":
        raise ValueError("not an FLV file")
    pos = int.from_bytes(data[5:9], "big") + 4
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        tags.append(FlvTag(kind, ts, bytes(data[pos + 11 : pos + 11 + size])))
        pos += 11 + size + 4
    return tags


def probe_flv(data: bytes) -> tuple[dict[str, StreamProbe], list[DemuxedPacket]]:
    """Demux (and decode) an FLV file with libav; return per-kind stream info and packets."""
    container = av.open(io.BytesIO(data), format="flv")
    try:
        packets: list[DemuxedPacket] = []
        decoded = {s.index: 0 for s in container.streams}
        for packet in container.demux():
            if packet.size == 0 or packet.dts is None:
                continue
            tb = packet.time_base
            packets.append(
                DemuxedPacket(packet.stream.type, int(packet.dts * tb * 1000), int(packet.pts * tb * 1000),
                              packet.is_keyframe, packet.size)
            )
            decoded[packet.stream.index] += len(packet.decode())
        for stream in container.streams:
            try:
                decoded[stream.index] += len(stream.codec_context.decode(None))
            except av.error.EOFError:
                pass
        probe = {}
        for stream in container.streams:
            cc = stream.codec_context
            probe[stream.type] = StreamProbe(
                kind=stream.type,
                codec=cc.name,
                width=getattr(cc, "width", 0) or 0,
                height=getattr(cc, "height", 0) or 0,
                profile=cc.profile,
                level=getattr(cc, "level", None),
                sample_rate=getattr(cc, "sample_rate", 0) or 0,
                channels=getattr(cc, "channels", 0) or 0,
                extradata=bytes(cc.extradata or b""),
                decoded_frames=decoded[stream.index],
            )
        return probe, packets
    finally:
        container.close()


def dash_codec_strings(flv: bytes, directory: str) -> list[str]:
    """Remux an FLV into DASH under ``directory``; return the MPD's ``codecs`` attributes.

    libavformat's DASH muxer derives RFC 6381 strings for avc1, av01, vp09 and mp4a from
    the streams' configuration records, which makes it an independent oracle.
    """
    src = av.open(io.BytesIO(flv), format="flv")
    mpd = os.path.join(directory, "probe.mpd")
    dst = av.open(mpd, "w", format="dash")
    try:
        mapping = {s.index: dst.add_stream_from_template(s, opaque=True) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)
    finally:
        dst.close()
        src.close()
    with open(mpd, encoding="utf-8") as f:
        return re.findall(r'codecs="([^"]+)"', f.read())


# --------------------------------------------------------------------------- hand-made bitstreams


class BitWriter:
    """Build bit fields MSB first (for hand-made SPS/sequence headers in tests)."""

    def __init__(self) -> None:
        self.bits: list[str] = []

    def u(self, value: int, n: int) -> "BitWriter":
        assert 0 <= value < (1 << n) or n == 0, (value, n)
        if n:
            self.bits.append(format(value, f"0{n}b"))
        return self

    def flag(self, value: bool) -> "BitWriter":
        return self.u(int(value), 1)

    def ue(self, value: int) -> "BitWriter":
        code = format(value + 1, "b")
        self.bits.append("0" * (len(code) - 1) + code)
        return self

    def se(self, value: int) -> "BitWriter":
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def raw(self, bits: str) -> "BitWriter":
        self.bits.append(bits)
        return self

    def bitstring(self) -> str:
        return "".join(self.bits)

    def to_bytes(self, trailing: bool = False) -> bytes:
        """The bits padded with zeros; with ``trailing``, H.264 rbsp_trailing_bits first."""
        bits = self.bitstring() + ("1" if trailing else "")
        bits += "0" * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes (H.264 §7.4.1): 00 00 0x → 00 00 03 0x for x ≤ 3."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)
