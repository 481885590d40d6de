"""The small parts of WHIP ingest on their own: answer twins, Link headers, the port range
check, the session timeline, the frame queue, the encoders."""

from __future__ import annotations

import fractions
import threading
import time

import av
import numpy as np
import pytest

from mediasrv.config import IceServerConfig
from mediasrv.ingest.whip.answer import negotiated_codec, with_public_candidates
from mediasrv.ingest.whip.audio_encoder import AacEncoder
from mediasrv.ingest.whip.frames import FrameQueue
from mediasrv.ingest.whip.links import link_values
from mediasrv.ingest.whip.port_range import port_range_warning, read_port_range
from mediasrv.ingest.whip.timeline import SessionOrigin, TrackTimeline
from mediasrv.ingest.whip.transcoder import SessionTranscoder
from mediasrv.ingest.whip.video_encoder import H264Encoder
from mediasrv.media.types import Codec
from tests.support.clients import decode_units

ANSWER = "\r\n".join([
    "v=0", "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "a=candidate:aa 1 udp 2130706431 10.0.0.5 40001 typ host",
    "a=candidate:bb 1 udp 2130706431 fd00::2 40002 typ host",
    "a=candidate:cc 1 udp 1694498815 198.51.100.1 50000 typ srflx raddr 10.0.0.5 rport 40001",
    "a=end-of-candidates", ""])


def test_public_address_twins_each_ipv4_host_candidate():
    out = with_public_candidates(ANSWER, "203.0.113.9")
    lines = out.split("\r\n")
    twin = lines[lines.index("a=candidate:aa 1 udp 2130706431 10.0.0.5 40001 typ host") + 1]
    assert twin == "a=candidate:aap 1 udp 2130706430 203.0.113.9 40001 typ host"
    assert sum("203.0.113.9" in line for line in lines) == 1  # not the IPv6 nor the srflx one
    assert with_public_candidates(ANSWER, "") == ANSWER
    assert with_public_candidates(out, "203.0.113.9").count("203.0.113.9") == 1 + 1  # no twin of a twin


def test_the_negotiated_codec_is_the_first_of_the_answers_section():
    answer = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
              "m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n")
    assert negotiated_codec(answer, "video") == "H264" and negotiated_codec(answer, "audio") == "opus"
    assert negotiated_codec(ANSWER, "audio") == ""


def test_link_headers_leave_out_secrets_unless_asked():
    servers = [IceServerConfig(urls=("stun:a.example:3478", "stun:b.example:3478")),
               IceServerConfig(urls=("turns:t.example:5349?transport=tcp",), username="u", credential="p")]
    assert link_values(servers, with_credentials=False) == [
        '<stun:a.example:3478>; rel="ice-server"', '<stun:b.example:3478>; rel="ice-server"']
    assert link_values(servers, with_credentials=True)[-1] == (
        '<turns:t.example:5349?transport=tcp>; rel="ice-server"; username="u"; credential="p"; '
        'credential-type="password"')


def test_port_range_check(tmp_path):
    proc = tmp_path / "ip_local_port_range"
    proc.write_text("32768\t60999\n")
    assert read_port_range(proc) == (32768, 60999)
    assert read_port_range(tmp_path / "absent") is None
    assert port_range_warning(None, (32768, 60999)) is None
    assert port_range_warning((40000, 40099), (40000, 40099)) is None
    warning = port_range_warning((40000, 40099), (32768, 60999))
    assert "32768-60999" in warning and '"40000 40099"' in warning
    assert "cannot be read" in port_range_warning((40000, 40099), None)


def test_tracks_are_anchored_at_their_first_arrival_on_one_clock():
    origin = SessionOrigin()
    video = TrackTimeline(origin, 1000)
    audio = TrackTimeline(origin, 48000, strictly=False)
    # Audio arrives first (origin), video 120 ms later; RTP clocks start anywhere.
    assert audio.place(123_456, 10.000) == 0
    assert video.place(987_654, 10.120) == 120
    assert audio.place(123_456 + 960, 10.020) == 960  # its own clock from there, not arrival jitter
    assert video.place(987_654 + 33, 10.160) == 153
    # Late arrival does not move a track: it keeps its RTP clock.
    assert video.place(987_654 + 66, 10.400) == 186
    # A restarted sender (RTP time far from the arrival clock) is re-anchored at arrival.
    assert video.place(5, 11.000) == 1000 and video.rebases == 1
    # Never backwards; video strictly forwards.
    assert video.place(4, 11.001) == 1001 and video.monotonic_fixes == 1
    assert video.corrections == 2


