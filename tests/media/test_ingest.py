import pytest

from mediasrv.media import av1, track_from_config
from mediasrv.media.errors import MalformedMediaError, UnsupportedCodecError
from mediasrv.media.flv import build_video_frame, build_video_sequence_header
from mediasrv.media.ingest import FlvIngest
from mediasrv.media.types import Codec, MediaUnit

from . import samples
from tests.support.tools import in_ci

CODECS = [c for c in ("h264", "hevc", "av1", "vp9") if samples.has_encoder(c)]
EXPECTED_CODEC = {"h264": Codec.H264, "hevc": Codec.HEVC, "av1": Codec.AV1, "vp9": Codec.VP9}


def feed(ingest, tags, offset=0):
    units = []
    for t in tags:
        ts = (t.timestamp + offset) & 0xFFFFFFFF
        if t.type == samples.TAG_VIDEO:
            u = ingest.video(ts, t.body)
        elif t.type == samples.TAG_AUDIO:
            u = ingest.audio(ts, t.body)
        else:
            continue
        if u is not None:
            units.append(u)
    return units


@pytest.mark.parametrize("name", CODECS)
def test_real_stream_matches_libav_demuxer(name):
    s = samples.video(name)
    ingest = FlvIngest()
    units = feed(ingest, s.tags)
    assert [(u.kind.value, u.dts, u.pts, u.keyframe) for u in units] == [
        (p.kind, p.dts, p.pts, p.keyframe) for p in s.packets
    ]
    vt = ingest.video_track
    assert vt.codec is EXPECTED_CODEC[name]
    assert (vt.width, vt.height) == (s.probe["video"].width, s.probe["video"].height) == (320, 240)
    assert vt.config == s.video_config
    at = ingest.audio_track
    assert (at.codec, at.sample_rate, at.channels, at.codec_string) == (Codec.AAC, 44100, 2, "mp4a.40.2")
    video_units = [u for u in units if u.kind.value == "video"]
    assert all(u.track is vt for u in video_units)
    st = ingest.stats.video
    assert (st.units, st.keyframes, st.sequence_headers) == (10, 1, 1)
    assert st.bytes == sum(len(u.data) for u in video_units)
    assert st.timestamp_corrections == 0 and st.malformed == st.unsupported == 0
    if name != "h264":
        assert st.ignored >= 1  # libavformat sends a colorInfo Metadata tag for E-RTMP codecs
    assert ingest.stats.audio.units == len(units) - 10


def test_h264_and_hevc_data_stays_length_prefixed():
    s = samples.video("h264")
    units = [u for u in feed(FlvIngest(), s.tags) if u.kind.value == "video"]
    frames = [t.body[5:] for t in s.video_tags if t.body[1] == 1]
    assert [u.data for u in units] == frames
    assert units[0].track.nal_length_size == 4


@pytest.mark.skipif("av1" not in CODECS and not in_ci(), reason="no AV1 encoder")
def test_av1_units_are_mp4_samples():
    units = [u for u in feed(FlvIngest(), samples.video("av1").tags) if u.kind.value == "video"]
    for u in units:
        types = [o.obu_type for o in av1.iter_obus(u.data)]
        assert av1.ObuType.TEMPORAL_DELIMITER not in types
    assert av1.is_keyframe(units[0].data)


@pytest.mark.skipif("av1" not in CODECS and not in_ci(), reason="no AV1 encoder")
def test_av1_temporal_unit_with_only_a_delimiter_is_empty():
    s = samples.video("av1", frames=2, audio_frames=0)
    ingest = FlvIngest()
    feed(ingest, s.video_tags[:1])
    assert ingest.video(40, b"\xa1av01\x12\x00") is None
    assert ingest.stats.video.empty == 1
    with pytest.raises(MalformedMediaError):
        ingest.video(40, b"\xa1av01\x32\x09ab")  # OBU size past the end


@pytest.mark.skipif("vp9" not in CODECS and not in_ci(), reason="no VP9 encoder")
def test_vp9_picture_size_comes_from_the_first_keyframe():
    s = samples.video("vp9", 318, 238, frames=3, audio_frames=0)
    ingest = FlvIngest()
    header = next(t for t in s.video_tags if t.body[0] & 0x0F == 0)
    assert ingest.video(0, header.body) is None
    assert (ingest.video_track.width, ingest.video_track.codec_string) == (0, "vp09.00.20.08")
    units = feed(ingest, [t for t in s.video_tags if t.body[0] & 0x0F in (1, 3)])
    assert (units[0].track.width, units[0].track.height) == (318, 238)
    assert ingest.video_track is units[0].track is units[-1].track


def test_frames_before_their_sequence_header_are_dropped_and_counted():
    s = samples.video("h264")
    ingest = FlvIngest()
    frames = [t for t in s.tags if t.type in (8, 9) and t.body[1] == 1]
    assert feed(ingest, frames[:3]) == []
    assert ingest.stats.video.before_sequence_header + ingest.stats.audio.before_sequence_header == 3
    assert ingest.video_track is None and ingest.audio_track is None
    assert len(feed(ingest, s.tags)) > 10


def test_repeated_and_changed_sequence_headers():
    a = samples.video("h264")
    b = samples.video("h264", 318, 238, frames=3, audio_frames=0)
    ingest = FlvIngest()
    first = feed(ingest, a.video_tags)
    track_a = ingest.video_track
    assert ingest.video(400, a.video_tags[0].body) is None  # identical: same TrackInfo object
    assert ingest.video_track is track_a
    later = feed(ingest, b.video_tags, offset=400)
    assert ingest.video_track is not track_a
    assert (ingest.video_track.width, ingest.video_track.height) == (318, 238)
    assert later[0].track is ingest.video_track and first[-1].track is track_a
    st = ingest.stats.video
    assert (st.sequence_headers, st.config_changes) == (3, 1)


