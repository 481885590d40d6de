"""H.265/HEVC: the decoder configuration record (hvcC), the SPS, NAL types, codec string.

References: ISO/IEC 14496-15 §8.3.3 (HEVCDecoderConfigurationRecord) and Annex E.3
(``hvc1``/``hev1`` codec parameters for RFC 6381), ITU-T H.265 §7.3.1.2 (NAL unit header),
§7.3.2.2 (seq_parameter_set_rbsp), §7.3.3 (profile_tier_level).

NAL framing (length-prefixed ↔ Annex B) is identical to AVC: use
:func:`mediasrv.media.avc.iter_length_prefixed` and friends, re-exported here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from mediasrv.media.avc import (
    MAX_DIMENSION,
    annexb_to_length_prefixed,
    iter_annexb,
    iter_length_prefixed,
    length_prefixed_to_annexb,
)
from mediasrv.media.bitreader import BitReader, ByteReader, unescape_rbsp
from mediasrv.media.errors import MalformedMediaError

__all__ = [
    "HevcConfig",
    "HevcNalArray",
    "HevcNalType",
    "HevcProfileTierLevel",
    "HevcSps",
    "annexb_to_length_prefixed",
    "build_hvcc",
    "hevc_codec_string",
    "is_irap",
    "iter_annexb",
    "iter_length_prefixed",
    "length_prefixed_to_annexb",
    "nal_type",
    "parse_hvcc",
    "parse_sps",
]


class HevcNalType(enum.IntEnum):
    """``nal_unit_type`` values (H.265 Table 7-1) that the server cares about."""

    TRAIL_N = 0
    TRAIL_R = 1
    BLA_W_LP = 16
    BLA_W_RADL = 17
    BLA_N_LP = 18
    IDR_W_RADL = 19
    IDR_N_LP = 20
    CRA_NUT = 21
    VPS = 32
    SPS = 33
    PPS = 34
    AUD = 35
    EOS = 36
    EOB = 37
    FD = 38
    PREFIX_SEI = 39
    SUFFIX_SEI = 40


def nal_type(nal: bytes) -> int:
    """``nal_unit_type`` of an H.265 NAL unit (H.265 §7.3.1.2: bits 1–6 of the first byte)."""
    if len(nal) < 2:
        raise MalformedMediaError("HEVC NAL unit shorter than its 2-byte header")
    return (nal[0] >> 1) & 0x3F


def is_irap(nal: bytes) -> bool:
    """True for an intra random access point picture (BLA, IDR, CRA: types 16–23)."""
    return 16 <= nal_type(nal) <= 23


# --------------------------------------------------------------------------- SPS


@dataclass(frozen=True, slots=True)
class HevcProfileTierLevel:
    """The ``general_*`` fields of profile_tier_level() (H.265 §7.3.3)."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    #: general_profile_compatibility_flag[0..31], flag j at bit (31 - j).
    compatibility_flags: int
    #: The 48 bits from general_progressive_source_flag to general_inbld/reserved flag.
    constraint_flags: int
    level_idc: int


@dataclass(frozen=True, slots=True)
class HevcSps:
    """The fields of an HEVC sequence parameter set that a muxer or player needs."""

    ptl: HevcProfileTierLevel
    sps_id: int
    max_sub_layers: int
    temporal_id_nesting: bool
    chroma_format_idc: int
    #: Display size after the conformance window.
    width: int
    height: int
    bit_depth_luma: int
    bit_depth_chroma: int


def _parse_ptl(r: BitReader, max_sub_layers_minus1: int) -> HevcProfileTierLevel:
    # H.265 §7.3.3 profile_tier_level(profilePresentFlag = 1, maxNumSubLayersMinus1)
    profile_space = r.u(2)
    tier = r.u(1)
    profile_idc = r.u(5)
    compat = r.u(32)
    constraints = r.u(48)
    level_idc = r.u(8)
    sub_profile = []
    sub_level = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.flag())
        sub_level.append(r.flag())
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.skip(88)  # sub_layer profile space … reserved flags
        if sub_level[i]:
            r.skip(8)  # sub_layer_level_idc
    return HevcProfileTierLevel(profile_space, tier, profile_idc, compat, constraints, level_idc)


