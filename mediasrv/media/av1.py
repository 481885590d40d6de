"""AV1: the codec configuration record (av1C), the sequence header OBU, OBU framing.

References: AV1 Codec ISO Media File Format Binding (AV1-ISOBMFF) §2.3 (av1C) and §2.4
(sample format), §3 of the same for the ``av01`` codec string; AV1 Bitstream & Decoding
Process Specification §5.3 (OBU syntax), §5.5 (sequence header), §5.9.2 (uncompressed
header), §4.10.5 (leb128).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from mediasrv.media.bitreader import BitReader, ByteReader
from mediasrv.media.errors import MalformedMediaError

__all__ = [
    "Av1Config",
    "Av1SequenceHeader",
    "Obu",
    "ObuType",
    "av1_codec_string",
    "build_av1c",
    "encode_leb128",
    "filter_obus_for_mp4",
    "find_sequence_header",
    "is_keyframe",
    "iter_obus",
    "parse_av1c",
    "parse_sequence_header",
    "read_leb128",
]


class ObuType(enum.IntEnum):
    """``obu_type`` (AV1 §6.2.2, Table of OBU types)."""

    SEQUENCE_HEADER = 1
    TEMPORAL_DELIMITER = 2
    FRAME_HEADER = 3
    TILE_GROUP = 4
    METADATA = 5
    FRAME = 6
    REDUNDANT_FRAME_HEADER = 7
    TILE_LIST = 8
    PADDING = 15


# --------------------------------------------------------------------------- OBU framing


def read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a leb128 value at ``pos`` (AV1 §4.10.5); return ``(value, new_pos)``.

    At most 8 bytes are read and the value must fit 32 bits, as the spec requires.
    """
    value = 0
    for i in range(8):
        if pos >= len(data):
            raise MalformedMediaError("truncated leb128")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if value > 0xFFFFFFFF:
                raise MalformedMediaError("leb128 value above 2^32 - 1")
            return value, pos
    raise MalformedMediaError("leb128 longer than 8 bytes")


def encode_leb128(value: int) -> bytes:
    """Encode ``value`` as leb128 with the fewest bytes."""
    if value < 0:
        raise ValueError("leb128 cannot encode negative values")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(frozen=True, slots=True)
class Obu:
    """One OBU of a low-overhead bitstream (AV1 §5.3.1)."""

    obu_type: int
    temporal_id: int
    spatial_id: int
    #: The OBU header (1 or 2 bytes), without the size field.
    header: bytes
    payload: bytes

    def to_bytes(self) -> bytes:
        """Re-serialise with ``obu_has_size_field`` = 1 (the MP4 sample form)."""
        header = bytes([self.header[0] | 0x02]) + self.header[1:]
        return header + encode_leb128(len(self.payload)) + self.payload


def iter_obus(data: bytes) -> Iterator[Obu]:
    """Yield the OBUs of a temporal unit or of av1C ``configOBUs``.

    An OBU without ``obu_has_size_field`` extends to the end of the data (allowed for the
    last OBU of an MP4 sample, AV1-ISOBMFF §2.4).
    """
    data = bytes(data)
    pos = 0
    end = len(data)
    while pos < end:
        first = data[pos]
        if first & 0x80:
            raise MalformedMediaError("OBU forbidden bit set")
        obu_type = (first >> 3) & 0x0F
        has_extension = bool(first & 0x04)
        has_size = bool(first & 0x02)
        header_len = 2 if has_extension else 1
        if pos + header_len > end:
            raise MalformedMediaError("truncated OBU header")
        temporal_id = spatial_id = 0
        if has_extension:
            ext = data[pos + 1]
            temporal_id, spatial_id = ext >> 5, (ext >> 3) & 0x03
        header = data[pos : pos + header_len]
        pos += header_len
        if has_size:
            size, pos = read_leb128(data, pos)
        else:
            size = end - pos
        if pos + size > end:
            raise MalformedMediaError(f"OBU of {size} bytes runs past the end")
        yield Obu(obu_type, temporal_id, spatial_id, header, data[pos : pos + size])
        pos += size


