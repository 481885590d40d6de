"""FLV tag bodies (the payload of RTMP audio/video messages, types 8 and 9) ↔ typed tags.

References: Adobe FLV specification v10.1 §E.4.2 (AUDIODATA), §E.4.3 (VIDEODATA,
AVCVIDEOPACKET); Enhanced RTMP v2 (veovera), sections "Enhanced Audio"
(ExAudioTagHeader/ExAudioTagBody) and "Enhanced Video" (ExVideoTagHeader/ExVideoTagBody),
including ModEx and Multitrack.

Parsing turns any supported layout into a :class:`VideoTag` / :class:`AudioTag`:

* legacy video: codec id 7 (AVC) and 12 (HEVC, the pre-standard Chinese-CDN convention);
* Enhanced RTMP video: FourCC ``avc1``, ``hvc1``, ``av01``, ``vp09``;
* legacy AAC audio (sound format 10) and Enhanced RTMP audio with FourCC ``mp4a``.

Multitrack messages: the tag describes **one** track. Track 0 is picked when the message
carries it (the spec recommends 0 for the default track, and FFmpeg/OBS send track 0 as
plain non-multitrack messages and other tracks in Multitrack messages); otherwise the first
track is returned with its ``track_id`` so that the caller can drop it. Other tracks in the
same message are ignored.

Errors: :class:`UnsupportedCodecError` for a well-formed tag in a codec we don't carry
(Sorenson, VP6, VP8, Opus, MP3, FLAC, AC-3, …); :class:`MalformedMediaError` for truncated
tags and reserved/unknown field values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mediasrv.media.bitreader import ByteReader
from mediasrv.media.errors import MalformedMediaError, UnsupportedCodecError
from mediasrv.media.types import Codec, MediaUnit, TrackInfo, TrackKind

__all__ = [
    "AacPacketType",
    "AudioPacketType",
    "AudioTag",
    "AvMultitrackType",
    "AvcPacketType",
    "PacketModExType",
    "SoundFormat",
    "TagPacket",
    "VideoCodecId",
    "VideoFrameType",
    "VideoPacketType",
    "VideoTag",
    "build_audio_frame",
    "build_audio_sequence_header",
    "build_video_end_of_sequence",
    "build_video_frame",
    "build_video_sequence_header",
    "aac_raw_frame",
    "avc_coded_frame",
    "parse_audio_tag",
    "parse_video_tag",
]


# --------------------------------------------------------------------------- wire codes


class VideoFrameType(enum.IntEnum):
    """FLV §E.4.3.1 FrameType / E-RTMP VideoFrameType."""

    KEY = 1
    INTER = 2
    DISPOSABLE_INTER = 3
    GENERATED_KEY = 4
    COMMAND = 5  # video info/command frame


class VideoCodecId(enum.IntEnum):
    """FLV §E.4.3.1 CodecID (legacy layout)."""

    SORENSON_H263 = 2
    SCREEN = 3
    VP6 = 4
    VP6_ALPHA = 5
    SCREEN_V2 = 6
    AVC = 7
    HEVC = 12  # not in Adobe's spec: the Chinese-CDN extension (SRS, nginx-rtmp forks, …)


class AvcPacketType(enum.IntEnum):
    """FLV §E.4.3.2 AVCPacketType (legacy AVC/HEVC)."""

    SEQUENCE_HEADER = 0
    NALU = 1
    END_OF_SEQUENCE = 2


class VideoPacketType(enum.IntEnum):
    """E-RTMP v2 ExVideoTagHeader VideoPacketType."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    CODED_FRAMES_X = 3  # composition time implicitly 0
    METADATA = 4
    MPEG2TS_SEQUENCE_START = 5
    MULTITRACK = 6
    MODEX = 7