def parse_sps(nal: bytes) -> HevcSps:
    """Parse an HEVC SPS NAL unit (including its 2-byte NAL header).

    Width and height honour the conformance window (H.265 §7.4.3.2.1: offsets are in
    units of SubWidthC / SubHeightC).
    """
    if nal_type(nal) != HevcNalType.SPS:
        raise MalformedMediaError("not an HEVC SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[2:]))
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 > 6:
        raise MalformedMediaError(f"sps_max_sub_layers_minus1 {max_sub_layers_minus1} > 6")
    nesting = r.flag()
    ptl = _parse_ptl(r, max_sub_layers_minus1)
    sps_id = r.ue()
    if sps_id > 15:
        raise MalformedMediaError(f"sps_seq_parameter_set_id {sps_id} > 15")
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise MalformedMediaError(f"chroma_format_idc {chroma_format_idc} > 3")
    separate_colour_plane = chroma_format_idc == 3 and r.flag()
    pic_width = r.ue()
    pic_height = r.ue()
    left = right = top = bottom = 0
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    bit_depth_luma = r.ue() + 8
    bit_depth_chroma = r.ue() + 8
    if bit_depth_luma > 16 or bit_depth_chroma > 16:
        raise MalformedMediaError("bit depth above 16")
    # Table 6-1: SubWidthC/SubHeightC (1 when ChromaArrayType is 0).
    if separate_colour_plane or chroma_format_idc in (0, 3):
        sub_w = sub_h = 1
    elif chroma_format_idc == 2:
        sub_w, sub_h = 2, 1
    else:
        sub_w = sub_h = 2
    width = pic_width - sub_w * (left + right)
    height = pic_height - sub_h * (top + bottom)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise MalformedMediaError(f"invalid picture size {width}x{height}")
    return HevcSps(
        ptl=ptl,
        sps_id=sps_id,
        max_sub_layers=max_sub_layers_minus1 + 1,
        temporal_id_nesting=nesting,
        chroma_format_idc=chroma_format_idc,
        width=width,
        height=height,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
    )


# --------------------------------------------------------------------------- codec string


def _reverse32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def hevc_codec_string(ptl: HevcProfileTierLevel, sample_entry: str = "hvc1") -> str:
    """RFC 6381 codec string per ISO/IEC 14496-15 Annex E.3, e.g. ``hvc1.1.6.L93.B0``.

    profile_space as '', 'A', 'B', 'C' before profile_idc; the 32 compatibility flags in
    reverse bit order as hex; 'L'/'H' (tier) + level_idc; then the six constraint bytes
    in hex, trailing zero bytes omitted.
    """
    space = ("", "A", "B", "C")[ptl.profile_space & 3]
    parts = [
        sample_entry,
        f"{space}{ptl.profile_idc}",
        f"{_reverse32(ptl.compatibility_flags):X}",
        f"{'H' if ptl.tier_flag else 'L'}{ptl.level_idc}",
    ]
    constraint_bytes = list(ptl.constraint_flags.to_bytes(6, "big"))
    while constraint_bytes and constraint_bytes[-1] == 0:
        constraint_bytes.pop()
    parts.extend(f"{b:X}" for b in constraint_bytes)
    return ".".join(parts)


# --------------------------------------------------------------------------- hvcC


@dataclass(frozen=True, slots=True)
class HevcNalArray:
    """One entry of the hvcC ``arrays`` loop."""

    nal_type: int
    complete: bool
    nalus: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class HevcConfig:
    """An HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1)."""

    ptl: HevcProfileTierLevel
    min_spatial_segmentation_idc: int
    parallelism_type: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    avg_frame_rate: int
    constant_frame_rate: int
    num_temporal_layers: int
    temporal_id_nested: bool
    nal_length_size: int
    arrays: tuple[HevcNalArray, ...]

    def nalus_of(self, nal_type_: int) -> tuple[bytes, ...]:
        """All NAL units of the arrays whose type is ``nal_type_``."""
        return tuple(n for a in self.arrays if a.nal_type == nal_type_ for n in a.nalus)

    @property
    def vps(self) -> tuple[bytes, ...]:
        """The VPS NAL units of the arrays."""
        return self.nalus_of(HevcNalType.VPS)

    @property
    def sps(self) -> tuple[bytes, ...]:
        """The SPS NAL units of the arrays."""
        return self.nalus_of(HevcNalType.SPS)

    @property
    def pps(self) -> tuple[bytes, ...]:
        """The PPS NAL units of the arrays."""
        return self.nalus_of(HevcNalType.PPS)

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string (``hvc1.…``) from the record's general_* fields."""
        return hevc_codec_string(self.ptl)

    def parsed_sps(self) -> HevcSps:
        """The first SPS of the arrays, parsed."""
        sps = self.sps
        if not sps:
            raise MalformedMediaError("hvcC carries no SPS")
        return parse_sps(sps[0])


def parse_hvcc(data: bytes) -> HevcConfig:
    """Parse an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1.1)."""
    c = ByteReader(data, "hvcC")
    version = c.u8()
    if version != 1:
        raise MalformedMediaError(f"hvcC configurationVersion {version}, expected 1")
    b = c.u8()
    profile_space, tier, profile_idc = b >> 6, (b >> 5) & 1, b & 0x1F
    compat = c.u32()
    constraints = int.from_bytes(c.take(6), "big")
    level_idc = c.u8()
    min_seg = c.u16() & 0x0FFF  # reserved '1111' + min_spatial_segmentation_idc
    parallelism = c.u8() & 0x03
    chroma = c.u8() & 0x03
    luma_depth = (c.u8() & 0x07) + 8
    chroma_depth = (c.u8() & 0x07) + 8
    avg_frame_rate = c.u16()
    b = c.u8()
    constant_frame_rate = b >> 6
    num_temporal_layers = (b >> 3) & 0x07
    nested = bool((b >> 2) & 1)
    length_size = (b & 0x03) + 1
    if length_size == 3:
        raise MalformedMediaError("hvcC lengthSizeMinusOne 2 is not allowed")
    arrays = []
    for _ in range(c.u8()):  # numOfArrays
        b = c.u8()
        complete = bool(b >> 7)
        array_type = b & 0x3F
        nalus = []
        for _ in range(c.u16()):  # numNalus
            nal = c.take(c.u16())
            if len(nal) < 2:
                raise MalformedMediaError("hvcC NAL unit shorter than its header")
            nalus.append(nal)
        arrays.append(HevcNalArray(array_type, complete, tuple(nalus)))
    return HevcConfig(
        ptl=HevcProfileTierLevel(profile_space, tier, profile_idc, compat, constraints, level_idc),
        min_spatial_segmentation_idc=min_seg,
        parallelism_type=parallelism,
        chroma_format_idc=chroma,
        bit_depth_luma=luma_depth,
        bit_depth_chroma=chroma_depth,
        avg_frame_rate=avg_frame_rate,
        constant_frame_rate=constant_frame_rate,
        num_temporal_layers=num_temporal_layers,
        temporal_id_nested=nested,
        nal_length_size=length_size,
        arrays=tuple(arrays),
    )


def build_hvcc(
    vps: Iterable[bytes], sps: Iterable[bytes], pps: Iterable[bytes],
    sei: Iterable[bytes] = (), nal_length_size: int = 4, array_completeness: bool = True,
) -> bytes:
    """Build an HEVCDecoderConfigurationRecord from parameter-set NAL units.

    The general_* fields, chroma format and bit depths come from the first SPS;
    min_spatial_segmentation_idc, parallelismType, avgFrameRate and constantFrameRate are
    written as 0 ("unknown"), which 14496-15 permits. ``array_completeness`` should be
    True for an ``hvc1`` sample entry (parameter sets only out of band).
    """
    groups = [
        (HevcNalType.VPS, [bytes(n) for n in vps]),
        (HevcNalType.SPS, [bytes(n) for n in sps]),
        (HevcNalType.PPS, [bytes(n) for n in pps]),
        (HevcNalType.PREFIX_SEI, [bytes(n) for n in sei]),
    ]
    if not groups[1][1]:
        raise ValueError("at least one SPS is required")
    if nal_length_size not in (1, 2, 4):
        raise ValueError(f"NAL length size must be 1, 2 or 4, not {nal_length_size}")
    first = parse_sps(groups[1][1][0])
    ptl = first.ptl
    out = bytearray([1, (ptl.profile_space << 6) | (ptl.tier_flag << 5) | ptl.profile_idc])
    out += ptl.compatibility_flags.to_bytes(4, "big")
    out += ptl.constraint_flags.to_bytes(6, "big")
    out.append(ptl.level_idc)
    out += (0xF000).to_bytes(2, "big")  # reserved '1111' + min_spatial_segmentation_idc 0
    out.append(0xFC)  # reserved + parallelismType 0
    out.append(0xFC | first.chroma_format_idc)
    out.append(0xF8 | (first.bit_depth_luma - 8))
    out.append(0xF8 | (first.bit_depth_chroma - 8))
    out += (0).to_bytes(2, "big")  # avgFrameRate
    out.append((first.max_sub_layers << 3) | (int(first.temporal_id_nesting) << 2) | (nal_length_size - 1))
    present = [(t, nalus) for t, nalus in groups if nalus]
    out.append(len(present))
    for t, nalus in present:
        out.append((0x80 if array_completeness else 0) | int(t))
        out += len(nalus).to_bytes(2, "big")
        for nal in nalus:
            out += len(nal).to_bytes(2, "big") + nal
    return bytes(out)
