"""The container writers, read back by real demuxers and decoders.

A real stream (libx264 with B-frames + AAC, libx265 when available), encoded with PyAV in
the test, goes through the segmenter; the bytes are read back with PyAV, the FFmpeg CLI and
GStreamer: every frame must decode, frame counts and timestamps must match what went in.
Also structural checks from the specs (ISO BMFF boxes, MPEG-TS packets).
"""

from __future__ import annotations

import io
import struct
import subprocess

import av
import pytest

from mediasrv.hls import mpegts
from mediasrv.hls.fmp4 import Fmp4Writer, TrackRun
from mediasrv.hls.segmenter import Segmenter
from mediasrv.media.types import TrackKind
from tests.hls.conftest import Encoded, encode, has_encoder
from tests.support.tools import missing, require_gst_element, require_tool

T0 = 1_700_000_000.0


def segment(encoded: Encoded, container: str, duration: float = 1.0):
    seg = Segmenter(segment_duration=duration, window=100, container=container, tag="c")
    made = []
    for i, unit in enumerate(encoded.units):
        made += seg.push(unit, T0 + i * 0.01)
    made += seg.finish(T0 + 100)
    return seg, made


def joined(seg, made) -> bytes:
    return (seg.init.data if seg.init.uri else b"") + b"".join(s.data for s in made)


def decode_all(data: bytes):
    """Decoded (video pts ms list, audio pts ms list) via PyAV."""
    video, audio = [], []
    with av.open(io.BytesIO(data)) as c:
        for frame in c.decode(*c.streams):
            ms = frame.pts * frame.time_base * 1000
            (video if isinstance(frame, av.VideoFrame) else audio).append(ms)
    return video, audio


@pytest.fixture(scope="module")
def hevc_aac() -> Encoded:
    if not has_encoder("libx265"):
        missing("PyAV has no libx265 encoder here")
    return encode("libx265")


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_h264_aac_decodes_completely_with_matching_timestamps(h264_aac, container):
    seg, made = segment(h264_aac, container)
    assert [s.duration for s in made] == [1.0] * 4
    video, audio = decode_all(joined(seg, made))
    offset = mpegts.TS_TIME_OFFSET / 90 if container == "mpegts" else 0
    pushed_video = sorted(u.pts for u in h264_aac.video_units)
    assert len(video) == len(pushed_video) == 100
    assert sorted(round(v - offset) for v in video) == pushed_video
    pushed_audio = [u.pts for u in h264_aac.audio_units]
    assert len(audio) == len(pushed_audio)
    # AAC in fMP4 is written sample-exact in its own timescale: within a ms of the input.
    assert all(abs(a - offset - p) <= 1.0 for a, p in zip(sorted(audio), pushed_audio))


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_hevc_aac_decodes_completely(hevc_aac, container):
    seg, made = segment(hevc_aac, container)
    video, audio = decode_all(joined(seg, made))
    offset = mpegts.TS_TIME_OFFSET / 90 if container == "mpegts" else 0
    assert sorted(round(v - offset) for v in video) == sorted(u.pts for u in hevc_aac.video_units)
    assert len(audio) == len(hevc_aac.audio_units)
    if container == "fmp4":
        assert seg.codecs.startswith("hvc1.") and seg.get(seg.init.uri)[4:8] == b"ftyp"


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_each_segment_decodes_on_its_own(h264_aac, container):
    """A player may start at any segment: each (with its init) starts at a keyframe."""
    seg, made = segment(h264_aac, container)
    for s in made:
        data = (seg.init.data if container == "fmp4" else b"") + s.data
        video, audio = decode_all(data)
        assert len(video) == s.video_frames == 25
        assert audio


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_audio_only(container):
    encoded = encode(video=False, seconds=3.0)
    seg, made = segment(encoded, container)
    video, audio = decode_all(joined(seg, made))
    assert not video and len(audio) == len(encoded.audio_units)


