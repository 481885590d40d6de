import pytest

from mediasrv.media import flv
from mediasrv.media.errors import MalformedMediaError, UnsupportedCodecError
from mediasrv.media.flv import TagPacket, VideoFrameType, parse_audio_tag, parse_video_tag
from mediasrv.media.ingest import FlvIngest
from mediasrv.media.types import Codec

from . import samples

# --------------------------------------------------------------------------- factories


def si24(v: int) -> bytes:
    return (v & 0xFFFFFF).to_bytes(3, "big")


def legacy_video(frame_type: int, codec_id: int, packet_type: int | None = None, cts: int = 0, body: bytes = b"") -> bytes:
    out = bytes([(frame_type << 4) | codec_id])
    if packet_type is not None:
        out += bytes([packet_type]) + si24(cts)
    return out + body


def ex_byte(frame_type: int, packet_type: int) -> bytes:
    return bytes([0x80 | (frame_type << 4) | packet_type])


def ex_video(frame_type: int, packet_type: int, fourcc: bytes = b"hvc1", body: bytes = b"") -> bytes:
    return ex_byte(frame_type, packet_type) + fourcc + body


def modex(inner_packet_type: int, data: bytes, modex_type: int = 0) -> bytes:
    """ModEx block: size (UI8 + 1, or 0xFF then UI16 + 1), data, type | packet type."""
    if len(data) <= 255:
        size = bytes([len(data) - 1])
    else:
        size = b"\xff" + (len(data) - 1).to_bytes(2, "big")
    return size + data + bytes([(modex_type << 4) | inner_packet_type])


def multitrack(multitrack_type: int, packet_type: int, tracks: list[tuple[int, bytes, bytes]],
               fourcc: bytes | None = b"hvc1") -> bytes:
    """Multitrack body: type | packet type, [FourCC], then (fourcc?, trackId, size?, body)."""
    out = bytes([(multitrack_type << 4) | packet_type])
    if multitrack_type != 2:
        out += fourcc
    for track_id, track_fourcc, body in tracks:
        if multitrack_type == 2:
            out += track_fourcc
        out += bytes([track_id])
        if multitrack_type != 0:
            out += len(body).to_bytes(3, "big")
        out += body
    return out


NALUS = b"\x00\x00\x00\x02\x65\x88"


# --------------------------------------------------------------------------- legacy video


@pytest.mark.parametrize(("codec_id", "codec"), [(7, Codec.H264), (12, Codec.HEVC)])
def test_legacy_video_layouts(codec_id, codec):
    tag = parse_video_tag(legacy_video(1, codec_id, 0, 0, b"config"))
    assert (tag.codec, tag.packet, tag.data, tag.keyframe, tag.enhanced) == (codec, TagPacket.SEQUENCE_HEADER, b"config", True, False)
    tag = parse_video_tag(legacy_video(2, codec_id, 1, -42, NALUS))
    assert (tag.packet, tag.composition_time, tag.data, tag.keyframe) == (TagPacket.CODED_FRAME, -42, NALUS, False)
    tag = parse_video_tag(legacy_video(1, codec_id, 1, 0x7FFFFF, NALUS))
    assert tag.composition_time == 0x7FFFFF
    tag = parse_video_tag(legacy_video(2, codec_id, 1, -(1 << 23), b""))  # header only: empty frame
    assert (tag.codec, tag.frame_type, tag.composition_time, tag.data) == (codec, VideoFrameType.INTER, -(1 << 23), b"")
    assert parse_video_tag(legacy_video(4, codec_id, 1, 0, NALUS)).keyframe  # generated key frame
    assert parse_video_tag(legacy_video(3, codec_id, 1, 0, NALUS)).frame_type is VideoFrameType.DISPOSABLE_INTER
    assert parse_video_tag(legacy_video(1, codec_id, 2)).packet is TagPacket.END_OF_SEQUENCE
    assert parse_video_tag(bytes([0x10 | codec_id, 2])).packet is TagPacket.END_OF_SEQUENCE  # no SI24
    cmd = parse_video_tag(bytes([0x50 | codec_id, 1]))
    assert (cmd.packet, cmd.data, cmd.frame_type) == (TagPacket.COMMAND, b"\x01", VideoFrameType.COMMAND)


