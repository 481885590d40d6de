import pytest

from mediasrv.media import aac
from mediasrv.media.errors import MalformedMediaError, UnsupportedCodecError

from . import samples


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 1), (22050, 2)])
def test_asc_from_libavcodec_aac(rate, channels, tmp_path):
    s = samples.audio(rate, channels, frames=3)
    probe = s.probe["audio"]
    asc = aac.parse_asc(s.audio_config)
    assert (asc.sample_rate, asc.channels) == (probe.sample_rate, probe.channels) == (rate, channels)
    assert asc.object_type == 2 and probe.profile == "LC"
    assert asc.frame_length == 1024
    assert asc.codec_string == "mp4a.40.2"
    assert asc.codec_string in samples.dash_codec_strings(s.flv, str(tmp_path))


def test_build_asc_round_trips():
    cases = [
        dict(object_type=2, sample_rate=48000, channel_configuration=2),
        dict(object_type=1, sample_rate=7350, channel_configuration=7),
        dict(object_type=2, sample_rate=44000, channel_configuration=1),  # explicit 24-bit rate
        dict(object_type=42, sample_rate=48000, channel_configuration=2),  # escape 31 + 6 bits
        dict(object_type=5, sample_rate=24000, channel_configuration=2, extension_sample_rate=48000),
        dict(object_type=29, sample_rate=22050, channel_configuration=1, extension_sample_rate=44100),
    ]
    for kw in cases:
        asc = aac.parse_asc(aac.build_asc(**kw))
        assert asc.object_type == kw["object_type"]
        assert asc.sample_rate == kw["sample_rate"]
        assert asc.channel_configuration == kw["channel_configuration"]
        assert asc.extension_sample_rate == kw.get("extension_sample_rate", 0)
        assert asc.core_object_type == (2 if kw["object_type"] in (5, 29) else kw["object_type"])
    assert aac.build_asc(2, 44100, 2) == bytes.fromhex("1210")
    assert aac.parse_asc(aac.build_asc(2, 48000, 7)).channels == 8
    assert aac.parse_asc(bytes.fromhex("1214")).frame_length == 960  # frameLengthFlag
    assert aac.parse_asc(aac.build_asc(5, 24000, 2, extension_sample_rate=48000)).codec_string == "mp4a.40.5"


def test_asc_errors():
    with pytest.raises(MalformedMediaError):
        aac.parse_asc(b"")
    with pytest.raises(MalformedMediaError):
        aac.parse_asc(b"\x00\x00")  # object type 0
    with pytest.raises(MalformedMediaError):
        aac.parse_asc(bytes.fromhex("16 90"))  # frequency index 13 (reserved)
    with pytest.raises(MalformedMediaError):
        aac.parse_asc(bytes.fromhex("1240"))  # channel configuration 8 (reserved)
    with pytest.raises(MalformedMediaError):
        aac.parse_asc(bytes.fromhex("17 80 00"))  # explicit rate truncated
    with pytest.raises(UnsupportedCodecError, match="MP3"):
        aac.parse_asc(aac.build_asc(34, 44100, 2))
    with pytest.raises(UnsupportedCodecError, match="ALS"):
        aac.parse_asc(aac.build_asc(36, 48000, 2))


def test_adts_header_is_understood_by_libav():
    import io

    import av

    s = samples.audio(48000, 1, frames=5)
    asc = aac.parse_asc(s.audio_config)
    raw = [t.body[2:] for t in s.audio_tags if t.body[1] == 1]
    stream = b"".join(aac.build_adts_header(asc, len(f)) + f for f in raw)
    container = av.open(io.BytesIO(stream), format="aac")
    st = container.streams.audio[0]
    frames = [f for p in container.demux() for f in p.decode()]
    assert (st.codec_context.sample_rate, st.codec_context.channels) == (48000, 1)
    assert len(frames) == len(raw)


def test_adts_header_fields():
    asc = aac.parse_asc(aac.build_asc(2, 44100, 2))
    h = aac.build_adts_header(asc, 100)
    assert h[:2] == b"\xff\xf1"
    assert (h[2] >> 6) + 1 == 2 and (h[2] >> 2) & 0xF == 4
    assert ((h[3] & 3) << 11 | h[4] << 3 | h[5] >> 5) == 107
    he = aac.parse_asc(aac.build_asc(5, 24000, 2, extension_sample_rate=48000))
    assert (aac.build_adts_header(he, 10)[2] >> 2) & 0xF == 6  # implicit SBR: core rate 24 kHz
    with pytest.raises(UnsupportedCodecError):
        aac.build_adts_header(aac.parse_asc(aac.build_asc(2, 44000, 2)), 10)
    with pytest.raises(UnsupportedCodecError):
        aac.build_adts_header(aac.parse_asc(aac.build_asc(42, 48000, 2)), 10)