class AudioPacketType(enum.IntEnum):
    """E-RTMP v2 ExAudioTagHeader AudioPacketType."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    MULTICHANNEL_CONFIG = 4
    MULTITRACK = 5
    MODEX = 7


class PacketModExType(enum.IntEnum):
    """E-RTMP v2 Video/AudioPacketModExType."""

    TIMESTAMP_OFFSET_NANO = 0


class AvMultitrackType(enum.IntEnum):
    """E-RTMP v2 AvMultitrackType."""

    ONE_TRACK = 0
    MANY_TRACKS = 1
    MANY_TRACKS_MANY_CODECS = 2


class SoundFormat(enum.IntEnum):
    """FLV §E.4.2.1 SoundFormat, with E-RTMP's ExHeader (9)."""

    LPCM_PLATFORM_ENDIAN = 0
    ADPCM = 1
    MP3 = 2
    LPCM_LITTLE_ENDIAN = 3
    NELLYMOSER_16K_MONO = 4
    NELLYMOSER_8K_MONO = 5
    NELLYMOSER = 6
    G711_A_LAW = 7
    G711_MU_LAW = 8
    EX_HEADER = 9
    AAC = 10
    SPEEX = 11
    MP3_8K = 14
    NATIVE = 15


class AacPacketType(enum.IntEnum):
    """FLV §E.4.2.2 AACPacketType."""

    SEQUENCE_HEADER = 0
    RAW = 1


class TagPacket(enum.Enum):
    """What a parsed tag carries, whatever its wire layout."""

    SEQUENCE_HEADER = "sequence_header"  # codec configuration record
    CODED_FRAME = "coded_frame"
    END_OF_SEQUENCE = "end_of_sequence"
    METADATA = "metadata"  # E-RTMP video metadata (AMF colorInfo), data = AMF bytes
    COMMAND = "command"  # video info/command frame, data = the command byte
    MULTICHANNEL_CONFIG = "multichannel_config"  # E-RTMP audio, data = the raw config
    MPEG2TS_SEQUENCE_START = "mpeg2ts_sequence_start"  # E-RTMP, data = the TS descriptor


_VIDEO_FOURCC = {b"avc1": Codec.H264, b"hvc1": Codec.HEVC, b"av01": Codec.AV1, b"vp09": Codec.VP9}
_FOURCC_OF_VIDEO = {codec: fourcc for fourcc, codec in _VIDEO_FOURCC.items()}
_UNSUPPORTED_VIDEO_FOURCC = {b"vp08": "VP8", b"vvc1": "VVC (H.266)"}
_AUDIO_FOURCC = {b"mp4a": Codec.AAC}
_UNSUPPORTED_AUDIO_FOURCC = {
    b"Opus": "Opus", b"fLaC": "FLAC", b"ac-3": "AC-3", b"ec-3": "E-AC-3", b".mp3": "MP3",
}
_UNSUPPORTED_SOUND_FORMATS: dict[int, str] = {
    SoundFormat.LPCM_PLATFORM_ENDIAN: "linear PCM (platform endian)",
    SoundFormat.ADPCM: "ADPCM",
    SoundFormat.MP3: "MP3",
    SoundFormat.LPCM_LITTLE_ENDIAN: "linear PCM (little endian)",
    SoundFormat.NELLYMOSER_16K_MONO: "Nellymoser 16 kHz mono",
    SoundFormat.NELLYMOSER_8K_MONO: "Nellymoser 8 kHz mono",
    SoundFormat.NELLYMOSER: "Nellymoser",
    SoundFormat.G711_A_LAW: "G.711 A-law",
    SoundFormat.G711_MU_LAW: "G.711 mu-law",
    SoundFormat.SPEEX: "Speex",
    SoundFormat.MP3_8K: "MP3 8 kHz",
    SoundFormat.NATIVE: "device-specific sound",
}
_UNSUPPORTED_VIDEO_CODECS: dict[int, str] = {
    VideoCodecId.SORENSON_H263: "Sorenson H.263",
    VideoCodecId.SCREEN: "Screen video",
    VideoCodecId.VP6: "On2 VP6",
    VideoCodecId.VP6_ALPHA: "On2 VP6 with alpha",
    VideoCodecId.SCREEN_V2: "Screen video v2",
}


