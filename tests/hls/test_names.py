"""URL names and small codec helpers of the HLS package."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mediasrv.config import STREAM_NAME_RE
from mediasrv.hls import names
from mediasrv.hls.codecs import adts_header, adts_template, codec_string, parse_audio_specific_config
from mediasrv.media import aac
from mediasrv.media.types import Codec, TrackInfo
from tests.hls.conftest import ASC, AVCC


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=70))
def test_stream_names_follow_the_config_rule(name):
    assert names.is_stream_name(name) == bool(STREAM_NAME_RE.fullmatch(name))


def test_dot_segments_and_separators_are_never_names():
    for bad in ("", ".", "..", ".hidden", "a/b", "a\\b", "a\x00", "a%2Fb", "a b", "x" * 65):
        assert not names.is_stream_name(bad), bad
    for bad in ("", "..", "Source", "a/b", "-x", "x" * 33):
        assert not names.is_rendition_name(bad), bad
    assert names.is_stream_name("a..b")  # a plain name, not a path step


def test_file_names():
    tag = names.make_tag(1_700_000_000_123)
    assert names.make_tag(0) == "0" and names.make_tag(35) == "z" and names.make_tag(36) == "10"
    for good in (names.init_name(tag, 0), names.segment_name(tag, 42, "m4s"), names.segment_name(tag, 7, "ts")):
        assert names.is_file_name(good), good
    assert names.is_init_name(names.init_name(tag, 3))
    assert not names.is_init_name(names.segment_name(tag, 3, "m4s"))
    for bad in ("seg_a_1.mp4", "init_a_1.m4s", "seg__1.ts", "seg_A_1.ts", "seg_a_1.ts/", "../seg_a_1.ts",
                "seg_a_-1.ts", "seg_a_1.ts\x00", "seg_a_" + "1" * 11 + ".ts", "index.m3u8"):
        assert not names.is_file_name(bad), bad


def test_adts_header_template_matches_the_bit_writer():
    config = parse_audio_specific_config(ASC)
    template = adts_template(config)
    for size in (0, 1, 7, 255, 256, 1000, 2047, 2048, 8184):
        assert adts_header(template, size) == aac.build_adts_header(config, size)


def test_codec_string_falls_back_to_the_config():
    assert codec_string(TrackInfo(Codec.H264, AVCC, "")) == "avc1.4d400d"
    assert codec_string(TrackInfo(Codec.AAC, ASC, "")) == "mp4a.40.2"
    assert codec_string(TrackInfo(Codec.H264, AVCC, "avc1.640028")) == "avc1.640028"
