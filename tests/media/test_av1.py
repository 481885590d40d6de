import pytest

from mediasrv.media import av1
from mediasrv.media.errors import MalformedMediaError

from . import samples
from tests.support.tools import in_ci

needs_av1 = pytest.mark.skipif(not samples.has_encoder("av1") and not in_ci(), reason="no AV1 encoder in PyAV")


def _frames(sample):
    return [t.body[5:] for t in sample.video_tags if t.body[0] & 0x0F in (1, 3)]


@needs_av1
@pytest.mark.parametrize(("pix_fmt", "depth"), [("yuv420p", 8), ("yuv420p10le", 10)])
def test_av1c_matches_libav_and_dash(pix_fmt, depth, tmp_path):
    s = samples.video("av1", 318, 238, frames=3, audio_frames=0, pix_fmt=pix_fmt)
    probe = s.probe["video"]
    cfg = av1.parse_av1c(s.video_config)
    assert cfg.bit_depth == depth
    assert {0: "Main", 1: "High", 2: "Professional"}[cfg.seq_profile] == probe.profile
    assert cfg.seq_level_idx_0 == probe.level
    seq = cfg.sequence_header
    assert seq is not None
    assert (seq.max_frame_width, seq.max_frame_height) == (probe.width, probe.height) == (318, 238)
    assert (seq.seq_profile, seq.seq_level_idx_0, seq.seq_tier_0, seq.bit_depth) == (
        cfg.seq_profile, cfg.seq_level_idx_0, cfg.seq_tier_0, cfg.bit_depth)
    assert cfg.codec_string in samples.dash_codec_strings(s.flv, str(tmp_path))
    assert cfg.codec_string == f"av01.{cfg.seq_profile}.{cfg.seq_level_idx_0:02d}M.{depth:02d}"


@needs_av1
def test_build_av1c_from_encoder_extradata_matches_libavformat():
    s = samples.video("av1")
    assert av1.build_av1c(s.extradata) == s.video_config


@needs_av1
def test_keyframe_detection_and_obu_filtering():
    frames = _frames(samples.video("av1"))
    assert [av1.is_keyframe(f) for f in frames] == [True] + [False] * (len(frames) - 1)
    for f in frames:
        types = [o.obu_type for o in av1.iter_obus(f)]
        assert types[0] == av1.ObuType.TEMPORAL_DELIMITER  # as libavformat's FLV muxer sends them
        filtered = av1.filter_obus_for_mp4(f)
        assert [o.obu_type for o in av1.iter_obus(filtered)] == types[1:]
        assert av1.filter_obus_for_mp4(filtered) == filtered


def test_leb128():
    for value in (0, 1, 127, 128, 300, 2**21, 2**32 - 1):
        enc = av1.encode_leb128(value)
        assert av1.read_leb128(enc + b"\xff", 0) == (value, len(enc))
    assert av1.read_leb128(b"\x80\x00", 0) == (0, 2)  # non-minimal encodings are legal
    with pytest.raises(MalformedMediaError):
        av1.read_leb128(b"\x80", 0)
    with pytest.raises(MalformedMediaError):
        av1.read_leb128(b"\xff" * 9, 0)
    with pytest.raises(MalformedMediaError):
        av1.read_leb128(b"\xff\xff\xff\xff\x7f", 0)  # > 2^32 - 1


def test_obu_without_size_field_runs_to_the_end():
    data = bytes([0x12, 0x00]) + bytes([0x30]) + b"frame-payload"  # TD with size, FRAME without
    obus = list(av1.iter_obus(data))
    assert [(o.obu_type, o.payload) for o in obus] == [(2, b""), (6, b"frame-payload")]
    assert av1.filter_obus_for_mp4(data) == bytes([0x32, 13]) + b"frame-payload"
    ext = bytes([0x36, 0b010_01_000, 2]) + b"ab"  # extension: temporal 2, spatial 1
    (obu,) = av1.iter_obus(ext)
    assert (obu.temporal_id, obu.spatial_id, obu.payload) == (2, 1, b"ab")
    with pytest.raises(MalformedMediaError):
        list(av1.iter_obus(b"\x80"))  # forbidden bit
    with pytest.raises(MalformedMediaError):
        list(av1.iter_obus(b"\x32\x05ab"))