# --------------------------------------------------------------------------- tags


@dataclass(frozen=True, slots=True)
class VideoTag:
    """A parsed video message.

    ``codec`` is None only for an Enhanced RTMP command frame (it carries no FourCC) or a
    legacy command frame of a codec we don't carry. ``composition_time`` (ms, signed) is
    PTS − DTS. ``data`` is the configuration record for SEQUENCE_HEADER and the coded frame
    (length-prefixed NALUs for AVC/HEVC, OBUs for AV1, the frame for VP9) for CODED_FRAME.
    """

    codec: Codec | None
    frame_type: VideoFrameType
    packet: TagPacket
    composition_time: int = 0
    data: bytes = b""
    #: True when the tag used the Enhanced RTMP (FourCC) layout.
    enhanced: bool = False
    #: Multitrack track id (0 for non-multitrack tags).
    track_id: int = 0
    #: E-RTMP ModEx TimestampOffsetNano (0–999999 ns to add to the message timestamp).
    timestamp_offset_ns: int = 0

    @property
    def keyframe(self) -> bool:
        """True for key frames (FrameType 1) and server-generated key frames (4)."""
        return self.frame_type in _KEYFRAME_TYPES


@dataclass(frozen=True, slots=True)
class AudioTag:
    """A parsed audio message: an AudioSpecificConfig (SEQUENCE_HEADER) or a raw AAC frame."""

    codec: Codec
    packet: TagPacket
    data: bytes = b""
    enhanced: bool = False
    track_id: int = 0
    timestamp_offset_ns: int = 0


# --------------------------------------------------------------------------- shared E-RTMP parts


def _read_modex(c: ByteReader, packet_type: int, modex_value: int) -> tuple[int, int]:
    """Consume ModEx blocks (E-RTMP v2); return (real packet type, timestamp offset ns)."""
    offset_ns = 0
    while packet_type == modex_value:
        size = c.u8() + 1
        if size == 256:
            size = c.u16() + 1
        modex_data = c.take(size)
        b = c.u8()
        modex_type, packet_type = b >> 4, b & 0x0F
        if modex_type == PacketModExType.TIMESTAMP_OFFSET_NANO:
            if len(modex_data) < 3:
                raise MalformedMediaError("TimestampOffsetNano ModEx data shorter than 3 bytes")
            offset_ns = int.from_bytes(modex_data[:3], "big")
            if offset_ns > 999_999:
                raise MalformedMediaError(f"TimestampOffsetNano {offset_ns} above 999999")
        # Unknown ModEx types only modify the packet; skipping them is safe.
    return packet_type, offset_ns


def _read_multitrack(
    c: ByteReader, multitrack_type: int, shared_fourcc: bytes | None
) -> tuple[bytes, int, bytes]:
    """Walk the track list; return (fourcc, track id, body bytes) of the chosen track."""
    chosen: tuple[bytes, int, bytes] | None = None
    while c.remaining:
        fourcc = c.take(4) if multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS else shared_fourcc
        track_id = c.u8()
        if multitrack_type == AvMultitrackType.ONE_TRACK:
            body = c.rest()
        else:
            body = c.take(c.u24())
        assert fourcc is not None
        if chosen is None or (track_id == 0 and chosen[1] != 0):
            chosen = (fourcc, track_id, body)
        if multitrack_type == AvMultitrackType.ONE_TRACK:
            break
    if chosen is None:
        raise MalformedMediaError("multitrack message without tracks")
    return chosen


def _multitrack_header(c: ByteReader, packet_type_limit: int) -> tuple[int, int, bytes | None]:
    b = c.u8()
    multitrack_type, packet_type = b >> 4, b & 0x0F
    if multitrack_type > AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        raise MalformedMediaError(f"reserved AvMultitrackType {multitrack_type}")
    if packet_type >= packet_type_limit:
        raise MalformedMediaError(f"packet type {packet_type} not allowed inside a multitrack message")
    fourcc = None if multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS else c.take(4)
    return multitrack_type, packet_type, fourcc


