"""H.264/AVC: the decoder configuration record (avcC), the SPS, and NAL unit framing.

References: ISO/IEC 14496-15 §5.3.3 (AVCDecoderConfigurationRecord), ITU-T H.264
§7.3.2.1.1 (seq_parameter_set_data), Annex E.1.1 (vui_parameters), Annex B (byte stream
format) and RFC 6381 §3.3 (``avc1`` codec string).

The NAL framing helpers (length-prefixed ↔ Annex B) are shared with HEVC: ISO/IEC
14496-15 uses the same ``NALUnitLength``-prefixed sample format for both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from mediasrv.media.bitreader import BitReader, ByteReader, unescape_rbsp
from mediasrv.media.errors import MalformedMediaError

__all__ = [
    "AvcConfig",
    "AvcNalType",
    "AvcSps",
    "annexb_to_length_prefixed",
    "avc_codec_string",
    "build_avcc",
    "check_length_prefixed",
    "avcc_from_annexb_header",
    "iter_annexb",
    "iter_length_prefixed",
    "length_prefixed_to_annexb",
    "nal_type",
    "parse_avcc",
    "parse_sps",
]

#: Largest picture side we accept (the 16-bit width/height fields of MP4's visual sample entry).
MAX_DIMENSION = 65535


class AvcNalType(enum.IntEnum):
    """``nal_unit_type`` values (H.264 Table 7-1) that the server cares about."""

    SLICE = 1
    SLICE_DPA = 2
    SLICE_DPB = 3
    SLICE_DPC = 4
    IDR = 5
    SEI = 6
    SPS = 7
    PPS = 8
    AUD = 9
    END_OF_SEQUENCE = 10
    END_OF_STREAM = 11
    FILLER = 12
    SPS_EXT = 13


#: profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists
#: (H.264 §7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
#: profile_idc values whose avcC carries the chroma/bit-depth extension (14496-15 §5.3.3.1.2).
_AVCC_EXT_PROFILES = frozenset({100, 110, 122, 144})


def nal_type(nal: bytes) -> int:
    """``nal_unit_type`` of an H.264 NAL unit (low 5 bits of its first byte)."""
    if not nal:
        raise MalformedMediaError("empty NAL unit")
    return nal[0] & 0x1F


# --------------------------------------------------------------------------- framing


def _nal_spans(data: bytes, length_size: int) -> Iterator[tuple[int, int]]:
    if length_size not in (1, 2, 3, 4):
        raise MalformedMediaError(f"invalid NAL length size {length_size}")
    pos = 0
    end = len(data)
    while pos < end:
        if pos + length_size > end:
            raise MalformedMediaError(f"truncated NAL length prefix at byte {pos}")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if pos + size > end:
            raise MalformedMediaError(f"NAL unit of {size} bytes at byte {pos} runs past the end ({end})")
        if size:
            yield pos, pos + size
        pos += size


def iter_length_prefixed(data: bytes, length_size: int) -> Iterator[bytes]:
    """Yield the NAL units of an MP4/FLV sample (``NALUnitLength`` + NAL, 14496-15 §5.3.2).

    Zero-length entries are skipped. A length that runs past the end raises
    :class:`MalformedMediaError`.
    """
    data = bytes(data)
    for start, end in _nal_spans(data, length_size):
        yield data[start:end]


def check_length_prefixed(data: bytes, length_size: int) -> int:
    """Validate the length prefixes of a sample without copying; return its NAL count.

    The walk of :func:`_nal_spans` (same checks, same errors) as a plain loop: the ingest
    runs it on every video frame, and a generator resumed per NAL unit costs more than
    the walk itself."""
    if length_size not in (1, 2, 3, 4):
        raise MalformedMediaError(f"invalid NAL length size {length_size}")
    count = 0
    pos = 0
    end = len(data)
    while pos < end:
        if pos + length_size > end:
            raise MalformedMediaError(f"truncated NAL length prefix at byte {pos}")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if pos + size > end:
            raise MalformedMediaError(f"NAL unit of {size} bytes at byte {pos} runs past the end ({end})")
        if size:
            count += 1
        pos += size
    return count


def length_prefixed_to_annexb(data: bytes, length_size: int) -> bytes:
    """Convert length-prefixed NAL units to an Annex B byte stream (4-byte start codes)."""
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in iter_length_prefixed(data, length_size))


def iter_annexb(data: bytes) -> Iterator[bytes]:
    """Yield the NAL units of an Annex B byte stream (start codes ``00 00 01``/``00 00 00 01``).

    Bytes before the first start code are ignored; trailing zero bytes of a NAL unit
    (``trailing_zero_8bits``, H.264 §B.1) are dropped.
    """
    data = bytes(data)
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        end = len(data) if nxt == -1 else nxt
        nal = data[begin:end].rstrip(b"\x00")
        if nal:
            yield nal
        start = nxt


def annexb_to_length_prefixed(data: bytes, length_size: int = 4) -> bytes:
    """Convert an Annex B byte stream to length-prefixed NAL units."""
    if length_size not in (1, 2, 4):
        raise ValueError(f"NAL length size must be 1, 2 or 4, not {length_size}")
    limit = 1 << (8 * length_size)
    out = bytearray()
    for nal in iter_annexb(data):
        if len(nal) >= limit:
            raise ValueError(f"NAL unit of {len(nal)} bytes does not fit a {length_size}-byte length")
        out += len(nal).to_bytes(length_size, "big")
        out += nal
    return bytes(out)


# --------------------------------------------------------------------------- SPS


@dataclass(frozen=True, slots=True)
class AvcSps:
    """The fields of a sequence parameter set that a muxer or player needs."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_mbs_only: bool
    #: Display size after frame cropping.
    width: int
    height: int
    #: Frames per second from the VUI timing info (time_scale / (2 * num_units_in_tick)).
    frame_rate: Fraction | None = None
    #: VUI bitstream_restriction max_num_reorder_frames (0 means no B-frame reordering).
    max_num_reorder_frames: int | None = None
    #: Sample aspect ratio from the VUI (1:1 when absent).
    sar: tuple[int, int] = (1, 1)


