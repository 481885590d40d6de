from fractions import Fraction

import av
import pytest

from mediasrv.media import avc
from mediasrv.media.bitreader import BitReader, unescape_rbsp
from mediasrv.media.errors import MalformedMediaError

from . import samples

# libavcodec profile names ↔ profile_idc (H.264 Annex A)
PROFILE_NAMES = {66: "Baseline", 77: "Main", 100: "High", 110: "High 10", 122: "High 4:2:2", 244: "High 4:4:4 Predictive"}


@pytest.fixture(scope="module")
def x264():
    return samples.video("h264")


def test_avcc_from_libx264_matches_libav(x264):
    cfg = avc.parse_avcc(x264.video_config)
    probe = x264.probe["video"]
    assert cfg.nal_length_size == 4
    assert len(cfg.sps) == 1 and len(cfg.pps) == 1
    assert PROFILE_NAMES[cfg.profile_idc] == probe.profile
    assert cfg.level_idc == probe.level
    sps = cfg.parsed_sps()
    assert (sps.width, sps.height) == (probe.width, probe.height) == (320, 240)
    assert sps.frame_rate == Fraction(30)
    assert sps.max_num_reorder_frames == 2  # B-frames
    assert cfg.codec_string == f"avc1.{cfg.profile_idc:02x}{cfg.profile_compatibility:02x}{cfg.level_idc:02x}"


def test_codec_string_matches_libavformat_dash(x264, tmp_path):
    assert avc.parse_avcc(x264.video_config).codec_string in samples.dash_codec_strings(x264.flv, str(tmp_path))


@pytest.mark.parametrize(
    ("pix_fmt", "options", "profile"),
    [
        ("yuv420p", (), "High"),
        ("yuv422p", (("x264-params", "tff=1"),), "High 4:2:2"),  # 4:2:2, field coding
        ("yuv444p", (), "High 4:4:4 Predictive"),
        ("yuv420p", (("profile", "baseline"),), "Constrained Baseline"),
    ],
)
def test_frame_cropping_and_chroma_formats(pix_fmt, options, profile):
    s = samples.video("h264", 318, 238, frames=3, audio_frames=0, pix_fmt=pix_fmt, options=options)
    probe = s.probe["video"]
    assert probe.profile == profile
    cfg = avc.parse_avcc(s.video_config)
    sps = cfg.parsed_sps()
    assert (sps.width, sps.height) == (probe.width, probe.height) == (318, 238)
    assert sps.chroma_format_idc == {"yuv420p": 1, "yuv422p": 2, "yuv444p": 3}[pix_fmt]
    assert sps.frame_mbs_only is (pix_fmt != "yuv422p")
    if cfg.chroma_format_idc is not None:
        assert cfg.chroma_format_idc == sps.chroma_format_idc


def _with_scaling_lists(sps_nal: bytes) -> bytes:
    """Rewrite a High-profile SPS with seq_scaling_matrix_present_flag = 1 and 8 lists."""
    bits = "".join(format(b, "08b") for b in unescape_rbsp(sps_nal[1:]))
    r = BitReader(unescape_rbsp(sps_nal[1:]))
    r.u(24)
    r.ue()  # sps id
    assert r.ue() == 1  # chroma_format_idc
    r.ue(), r.ue()  # bit depths
    r.u(1)  # qpprime
    pos = r.position
    assert bits[pos] == "0"  # x264 never sends SPS scaling lists
    lists = samples.BitWriter()
    for i in range(8):
        if i == 1:
            lists.flag(False)  # list absent → fall-back rule
            continue
        lists.flag(True)
        size = 16 if i < 6 else 64
        if i == 2:
            lists.se(-8)  # nextScale 0 at j = 0: useDefaultScalingMatrixFlag
            continue
        last = 8
        for j in range(size):
            value = 4 + (j * 11 + i * 3) % 60
            delta = (value - last + 128) % 256 - 128
            lists.se(delta)
            last = value
    tail = bits[pos + 1 :].rstrip("0")[:-1]  # drop rbsp_stop_one_bit + alignment
    w = samples.BitWriter().raw(bits[:pos]).raw("1").raw(lists.bitstring()).raw(tail)
    return sps_nal[:1] + samples.escape_rbsp(w.to_bytes(trailing=True))