# --------------------------------------------------------------------------- video parsing


def _video_codec_from_fourcc(fourcc: bytes) -> Codec:
    codec = _VIDEO_FOURCC.get(fourcc)
    if codec is None:
        name = _UNSUPPORTED_VIDEO_FOURCC.get(fourcc, "unknown video codec")
        raise UnsupportedCodecError(f"{name} (Enhanced RTMP FourCC {fourcc!r})")
    return codec


def _parse_legacy_video(c: ByteReader, frame_type: int, codec_id: int) -> VideoTag:
    if codec_id not in (VideoCodecId.AVC, VideoCodecId.HEVC):
        if frame_type == VideoFrameType.COMMAND:
            return VideoTag(None, VideoFrameType.COMMAND, TagPacket.COMMAND, data=c.take(1))
        name = _UNSUPPORTED_VIDEO_CODECS.get(codec_id, "unknown video codec")
        raise UnsupportedCodecError(f"{name} (FLV video codec id {codec_id})")
    codec = Codec.H264 if codec_id == VideoCodecId.AVC else Codec.HEVC
    ftype = VideoFrameType(frame_type)
    if ftype == VideoFrameType.COMMAND:
        return VideoTag(codec, ftype, TagPacket.COMMAND, data=c.take(1))
    packet_type = c.u8()
    if packet_type == AvcPacketType.END_OF_SEQUENCE:
        return VideoTag(codec, ftype, TagPacket.END_OF_SEQUENCE)  # composition time irrelevant
    composition_time = c.si24()
    if packet_type == AvcPacketType.SEQUENCE_HEADER:
        return VideoTag(codec, ftype, TagPacket.SEQUENCE_HEADER, data=c.rest())
    if packet_type == AvcPacketType.NALU:
        return VideoTag(codec, ftype, TagPacket.CODED_FRAME, composition_time, c.rest())
    raise MalformedMediaError(f"reserved AVCPacketType {packet_type}")


def _parse_ex_video(c: ByteReader, raw_frame_type: int, packet_type: int) -> VideoTag:
    packet_type, offset_ns = _read_modex(c, packet_type, VideoPacketType.MODEX)
    if packet_type > VideoPacketType.MODEX:
        raise MalformedMediaError(f"reserved VideoPacketType {packet_type}")
    if raw_frame_type in VideoFrameType._value2member_map_:
        frame_type = VideoFrameType(raw_frame_type)
    elif packet_type == VideoPacketType.METADATA:
        frame_type = VideoFrameType.COMMAND  # the spec says to ignore it for Metadata
    else:
        raise MalformedMediaError(f"reserved VideoFrameType {raw_frame_type}")
    if frame_type == VideoFrameType.COMMAND and packet_type != VideoPacketType.METADATA:
        # ExVideoTagHeader: a command frame carries one VideoCommand byte and no body.
        return VideoTag(None, frame_type, TagPacket.COMMAND, data=c.take(1), enhanced=True,
                        timestamp_offset_ns=offset_ns)
    track_id = 0
    if packet_type == VideoPacketType.MULTITRACK:
        multitrack_type, packet_type, fourcc = _multitrack_header(c, VideoPacketType.MULTITRACK)
        fourcc, track_id, body = _read_multitrack(c, multitrack_type, fourcc)
        c = ByteReader(body, "FLV video track")
    else:
        fourcc = c.take(4)
    codec = _video_codec_from_fourcc(fourcc)
    composition_time = 0
    if packet_type == VideoPacketType.SEQUENCE_START:
        packet = TagPacket.SEQUENCE_HEADER
    elif packet_type == VideoPacketType.CODED_FRAMES:
        packet = TagPacket.CODED_FRAME
        if codec in (Codec.H264, Codec.HEVC):
            composition_time = c.si24()
    elif packet_type == VideoPacketType.CODED_FRAMES_X:
        packet = TagPacket.CODED_FRAME
    elif packet_type == VideoPacketType.SEQUENCE_END:
        packet = TagPacket.END_OF_SEQUENCE
    elif packet_type == VideoPacketType.METADATA:
        packet = TagPacket.METADATA
    elif packet_type == VideoPacketType.MPEG2TS_SEQUENCE_START:
        packet = TagPacket.MPEG2TS_SEQUENCE_START
    else:
        raise MalformedMediaError(f"VideoPacketType {packet_type} not allowed here")
    return VideoTag(codec, frame_type, packet, composition_time, c.rest(), True, track_id, offset_ns)