def _sequence_header(*, reduced=False, timing=False, decoder_model=False, ops=((0, 8, 0),),
                     profile=0, high_bitdepth=False, twelve=False, mono=False, width=1920, height=1080,
                     color=None) -> bytes:
    w = samples.BitWriter()
    w.u(profile, 3).flag(reduced).flag(reduced)  # still_picture = reduced here
    if reduced:
        w.u(ops[0][1], 5)
    else:
        w.flag(timing)
        if timing:
            w.u(1001, 32).u(60000, 32).flag(True).raw("00101")  # uvlc(4)
            w.flag(decoder_model)
            if decoder_model:
                w.u(9, 5).u(90000, 32).u(31, 5).u(31, 5)
        w.flag(True)  # initial_display_delay_present
        w.u(len(ops) - 1, 5)
        for idc, level, tier in ops:
            w.u(idc, 12).u(level, 5)
            if level > 7:
                w.u(tier, 1)
            if timing and decoder_model:
                w.flag(True).u(5, 10).u(6, 10).flag(False)
            w.flag(True).u(3, 4)
    wb = max(width - 1, 1).bit_length()
    hb = max(height - 1, 1).bit_length()
    w.u(wb - 1, 4).u(hb - 1, 4).u(width - 1, wb).u(height - 1, hb)
    if not reduced:
        w.flag(True).u(5, 4).u(3, 3)  # frame ids
    w.raw("111")
    if not reduced:
        w.raw("1111").flag(True).raw("11").flag(False).u(1, 1).flag(True).u(6, 3)
    w.raw("111")
    w.flag(high_bitdepth)
    if profile == 2 and high_bitdepth:
        w.flag(twelve)
    if profile != 1:
        w.flag(mono)
    w.flag(color is not None)
    if color is not None:
        w.u(color[0], 8).u(color[1], 8).u(color[2], 8)
    if mono:
        w.flag(True)
    elif color == (1, 13, 0):
        pass
    else:
        w.flag(False)
        if profile == 2 and twelve:
            w.flag(True).flag(True)
        if profile == 0 or (profile == 2 and twelve):
            w.u(2, 2)
    w.flag(False)  # film_grain_params_present
    return w.to_bytes(trailing=True)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (dict(), dict(seq_level_idx_0=8, bit_depth=8, chroma_subsampling_x=1, chroma_sample_position=2)),
        (dict(timing=True, decoder_model=True, ops=((0x103, 12, 1), (0x101, 9, 0))),
         dict(seq_level_idx_0=12, seq_tier_0=1)),
        (dict(reduced=True, ops=((0, 5, 0),)), dict(reduced_still_picture_header=True, seq_level_idx_0=5)),
        (dict(profile=2, high_bitdepth=True, twelve=True), dict(bit_depth=12, chroma_subsampling_y=1)),
        (dict(profile=1, high_bitdepth=True, color=(1, 13, 0)), dict(bit_depth=10, chroma_subsampling_x=0, color_range=1)),
        (dict(mono=True, color=(9, 16, 9)), dict(monochrome=True, color_primaries=9, transfer_characteristics=16)),
    ],
)
def test_handmade_sequence_headers(kw, expected):
    seq = av1.parse_sequence_header(_sequence_header(width=3840, height=2160, **kw))
    assert (seq.max_frame_width, seq.max_frame_height) == (3840, 2160)
    for name, value in expected.items():
        assert getattr(seq, name) == value, name
    obu = av1.Obu(1, 0, 0, b"\x0a", _sequence_header(width=3840, height=2160, **kw)).to_bytes()
    rebuilt = av1.parse_av1c(av1.build_av1c(obu))
    assert rebuilt.sequence_header == seq
    assert rebuilt.bit_depth == seq.bit_depth


def test_codec_string_examples():
    assert av1.av1_codec_string(0, 8, 0, 8) == "av01.0.08M.08"
    assert av1.av1_codec_string(2, 13, 1, 12) == "av01.2.13H.12"


def test_av1c_errors():
    with pytest.raises(MalformedMediaError, match="marker"):
        av1.parse_av1c(b"\x01\x00\x0c\x00")
    with pytest.raises(MalformedMediaError):
        av1.parse_av1c(b"\x81\x00\x0c")
    cfg = av1.parse_av1c(b"\x81\x00\x0c\x00")  # configOBUs may be empty
    assert cfg.sequence_header is None and cfg.codec_string == "av01.0.00M.08"
    with pytest.raises(ValueError):
        av1.build_av1c(b"\x12\x00")
