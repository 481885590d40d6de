import pytest

from mediasrv.media import vp9
from mediasrv.media.errors import MalformedMediaError

from . import samples
from tests.support.tools import in_ci

needs_vp9 = pytest.mark.skipif(not samples.has_encoder("vp9") and not in_ci(), reason="no VP9 encoder in PyAV")


@needs_vp9
def test_vpcc_from_libavformat_matches_dash_and_libav(tmp_path):
    s = samples.video("vp9", 318, 238, frames=3, audio_frames=0)
    cfg = vp9.parse_vpcc(s.video_config)
    assert s.video_config[:4] == b"\x01\x00\x00\x00"  # FullBox version 1 + flags, as FFmpeg writes it
    assert (cfg.profile, cfg.bit_depth, cfg.chroma_subsampling) == (0, 8, 1)
    assert s.probe["video"].profile == f"Profile {cfg.profile}"
    assert cfg.codec_string in samples.dash_codec_strings(s.flv, str(tmp_path))
    assert vp9.build_vpcc(cfg) == s.video_config
    assert vp9.parse_vpcc(s.video_config[4:]) == cfg  # the bare record is accepted too


@needs_vp9
def test_frame_header_gives_size_on_keyframes():
    s = samples.video("vp9", 318, 238, frames=3, audio_frames=0)
    frames = [t.body[5:] for t in s.video_tags if t.body[0] & 0x0F in (1, 3)]
    first = vp9.parse_frame_header(frames[0])
    assert first.keyframe and (first.width, first.height) == (318, 238) and first.bit_depth == 8
    for f in frames[1:]:
        h = vp9.parse_frame_header(f)
        assert not h.keyframe and h.width == 0


@needs_vp9
def test_444_profile_1():
    s = samples.video("vp9", 320, 240, frames=2, audio_frames=0, pix_fmt="yuv444p")
    cfg = vp9.parse_vpcc(s.video_config)
    assert s.probe["video"].profile == "Profile 1"
    assert (cfg.profile, cfg.bit_depth, cfg.chroma_subsampling) == (1, 8, 3)
    assert cfg.codec_string == f"vp09.01.{cfg.level:02d}.08"
    key = vp9.parse_frame_header(next(t.body[5:] for t in s.video_tags if t.body[0] & 0x0F == 1))
    assert (key.profile, key.keyframe, key.width, key.height) == (1, True, 320, 240)


def test_codec_string_and_errors():
    assert vp9.vp9_codec_string(0, 31, 8) == "vp09.00.31.08"
    with pytest.raises(MalformedMediaError):
        vp9.parse_vpcc(b"\x00\x1f\x82\x02\x02\x02\x00\x05ab")  # init data size too large
    with pytest.raises(MalformedMediaError):
        vp9.parse_vpcc(b"\x00\x1f\x52\x02\x02\x02\x00\x00")  # bit depth 5
    with pytest.raises(MalformedMediaError):
        vp9.parse_frame_header(b"\x00")  # frame_marker
    with pytest.raises(MalformedMediaError):
        vp9.parse_frame_header(b"\x80\x00\x00\x00")  # keyframe with a bad sync code
    assert vp9.parse_frame_header(b"\x88").show_existing_frame
