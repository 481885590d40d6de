"""The decode-once / encode-per-rung pipeline, run in-process on real encoded input."""

from __future__ import annotations

import threading
import time

import pytest

from mediasrv.config import RungConfig
from mediasrv.media.avc import parse_avcc
from mediasrv.media.types import MediaUnit, TrackKind
from tests.hls.conftest import encode, has_encoder
from tests.transcode.conftest import decode_rung, run_pipeline
from tests.support.tools import in_ci


def test_rungs_have_their_sizes_and_keyframes_only_where_forced():
    # Source GOP 0.4 s: its keyframes must not leak into the rungs (picture type reset).
    units = list(encode(seconds=4.0, fps=25, gop=10).units)
    out = run_pipeline(units, segment=1.0)
    assert {r["name"]: (r["width"], r["height"]) for r in out.rungs.values()} == {"240p": (320, 240), "144p": (192, 144)}
    first = next(u.pts for u in units if u.kind is TrackKind.VIDEO and u.keyframe)
    # The first source keyframe at least 0.95 s after the last forced one (GOP 0.4 s).
    assert out.forced == [first + t for t in (0, 1200, 2400, 3600)]
    for index, rung in out.rungs.items():
        avcc = parse_avcc(__import__("base64").b64decode(rung["config"]))
        assert avcc.parsed_sps().width == rung["width"] and avcc.parsed_sps().height == rung["height"]
        assert out.keyframes(index) == out.forced  # aligned across rungs, IDR on exactly those frames
        frames = decode_rung(out, index)
        assert len(frames) == 100
        assert {(f.width, f.height) for f in frames} == {(rung["width"], rung["height"])}
        pts = [p.pts for p in out.packets[index]]
        assert pts == sorted(pts) and [p.dts for p in out.packets[index]] == pts  # no B-frames
    assert out.stats["frames_decoded"] == 100
    assert out.stats["input_dropped"] == 0


def test_the_rung_of_the_source_size_encodes_the_decoded_frame_without_reformatting(monkeypatch):
    # 320x240 source: the 240p rung is the source's size and pixel format, so it must not
    # go through a reformatter (no call, no copy) yet stay aligned with the scaled rung.
    from mediasrv.transcode import pipeline as pipeline_module

    calls: dict[tuple[int, int], int] = {}
    real_reformatter = pipeline_module.VideoReformatter

    class CountingReformatter:
        def __init__(self) -> None:
            self.real = real_reformatter()

        def reformat(self, frame, width, height, *args, **kwargs):
            calls[(width, height)] = calls.get((width, height), 0) + 1
            return self.real.reformat(frame, width, height, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "VideoReformatter", CountingReformatter)
    units = list(encode(seconds=3.0, fps=25, gop=10, width=320, height=240).units)
    out = run_pipeline(units, segment=1.0)
    same, scaled = out.by_name("240p"), out.by_name("144p")
    assert (out.rungs[same]["width"], out.rungs[same]["height"]) == (320, 240)
    assert calls == {(192, 144): 75}  # every frame of the scaled rung, none of the other
    assert out.keyframes(same) == out.keyframes(scaled) == out.forced
    for index, size in ((same, (320, 240)), (scaled, (192, 144))):
        frames = decode_rung(out, index)
        assert len(frames) == 75 and {(f.width, f.height) for f in frames} == {size}


def test_audio_is_encoded_once_for_every_rung():
    units = list(encode(seconds=3.0).units)
    out = run_pipeline(units, audio_bitrate=64_000)
    assert len(out.audio) == 1
    assert out.audio[0]["codec"] == "aac" and out.audio[0]["sample_rate"] == 48000 and out.audio[0]["channels"] == 2
    audio = out.packets[255]
    source_audio = [u for u in units if u.kind is TrackKind.AUDIO]
    assert abs(len(audio) - len(source_audio)) <= 2
    pts = [p.pts for p in audio]
    assert pts == sorted(pts) and pts[0] >= 0
    steps = {b - a for a, b in zip(pts, pts[1:])}
    assert steps <= {21, 22}  # 1024 samples at 48 kHz, continuous
    assert sum(len(p.data) for p in audio) * 8 / 3.0 < 64_000 * 1.3


def test_frame_rate_cap():
    ladder = (RungConfig(name="240p", height=240,
                         video_bitrate=300_000, maxrate=350_000, bufsize=700_000, max_fps=10.0, preset="veryfast"),)
    out = run_pipeline(list(encode(seconds=4.0, fps=25, gop=25).units), ladder)
    index = out.by_name("240p")
    assert 38 <= len(out.packets[index]) <= 42  # 10 fps of a 25 fps source
    assert out.keyframes(index) == out.forced
    assert out.stats["rungs"][str(index)]["frames_capped"] >= 55