def test_avc_coded_frame():
    # What the ingest reads instead of a VideoTag for nearly every H.264 message:
    # (keyframe, composition time, data) of a legacy AVC key or inter frame (NALUs).
    assert flv.avc_coded_frame(legacy_video(1, 7, 1, -42, NALUS)) == (True, -42, NALUS)
    assert flv.avc_coded_frame(legacy_video(2, 7, 1, 0x7FFFFF, NALUS)) == (False, 0x7FFFFF, NALUS)
    assert flv.avc_coded_frame(legacy_video(2, 7, 1, -(1 << 23))) == (False, -(1 << 23), b"")
    assert flv.avc_coded_frame(legacy_video(1, 7, 1, -1, NALUS)) == (True, -1, NALUS)
    # Anything else is parse_video_tag's: a sequence header, HEVC, a generated key frame,
    # a disposable inter frame, end of sequence, a truncated header, Enhanced RTMP.
    for payload in (legacy_video(1, 7, 0, 0, b"config"), legacy_video(1, 12, 1, 0, NALUS),
                    legacy_video(4, 7, 1, 0, NALUS), legacy_video(3, 7, 1, 0, NALUS), legacy_video(1, 7, 2),
                    b"\x17\x01\x00\x00", b"", ex_video(1, 1, b"avc1", si24(0) + NALUS)):
        assert flv.avc_coded_frame(payload) is None


@pytest.mark.parametrize(("codec_id", "name"), [(2, "Sorenson"), (3, "Screen"), (4, "VP6"), (5, "VP6"), (6, "Screen"), (9, "unknown")])
def test_legacy_unsupported_video_codecs(codec_id, name):
    with pytest.raises(UnsupportedCodecError, match=name):
        parse_video_tag(bytes([0x10 | codec_id, 0, 0, 0, 0]))


def test_legacy_video_errors():
    for payload in (b"", b"\x17", b"\x17\x01\x00", bytes([0x07, 1, 0, 0, 0]), bytes([0x67, 1, 0, 0, 0]), b"\x17\x03\x00\x00\x00"):
        with pytest.raises(MalformedMediaError):
            parse_video_tag(payload)


# --------------------------------------------------------------------------- enhanced video


@pytest.mark.parametrize(
    ("fourcc", "codec", "has_cts"),
    [(b"avc1", Codec.H264, True), (b"hvc1", Codec.HEVC, True), (b"av01", Codec.AV1, False), (b"vp09", Codec.VP9, False)],
)
def test_enhanced_video_packet_types(fourcc, codec, has_cts):
    tag = parse_video_tag(ex_video(1, 0, fourcc, b"record"))
    assert (tag.codec, tag.packet, tag.data, tag.enhanced, tag.keyframe) == (codec, TagPacket.SEQUENCE_HEADER, b"record", True, True)
    body = (si24(-5) if has_cts else b"") + b"frame"
    tag = parse_video_tag(ex_video(2, 1, fourcc, body))
    assert (tag.packet, tag.data, tag.composition_time, tag.keyframe) == (TagPacket.CODED_FRAME, b"frame", -5 if has_cts else 0, False)
    tag = parse_video_tag(ex_video(1, 3, fourcc, b"frame"))  # CodedFramesX: no composition time
    assert (tag.packet, tag.data, tag.composition_time) == (TagPacket.CODED_FRAME, b"frame", 0)
    assert parse_video_tag(ex_video(1, 2, fourcc)).packet is TagPacket.END_OF_SEQUENCE
    meta = parse_video_tag(ex_video(5, 4, fourcc, b"\x02\x00\x09colorInfo\x03"))  # frame type ignored
    assert (meta.packet, meta.codec) == (TagPacket.METADATA, codec)
    assert parse_video_tag(ex_video(0, 4, fourcc, b"\x05")).packet is TagPacket.METADATA  # reserved type ok
    assert parse_video_tag(ex_video(1, 5, fourcc, b"desc")).packet is TagPacket.MPEG2TS_SEQUENCE_START


def test_enhanced_command_frame_has_no_fourcc():
    tag = parse_video_tag(ex_byte(5, 1) + b"\x00")
    assert (tag.codec, tag.packet, tag.data, tag.enhanced) == (None, TagPacket.COMMAND, b"\x00", True)