# First bytes of the most common tags, for the fast paths below (FLV §E.4.3.1: FrameType
# in the high nibble, CodecID 7 = AVC in the low one; §E.4.2.1: SoundFormat 10 = AAC).
_AVC_KEY_BYTE = (VideoFrameType.KEY << 4) | VideoCodecId.AVC
_AVC_INTER_BYTE = (VideoFrameType.INTER << 4) | VideoCodecId.AVC
# Enum members as module constants for the per-message paths below: on CPython 3.11
# ``Enum.MEMBER`` is an unspecialised class attribute look-up (~60 ns), a module
# global ~5 ns, and these are read several times for every audio/video message.
_KEY = VideoFrameType.KEY
_INTER = VideoFrameType.INTER
_KEYFRAME_TYPES = (VideoFrameType.KEY, VideoFrameType.GENERATED_KEY)
_H264 = Codec.H264
_AAC = Codec.AAC
_CODED_FRAME = TagPacket.CODED_FRAME
_NALU = int(AvcPacketType.NALU)
_SOUND_AAC = int(SoundFormat.AAC)
_AAC_RAW = int(AacPacketType.RAW)


def avc_coded_frame(payload: bytes) -> tuple[bool, int, bytes] | None:
    """Nearly every message of an H.264 stream, read without a :class:`VideoTag`: a legacy
    AVC key or inter frame with AVCPacketType 1 (NALUs) and its SI24 composition time
    (§E.4.3.1, 5 bytes of header). Returns ``(keyframe, composition_time, data)``, the
    fields :func:`parse_video_tag` would give it (codec H.264, a coded frame, track 0),
    or None for any other tag (then parse it with :func:`parse_video_tag`).

    For the ingest, which reads each tag's fields once and keeps none of them."""
    if len(payload) >= 5 and payload[1] == _NALU:
        b = payload[0]
        if b == _AVC_KEY_BYTE:
            return True, int.from_bytes(payload[2:5], "big", signed=True), payload[5:]
        if b == _AVC_INTER_BYTE:
            return False, int.from_bytes(payload[2:5], "big", signed=True), payload[5:]
    return None


def parse_video_tag(payload: bytes) -> VideoTag:
    """Parse the body of an RTMP video message / FLV video tag (legacy or Enhanced RTMP)."""
    # Fast path for nearly every message of an H.264 stream (see avc_coded_frame): same
    # result as the general parser below, without its reader object.
    frame = avc_coded_frame(payload)
    if frame is not None:
        keyframe, composition_time, data = frame
        return VideoTag(_H264, _KEY if keyframe else _INTER, _CODED_FRAME, composition_time, data)
    c = ByteReader(payload, "FLV video tag")
    b = c.u8()
    if b & 0x80:  # IsExHeader
        return _parse_ex_video(c, (b >> 4) & 0x07, b & 0x0F)
    frame_type = b >> 4
    if frame_type not in VideoFrameType._value2member_map_:
        raise MalformedMediaError(f"reserved FLV video FrameType {frame_type}")
    return _parse_legacy_video(c, frame_type, b & 0x0F)


# --------------------------------------------------------------------------- audio parsing