def filter_obus_for_mp4(data: bytes) -> bytes:
    """Return a temporal unit in the MP4 sample form (AV1-ISOBMFF §2.4).

    Temporal delimiters, padding, redundant frame headers and tile lists are dropped (the
    binding says they should not be stored); every remaining OBU gets a size field. The
    input is returned unchanged when it contains nothing to drop and is well formed.
    """
    obus = list(iter_obus(data))
    drop = {ObuType.TEMPORAL_DELIMITER, ObuType.PADDING, ObuType.REDUNDANT_FRAME_HEADER, ObuType.TILE_LIST}
    if not any(o.obu_type in drop or not o.header[0] & 0x02 for o in obus):
        return bytes(data)
    return b"".join(o.to_bytes() for o in obus if o.obu_type not in drop)


# --------------------------------------------------------------------------- sequence header


@dataclass(frozen=True, slots=True)
class Av1SequenceHeader:
    """Fields of sequence_header_obu() (AV1 §5.5) needed for av1C and a track description."""

    seq_profile: int
    still_picture: bool
    reduced_still_picture_header: bool
    seq_level_idx_0: int
    seq_tier_0: int
    max_frame_width: int
    max_frame_height: int
    bit_depth: int
    monochrome: bool
    chroma_subsampling_x: int
    chroma_subsampling_y: int
    chroma_sample_position: int
    color_primaries: int = 2  # 2 = unspecified (AV1 §6.4.2)
    transfer_characteristics: int = 2
    matrix_coefficients: int = 2
    color_range: int = 0