def test_enhanced_video_modex_timestamp_offset():
    tag = parse_video_tag(ex_byte(1, 7) + modex(1, (123456).to_bytes(3, "big")) + b"hvc1" + si24(33) + NALUS)
    assert (tag.packet, tag.timestamp_offset_ns, tag.composition_time, tag.data) == (TagPacket.CODED_FRAME, 123456, 33, NALUS)
    # chained ModEx, one with a 16-bit size and an unknown type, then CodedFramesX
    payload = ex_byte(1, 7) + modex(7, bytes(300), modex_type=5) + modex(3, b"\x00\x00\x07") + b"av01" + b"obus"
    tag = parse_video_tag(payload)
    assert (tag.codec, tag.timestamp_offset_ns, tag.data) == (Codec.AV1, 7, b"obus")
    with pytest.raises(MalformedMediaError):
        parse_video_tag(ex_byte(1, 7) + modex(1, b"\x01"))  # TimestampOffsetNano shorter than 3 bytes
    with pytest.raises(MalformedMediaError):
        parse_video_tag(ex_byte(1, 7) + modex(1, (1_000_000).to_bytes(3, "big")) + b"hvc1" + si24(0))
    with pytest.raises(MalformedMediaError):
        parse_video_tag(ex_byte(1, 7) + b"\x05\x00")  # truncated ModEx data


def test_enhanced_video_multitrack():
    one = parse_video_tag(ex_byte(1, 6) + multitrack(0, 1, [(0, b"", si24(12) + NALUS)]))
    assert (one.codec, one.track_id, one.composition_time, one.data) == (Codec.HEVC, 0, 12, NALUS)
    other = parse_video_tag(ex_byte(1, 6) + multitrack(0, 0, [(2, b"", b"hvcC")]))
    assert (other.track_id, other.packet, other.data) == (2, TagPacket.SEQUENCE_HEADER, b"hvcC")
    # ManyTracks: track 0 wins even when it is not first; other tracks ignored
    many = parse_video_tag(ex_byte(2, 6) + multitrack(1, 3, [(1, b"", b"one"), (0, b"", b"zero"), (2, b"", b"two")], b"av01"))
    assert (many.codec, many.track_id, many.data, many.keyframe) == (Codec.AV1, 0, b"zero", False)
    first = parse_video_tag(ex_byte(2, 6) + multitrack(1, 3, [(3, b"", b"three"), (4, b"", b"four")], b"av01"))
    assert (first.track_id, first.data) == (3, b"three")
    # ManyTracksManyCodecs: each track has its FourCC; an unsupported one is ignored
    mixed = parse_video_tag(ex_byte(1, 6) + multitrack(2, 0, [(1, b"vp08", b"vp8cfg"), (0, b"hvc1", b"hvcC")], None))
    assert (mixed.codec, mixed.track_id, mixed.data) == (Codec.HEVC, 0, b"hvcC")
    with pytest.raises(UnsupportedCodecError, match="VP8"):
        parse_video_tag(ex_byte(1, 6) + multitrack(2, 0, [(0, b"vp08", b"cfg")], None))
    with pytest.raises(MalformedMediaError):  # size of track runs past the end
        parse_video_tag(ex_byte(1, 6) + bytes([0x10]) + b"hvc1" + b"\x00\x00\x00\x09abc")
    with pytest.raises(MalformedMediaError):  # nested multitrack
        parse_video_tag(ex_byte(1, 6) + multitrack(0, 6, [(0, b"", b"x")]))
    with pytest.raises(MalformedMediaError):  # reserved multitrack type
        parse_video_tag(ex_byte(1, 6) + bytes([0x30]) + b"hvc1\x00x")
    with pytest.raises(MalformedMediaError):  # no tracks
        parse_video_tag(ex_byte(1, 6) + multitrack(1, 1, []))


def test_enhanced_video_errors():
    with pytest.raises(UnsupportedCodecError, match="VP8"):
        parse_video_tag(ex_video(1, 0, b"vp08", b"cfg"))
    with pytest.raises(UnsupportedCodecError, match="VVC"):
        parse_video_tag(ex_video(1, 0, b"vvc1", b"cfg"))
    with pytest.raises(UnsupportedCodecError, match="xyz1"):
        parse_video_tag(ex_video(1, 0, b"xyz1", b"cfg"))
    for payload in (ex_video(1, 8), ex_video(0, 1), ex_video(6, 1), ex_byte(1, 1) + b"hv", ex_video(1, 1, b"hvc1", b"\x00")):
        with pytest.raises(MalformedMediaError):
            parse_video_tag(payload)


# --------------------------------------------------------------------------- audio