def test_sps_scaling_lists_agree_with_libavcodec(x264):
    cfg = avc.parse_avcc(x264.video_config)
    sps = _with_scaling_lists(cfg.sps[0])
    assert len(sps) > len(cfg.sps[0]) + 50
    ours = avc.parse_sps(sps)
    assert (ours.width, ours.height, ours.frame_rate) == (320, 240, Fraction(30))
    # libavcodec must decode the real frames with the rewritten SPS: it parsed it the same way.
    stream = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + cfg.pps[0]
    for tag in x264.video_tags[1:]:
        if tag.body[1] == 1:
            stream += avc.length_prefixed_to_annexb(tag.body[5:], 4)
    ctx = av.CodecContext.create("h264", "r")
    frames = []
    for packet in ctx.parse(stream) + ctx.parse(None):
        frames += ctx.decode(packet)
    frames += ctx.decode(None)
    assert len(frames) == 10
    assert {(f.width, f.height) for f in frames} == {(ours.width, ours.height)}


def test_build_avcc_from_encoder_extradata_matches_libavformat(x264):
    nals = list(avc.iter_annexb(x264.extradata))
    assert [avc.nal_type(n) for n in nals] == [avc.AvcNalType.SPS, avc.AvcNalType.PPS]
    built = avc.build_avcc([nals[0]], [nals[1]])
    assert built == x264.video_config  # byte-identical to libavformat's ff_isom_write_avcc
    assert avc.parse_avcc(built).sps == (nals[0],)


def test_avcc_from_an_encoders_global_header(x264):
    """What the transcoder and the WHIP encoder announce: the same avcC as libavformat's;
    a header missing its PPS (or SPS) gives None, not a broken record."""
    assert avc.avcc_from_annexb_header(x264.extradata) == x264.video_config
    sps_only = b"\x00\x00\x00\x01" + next(avc.iter_annexb(x264.extradata))
    assert avc.avcc_from_annexb_header(sps_only) is None
    assert avc.avcc_from_annexb_header(b"") is None


def _handmade_sps(**kw) -> bytes:
    w = samples.BitWriter()
    w.u(kw.get("profile", 100), 8).u(0, 8).u(31, 8).ue(0)
    chroma = kw.get("chroma", 1)
    if kw.get("profile", 100) in (100, 122, 244):
        w.ue(chroma)
        if chroma == 3:
            w.flag(kw.get("separate_planes", False))
        w.ue(kw.get("depth", 0)).ue(kw.get("depth", 0)).flag(False).flag(False)
    w.ue(0).ue(kw.get("poc_type", 0))
    if kw.get("poc_type", 0) == 0:
        w.ue(2)
    elif kw.get("poc_type") == 1:
        w.flag(False).se(-1).se(2).ue(3).se(1).se(-2).se(3)
    w.ue(4).flag(False).ue(kw["mbs_w"] - 1).ue(kw["map_h"] - 1)
    w.flag(kw.get("frame_mbs_only", True))
    if not kw.get("frame_mbs_only", True):
        w.flag(False)
    w.flag(True)
    crop = kw.get("crop")
    w.flag(crop is not None)
    if crop:
        for v in crop:
            w.ue(v)
    vui = kw.get("vui")
    w.flag(vui is not None)
    if vui is not None:
        w.flag(True).u(255, 8).u(4, 16).u(3, 16)  # Extended_SAR 4:3
        w.flag(False).flag(True).u(5, 3).flag(False).flag(True).u(1, 8).u(1, 8).u(1, 8)
        w.flag(True).ue(0).ue(0)  # chroma loc
        w.flag(True).u(1001, 32).u(60000, 32).flag(True)
        w.flag(True)  # nal hrd
        w.ue(1).u(4, 4).u(6, 4)
        for _ in range(2):
            w.ue(1000).ue(2000).flag(True)
        w.u(23, 5).u(23, 5).u(23, 5).u(24, 5)
        w.flag(False).flag(False).flag(False)  # vcl hrd, low_delay, pic_struct
        w.flag(True).flag(True).ue(2).ue(1).ue(16).ue(16).ue(vui).ue(4)
    return b"\x67" + samples.escape_rbsp(w.to_bytes(trailing=True))


@pytest.mark.parametrize(
    ("kw", "size"),
    [
        (dict(mbs_w=120, map_h=68, crop=(0, 0, 0, 4)), (1920, 1080)),  # 4:2:0: crop units 2
        (dict(mbs_w=120, map_h=34, frame_mbs_only=False, crop=(0, 0, 0, 2)), (1920, 1080)),  # field: ×2
        (dict(chroma=2, mbs_w=20, map_h=8, frame_mbs_only=False, crop=(1, 0, 1, 0)), (318, 254)),
        (dict(chroma=3, mbs_w=20, map_h=15, crop=(1, 1, 1, 1)), (318, 238)),
        (dict(chroma=3, separate_planes=True, mbs_w=20, map_h=15, crop=(1, 1, 1, 1)), (318, 238)),
        (dict(chroma=0, mbs_w=20, map_h=15, crop=(0, 1, 0, 1)), (319, 239)),  # monochrome
        (dict(profile=77, poc_type=1, mbs_w=40, map_h=30), (640, 480)),
        (dict(profile=66, poc_type=2, mbs_w=40, map_h=30, depth=0), (640, 480)),
    ],
)
def test_handmade_sps_dimensions(kw, size):
    sps = avc.parse_sps(_handmade_sps(**kw))
    assert (sps.width, sps.height) == size