def _audio_codec_from_fourcc(fourcc: bytes) -> Codec:
    codec = _AUDIO_FOURCC.get(fourcc)
    if codec is None:
        name = _UNSUPPORTED_AUDIO_FOURCC.get(fourcc, "unknown audio codec")
        raise UnsupportedCodecError(f"{name} audio (Enhanced RTMP FourCC {fourcc!r})")
    return codec


def _parse_ex_audio(c: ByteReader, packet_type: int) -> AudioTag:
    packet_type, offset_ns = _read_modex(c, packet_type, AudioPacketType.MODEX)
    if packet_type not in AudioPacketType._value2member_map_:
        raise MalformedMediaError(f"reserved AudioPacketType {packet_type}")
    track_id = 0
    if packet_type == AudioPacketType.MULTITRACK:
        multitrack_type, packet_type, fourcc = _multitrack_header(c, AudioPacketType.MULTITRACK)
        if packet_type not in AudioPacketType._value2member_map_:
            raise MalformedMediaError(f"reserved AudioPacketType {packet_type}")
        fourcc, track_id, body = _read_multitrack(c, multitrack_type, fourcc)
        c = ByteReader(body, "FLV audio track")
    else:
        fourcc = c.take(4)
    codec = _audio_codec_from_fourcc(fourcc)
    packets = {
        AudioPacketType.SEQUENCE_START: TagPacket.SEQUENCE_HEADER,
        AudioPacketType.CODED_FRAMES: TagPacket.CODED_FRAME,
        AudioPacketType.SEQUENCE_END: TagPacket.END_OF_SEQUENCE,
        AudioPacketType.MULTICHANNEL_CONFIG: TagPacket.MULTICHANNEL_CONFIG,
    }
    return AudioTag(codec, packets[AudioPacketType(packet_type)], c.rest(), True, track_id, offset_ns)


def aac_raw_frame(payload: bytes) -> bytes | None:
    """Most messages of a stream, read without an :class:`AudioTag`: a raw AAC frame
    (SoundFormat 10, AACPacketType 1; FLV §E.4.2.1-2). Returns its data (maybe empty), the
    one field :func:`parse_audio_tag` would not know in advance (codec AAC, a coded frame,
    track 0), or None for any other tag (then parse it with :func:`parse_audio_tag`)."""
    if len(payload) >= 2 and payload[0] >> 4 == _SOUND_AAC and payload[1] == _AAC_RAW:
        return payload[2:]
    return None


def parse_audio_tag(payload: bytes) -> AudioTag:
    """Parse the body of an RTMP audio message / FLV audio tag (legacy AAC or Enhanced RTMP).

    An empty payload (RTMP's "audio silence" message) is malformed here; callers that
    want to tolerate it check for emptiness first.
    """
    # Fast path for most messages of a stream (see aac_raw_frame). Same result as the
    # general parser below.
    data = aac_raw_frame(payload)
    if data is not None:
        return AudioTag(_AAC, _CODED_FRAME, data)
    c = ByteReader(payload, "FLV audio tag")
    b = c.u8()
    sound_format = b >> 4
    if sound_format == SoundFormat.EX_HEADER:
        return _parse_ex_audio(c, b & 0x0F)
    if sound_format == SoundFormat.AAC:
        packet_type = c.u8()
        if packet_type == AacPacketType.SEQUENCE_HEADER:
            return AudioTag(Codec.AAC, TagPacket.SEQUENCE_HEADER, c.rest())
        if packet_type == AacPacketType.RAW:
            return AudioTag(Codec.AAC, TagPacket.CODED_FRAME, c.rest())
        raise MalformedMediaError(f"reserved AACPacketType {packet_type}")
    name = _UNSUPPORTED_SOUND_FORMATS.get(sound_format)
    if name is None:
        raise MalformedMediaError(f"reserved FLV SoundFormat {sound_format}")
    raise UnsupportedCodecError(f"{name} audio (FLV SoundFormat {sound_format})")


