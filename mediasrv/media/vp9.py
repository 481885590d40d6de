"""VP9: the VP codec configuration record (vpcC) and the frame header's picture size.

References: VP Codec ISO Media File Format Binding v1.0 §2.2 (VPCodecConfigurationRecord,
``vpcC`` box) and §4 (``vp09`` codec string); VP9 Bitstream & Decoding Process
Specification v0.6 §6.2 (uncompressed_header), §6.2.2 (color_config), §6.2.3 (frame_size).
"""

from __future__ import annotations

from dataclasses import dataclass

from mediasrv.media.bitreader import BitReader, ByteReader
from mediasrv.media.errors import MalformedMediaError

__all__ = ["Vp9FrameHeader", "VpcConfig", "build_vpcc", "parse_frame_header", "parse_vpcc", "vp9_codec_string"]


def vp9_codec_string(profile: int, level: int, bit_depth: int) -> str:
    """``vp09.PP.LL.DD`` (VP codec binding §4), e.g. ``vp09.00.31.08``."""
    return f"vp09.{profile:02d}.{level:02d}.{bit_depth:02d}"


@dataclass(frozen=True, slots=True)
class VpcConfig:
    """A VPCodecConfigurationRecord (VP codec binding §2.2)."""

    profile: int
    #: Level × 10 (e.g. 31 for level 3.1), as coded.
    level: int
    bit_depth: int
    chroma_subsampling: int
    video_full_range: bool
    colour_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int
    codec_initialization_data: bytes = b""

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``vp09.00.20.08``."""
        return vp9_codec_string(self.profile, self.level, self.bit_depth)


def _parse_record(c: ByteReader) -> VpcConfig:
    profile = c.u8()
    level = c.u8()
    b = c.u8()
    bit_depth, chroma, full_range = b >> 4, (b >> 1) & 0x07, bool(b & 1)
    primaries, transfer, matrix = c.u8(), c.u8(), c.u8()
    init = c.take(c.u16())
    if c.remaining:
        raise MalformedMediaError(f"vpcC has {c.remaining} trailing bytes")
    if bit_depth not in (8, 10, 12):
        raise MalformedMediaError(f"vpcC bitDepth {bit_depth} not 8, 10 or 12")
    if profile > 3:
        raise MalformedMediaError(f"vpcC profile {profile} > 3")
    return VpcConfig(profile, level, bit_depth, chroma, full_range, primaries, transfer, matrix, init)


def parse_vpcc(data: bytes) -> VpcConfig:
    """Parse a VPCodecConfigurationRecord, with or without the FullBox version/flags.

    FFmpeg's FLV and MP4 writers put the ``vpcC`` box's version (1) and flags (0) before
    the record; the record alone is also accepted. The two are told apart by the
    codecInitializationDataSize field, which must account for the rest of the data.
    """
    data = bytes(data)
    if len(data) >= 12 and data[0] == 1 and data[1:4] == b"\x00\x00\x00":
        if int.from_bytes(data[10:12], "big") == len(data) - 12:
            c = ByteReader(data[4:], "vpcC")
            return _parse_record(c)
    return _parse_record(ByteReader(data, "vpcC"))


def build_vpcc(config: VpcConfig) -> bytes:
    """Serialise ``config`` as the vpcC box payload (version 1, flags 0, then the record)."""
    return (
        b"\x01\x00\x00\x00"
        + bytes(
            [
                config.profile,
                config.level,
                (config.bit_depth << 4) | (config.chroma_subsampling << 1) | int(config.video_full_range),
                config.colour_primaries,
                config.transfer_characteristics,
                config.matrix_coefficients,
            ]
        )
        + len(config.codec_initialization_data).to_bytes(2, "big")
        + config.codec_initialization_data
    )


@dataclass(frozen=True, slots=True)
class Vp9FrameHeader:
    """The start of a VP9 uncompressed header (VP9 §6.2)."""

    profile: int
    show_existing_frame: bool
    keyframe: bool
    show_frame: bool
    #: Only known for key frames (0 otherwise).
    width: int = 0
    height: int = 0
    bit_depth: int = 8


def parse_frame_header(data: bytes) -> Vp9FrameHeader:
    """Parse the first frame's uncompressed header of a VP9 frame or superframe."""
    r = BitReader(data)
    if r.u(2) != 2:  # frame_marker
        raise MalformedMediaError("VP9 frame_marker is not 2")
    low, high = r.u(1), r.u(1)
    profile = (high << 1) | low
    if profile == 3:
        r.skip(1)  # reserved_zero
    if r.flag():  # show_existing_frame
        r.skip(3)
        return Vp9FrameHeader(profile, True, False, True)
    keyframe = r.u(1) == 0  # frame_type: 0 = KEY_FRAME
    show_frame = r.flag()
    r.skip(1)  # error_resilient_mode
    if not keyframe:
        return Vp9FrameHeader(profile, False, False, show_frame)
    if r.u(24) != 0x498342:  # frame_sync_code
        raise MalformedMediaError("VP9 frame_sync_code mismatch")
    bit_depth = 8
    if profile >= 2:  # color_config() §6.2.2
        bit_depth = 12 if r.flag() else 10
    color_space = r.u(3)
    if color_space != 7:  # not CS_RGB
        r.skip(1)  # color_range
        if profile in (1, 3):
            r.skip(3)  # subsampling_x, subsampling_y, reserved_zero
    elif profile in (1, 3):
        r.skip(1)  # reserved_zero
    width = r.u(16) + 1  # frame_size() §6.2.3
    height = r.u(16) + 1
    return Vp9FrameHeader(profile, False, True, show_frame, width, height, bit_depth)
