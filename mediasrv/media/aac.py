"""AAC: AudioSpecificConfig parsing and building, ADTS headers, the ``mp4a`` codec string.

References: ISO/IEC 14496-3 §1.6.2.1 (AudioSpecificConfig), §1.6.3.3–1.6.3.4 (sampling
frequency index, channel configuration; Table 1.19 as extended by Amendment 4),
§4.4.1 (GASpecificConfig), ISO/IEC 13818-7 §6.2 / 14496-3 §1.A.2 (ADTS header),
RFC 6381 §3.3 (``mp4a.40.N``).

Explicit SBR/PS signalling (object type 5 or 29 first) is understood; the backward
compatible sync-extension signalling after GASpecificConfig is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediasrv.media.bitreader import BitReader
from mediasrv.media.errors import MalformedMediaError, UnsupportedCodecError

__all__ = [
    "AudioSpecificConfig",
    "SAMPLING_FREQUENCIES",
    "aac_codec_string",
    "build_adts_header",
    "build_asc",
    "parse_asc",
]

#: samplingFrequencyIndex 0–12 (14496-3 Table 1.18); 13–14 reserved, 15 = explicit.
SAMPLING_FREQUENCIES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)

#: channelConfiguration → number of channels (0 = described by a program_config_element).
_CHANNELS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}

#: Object types of the AAC family that we carry (14496-3 Table 1.1).
_AAC_OBJECT_TYPES = frozenset({1, 2, 3, 4, 5, 6, 17, 19, 20, 22, 23, 29, 39, 42})
_OTHER_OBJECT_TYPES = {
    7: "TwinVQ", 8: "CELP", 9: "HVXC", 12: "TTSI", 13: "Main synthetic", 14: "Wavetable synthesis",
    15: "General MIDI", 16: "Algorithmic synthesis", 21: "ER TwinVQ", 24: "ER CELP", 25: "ER HVXC",
    26: "ER HILN", 27: "ER Parametric", 28: "SSC", 32: "MPEG-1/2 Layer 1", 33: "MPEG-1/2 Layer 2",
    34: "MPEG-1/2 Layer 3 (MP3)", 35: "DST", 36: "ALS", 37: "SLS", 38: "SLS non-core",
    40: "SMR simple", 41: "SMR main", 45: "MPEG Surround",
}
#: Object types whose GASpecificConfig starts with frameLengthFlag (14496-3 §4.4.1).
_GA_OBJECT_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})


def aac_codec_string(object_type: int) -> str:
    """RFC 6381 ``mp4a.40.<audioObjectType>`` (decimal), e.g. ``mp4a.40.2``."""
    return f"mp4a.40.{object_type}"


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    """The parts of an AudioSpecificConfig that a muxer or player needs.

    ``sample_rate`` is the core (AAC) sampling frequency; with explicit SBR signalling the
    output rate is ``extension_sample_rate``. One raw frame holds ``frame_length`` core
    samples, so its duration is ``frame_length / sample_rate`` either way.
    """

    #: audioObjectType as signalled first (5 or 29 for explicit HE-AAC v1/v2).
    object_type: int
    sample_rate: int
    channel_configuration: int
    #: Channel count (0 when channelConfiguration is 0: a PCE describes the layout).
    channels: int
    #: The object type of the core coder (differs from object_type only for SBR/PS).
    core_object_type: int
    extension_sample_rate: int = 0
    #: 1024 or 960 core samples per raw frame (GASpecificConfig frameLengthFlag).
    frame_length: int = 1024

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``mp4a.40.2``."""
        return aac_codec_string(self.object_type)

    @property
    def sampling_frequency_index(self) -> int | None:
        """Index of ``sample_rate`` in the standard table, or None if not listed."""
        try:
            return SAMPLING_FREQUENCIES.index(self.sample_rate)
        except ValueError:
            return None


def _object_type(r: BitReader) -> int:
    # GetAudioObjectType(): 5 bits, 31 escapes to 32 + 6 bits.
    aot = r.u(5)
    if aot == 31:
        aot = 32 + r.u(6)
    return aot


def _frequency(r: BitReader) -> int:
    index = r.u(4)
    if index == 0xF:
        rate = r.u(24)
        if rate == 0:
            raise MalformedMediaError("explicit samplingFrequency of 0")
        return rate
    if index >= len(SAMPLING_FREQUENCIES):
        raise MalformedMediaError(f"reserved samplingFrequencyIndex {index}")
    return SAMPLING_FREQUENCIES[index]