def test_vui_fields():
    sps = avc.parse_sps(_handmade_sps(mbs_w=120, map_h=68, crop=(0, 0, 0, 4), vui=3))
    assert sps.frame_rate == Fraction(60000, 2002)
    assert sps.sar == (4, 3)
    assert sps.max_num_reorder_frames == 3


def test_truncated_vui_is_tolerated():
    full = _handmade_sps(mbs_w=120, map_h=68, vui=3)
    cut = full[:-12]
    sps = avc.parse_sps(cut)
    assert (sps.width, sps.height) == (1920, 1088)
    assert sps.max_num_reorder_frames is None


def test_sps_errors():
    with pytest.raises(MalformedMediaError):
        avc.parse_sps(b"\x68\x00")  # a PPS
    with pytest.raises(MalformedMediaError):
        avc.parse_sps(b"\x67\x64\x00")
    with pytest.raises(MalformedMediaError):
        avc.parse_sps(b"")
    with pytest.raises(MalformedMediaError):  # crop larger than the picture
        avc.parse_sps(_handmade_sps(mbs_w=1, map_h=1, crop=(10, 10, 0, 0)))


def test_avcc_errors(x264):
    good = x264.video_config
    with pytest.raises(MalformedMediaError, match="configurationVersion"):
        avc.parse_avcc(b"\x00" + good[1:])
    with pytest.raises(MalformedMediaError, match="lengthSizeMinusOne"):
        avc.parse_avcc(good[:4] + b"\xfe" + good[5:])
    for n in range(len(good) - 4):  # every truncation inside the SPS/PPS lists
        try:
            avc.parse_avcc(good[:n])
        except MalformedMediaError:
            pass
        else:
            assert n >= len(good) - 4  # only the optional high-profile extension may go


def test_avcc_without_high_profile_extension(x264):
    good = x264.video_config
    cfg = avc.parse_avcc(good[:-4])
    assert cfg.chroma_format_idc is None
    assert cfg.sps == avc.parse_avcc(good).sps


def test_length_prefixed_and_annexb_round_trip():
    nals = [b"\x65" + bytes(range(200)), b"\x06\x05\x01", b"\x41\x9a" * 300]
    for size in (1, 2, 4):
        usable = [n for n in nals if len(n) < (1 << (8 * size))]
        annexb = b"".join(b"\x00\x00\x00\x01" + n for n in usable)
        lp = avc.annexb_to_length_prefixed(annexb, size)
        assert list(avc.iter_length_prefixed(lp, size)) == usable
        assert avc.length_prefixed_to_annexb(lp, size) == annexb
    # 3-byte start codes and trailing zeros
    assert list(avc.iter_annexb(b"\xff\x00\x00\x01\x67\x01\x00\x00\x00\x01\x68\x02\x00\x00")) == [b"\x67\x01", b"\x68\x02"]
    with pytest.raises(ValueError):
        avc.annexb_to_length_prefixed(b"\x00\x00\x01" + b"\x65" * 300, 1)


def test_length_prefixed_errors():
    with pytest.raises(MalformedMediaError):
        list(avc.iter_length_prefixed(b"\x00\x00\x00\x05\x65", 4))
    with pytest.raises(MalformedMediaError):
        list(avc.iter_length_prefixed(b"\x00\x00", 4))
    with pytest.raises(MalformedMediaError):
        list(avc.iter_length_prefixed(b"\x00", 5))
    assert list(avc.iter_length_prefixed(b"\x00\x00\x00\x00\x00\x00\x00\x01\x09", 4)) == [b"\x09"]
    assert avc.check_length_prefixed(b"\x00\x01\x09\x00\x02\x65\x88", 2) == 2
    with pytest.raises(MalformedMediaError):
        avc.check_length_prefixed(b"\x00\x01\x09\x00\x03\x65\x88", 2)


def test_frames_of_libx264_are_length_prefixed(x264):
    types = []
    for tag in x264.video_tags[1:]:
        if tag.body[1] == 1:
            types.append([avc.nal_type(n) for n in avc.iter_length_prefixed(tag.body[5:], 4)])
    assert avc.AvcNalType.IDR in types[0]
    assert all(avc.AvcNalType.IDR not in t for t in types[1:])