def test_legacy_aac():
    tag = parse_audio_tag(b"\xaf\x00\x12\x10")
    assert (tag.codec, tag.packet, tag.data, tag.enhanced) == (Codec.AAC, TagPacket.SEQUENCE_HEADER, b"\x12\x10", False)
    tag = parse_audio_tag(b"\xa2\x01frame")  # sound rate/size/type bits are irrelevant for AAC
    assert (tag.packet, tag.data) == (TagPacket.CODED_FRAME, b"frame")
    for payload in (b"", b"\xaf", b"\xaf\x02"):
        with pytest.raises(MalformedMediaError):
            parse_audio_tag(payload)


def test_aac_raw_frame():
    # What the ingest reads instead of an AudioTag for most audio messages: the data of a
    # raw AAC frame; anything else is parse_audio_tag's.
    assert flv.aac_raw_frame(b"\xaf\x01frame") == b"frame"
    assert flv.aac_raw_frame(b"\xa2\x01") == b""
    for payload in (b"\xaf\x00\x12\x10", b"\xaf", b"", b"\x2f\x01xx", b"\x91mp4aframe", b"\xaf\x02x"):
        assert flv.aac_raw_frame(payload) is None


@pytest.mark.parametrize(
    ("byte0", "name"),
    [(0x2F, "MP3"), (0xB6, "Speex"), (0x06, "PCM"), (0x3E, "PCM"), (0x52, "Nellymoser"), (0x72, "G.711"),
     (0xE2, "MP3 8 kHz"), (0xF0, "device")],
)
def test_legacy_unsupported_audio(byte0, name):
    with pytest.raises(UnsupportedCodecError, match=name):
        parse_audio_tag(bytes([byte0, 0, 0]))


def test_reserved_sound_format():
    with pytest.raises(MalformedMediaError):
        parse_audio_tag(b"\xc0\x00")


def test_enhanced_audio():
    tag = parse_audio_tag(b"\x90mp4a\x12\x10")
    assert (tag.codec, tag.packet, tag.data, tag.enhanced) == (Codec.AAC, TagPacket.SEQUENCE_HEADER, b"\x12\x10", True)
    assert parse_audio_tag(b"\x91mp4aframe").packet is TagPacket.CODED_FRAME
    assert parse_audio_tag(b"\x92mp4a").packet is TagPacket.END_OF_SEQUENCE
    assert parse_audio_tag(b"\x94mp4a\x01\x02").packet is TagPacket.MULTICHANNEL_CONFIG
    tag = parse_audio_tag(b"\x97" + modex(1, b"\x00\x01\x00") + b"mp4aframe")
    assert (tag.timestamp_offset_ns, tag.data) == (256, b"frame")
    tag = parse_audio_tag(b"\x95" + multitrack(1, 1, [(1, b"", b"one"), (0, b"", b"zero")], b"mp4a"))
    assert (tag.track_id, tag.data) == (0, b"zero")
    tag = parse_audio_tag(b"\x95" + multitrack(2, 1, [(1, b"Opus", b"opus"), (0, b"mp4a", b"aac")], None))
    assert (tag.codec, tag.data) == (Codec.AAC, b"aac")
    for payload in (b"\x93mp4a", b"\x98mp4a", b"\x95" + multitrack(0, 5, [(0, b"", b"")], b"mp4a"), b"\x90mp4", b"\x95\x03"):
        with pytest.raises(MalformedMediaError):
            parse_audio_tag(payload)


@pytest.mark.parametrize("fourcc", [b"Opus", b"fLaC", b"ac-3", b"ec-3", b".mp3", b"zzzz"])
def test_enhanced_audio_unsupported(fourcc):
    with pytest.raises(UnsupportedCodecError, match=fourcc.decode()):
        parse_audio_tag(b"\x90" + fourcc + b"config")


# --------------------------------------------------------------------------- real FFmpeg tags


CODECS = [c for c in ("h264", "hevc", "av1", "vp9") if samples.has_encoder(c)]
EXPECTED = {"h264": Codec.H264, "hevc": Codec.HEVC, "av1": Codec.AV1, "vp9": Codec.VP9}


@pytest.mark.parametrize("name", CODECS)
def test_tags_written_by_libavformat(name):
    s = samples.video(name)
    video = [parse_video_tag(t.body) for t in s.video_tags]
    assert video[0].packet is TagPacket.SEQUENCE_HEADER and video[0].codec is EXPECTED[name]
    assert video[0].enhanced is (name != "h264")
    frames = [t for t in video if t.packet is TagPacket.CODED_FRAME]
    assert len(frames) == 10
    assert [f.keyframe for f in frames] == [True] + [False] * 9
    demuxed = [p for p in s.packets if p.kind == "video"]
    assert [f.composition_time for f in frames] == [p.pts - p.dts for p in demuxed]
    audio = [parse_audio_tag(t.body) for t in s.audio_tags]
    assert audio[0].packet is TagPacket.SEQUENCE_HEADER
    assert sum(a.packet is TagPacket.CODED_FRAME for a in audio) >= 10  # + encoder flush


