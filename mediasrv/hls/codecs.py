"""The few codec facts the HLS writers need, kept here so ``hls/`` depends only on
``media.types``: AudioSpecificConfig fields, the ADTS header, parameter sets out of
avcC/hvcC, length-prefixed NAL iteration, RFC 6381 fallbacks.

(``mediasrv/media/`` grows fuller parsers; these are the minimum, pure and stdlib-only.)
"""

from __future__ import annotations

from dataclasses import dataclass

from mediasrv.media.types import Codec, TrackInfo

SAMPLING_FREQUENCIES = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)


class CodecConfigError(ValueError):
    """A codec configuration record we cannot use."""


class _Bits:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise CodecConfigError("AudioSpecificConfig too short")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value


@dataclass(frozen=True, slots=True)
class AacConfig:
    #: Audio object type of the core coder (2 = AAC-LC), also for HE-AAC (SBR/PS).
    object_type: int
    #: Index into SAMPLING_FREQUENCIES of the core coder (for ADTS), 15 = explicit.
    frequency_index: int
    #: Core sampling rate in Hz: the timescale of the MP4 track.
    sample_rate: int
    channel_config: int
    #: PCM samples per AAC frame at ``sample_rate`` (1024, or 960 with frameLengthFlag).
    frame_samples: int
    #: Object type as signalled (5 = SBR, 29 = PS, else equal to object_type).
    signalled_object_type: int


def parse_audio_specific_config(asc: bytes) -> AacConfig:
    """ISO/IEC 14496-3 §1.6.2.1, enough for LC, HE-AAC v1/v2 and the frame length."""
    bits = _Bits(asc)

    def object_type() -> int:
        aot = bits.read(5)
        return 32 + bits.read(6) if aot == 31 else aot

    def frequency() -> tuple[int, int]:
        index = bits.read(4)
        if index == 15:
            return index, bits.read(24)
        if index >= len(SAMPLING_FREQUENCIES):
            raise CodecConfigError(f"reserved sampling frequency index {index}")
        return index, SAMPLING_FREQUENCIES[index]

    signalled = object_type()
    index, rate = frequency()
    channels = bits.read(4)
    aot = signalled
    if aot in (5, 29):  # explicit SBR/PS: extension frequency, then the core object type
        frequency()
        aot = object_type()
    frame_samples = 1024
    if aot in (1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23):
        if bits.read(1):  # GASpecificConfig.frameLengthFlag
            frame_samples = 960
    return AacConfig(aot, index, rate, channels, frame_samples, signalled)


def adts_header(config: AacConfig, payload_size: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw AAC frame of ``payload_size`` bytes."""
    if config.object_type > 4:
        raise CodecConfigError(f"AAC object type {config.object_type} cannot be carried in ADTS")
    index = config.frequency_index
    if index == 15:  # explicit rate: ADTS needs an index; take the nearest
        index = min(range(len(SAMPLING_FREQUENCIES)),
                    key=lambda i: abs(SAMPLING_FREQUENCIES[i] - config.sample_rate))
    length = payload_size + 7
    if length >= 1 << 13:
        raise CodecConfigError("AAC frame too large for ADTS")
    profile = config.object_type - 1
    ch = config.channel_config
    return bytes((
        0xFF,
        0xF1,  # MPEG-4, layer 0, no CRC
        (profile << 6) | (index << 2) | (ch >> 2),
        ((ch & 3) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 7) << 5) | 0x1F,
        0xFC,
    ))


def iter_nal_units(data: bytes, length_size: int):
    """Yield the NAL units of a length-prefixed access unit (MP4 sample format)."""
    pos = 0
    end = len(data)
    while pos + length_size <= end:
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if size == 0:
            continue
        if pos + size > end:
            raise CodecConfigError("NAL unit length runs past the end of the access unit")
        yield data[pos:pos + size]
        pos += size


def avcc_parameter_sets(avcc: bytes) -> tuple[list[bytes], list[bytes]]:
    """(SPS list, PPS list) of an AVCDecoderConfigurationRecord."""
    if len(avcc) < 7 or avcc[0] != 1:
        raise CodecConfigError("not an AVCDecoderConfigurationRecord")
    pos = 5
    sps: list[bytes] = []
    pps: list[bytes] = []
    count = avcc[pos] & 0x1F
    pos += 1
    for _ in range(count):
        size = int.from_bytes(avcc[pos:pos + 2], "big")
        sps.append(avcc[pos + 2:pos + 2 + size])
        pos += 2 + size
    count = avcc[pos]
    pos += 1
    for _ in range(count):
        size = int.from_bytes(avcc[pos:pos + 2], "big")
        pps.append(avcc[pos + 2:pos + 2 + size])
        pos += 2 + size
    return sps, pps


def hvcc_parameter_sets(hvcc: bytes) -> list[bytes]:
    """VPS, SPS, PPS (and any SEI arrays) of an HEVCDecoderConfigurationRecord, in order."""
    if len(hvcc) < 23:
        raise CodecConfigError("not an HEVCDecoderConfigurationRecord")
    pos = 22
    arrays = hvcc[pos]
    pos += 1
    by_type: list[tuple[int, bytes]] = []
    for _ in range(arrays):
        nal_type = hvcc[pos] & 0x3F
        count = int.from_bytes(hvcc[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            size = int.from_bytes(hvcc[pos:pos + 2], "big")
            by_type.append((nal_type, hvcc[pos + 2:pos + 2 + size]))
            pos += 2 + size
    order = {32: 0, 33: 1, 34: 2}
    by_type.sort(key=lambda item: order.get(item[0], 3))
    return [nal for _, nal in by_type]


def codec_string(track: TrackInfo) -> str:
    """The RFC 6381 string: the track's own, or one derived from its config (AVC, AAC)."""
    if track.codec_string:
        return track.codec_string
    try:
        if track.codec is Codec.H264 and len(track.config) >= 4:
            return "avc1.%02x%02x%02x" % (track.config[1], track.config[2], track.config[3])
        if track.codec is Codec.AAC:
            return "mp4a.40.%d" % parse_audio_specific_config(track.config).signalled_object_type
    except CodecConfigError:
        pass
    return {
        Codec.H264: "avc1", Codec.HEVC: "hvc1", Codec.AV1: "av01", Codec.VP9: "vp09", Codec.AAC: "mp4a.40.2",
    }[track.codec]
