"""The two values that flow through the whole server: a track's description and a unit of media.

Everything downstream of ingest (hub, HLS muxers, transcoder, recorder, RTMP playback)
sees only these, never FLV or RTMP bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


# StrEnum rather than Enum: members are used as dict keys on the per-frame path, and
# str's C hash is several times cheaper than Enum's Python-level __hash__.
class TrackKind(enum.StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


class Codec(enum.StrEnum):
    H264 = "h264"
    HEVC = "hevc"
    AV1 = "av1"
    VP9 = "vp9"
    AAC = "aac"

    @property
    def kind(self) -> TrackKind:
        return TrackKind.AUDIO if self is Codec.AAC else TrackKind.VIDEO


def orientation(width: int, height: int) -> str | None:
    """How a ``width``×``height`` picture stands: "portrait" (taller than wide, a phone held
    upright), "landscape" or "square"; None when the size is unknown (0)."""
    if width <= 0 or height <= 0:
        return None
    return "portrait" if height > width else "landscape" if width > height else "square"


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What a decoder or a muxer needs to know about one track.

    ``config`` is the codec's configuration record exactly as carried in MP4/FLV:
    AVCDecoderConfigurationRecord (avcC), HEVCDecoderConfigurationRecord (hvcC),
    AV1CodecConfigurationRecord (av1C), VPCodecConfigurationRecord (vpcC) or the AAC
    AudioSpecificConfig. ``codec_string`` is the RFC 6381 value for HLS ``CODECS``
    (e.g. ``avc1.64001f``, ``mp4a.40.2``).
    """

    codec: Codec
    config: bytes
    codec_string: str
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    #: AVC/HEVC: size in bytes of each NAL unit's length prefix in MediaUnit.data (1, 2 or 4).
    nal_length_size: int = 4
    #: Derived from ``codec``; stored because it is read for every unit.
    kind: TrackKind = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", self.codec.kind)


@dataclass(frozen=True, slots=True)
class MediaUnit:
    """One access unit (a video frame or an audio frame), timestamps in milliseconds.

    ``dts`` is monotonic per track (never decreases) and does not wrap: ingest
    has already unwrapped RTMP's 32-bit clock and rebased jumps. ``pts = dts + composition
    offset``. Video data is in the MP4 sample format of its codec: length-prefixed NAL
    units for AVC/HEVC (prefix size ``track.nal_length_size``), low-overhead OBUs for AV1,
    the frame for VP9. Audio data is one raw AAC frame (no ADTS header).
    """

    track: TrackInfo
    dts: int
    pts: int
    keyframe: bool
    data: bytes
    #: True on the first unit after a discontinuity (publisher reconnect, timestamp jump).
    discontinuity: bool = False

    @property
    def kind(self) -> TrackKind:
        return self.track.kind

    @property
    def composition_offset(self) -> int:
        return self.pts - self.dts


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """What the encoder told us about itself in ``onMetaData`` (all optional)."""

    values: dict = field(default_factory=dict)