def test_frame_queue_drops_the_oldest_video_first_and_never_blocks():
    queue = FrameQueue(video_frames=3, audio_frames=2)
    for index in range(5):
        queue.put("video", index, float(index))
    queue.put("audio", "a0", 0.5)
    queue.put("audio", "a1", 0.6)
    queue.put("audio", "a2", 0.7)
    assert queue.dropped == {"video": 2, "audio": 1}
    assert [queue.get()[1] for _ in range(len(queue))] == [2, 3, 4, "a1", "a2"]
    got = []
    consumer = threading.Thread(target=lambda: got.append(queue.get()))
    consumer.start()
    queue.close()
    consumer.join(5)
    assert got == [None]


def _video_frame(width: int, height: int, pts: int) -> av.VideoFrame:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = 200  # bright left half: a rotation or crop would move it
    image[:, :, 1] = (pts // 3000) % 255
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, fractions.Fraction(1, 90000)
    return frame


def test_video_keeps_its_first_size_and_orientation_with_timed_keyframes():
    encoder = H264Encoder(bitrate=500_000, preset="ultrafast", keyframe_interval=1.0)
    units = []
    for index in range(60):  # portrait 360x640 at 20 fps, then the sender drops to 180x320
        width, height = (360, 640) if index < 30 else (180, 320)
        units += encoder.encode(_video_frame(width, height, index * 4500), index * 50)
    assert encoder.track.codec is Codec.H264 and (encoder.track.width, encoder.track.height) == (360, 640)
    assert encoder.scaled == 30
    assert [u.dts for u in units if u.keyframe] == [0, 1000, 2000]
    assert all(u.dts == u.pts for u in units) and [u.dts for u in units] == sorted({u.dts for u in units})
    # A packet per frame, one frame late (x264's rate control on real timestamps needs the
    # next frame's), and every one decodes.
    assert len(units) == 59 == decode_units(units)
    ctx = av.CodecContext.create("h264", "r")
    ctx.extradata = encoder.track.config
    frames = [frame for unit in units for frame in ctx.decode(av.Packet(unit.data))]
    last = frames[-1].to_ndarray(format="rgb24")
    assert (last.shape[1], last.shape[0]) == (360, 640)  # still portrait, the first size
    assert last[:, :150].mean() > last[:, 210:].mean() + 100  # the bright half is still on the left


def _audio_frame(pts: int, samples: int = 960) -> av.AudioFrame:
    data = (np.sin(np.arange(samples) / 10) * 8000).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.repeat(data, 2)[None, :], format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48000, pts, fractions.Fraction(1, 48000)
    return frame


def test_opus_frames_become_aac_frames_on_their_positions_and_a_gap_keeps_its_time():
    encoder = AacEncoder(bitrate=96_000)
    units = []
    for index in range(50):  # 1 s of 20 ms frames
        units += encoder.encode(_audio_frame(index * 960), index * 960)
    for index in range(100, 150):  # 1 s lost, then 1 s more
        units += encoder.encode(_audio_frame(index * 960), index * 960)
    assert encoder.track.codec is Codec.AAC and encoder.track.sample_rate == 48000 and encoder.gaps == 1
    dts = [u.dts for u in units]
    assert dts == sorted(dts)
    steps = [b - a for a, b in zip(dts, dts[1:])]
    assert max(steps) > 900 and sorted(steps)[len(steps) // 2] in (21, 22)  # 1024 samples = 21.3 ms
    # 3 s of timeline (less what the encoder still holds), not 2 s squeezed together.
    assert dts[-1] == pytest.approx(2940, abs=60)


def test_encoding_runs_in_its_own_thread():
    emitted, threads = [], set()
    done = threading.Event()

    def emit(units):
        threads.add(threading.current_thread().name)
        emitted.extend(units)
        if len(emitted) >= 7:
            done.set()

    transcoder = SessionTranscoder("t", emit=emit, on_failure=pytest.fail, video_bitrate=300_000,
                                   audio_bitrate=64_000, preset="ultrafast", keyframe_interval=2.0)
    transcoder.start()
    start = time.monotonic()
    for index in range(8):
        transcoder.put("video", _video_frame(320, 240, index * 3000), start + index / 30)
    assert done.wait(20), emitted  # 8 frames in, 7 out (x264 keeps the last one)
    transcoder.stop()
    transcoder.join(5)
    assert len(emitted) == 7 and not transcoder.alive
    assert threads == {"whip-encode t"} and transcoder.stats.cpu_seconds > 0