# --------------------------------------------------------------------------- builders


def _si24(value: int) -> bytes:
    if not -(1 << 23) <= value < (1 << 23):
        raise ValueError(f"composition time {value} ms does not fit SI24")
    return (value & 0xFFFFFF).to_bytes(3, "big")


def _ex_video_header(frame_type: VideoFrameType, packet_type: VideoPacketType, codec: Codec) -> bytes:
    return bytes([0x80 | (frame_type << 4) | packet_type]) + _FOURCC_OF_VIDEO[codec]


def _require(track: TrackInfo, kind: TrackKind) -> None:
    if track.kind is not kind:
        raise ValueError(f"{track.codec.value} is not a {kind.value} codec")


def build_video_sequence_header(track: TrackInfo) -> bytes:
    """The sequence header message for ``track``.

    H.264 uses the legacy AVC layout (``17 00 000000`` + avcC) every player understands;
    HEVC, AV1 and VP9 use Enhanced RTMP SequenceStart + FourCC + configuration record.
    """
    _require(track, TrackKind.VIDEO)
    if track.codec is Codec.H264:
        return bytes([(VideoFrameType.KEY << 4) | VideoCodecId.AVC, AvcPacketType.SEQUENCE_HEADER, 0, 0, 0]) + track.config
    return _ex_video_header(VideoFrameType.KEY, VideoPacketType.SEQUENCE_START, track.codec) + track.config


def build_video_end_of_sequence(track: TrackInfo) -> bytes:
    """The end-of-sequence message for ``track`` (legacy for H.264, E-RTMP otherwise)."""
    _require(track, TrackKind.VIDEO)
    if track.codec is Codec.H264:
        return bytes([(VideoFrameType.KEY << 4) | VideoCodecId.AVC, AvcPacketType.END_OF_SEQUENCE, 0, 0, 0])
    return _ex_video_header(VideoFrameType.KEY, VideoPacketType.SEQUENCE_END, track.codec)


def build_video_frame(unit: MediaUnit) -> bytes:
    """The video message for one access unit (frame type from ``unit.keyframe``).

    H.264: legacy ``AVCPacketType`` 1 with SI24 composition time. HEVC: E-RTMP CodedFrames
    with SI24 composition time (understood by FFmpeg 6.1+). AV1/VP9: E-RTMP CodedFrames
    (these codecs have no composition time).
    """
    _require(unit.track, TrackKind.VIDEO)
    frame_type = VideoFrameType.KEY if unit.keyframe else VideoFrameType.INTER
    codec = unit.track.codec
    if codec is Codec.H264:
        head = bytes([(frame_type << 4) | VideoCodecId.AVC, AvcPacketType.NALU])
        return head + _si24(unit.composition_offset) + unit.data
    head = _ex_video_header(frame_type, VideoPacketType.CODED_FRAMES, codec)
    if codec is Codec.HEVC:
        return head + _si24(unit.composition_offset) + unit.data
    return head + unit.data


#: FLV §E.4.2.1: for AAC, SoundRate 3 (44 kHz), SoundSize 1 (16 bit), SoundType 1 (stereo)
#: always; the real parameters are in the AudioSpecificConfig.
_AAC_HEADER_BYTE = (SoundFormat.AAC << 4) | (3 << 2) | (1 << 1) | 1


def build_audio_sequence_header(track: TrackInfo) -> bytes:
    """``AF 00`` + AudioSpecificConfig (legacy AAC layout)."""
    _require(track, TrackKind.AUDIO)
    return bytes([_AAC_HEADER_BYTE, AacPacketType.SEQUENCE_HEADER]) + track.config


def build_audio_frame(unit: MediaUnit) -> bytes:
    """``AF 01`` + one raw AAC frame (legacy AAC layout)."""
    _require(unit.track, TrackKind.AUDIO)
    return bytes([_AAC_HEADER_BYTE, AacPacketType.RAW]) + unit.data
