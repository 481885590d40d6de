"""The codec facts the HLS writers need, taken from ``mediasrv.media`` parsers: AAC frame
length and rate, the ADTS header, parameter sets out of avcC/hvcC, NAL iteration, and the
RFC 6381 string of a track (its own, or one derived from its configuration)."""

from __future__ import annotations

from mediasrv.media import aac, avc, hevc
from mediasrv.media.errors import MediaError
from mediasrv.media.types import Codec, TrackInfo

#: Any error of a malformed or unsupported codec configuration.
CodecConfigError = MediaError

AudioSpecificConfig = aac.AudioSpecificConfig
parse_audio_specific_config = aac.parse_asc
iter_nal_units = avc.iter_length_prefixed


def adts_template(config: aac.AudioSpecificConfig) -> bytes:
    """The 7-byte ADTS header of ``config`` for an empty frame (see ``adts_header``)."""
    return aac.build_adts_header(config, 0)


def adts_header(template: bytes, payload_size: int) -> bytes:
    """``template`` with its 13-bit frame length set for a ``payload_size``-byte frame
    (the bit-level build runs once per track, not once per frame)."""
    length = payload_size + 7
    if length >= 1 << 13:
        raise ValueError(f"AAC frame of {payload_size} bytes too long for ADTS")
    return bytes((
        template[0], template[1], template[2],
        (template[3] & 0xFC) | (length >> 11),
        (length >> 3) & 0xFF,
        (template[5] & 0x1F) | ((length & 7) << 5),
        template[6],
    ))


def parameter_sets(track: TrackInfo) -> list[bytes]:
    """The parameter-set NAL units of an AVC (SPS, PPS) or HEVC (VPS, SPS, PPS) track."""
    if track.codec is Codec.HEVC:
        config = hevc.parse_hvcc(track.config)
        return [*config.vps, *config.sps, *config.pps]
    config = avc.parse_avcc(track.config)
    return [*config.sps, *config.pps]


def codec_string(track: TrackInfo) -> str:
    """The RFC 6381 string: the track's own, or one derived from its config."""
    if track.codec_string:
        return track.codec_string
    try:
        if track.codec is Codec.H264:
            return avc.parse_avcc(track.config).codec_string
        if track.codec is Codec.HEVC:
            return hevc.parse_hvcc(track.config).codec_string
        if track.codec is Codec.AAC:
            return aac.parse_asc(track.config).codec_string
    except MediaError:
        pass
    return {
        Codec.H264: "avc1", Codec.HEVC: "hvc1", Codec.AV1: "av01", Codec.VP9: "vp09", Codec.AAC: "mp4a.40.2",
    }[track.codec]