def parse_sequence_header(payload: bytes) -> Av1SequenceHeader:
    """Parse the payload of a sequence header OBU (AV1 §5.5.1 – §5.5.2)."""
    r = BitReader(payload)
    seq_profile = r.u(3)
    if seq_profile > 2:
        raise MalformedMediaError(f"seq_profile {seq_profile} > 2")
    still_picture = r.flag()
    reduced = r.flag()
    seq_tier_0 = 0
    if reduced:
        if not still_picture:
            raise MalformedMediaError("reduced_still_picture_header without still_picture")
        seq_level_idx_0 = r.u(5)
    else:
        decoder_model_info_present = False
        buffer_delay_length = 0
        if r.flag():  # timing_info_present_flag → timing_info() §5.5.3
            r.skip(64)  # num_units_in_display_tick, time_scale
            if r.flag():  # equal_picture_interval
                r.uvlc()  # num_ticks_per_picture_minus_1
            decoder_model_info_present = r.flag()
            if decoder_model_info_present:  # decoder_model_info() §5.5.4
                buffer_delay_length = r.u(5) + 1
                r.skip(32 + 5 + 5)
        initial_display_delay_present = r.flag()
        operating_points = r.u(5) + 1
        seq_level_idx_0 = 0
        for i in range(operating_points):
            r.skip(12)  # operating_point_idc
            level = r.u(5)
            tier = r.u(1) if level > 7 else 0
            if i == 0:
                seq_level_idx_0, seq_tier_0 = level, tier
            if decoder_model_info_present and r.flag():  # decoder_model_present_for_this_op
                r.skip(2 * buffer_delay_length + 1)  # operating_parameters_info() §5.5.5
            if initial_display_delay_present and r.flag():
                r.skip(4)  # initial_display_delay_minus_1
    width_bits = r.u(4) + 1
    height_bits = r.u(4) + 1
    max_width = r.u(width_bits) + 1
    max_height = r.u(height_bits) + 1
    frame_id_numbers_present = False if reduced else r.flag()
    if frame_id_numbers_present:
        r.skip(4 + 3)  # delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
    r.skip(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if not reduced:
        r.skip(4)  # interintra_compound, masked_compound, warped_motion, dual_filter
        enable_order_hint = r.flag()
        if enable_order_hint:
            r.skip(2)  # enable_jnt_comp, enable_ref_frame_mvs
        if r.flag():  # seq_choose_screen_content_tools
            force_screen_content_tools = 2  # SELECT_SCREEN_CONTENT_TOOLS
        else:
            force_screen_content_tools = r.u(1)
        if force_screen_content_tools > 0 and not r.flag():  # seq_choose_integer_mv
            r.skip(1)  # seq_force_integer_mv
        if enable_order_hint:
            r.skip(3)  # order_hint_bits_minus_1
    r.skip(3)  # enable_superres, enable_cdef, enable_restoration
    # color_config() §5.5.2
    high_bitdepth = r.flag()
    if seq_profile == 2 and high_bitdepth:
        bit_depth = 12 if r.flag() else 10
    else:
        bit_depth = 10 if high_bitdepth else 8
    monochrome = False if seq_profile == 1 else r.flag()
    cp = tc = mc = 2
    if r.flag():  # color_description_present_flag
        cp, tc, mc = r.u(8), r.u(8), r.u(8)
    chroma_sample_position = 0
    if monochrome:
        color_range = r.u(1)
        ss_x = ss_y = 1
    elif cp == 1 and tc == 13 and mc == 0:  # BT.709 primaries, sRGB transfer, identity matrix
        color_range, ss_x, ss_y = 1, 0, 0
    else:
        color_range = r.u(1)
        if seq_profile == 0:
            ss_x = ss_y = 1
        elif seq_profile == 1:
            ss_x = ss_y = 0
        elif bit_depth == 12:
            ss_x = r.u(1)
            ss_y = r.u(1) if ss_x else 0
        else:
            ss_x, ss_y = 1, 0
        if ss_x and ss_y:
            chroma_sample_position = r.u(2)
    return Av1SequenceHeader(
        seq_profile=seq_profile,
        still_picture=still_picture,
        reduced_still_picture_header=reduced,
        seq_level_idx_0=seq_level_idx_0,
        seq_tier_0=seq_tier_0,
        max_frame_width=max_width,
        max_frame_height=max_height,
        bit_depth=bit_depth,
        monochrome=monochrome,
        chroma_subsampling_x=ss_x,
        chroma_subsampling_y=ss_y,
        chroma_sample_position=chroma_sample_position,
        color_primaries=cp,
        transfer_characteristics=tc,
        matrix_coefficients=mc,
        color_range=color_range,
    )


def find_sequence_header(data: bytes) -> Av1SequenceHeader | None:
    """Parse the first sequence header OBU in ``data`` (OBUs), or return None."""
    for obu in iter_obus(data):
        if obu.obu_type == ObuType.SEQUENCE_HEADER:
            return parse_sequence_header(obu.payload)
    return None


def is_keyframe(data: bytes, reduced_still_picture_header: bool = False) -> bool:
    """True if the first frame (header) OBU of a temporal unit codes a KEY_FRAME.

    AV1 §5.9.2 uncompressed_header(): with a reduced still picture header every frame is
    a key frame; otherwise ``show_existing_frame`` (1 bit) then ``frame_type`` (2 bits,
    0 = KEY_FRAME). A shown existing frame is not a new key frame.
    """
    for obu in iter_obus(data):
        if obu.obu_type in (ObuType.FRAME, ObuType.FRAME_HEADER):
            if reduced_still_picture_header:
                return True
            r = BitReader(obu.payload)
            if r.flag():  # show_existing_frame
                return False
            return r.u(2) == 0
    return False


# --------------------------------------------------------------------------- av1C


def av1_codec_string(seq_profile: int, seq_level_idx: int, seq_tier: int, bit_depth: int) -> str:
    """``av01.P.LLT.DD`` (AV1-ISOBMFF "Codecs Parameter String"), e.g. ``av01.0.08M.08``."""
    return f"av01.{seq_profile}.{seq_level_idx:02d}{'H' if seq_tier else 'M'}.{bit_depth:02d}"


@dataclass(frozen=True, slots=True)
class Av1Config:
    """An AV1CodecConfigurationRecord (AV1-ISOBMFF §2.3.3)."""

    seq_profile: int
    seq_level_idx_0: int
    seq_tier_0: int
    high_bitdepth: bool
    twelve_bit: bool
    monochrome: bool
    chroma_subsampling_x: int
    chroma_subsampling_y: int
    chroma_sample_position: int
    initial_presentation_delay_minus_one: int | None
    config_obus: bytes
    #: The sequence header found in ``config_obus`` (None when the record carries none).
    sequence_header: Av1SequenceHeader | None

    @property
    def bit_depth(self) -> int:
        """8, 10 or 12 (AV1 §5.5.2 BitDepth)."""
        if self.high_bitdepth:
            return 12 if self.twelve_bit else 10
        return 8

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``av01.0.04M.08``."""
        return av1_codec_string(self.seq_profile, self.seq_level_idx_0, self.seq_tier_0, self.bit_depth)


def parse_av1c(data: bytes) -> Av1Config:
    """Parse an AV1CodecConfigurationRecord and the sequence header among its configOBUs."""
    c = ByteReader(data, "av1C")
    b = c.u8()
    if b != 0x81:  # marker = 1, version = 1
        raise MalformedMediaError(f"av1C marker/version byte 0x{b:02x}, expected 0x81")
    b = c.u8()
    seq_profile, level = b >> 5, b & 0x1F
    b = c.u8()
    tier = b >> 7
    high_bitdepth = bool(b & 0x40)
    twelve_bit = bool(b & 0x20)
    monochrome = bool(b & 0x10)
    ss_x, ss_y = (b >> 3) & 1, (b >> 2) & 1
    position = b & 0x03
    b = c.u8()
    delay = (b & 0x0F) if b & 0x10 else None
    config_obus = c.rest()
    seq = find_sequence_header(config_obus) if config_obus else None
    return Av1Config(
        seq_profile=seq_profile,
        seq_level_idx_0=level,
        seq_tier_0=tier,
        high_bitdepth=high_bitdepth,
        twelve_bit=twelve_bit,
        monochrome=monochrome,
        chroma_subsampling_x=ss_x,
        chroma_subsampling_y=ss_y,
        chroma_sample_position=position,
        initial_presentation_delay_minus_one=delay,
        config_obus=config_obus,
        sequence_header=seq,
    )


def build_av1c(obus: bytes) -> bytes:
    """Build an av1C from OBUs holding a sequence header (e.g. an AV1 encoder's extradata).

    The record's fields are copied from the sequence header; configOBUs keeps only the
    sequence header and metadata OBUs, each with a size field (AV1-ISOBMFF §2.3.4).
    """
    keep = [o for o in iter_obus(obus) if o.obu_type in (ObuType.SEQUENCE_HEADER, ObuType.METADATA)]
    seq_obu = next((o for o in keep if o.obu_type == ObuType.SEQUENCE_HEADER), None)
    if seq_obu is None:
        raise ValueError("no sequence header OBU")
    s = parse_sequence_header(seq_obu.payload)
    high = s.bit_depth > 8
    twelve = s.bit_depth == 12
    head = bytes(
        [
            0x81,
            (s.seq_profile << 5) | s.seq_level_idx_0,
            (s.seq_tier_0 << 7) | (high << 6) | (twelve << 5) | (s.monochrome << 4)
            | (s.chroma_subsampling_x << 3) | (s.chroma_subsampling_y << 2) | s.chroma_sample_position,
            0,  # no initial_presentation_delay
        ]
    )
    return head + b"".join(o.to_bytes() for o in keep)