def test_new_init_after_a_codec_change_decodes(h264_aac, hevc_aac):
    seg = Segmenter(segment_duration=1.0, window=100, tag="c")
    made = []
    shift = max(u.dts for u in h264_aac.units) + 40
    second = [u.__class__(u.track, u.dts + shift, u.pts + shift, u.keyframe, u.data, discontinuity=(i == 0))
              for i, u in enumerate(hevc_aac.units)]
    for i, unit in enumerate(list(h264_aac.units) + second):
        made += seg.push(unit, T0 + i * 0.01)
    made += seg.finish(T0 + 100)
    inits = {s.init.uri: s.init for s in made}
    assert len(inits) == 2
    for init in inits.values():
        data = init.data + b"".join(s.data for s in made if s.init is init)
        video, _ = decode_all(data)
        assert len(video) == 100


# --- CLI tools --------------------------------------------------------------------------------

@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_ffprobe_counts_every_frame_and_ffmpeg_decodes_without_errors(h264_aac, container, tmp_path):
    ffprobe = require_tool("ffprobe")
    ffmpeg = require_tool("ffmpeg")
    seg, made = segment(h264_aac, container)
    path = tmp_path / ("all.mp4" if container == "fmp4" else "all.ts")
    path.write_bytes(joined(seg, made))
    out = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    counts = dict(line.split(",")[:2] for line in out.stdout.split())
    assert counts == {"h264": "100", "aac": str(len(h264_aac.audio_units))}
    dec = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60)
    assert dec.returncode == 0 and dec.stderr.strip() == "", dec.stderr


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_gstreamer_decodes_every_frame(h264_aac, container, tmp_path):
    gst = require_tool("gst-launch-1.0")
    require_gst_element("decodebin")
    seg, made = segment(h264_aac, container)
    path = tmp_path / ("all.mp4" if container == "fmp4" else "all.ts")
    path.write_bytes(joined(seg, made))
    raw = tmp_path / "video.yuv"
    out = subprocess.run(
        [gst, "-q", "filesrc", f"location={path}", "!", "decodebin", "name=d",
         "d.", "!", "queue", "!", "videoconvert", "!", "video/x-raw,format=I420", "!", "filesink", f"location={raw}",
         "d.", "!", "queue", "!", "audioconvert", "!", "fakesink"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert raw.stat().st_size == 100 * 320 * 240 * 3 // 2


# --- structure ------------------------------------------------------------------------------------

def boxes(data: bytes, start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8 and pos + size <= end, (kind, size)
        yield kind.decode(), pos, size
        pos += size
    assert pos == end


def children(data: bytes, parent_pos: int, header: int = 8) -> dict:
    size = struct.unpack_from(">I", data, parent_pos)[0]
    return {kind: (pos, sz) for kind, pos, sz in boxes(data, parent_pos + header, parent_pos + size)}


def test_fmp4_boxes_follow_cmaf(h264_aac):
    seg, made = segment(h264_aac, "fmp4")
    init = seg.init.data
    top = [k for k, _, _ in boxes(init)]
    assert top == ["ftyp", "moov"]
    moov = children(init, 8 + struct.unpack_from(">I", init, 0)[0] - 8)
    assert {"mvhd", "trak", "mvex"} <= set(moov)
    sequence = 0
    for s in made:
        top = list(boxes(s.data))
        assert [k for k, _, _ in top] == ["moof", "mdat"]
        moof_pos = top[0][1]
        moof = children(s.data, moof_pos)
        mfhd_seq = struct.unpack_from(">I", s.data, moof["mfhd"][0] + 12)[0]
        assert mfhd_seq > sequence
        sequence = mfhd_seq
        trafs = [(pos, sz) for kind, pos, sz in boxes(s.data, moof_pos + 8, moof_pos + top[0][2]) if kind == "traf"]
        assert len(trafs) == 2  # video and audio in one moof
        first_traf = children(s.data, trafs[0][0])
        tfhd_pos = first_traf["tfhd"][0]
        flags = struct.unpack_from(">I", s.data, tfhd_pos + 8)[0] & 0xFFFFFF
        assert flags & 0x020000  # default-base-is-moof
        tfdt_pos = first_traf["tfdt"][0]
        assert s.data[tfdt_pos + 8] == 1  # version 1: 64-bit decode time
        assert struct.unpack_from(">Q", s.data, tfdt_pos + 12)[0] == s.start_dts * 90
        trun_pos = first_traf["trun"][0]
        version_flags = struct.unpack_from(">I", s.data, trun_pos + 8)[0]
        assert version_flags >> 24 == 1 and version_flags & 0xF01 == 0xF01
        count, offset = struct.unpack_from(">Ii", s.data, trun_pos + 12)
        assert count == 25
        first_flags = struct.unpack_from(">I", s.data, trun_pos + 20 + 8)[0]
        assert first_flags == 0x02000000  # the first sample is a sync sample
        # data_offset points into the mdat payload, right after its header.
        assert moof_pos + offset == top[1][1] + 8


def test_fmp4_writer_keeps_aac_sample_exact_across_fragments(h264_aac):
    """AAC durations are 1024 ticks at 48 kHz even though the input is in ms."""
    audio = h264_aac.audio_units
    writer = Fmp4Writer({TrackKind.AUDIO: h264_aac.audio})
    data = writer.init_segment()
    for chunk in (audio[:40], audio[40:95], audio[95:]):
        data += writer.fragment([TrackRun(h264_aac.audio, chunk)])
    with av.open(io.BytesIO(data)) as c:
        packets = [p for p in c.demux(audio=0) if p.pts is not None]
        ticks = [p.pts for p in packets]
        assert c.streams.audio[0].time_base.denominator == 48000
    assert all(b - a == 1024 for a, b in zip(ticks, ticks[1:]))


def test_mpegts_packets_pcr_and_continuity(h264_aac):
    seg, made = segment(h264_aac, "mpegts")
    cc: dict[int, int] = {}
    for s in made:
        data = s.data
        assert len(data) % 188 == 0
        pids_in_order = []
        for pos in range(0, len(data), 188):
            packet = data[pos:pos + 188]
            assert packet[0] == 0x47
            pid = ((packet[1] & 0x1F) << 8) | packet[2]
            pusi = bool(packet[1] & 0x40)
            afc = (packet[3] >> 4) & 3
            counter = packet[3] & 0x0F
            if afc & 1:  # payload present: the counter increments (mod 16) per PID
                if pid in cc:
                    assert counter == (cc[pid] + 1) & 0x0F, f"continuity broken on PID {pid:#x}"
                cc[pid] = counter
            pids_in_order.append(pid)
            if pid == mpegts.VIDEO_PID and pusi:
                assert afc & 2, "every video PES starts with an adaptation field (PCR)"
                assert packet[5] & 0x10, "PCR flag"
                base = (packet[6] << 25) | (packet[7] << 17) | (packet[8] << 9) | (packet[9] << 1) | (packet[10] >> 7)
                payload = packet[5 + packet[4]:]
                assert payload[:3] == b"\x00\x00\x01"
                pts_dts_flags = payload[7] >> 6
                assert pts_dts_flags in (2, 3)
                field = payload[9 + 5:9 + 10] if pts_dts_flags == 3 else payload[9:14]
                dts = ((field[0] >> 1) & 7) << 30 | field[1] << 22 | (field[2] >> 1) << 15 | field[3] << 7 | field[4] >> 1
                assert base <= dts, "the PCR never runs behind the decode time"
        # Each segment begins with PAT then PMT.
        assert pids_in_order[:2] == [mpegts.PAT_PID, mpegts.PMT_PID]


def test_mpegts_crc_and_pat():
    assert mpegts.crc32_mpeg2(b"123456789") == 0x0376E6E7  # CRC-32/MPEG-2 check value
    writer = mpegts.TsWriter()
    from tests.hls.conftest import AUDIO, VIDEO
    data = writer.segment({TrackKind.VIDEO: VIDEO, TrackKind.AUDIO: AUDIO}, [])
    pat = data[:188]
    section_length = ((pat[6] & 0x0F) << 8) | pat[7]
    section = pat[5:5 + 3 + section_length]
    assert mpegts.crc32_mpeg2(section) == 0  # CRC over a section including its CRC is 0
