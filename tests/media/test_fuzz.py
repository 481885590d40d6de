"""Arbitrary and mutated bytes into every parser: a MediaError or a result, nothing else."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasrv.media import aac, av1, avc, flv, hevc, track_from_config, vp9
from mediasrv.media.errors import MediaError
from mediasrv.media.ingest import FlvIngest
from mediasrv.media.types import Codec

from . import samples

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds():
    out = {"video": [], "audio": [], "config": []}
    for name in ("h264", "hevc", "av1", "vp9"):
        if samples.has_encoder(name):
            s = samples.video(name, frames=3, audio_frames=2)
            out["video"] += [t.body[:64] for t in s.video_tags]
            out["audio"] += [t.body[:32] for t in s.audio_tags]
            out["config"].append((name, s.video_config))
    out["config"].append(("aac", samples.audio().audio_config))
    return out


SEEDS = _seeds()
CODEC = {"h264": Codec.H264, "hevc": Codec.HEVC, "av1": Codec.AV1, "vp9": Codec.VP9, "aac": Codec.AAC}


@st.composite
def mutated(draw, seeds):
    """A real seed with a few bytes replaced, inserted or removed, and possibly truncated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data.insert(i, draw(st.integers(0, 255)))
        else:
            del data[i]
    return bytes(data[: draw(st.integers(0, len(data)))])


def blobs(seeds):
    return st.one_of(st.binary(max_size=96), mutated(seeds))


def only_media_errors(fn, data):
    try:
        fn(data)
    except MediaError:
        pass


@FUZZ
@given(blobs(SEEDS["video"]))
def test_video_tags(data):
    only_media_errors(flv.parse_video_tag, data)


@FUZZ
@given(blobs(SEEDS["audio"] + [b"\x90mp4a\x12\x10", b"\x97\x02\x00\x00\x01\x01mp4a", b"\x95\x11mp4a\x00\x00\x00\x01x"]))
def test_audio_tags(data):
    only_media_errors(flv.parse_audio_tag, data)


CONFIG_PARSERS = {
    "h264": [avc.parse_avcc, lambda d: avc.parse_avcc(d).parsed_sps()],
    "hevc": [hevc.parse_hvcc, lambda d: hevc.parse_hvcc(d).parsed_sps()],
    "av1": [av1.parse_av1c],
    "vp9": [vp9.parse_vpcc],
    "aac": [aac.parse_asc],
}


@pytest.mark.parametrize("name", [n for n, _ in SEEDS["config"]])
def test_configuration_records(name):
    seeds = [c for n, c in SEEDS["config"] if n == name]

    @FUZZ
    @given(blobs(seeds))
    def run(data):
        for parser in CONFIG_PARSERS[name]:
            only_media_errors(parser, data)
        only_media_errors(lambda d: track_from_config(CODEC[name], d), data)

    run()


def _parameter_sets():
    out = []
    for name, cfg in SEEDS["config"]:
        if name == "h264":
            out += list(avc.parse_avcc(cfg).sps)
        elif name == "hevc":
            out += list(hevc.parse_hvcc(cfg).sps)
    return out or [b"\x67\x64\x00\x1f"]


@FUZZ
@given(blobs(_parameter_sets()))
def test_sps_parsers(data):
    only_media_errors(avc.parse_sps, data)
    only_media_errors(hevc.parse_sps, data)


@FUZZ
@given(blobs([cfg[4:] for n, cfg in SEEDS["config"] if n == "av1"] or [b"\x0a\x0b\x00\x00\x00\x04\x3c"]))
def test_obu_parsers(data):
    only_media_errors(lambda d: list(av1.iter_obus(d)), data)
    only_media_errors(av1.find_sequence_header, data)
    only_media_errors(av1.parse_sequence_header, data)
    only_media_errors(av1.is_keyframe, data)
    only_media_errors(av1.filter_obus_for_mp4, data)
    only_media_errors(vp9.parse_frame_header, data)


def _nal_walk(data: bytes, size: int):
    """The NAL count by iter_length_prefixed, or the error it raises."""
    try:
        return len(list(avc.iter_length_prefixed(data, size)))
    except MediaError as exc:
        return str(exc)


@FUZZ
@given(st.binary(max_size=64), st.sampled_from([0, 1, 2, 3, 4, 5]))
def test_check_length_prefixed_walks_as_iter_length_prefixed(data, size):
    # check_length_prefixed is the same walk as iter_length_prefixed without a generator:
    # same count, same error.
    try:
        result = avc.check_length_prefixed(data, size)
    except MediaError as exc:
        result = str(exc)
    assert result == _nal_walk(data, size)


@FUZZ
@given(st.binary(max_size=64), st.sampled_from([1, 2, 3, 4]))
def test_nal_framing(data, size):
    only_media_errors(lambda d: list(avc.iter_length_prefixed(d, size)), data)
    assert all(list(avc.iter_annexb(data)))


@FUZZ
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2**32 - 1), blobs(SEEDS["video"] + SEEDS["audio"])), max_size=12))
def test_ingest_survives_any_message_sequence(messages):
    ingest = FlvIngest()
    for is_video, ts, payload in messages:
        try:
            unit = ingest.video(ts, payload) if is_video else ingest.audio(ts, payload)
        except MediaError:
            continue
        if unit is not None:
            assert unit.pts >= unit.dts
            assert unit.data