@pytest.mark.skipif("hevc" not in CODECS and not in_ci(), reason="no HEVC encoder")
def test_codec_switch_drops_frames_of_the_old_codec():
    h264 = samples.video("h264")
    hevc = samples.video("hevc")
    ingest = FlvIngest()
    feed(ingest, h264.video_tags[:1])
    hevc_frame = next(t for t in hevc.video_tags if t.body[0] & 0x0F == 1)
    assert ingest.video(0, hevc_frame.body) is None
    assert ingest.stats.video.before_sequence_header == 1
    feed(ingest, hevc.video_tags[:1])
    assert ingest.video_track.codec is Codec.HEVC


def test_ignored_messages():
    ingest = FlvIngest()
    feed(ingest, samples.video("h264").video_tags[:1])
    assert ingest.video(0, b"") is None
    assert ingest.audio(0, b"") is None  # RTMP "audio silence"
    assert ingest.video(0, b"\x17\x02\x00\x00\x00") is None  # end of sequence
    assert ingest.video(0, b"\x57\x01") is None  # command frame
    assert ingest.video(0, b"\x27\x01\x00\x00\x00") is None  # empty coded frame
    other = bytes([0x80 | 0x10 | 6, 0x01]) + b"avc1" + bytes([1]) + b"\x00\x00\x00" + b"\x00\x00\x00\x01\x65"
    assert ingest.video(0, other) is None  # multitrack, track 1
    st = ingest.stats.video
    assert (st.empty, st.ignored, st.other_tracks, st.units) == (2, 2, 1, 0)
    assert ingest.stats.audio.empty == 1


def test_errors_propagate_are_counted_and_leave_state_alone():
    s = samples.video("h264")
    ingest = FlvIngest()
    feed(ingest, s.tags[:4])
    track = ingest.video_track
    with pytest.raises(UnsupportedCodecError, match="VP6"):
        ingest.video(0, b"\x14\x00\x00")
    with pytest.raises(UnsupportedCodecError, match="Opus"):
        ingest.audio(0, b"\x90OpusHead")
    with pytest.raises(UnsupportedCodecError, match="MP3"):
        ingest.audio(0, b"\x2f\xff\xfb")
    with pytest.raises(MalformedMediaError):
        ingest.video(0, b"\x17\x00\x00\x00\x00\x01\x64")  # truncated avcC
    with pytest.raises(MalformedMediaError):
        ingest.video(0, b"\x27\x01\x00\x00\x00\x00\x00\x00\x09\x41")  # NAL length past the end
    with pytest.raises(MalformedMediaError):
        ingest.audio(0, b"\xaf\x00\x00")  # ASC with object type 0
    assert ingest.video_track is track
    assert (ingest.stats.video.unsupported, ingest.stats.video.malformed) == (1, 2)
    assert (ingest.stats.audio.unsupported, ingest.stats.audio.malformed) == (2, 1)
    assert len(feed(ingest, s.tags[4:])) > 10  # still works afterwards


def test_timestamp_wrap_and_jump_through_ingest():
    s = samples.video("h264")
    ingest = FlvIngest()
    near_wrap = (1 << 32) - 150
    units = feed(ingest, s.tags, offset=near_wrap)
    video = [u for u in units if u.kind.value == "video"]
    dts = [u.dts for u in video]
    assert dts == sorted(dts) and dts[-1] > 1 << 32
    assert [u.pts - u.dts for u in video] == [p.pts - p.dts for p in s.packets if p.kind == "video"]
    assert ingest.stats.video.wraps == 1 and ingest.stats.audio.wraps == 1
    # the publisher's clock jumps a minute ahead (e.g. encoder restart): rebased, flagged
    again = feed(ingest, s.tags[1:], offset=near_wrap + 60_000)
    first_video = next(u for u in again if u.kind.value == "video")
    assert first_video.discontinuity and first_video.dts > dts[-1]
    assert ingest.stats.video.rebases == 1


def test_track_from_config_for_every_codec():
    s = samples.video("h264")
    t = track_from_config(Codec.H264, s.video_config)
    assert (t.codec_string, t.width, t.nal_length_size) == ("avc1.64000d", 320, 4)
    assert track_from_config(Codec.AAC, b"\x11\x90").channels == 2
    with pytest.raises(MalformedMediaError):
        track_from_config(Codec.H264, b"\x01\x64\x00\x1f\xff\xe0\x00")  # no SPS
    if "vp9" in CODECS:
        v = track_from_config(Codec.VP9, samples.video("vp9").video_config)
        assert v.codec_string.startswith("vp09.00.") and v.width == 0


def test_round_trip_through_playback_builders():
    """Units → playback tags → a second ingest yields the same units (what a relay does)."""
    s = samples.video("h264")
    first = FlvIngest()
    units = [u for u in feed(first, s.tags) if u.kind.value == "video"]
    second = FlvIngest()
    assert second.video(0, build_video_sequence_header(first.video_track)) is None
    again = [second.video(u.dts, build_video_frame(u)) for u in units]
    assert all(isinstance(u, MediaUnit) for u in again)
    assert [(u.dts, u.pts, u.keyframe, u.data) for u in again] == [(u.dts, u.pts, u.keyframe, u.data) for u in units]
    assert second.video_track == first.video_track