# --------------------------------------------------------------------------- builders


def _ingest_sample(s):
    ingest = FlvIngest()
    units = []
    for t in s.tags:
        if t.type == samples.TAG_VIDEO:
            unit = ingest.video(t.timestamp, t.body)
        elif t.type == samples.TAG_AUDIO:
            unit = ingest.audio(t.timestamp, t.body)
        else:
            continue
        if unit is not None:
            units.append(unit)
    return ingest, units


@pytest.mark.parametrize("name", CODECS)
def test_builders_round_trip_through_parsers(name):
    ingest, units = _ingest_sample(samples.video(name))
    vt, at = ingest.video_track, ingest.audio_track
    header = parse_video_tag(flv.build_video_sequence_header(vt))
    assert (header.codec, header.packet, header.data) == (vt.codec, TagPacket.SEQUENCE_HEADER, vt.config)
    assert header.enhanced is (vt.codec is not Codec.H264)
    assert parse_video_tag(flv.build_video_end_of_sequence(vt)).packet is TagPacket.END_OF_SEQUENCE
    a = parse_audio_tag(flv.build_audio_sequence_header(at))
    assert (a.codec, a.packet, a.data) == (Codec.AAC, TagPacket.SEQUENCE_HEADER, at.config)
    for unit in units:
        if unit.track.kind.value == "video":
            tag = parse_video_tag(flv.build_video_frame(unit))
            assert (tag.codec, tag.packet, tag.keyframe, tag.composition_time, tag.data) == (
                vt.codec, TagPacket.CODED_FRAME, unit.keyframe, unit.composition_offset, unit.data)
        else:
            tag = parse_audio_tag(flv.build_audio_frame(unit))
            assert (tag.packet, tag.data) == (TagPacket.CODED_FRAME, unit.data)


@pytest.mark.parametrize("name", CODECS)
def test_libav_reads_what_the_builders_write(name):
    """The playback layout (legacy H.264/AAC, E-RTMP HEVC/AV1/VP9) is what FFmpeg reads."""
    s = samples.video(name)
    ingest, units = _ingest_sample(s)
    tags = [
        samples.FlvTag(samples.TAG_VIDEO, 0, flv.build_video_sequence_header(ingest.video_track)),
        samples.FlvTag(samples.TAG_AUDIO, 0, flv.build_audio_sequence_header(ingest.audio_track)),
    ]
    for u in units:
        if u.track.kind.value == "video":
            tags.append(samples.FlvTag(samples.TAG_VIDEO, u.dts, flv.build_video_frame(u)))
        else:
            tags.append(samples.FlvTag(samples.TAG_AUDIO, u.dts, flv.build_audio_frame(u)))
    probe, packets = samples.probe_flv(samples.write_flv(tags))
    assert probe["video"].decoded_frames == 10
    assert (probe["video"].width, probe["video"].height) == (s.probe["video"].width, s.probe["video"].height)
    assert probe["video"].profile == s.probe["video"].profile
    assert probe["audio"].decoded_frames >= 10
    assert (probe["audio"].sample_rate, probe["audio"].channels) == (44100, 2)
    original = [(p.kind, p.dts, p.pts, p.keyframe) for p in s.packets]
    assert [(p.kind, p.dts, p.pts, p.keyframe) for p in packets] == original


def test_builder_argument_errors():
    from mediasrv.media.types import MediaUnit, TrackInfo

    video = TrackInfo(Codec.H264, b"cfg", "avc1.64001f")
    audio = TrackInfo(Codec.AAC, b"\x12\x10", "mp4a.40.2")
    with pytest.raises(ValueError):
        flv.build_video_sequence_header(audio)
    with pytest.raises(ValueError):
        flv.build_audio_sequence_header(video)
    with pytest.raises(ValueError):
        flv.build_video_frame(MediaUnit(video, 0, 1 << 23, True, b""))
    with pytest.raises(ValueError):
        flv.build_audio_frame(MediaUnit(video, 0, 0, True, b""))
    unit = MediaUnit(video, 100, 100 - (1 << 23), True, NALUS)
    assert parse_video_tag(flv.build_video_frame(unit)).composition_time == -(1 << 23)