# H.264 Table E-1: aspect_ratio_idc → sample aspect ratio.
_SAR_TABLE = {
    1: (1, 1), 2: (12, 11), 3: (10, 11), 4: (16, 11), 5: (40, 33), 6: (24, 11), 7: (20, 11),
    8: (32, 11), 9: (80, 33), 10: (18, 11), 11: (15, 11), 12: (64, 33), 13: (160, 99),
    14: (4, 3), 15: (3, 2), 16: (2, 1),
}


def _skip_scaling_list(r: BitReader, size: int) -> None:
    # H.264 §7.3.2.1.1.1 scaling_list(): delta_scale is only coded while nextScale != 0.
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = r.se()
            if not -128 <= delta <= 127:
                raise MalformedMediaError(f"delta_scale {delta} out of range")
            next_scale = (last_scale + delta + 256) % 256
        last_scale = next_scale or last_scale


def _skip_hrd(r: BitReader) -> None:
    # H.264 §E.1.2 hrd_parameters()
    cpb_cnt = r.ue() + 1
    if cpb_cnt > 32:
        raise MalformedMediaError(f"cpb_cnt_minus1 {cpb_cnt - 1} > 31")
    r.skip(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(cpb_cnt):
        r.ue()  # bit_rate_value_minus1
        r.ue()  # cpb_size_value_minus1
        r.skip(1)  # cbr_flag
    r.skip(20)  # 4 × u(5): delays and time_offset_length


def _parse_vui(r: BitReader) -> tuple[Fraction | None, int | None, tuple[int, int]]:
    # H.264 §E.1.1 vui_parameters()
    sar = (1, 1)
    if r.flag():  # aspect_ratio_info_present_flag
        idc = r.u(8)
        if idc == 255:  # Extended_SAR
            sar = (r.u(16), r.u(16))
        else:
            sar = _SAR_TABLE.get(idc, (1, 1))
    if r.flag():  # overscan_info_present_flag
        r.skip(1)
    if r.flag():  # video_signal_type_present_flag
        r.skip(4)  # video_format, video_full_range_flag
        if r.flag():  # colour_description_present_flag
            r.skip(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    frame_rate = None
    if r.flag():  # timing_info_present_flag
        num_units_in_tick = r.u(32)
        time_scale = r.u(32)
        r.skip(1)  # fixed_frame_rate_flag
        if num_units_in_tick and time_scale:
            frame_rate = Fraction(time_scale, 2 * num_units_in_tick)
    nal_hrd = r.flag()
    if nal_hrd:
        _skip_hrd(r)
    vcl_hrd = r.flag()
    if vcl_hrd:
        _skip_hrd(r)
    if nal_hrd or vcl_hrd:
        r.skip(1)  # low_delay_hrd_flag
    r.skip(1)  # pic_struct_present_flag
    reorder = None
    if r.flag():  # bitstream_restriction_flag
        r.skip(1)  # motion_vectors_over_pic_boundaries_flag
        for _ in range(4):  # max_bytes_per_pic_denom … log2_max_mv_length_vertical
            r.ue()
        reorder = r.ue()  # max_num_reorder_frames
        r.ue()  # max_dec_frame_buffering
    return frame_rate, reorder, sar


def parse_sps(nal: bytes) -> AvcSps:
    """Parse an H.264 SPS NAL unit (including its one-byte NAL header).

    Width and height honour frame cropping, chroma format and field coding (H.264
    §7.4.2.1.1, equations 7-19 to 7-22). A truncated or invalid VUI is tolerated (the
    VUI-derived fields are then ``None``); anything wrong before it raises
    :class:`MalformedMediaError`.
    """
    if not nal or nal_type(nal) != AvcNalType.SPS:
        raise MalformedMediaError("not an H.264 SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[1:]))
    profile_idc = r.u(8)
    constraint_flags = r.u(8)
    level_idc = r.u(8)
    sps_id = r.ue()
    if sps_id > 31:
        raise MalformedMediaError(f"seq_parameter_set_id {sps_id} > 31")
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise MalformedMediaError(f"chroma_format_idc {chroma_format_idc} > 3")
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        if bit_depth_luma > 14 or bit_depth_chroma > 14:
            raise MalformedMediaError("bit depth above 14")
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():  # seq_scaling_list_present_flag[i]
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num_minus4 = r.ue()
    if log2_max_frame_num_minus4 > 12:
        raise MalformedMediaError("log2_max_frame_num_minus4 > 12")
    poc_type = r.ue()
    if poc_type == 0:
        if r.ue() > 12:  # log2_max_pic_order_cnt_lsb_minus4
            raise MalformedMediaError("log2_max_pic_order_cnt_lsb_minus4 > 12")
    elif poc_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        cycle = r.ue()
        if cycle > 255:
            raise MalformedMediaError("num_ref_frames_in_pic_order_cnt_cycle > 255")
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise MalformedMediaError(f"pic_order_cnt_type {poc_type} > 2")
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if r.flag():  # frame_cropping_flag
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    # §7.4.2.1.1: ChromaArrayType and the crop units.
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    field_factor = 1 if frame_mbs_only else 2
    if chroma_array_type == 0:
        crop_x, crop_y = 1, field_factor
    else:
        sub_w = 1 if chroma_format_idc == 3 else 2
        sub_h = 2 if chroma_format_idc == 1 else 1
        crop_x, crop_y = sub_w, sub_h * field_factor
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = field_factor * height_map_units * 16 - crop_y * (crop[2] + crop[3])
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise MalformedMediaError(f"invalid picture size {width}x{height}")
    frame_rate = reorder = None
    sar = (1, 1)
    if r.flag():  # vui_parameters_present_flag
        try:
            frame_rate, reorder, sar = _parse_vui(r)
        except MalformedMediaError:
            pass  # a broken VUI does not make the stream undecodable
    return AvcSps(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        sps_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
        frame_rate=frame_rate,
        max_num_reorder_frames=reorder,
        sar=sar,
    )


# --------------------------------------------------------------------------- avcC


def avc_codec_string(profile_idc: int, constraint_flags: int, level_idc: int) -> str:
    """RFC 6381 §3.3 ``avc1.PPCCLL`` (hex profile_idc, constraint byte, level_idc)."""
    return f"avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}"


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """An AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1)."""

    profile_idc: int
    profile_compatibility: int
    level_idc: int
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    #: High-profile extension (absent in many real-world records even for High profile).
    chroma_format_idc: int | None = None
    bit_depth_luma: int | None = None
    bit_depth_chroma: int | None = None
    sps_ext: tuple[bytes, ...] = ()

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``avc1.64001f``."""
        return avc_codec_string(self.profile_idc, self.profile_compatibility, self.level_idc)

    def parsed_sps(self) -> AvcSps:
        """The first SPS, parsed."""
        if not self.sps:
            raise MalformedMediaError("avcC carries no SPS")
        return parse_sps(self.sps[0])


def _nal_list(c: ByteReader, count: int) -> tuple[bytes, ...]:
    out = []
    for _ in range(count):
        out.append(c.take(c.u16()))
    return tuple(out)


def parse_avcc(data: bytes) -> AvcConfig:
    """Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1.1).

    The high-profile extension (chroma_format, bit depths, SPS extensions) is read when
    present and ignored when absent or truncated, as many encoders omit it.
    """
    c = ByteReader(data, "avcC")
    version = c.u8()
    if version != 1:
        raise MalformedMediaError(f"avcC configurationVersion {version}, expected 1")
    profile_idc = c.u8()
    compat = c.u8()
    level_idc = c.u8()
    length_size = (c.u8() & 0x03) + 1  # reserved '111111' + lengthSizeMinusOne
    if length_size == 3:
        raise MalformedMediaError("avcC lengthSizeMinusOne 2 is not allowed")
    sps = _nal_list(c, c.u8() & 0x1F)  # reserved '111' + numOfSequenceParameterSets
    pps = _nal_list(c, c.u8())
    for nal in sps:
        if not nal or nal_type(nal) != AvcNalType.SPS:
            raise MalformedMediaError("avcC SPS entry is not an SPS NAL unit")
    chroma = luma = chroma_depth = None
    sps_ext: tuple[bytes, ...] = ()
    if profile_idc in _AVCC_EXT_PROFILES and c.remaining >= 4:
        start = c.pos
        try:
            chroma = c.u8() & 0x03
            luma = (c.u8() & 0x07) + 8
            chroma_depth = (c.u8() & 0x07) + 8
            sps_ext = _nal_list(c, c.u8())
        except MalformedMediaError:
            c.pos = start
            chroma = luma = chroma_depth = None
            sps_ext = ()
    return AvcConfig(
        profile_idc=profile_idc,
        profile_compatibility=compat,
        level_idc=level_idc,
        nal_length_size=length_size,
        sps=sps,
        pps=pps,
        chroma_format_idc=chroma,
        bit_depth_luma=luma,
        bit_depth_chroma=chroma_depth,
        sps_ext=sps_ext,
    )


def avcc_from_annexb_header(header: bytes) -> bytes | None:
    """The avcC of an encoder's global header in Annex B (x264's ``extradata`` with
    ``GLOBAL_HEADER``): its SPS and PPS as an AVCDecoderConfigurationRecord; None when it
    lacks either."""
    sps, pps = [], []
    for nal in iter_annexb(header):
        kind = nal[0] & 0x1F
        if kind == AvcNalType.SPS:
            sps.append(nal)
        elif kind == AvcNalType.PPS:
            pps.append(nal)
    if not sps or not pps:
        return None
    return build_avcc(sps, pps)


def build_avcc(sps: Iterable[bytes], pps: Iterable[bytes], nal_length_size: int = 4) -> bytes:
    """Build an AVCDecoderConfigurationRecord from SPS and PPS NAL units.

    Profile, compatibility and level are copied from the first SPS; for the High profiles
    of 14496-15 §5.3.3.1.2 the chroma/bit-depth extension is written too.
    """
    sps = [bytes(s) for s in sps]
    pps = [bytes(p) for p in pps]
    if not sps:
        raise ValueError("at least one SPS is required")
    if nal_length_size not in (1, 2, 4):
        raise ValueError(f"NAL length size must be 1, 2 or 4, not {nal_length_size}")
    if len(sps) > 31 or len(pps) > 255:
        raise ValueError("too many parameter sets for an avcC")
    first = parse_sps(sps[0])
    out = bytearray([1, first.profile_idc, first.constraint_flags, first.level_idc])
    out.append(0xFC | (nal_length_size - 1))
    out.append(0xE0 | len(sps))
    for nal in sps:
        out += len(nal).to_bytes(2, "big") + nal
    out.append(len(pps))
    for nal in pps:
        out += len(nal).to_bytes(2, "big") + nal
    if first.profile_idc in _AVCC_EXT_PROFILES:
        out.append(0xFC | first.chroma_format_idc)
        out.append(0xF8 | (first.bit_depth_luma - 8))
        out.append(0xF8 | (first.bit_depth_chroma - 8))
        out.append(0)  # numOfSequenceParameterSetExt
    return bytes(out)