@pytest.mark.skipif(not has_encoder("libx265") and not in_ci(), reason="no libx265 in PyAV")
def test_hevc_source_gives_h264_rungs():
    out = run_pipeline(list(encode(codec="libx265", seconds=2.0).units))
    for index, rung in out.rungs.items():
        assert rung["codec"] == "h264"
        assert len(decode_rung(out, index)) == 50


def test_a_source_that_changes_size_gets_a_new_ladder():
    first = list(encode(seconds=2.0, width=320, height=240).units)
    second = [MediaUnit(u.track, u.dts + 2000, u.pts + 2000, u.keyframe, u.data)
              for u in encode(seconds=2.0, width=256, height=144, gop=25).units]
    out = run_pipeline(first + second)
    assert out.stats["replans"] == 1
    sizes = {(r["width"], r["height"]) for r in out.rungs.values()}
    assert (256, 144) in sizes  # the 144p rung of a 16:9 source
    assert any("now 256x144" in e["message"] for e in out.events)


def _paced(seconds_at_once: float = 0.0):
    """Feed messages at the pace of their timestamps (after ``seconds_at_once`` of burst)."""

    def feed(pipeline, messages):
        start = time.monotonic()
        for kind, value in messages[:-1]:
            at = getattr(value, "dts", 0) / 1000 - seconds_at_once
            ahead = at - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)  # pacing a live publisher
            pipeline.submit(kind, value)
        pipeline.submit(*messages[-1])

    return feed


def test_live_overload_sheds_the_most_expensive_rung_then_recovers(monkeypatch):
    # The 240p rung becomes slower than real time (a sleep per frame stands for a CPU
    # that cannot keep up) for the first 4 s, then fast again.
    from mediasrv.transcode import pipeline as pipeline_module

    original = pipeline_module._Rung._frame

    def frame(self, frame, pts, forced, decimate):
        if self.plan.name == "240p" and pts < 4000:
            time.sleep(0.08)
        return original(self, frame, pts, forced, decimate)

    monkeypatch.setattr(pipeline_module._Rung, "_frame", frame)
    units = list(encode(seconds=9.0, fps=25, gop=25).units)
    out = run_pipeline(units, live=True, max_queue_seconds=0.4, recover_after=1.5, feed=_paced())
    messages = [e["message"] for e in out.events]
    assert any("dropping rung 240p" in m for m in messages), messages
    assert any("restoring rung 240p" in m for m in messages), messages
    assert out.stats["sheds"] >= 1 and out.stats["restores"] >= 1
    big, small = out.by_name("240p"), out.by_name("144p")
    rung_stats = out.stats["rungs"]
    assert rung_stats[str(big)]["frames_dropped"] > 0
    assert rung_stats[str(small)]["frames_dropped"] == 0
    # The restored rung resumes on an aligned keyframe, marked as a discontinuity.
    resumed = [p for p in out.packets[big] if p.discontinuity]
    assert resumed and all(p.keyframe and p.pts in out.forced for p in resumed)
    assert set(out.keyframes(big)) <= set(out.forced)
    assert out.keyframes(small) == out.forced
    assert out.stats["input_dropped"] == 0


def test_live_queue_has_a_hard_bound_and_resumes_at_a_keyframe():
    # 3 s of input at once (a stalled network that flushes), then real time: the queue
    # never holds more than 2 x max_queue_seconds; the rungs resume on aligned keyframes.
    units = list(encode(seconds=6.0, fps=25, gop=10).units)
    out = run_pipeline(units, live=True, max_queue_seconds=0.3, feed=_paced(seconds_at_once=3.0))
    stats = out.stats
    assert stats["input_skips"] >= 1 and stats["input_dropped"] > 0
    assert stats["queue_seconds"] <= 0.6
    for index in out.rungs:
        assert out.keyframes(index) and set(out.keyframes(index)) <= set(out.forced)
        assert len(out.packets[index]) >= 50  # the last 3 s at least


def test_a_decode_thread_that_fails_mid_feed_releases_the_feeder_and_reports_why():
    # Not live, the feeder waits for room in a full input queue (2 s of video here): when
    # the decode thread dies it must be let through and the failure reported at once,
    # not leave the feeder waiting for a reader that is gone.
    from mediasrv.transcode.protocol import MessageType

    units = list(encode(seconds=8.0, fps=25, gop=25).units)

    def feed(pipeline, messages):
        for kind, value in messages:
            if kind is MessageType.VIDEO_TRACK:
                value = {**value, "codec": "no-such-codec"}
            pipeline.submit(kind, value)

    result = {}

    def run():
        try:
            run_pipeline(units, feed=feed, max_queue_seconds=2.0, timeout=120)
        except AssertionError as exc:
            result["error"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)  # a deadline for a hang, far above the few hundred ms this takes
    assert not thread.is_alive(), "the feeder is still blocked on the input queue"
    assert "cannot decode 'no-such-codec' video" in result.get("error", ""), result