def parse_asc(data: bytes) -> AudioSpecificConfig:
    """Parse an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).

    Raises :class:`UnsupportedCodecError` for object types outside the AAC family (e.g.
    MP3-in-MPEG-4, ALS), :class:`MalformedMediaError` for reserved or truncated fields.
    """
    r = BitReader(data)
    aot = _object_type(r)
    if aot == 0:
        raise MalformedMediaError("audioObjectType 0 (null)")
    sample_rate = _frequency(r)
    channel_config = r.u(4)
    if channel_config not in _CHANNELS:
        raise MalformedMediaError(f"reserved channelConfiguration {channel_config}")
    core = aot
    extension_rate = 0
    if aot in (5, 29):  # explicit SBR (and PS) signalling
        extension_rate = _frequency(r)
        core = _object_type(r)
        if core == 22:
            r.skip(4)  # extensionChannelConfiguration
        if core in (5, 29):
            raise MalformedMediaError("SBR/PS object type nested in itself")
    if aot not in _AAC_OBJECT_TYPES or core not in _AAC_OBJECT_TYPES:
        bad = aot if aot not in _AAC_OBJECT_TYPES else core
        name = _OTHER_OBJECT_TYPES.get(bad, "unknown")
        raise UnsupportedCodecError(f"MPEG-4 audio object type {bad} ({name}) is not AAC")
    frame_length = 1024
    if core in _GA_OBJECT_TYPES and r.bits_left >= 1:
        frame_length = 960 if r.flag() else 1024  # GASpecificConfig frameLengthFlag
    return AudioSpecificConfig(
        object_type=aot,
        sample_rate=sample_rate,
        channel_configuration=channel_config,
        channels=_CHANNELS[channel_config],
        core_object_type=core,
        extension_sample_rate=extension_rate,
        frame_length=frame_length,
    )


class _BitWriter:
    __slots__ = ("value", "bits")

    def __init__(self) -> None:
        self.value = 0
        self.bits = 0

    def put(self, value: int, n: int) -> None:
        if not 0 <= value < (1 << n):
            raise ValueError(f"{value} does not fit {n} bits")
        self.value = (self.value << n) | value
        self.bits += n

    def to_bytes(self) -> bytes:
        pad = -self.bits % 8
        return (self.value << pad).to_bytes((self.bits + pad) // 8, "big")


def _put_object_type(w: _BitWriter, aot: int) -> None:
    if aot >= 31:
        w.put(31, 5)
        w.put(aot - 32, 6)
    else:
        w.put(aot, 5)


def _put_frequency(w: _BitWriter, rate: int) -> None:
    if rate in SAMPLING_FREQUENCIES:
        w.put(SAMPLING_FREQUENCIES.index(rate), 4)
    else:
        w.put(0xF, 4)
        w.put(rate, 24)


def build_asc(
    object_type: int,
    sample_rate: int,
    channel_configuration: int,
    *,
    extension_sample_rate: int = 0,
    core_object_type: int = 2,
) -> bytes:
    """Build an AudioSpecificConfig (14496-3 §1.6.2.1) with a minimal GASpecificConfig.

    For ``object_type`` 5 or 29 (explicit HE-AAC) pass ``extension_sample_rate`` (the
    SBR output rate) and ``core_object_type``. frameLengthFlag, dependsOnCoreCoder and
    extensionFlag are written as 0 (1024-sample frames).
    """
    if channel_configuration not in _CHANNELS:
        raise ValueError(f"invalid channel configuration {channel_configuration}")
    w = _BitWriter()
    _put_object_type(w, object_type)
    _put_frequency(w, sample_rate)
    w.put(channel_configuration, 4)
    core = object_type
    if object_type in (5, 29):
        if not extension_sample_rate:
            raise ValueError("explicit SBR signalling needs extension_sample_rate")
        _put_frequency(w, extension_sample_rate)
        _put_object_type(w, core_object_type)
        core = core_object_type
    if core in _GA_OBJECT_TYPES:
        w.put(0, 3)  # frameLengthFlag, dependsOnCoreCoder, extensionFlag
    return w.to_bytes()


def build_adts_header(config: AudioSpecificConfig, payload_length: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw AAC frame of ``payload_length`` bytes.

    ADTS can only describe object types 1–4 with a table sampling rate and a channel
    configuration of 1–7; explicit HE-AAC is written as its core (implicit SBR), as
    MPEG-TS carriage does. Anything else raises :class:`UnsupportedCodecError`.
    """
    aot = config.core_object_type
    if not 1 <= aot <= 4:
        raise UnsupportedCodecError(f"AAC object type {aot} cannot be carried in ADTS")
    index = config.sampling_frequency_index
    if index is None:
        raise UnsupportedCodecError(f"sample rate {config.sample_rate} cannot be carried in ADTS")
    if not 1 <= config.channel_configuration <= 7:
        raise UnsupportedCodecError(f"channel configuration {config.channel_configuration} cannot be carried in ADTS")
    frame_length = payload_length + 7
    if frame_length >= 1 << 13:
        raise ValueError(f"AAC frame of {payload_length} bytes too long for ADTS")
    w = _BitWriter()
    w.put(0xFFF, 12)  # syncword
    w.put(0, 1)  # ID: MPEG-4
    w.put(0, 2)  # layer
    w.put(1, 1)  # protection_absent
    w.put(aot - 1, 2)  # profile_ObjectType
    w.put(index, 4)
    w.put(0, 1)  # private_bit
    w.put(config.channel_configuration, 3)
    w.put(0, 4)  # original_copy, home, copyright_identification_bit/start
    w.put(frame_length, 13)
    w.put(0x7FF, 11)  # adts_buffer_fullness: VBR
    w.put(0, 2)  # number_of_raw_data_blocks_in_frame - 1
    return w.to_bytes()
