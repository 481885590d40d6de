"""The ladder plan, the aligned-keyframe planner and the frame-rate cap (pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mediasrv.config import RungConfig, TranscodeConfig
from mediasrv.hls.segmenter import CUT_FRACTION, Segmenter
from mediasrv.media.types import Codec, MediaUnit, TrackInfo
from mediasrv.transcode.ladder import (FrameRateCap, KeyframePlanner, output_width, plan_ladder, shed_order,
                                      short_side)

DEFAULT = TranscodeConfig().ladder


def test_default_ladder_for_a_720p_source():
    plans = plan_ladder(1280, 720, DEFAULT)
    assert [(p.name, p.width, p.height) for p in plans] == [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
    assert [p.video_bitrate for p in plans] == [2_800_000, 1_400_000, 800_000]
    assert shed_order(plans) == [0, 1, 2]  # the most expensive first


def test_rungs_taller_than_the_source_are_left_out():
    assert [p.name for p in plan_ladder(854, 480, DEFAULT)] == ["480p", "360p"]
    assert [p.name for p in plan_ladder(640, 352, DEFAULT)] == []
    assert [p.index for p in plan_ladder(1000, 400, DEFAULT)] == [2]  # index = place in the configured ladder
    assert plan_ladder(0, 0, DEFAULT) == []


def test_width_follows_the_display_aspect_ratio_and_is_even():
    assert output_width(1920, 1080, 720) == 1280
    assert output_width(1280, 720, 480) == 854  # 853.33
    assert output_width(720, 1280, 360) % 2 == 0  # portrait phone video
    assert output_width(4, 3, 480) == 640
    # Anamorphic: 1440x1080 with 4:3 pixels displays as 1920x1080.
    assert output_width(1440, 1080, 720, sar=(4, 3)) == 1280
    for w, h in [(1280, 720), (1366, 768), (720, 1280), (1000, 1000), (642, 360)]:
        for rung in (144, 240, 360, 480):
            assert output_width(w, h, rung) % 2 == 0


def test_custom_ladder_order_and_costs():
    ladder = (RungConfig(name="small", height=240,
                         video_bitrate=300_000, maxrate=350_000, bufsize=700_000, max_fps=15.0, preset="veryfast"),
              RungConfig(name="big", height=480,
                         video_bitrate=900_000, maxrate=1_000_000, bufsize=2_000_000, max_fps=30.0, preset="veryfast"))
    plans = plan_ladder(854, 480, ladder)
    assert [p.name for p in plans] == ["small", "big"]
    assert shed_order(plans) == [1, 0]


def _units_for(keyframes_pts: list[int], frame_ms: int, count: int) -> list[tuple[int, bool]]:
    keys = set(keyframes_pts)
    return [(i * frame_ms, i * frame_ms in keys) for i in range(count)]


@settings(max_examples=60, deadline=None)
@given(
    gop_frames=st.lists(st.integers(min_value=5, max_value=90), min_size=3, max_size=20),
    frame_ms=st.sampled_from([33, 40, 17]),
    segment=st.sampled_from([1.0, 2.0, 4.0]),
)
def test_planner_forces_exactly_where_the_source_segmenter_cuts(gop_frames, frame_ms, segment):
    """With source GOPs up to twice the segment duration (and the service's max gap of
    three), the rungs' keyframes are the first frames of the source's HLS segments: the
    segmenter itself is the oracle."""
    max_gap = int(3 * segment * 1000)
    cut_ms = int(segment * 1000 * CUT_FRACTION)
    keys, pts = [], 0
    for gop in gop_frames:
        if gop * frame_ms > 2 * segment * 1000:
            gop = int(2 * segment * 1000) // frame_ms
        keys.append(pts)
        pts += gop * frame_ms
    frames = _units_for(keys, frame_ms, pts // frame_ms)
    planner = KeyframePlanner(cut_ms, max_gap)
    forced = [p for p, key in frames if planner.decide(p, key)]

    track = TrackInfo(Codec.H264, b"", "avc1.64001f", 320, 240)
    segmenter = Segmenter(segment_duration=segment, window=1000, expect_video=True)
    starts = []
    for p, key in frames:
        for seg in segmenter.push(MediaUnit(track, p, p, key, b"\x00\x00\x00\x01\x65"), 0.0):
            starts.append(seg.start_dts)
    for seg in segmenter.finish(0.0):
        starts.append(seg.start_dts)
    assert forced == starts
    assert planner.cadence_forced == 0


def test_planner_falls_back_to_a_cadence_without_source_keyframes():
    planner = KeyframePlanner(1900, 4000)
    frames = [(i * 40, i == 0) for i in range(250)]  # 10 s, one keyframe at the start
    forced = [p for p, key in frames if planner.decide(p, key)]
    assert forced == [0, 4000, 8000]
    assert planner.cadence_forced == 2


def test_planner_waits_for_a_source_keyframe_first_and_after_reset():
    planner = KeyframePlanner(1900, 4000)
    assert not planner.decide(0, False)
    assert planner.decide(40, True)
    assert not planner.decide(1000, True)
    planner.reset()  # publisher reconnect: the segmenter cuts at its next keyframe too
    assert not planner.decide(1040, False)
    assert planner.decide(1080, True)


def test_frame_rate_cap_thins_evenly():
    def kept(fps_in: float, cap: float, seconds: float = 10.0) -> int:
        c = FrameRateCap(cap)
        n = int(fps_in * seconds)
        return sum(c.keep(round(i * 1000 / fps_in)) for i in range(n))

    assert kept(30, 30) == 300
    assert kept(29.97, 30) == 299
    assert kept(60, 30) == 300
    assert kept(50, 30) in range(295, 306)
    assert kept(25, 30) == 250
    assert kept(60, 15) == 150


def test_frame_rate_cap_always_keeps_forced_frames():
    c = FrameRateCap(10)
    assert c.keep(0)
    assert not c.keep(40)
    assert c.keep(40, force=True)
    assert not c.keep(80)
    assert c.keep(140)


def test_a_portrait_source_s_rungs_are_named_by_their_short_side():
    """A phone held upright (720x1280) is "720p": its 720p rung is 720 wide and keeps the
    picture's size (issue 16, item 8: the rungs were as tall as their name, so the "720p"
    rung of this source was a 406x720 picture and "480p" 270x480)."""
    plans = plan_ladder(720, 1280, DEFAULT)
    assert [(p.name, p.width, p.height) for p in plans] == [
        ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640)]
    for plan in plans:
        assert short_side(plan.width, plan.height) == int(plan.name.removesuffix("p"))
    assert short_side(720, 1280) == 720 and short_side(1280, 720) == 720
    # A 1080p rung is bigger than a 720-wide portrait source, however tall it is.
    rungs = [RungConfig(name="1080p", height=1080), RungConfig(name="720p", height=720)]
    assert [p.name for p in plan_ladder(720, 1280, rungs)] == ["720p"]
    # A square picture is its height; an anamorphic portrait one counts displayed pixels.
    assert [p.name for p in plan_ladder(480, 480, DEFAULT)] == ["480p", "360p"]
    assert plan_ladder(540, 1280, [RungConfig(name="720p", height=720)], sar=(4, 3))[0].width == 720


def test_portrait_and_landscape_rungs_of_one_short_side_cost_the_same_bits():
    """The bitrate is chosen per rung, i.e. per short side: a 720x1280 source's 720p rung
    has as many pixels as a 1280x720 one's and gets the same bitrate, VBV and preset."""
    portrait = plan_ladder(720, 1280, DEFAULT)
    landscape = plan_ladder(1280, 720, DEFAULT)
    assert [(p.name, p.pixels, p.video_bitrate, p.maxrate, p.bufsize) for p in portrait] == \
        [(p.name, p.pixels, p.video_bitrate, p.maxrate, p.bufsize) for p in landscape]
    assert [(p.width, p.height) for p in portrait] == [(p.height, p.width) for p in landscape]


_RUNG_HEIGHTS = st.lists(st.integers(min_value=32, max_value=1080).map(lambda h: 2 * h),
                         min_size=1, max_size=5, unique=True)


@settings(max_examples=300, deadline=None)
@given(width=st.integers(min_value=16, max_value=4096), height=st.integers(min_value=16, max_value=4096),
       heights=_RUNG_HEIGHTS)
def test_every_rung_keeps_the_source_s_shape(width, height, heights):
    """Portrait, landscape, square and odd sizes: every rung has even sides, its short side
    is its configured size (never more than the source's: no upscaling), the long side
    follows the source's aspect ratio within the rounding to an even number (one pixel),
    a portrait source's rungs are portrait, a landscape source's landscape, and exactly
    the rungs that fit under the source's short side are made."""
    rungs = [RungConfig(name=f"r{h}", height=h) for h in heights]
    plans = plan_ladder(width, height, rungs)
    short = min(width, height)
    assert [p.name for p in plans] == [r.name for r in rungs if r.height <= short]
    for plan in plans:
        assert plan.width % 2 == 0 and plan.height % 2 == 0, plan
        size = int(plan.name[1:])
        assert short_side(plan.width, plan.height) == size <= short, plan
        if width > height:
            assert plan.height == size and plan.width >= plan.height
            assert abs(plan.width - width * size / height) <= 1, plan
        elif width < height:
            assert plan.width == size and plan.height >= plan.width
            assert abs(plan.height - height * size / width) <= 1, plan
        else:
            assert plan.width == plan.height == size


@settings(max_examples=100, deadline=None)
@given(width=st.integers(min_value=16, max_value=2048), height=st.integers(min_value=16, max_value=2048),
       sar=st.sampled_from([(1, 1), (4, 3), (3, 4), (16, 11), (10, 11), (0, 1)]), heights=_RUNG_HEIGHTS)
def test_anamorphic_sources_are_shaped_by_their_displayed_size(width, height, sar, heights):
    """With non-square pixels the output (square pixels) has the displayed aspect ratio;
    the short side is counted in displayed pixels (an unknown 0:1 ratio is square)."""
    num, den = sar if sar[0] > 0 else (1, 1)
    shown_w, shown_h = width * num / den, height
    plans = plan_ladder(width, height, [RungConfig(name=f"r{h}", height=h) for h in heights], sar=sar)
    for plan in plans:
        size = int(plan.name[1:])
        assert plan.width % 2 == 0 and plan.height % 2 == 0, plan
        assert size <= min(shown_w, shown_h), plan
        if shown_w < shown_h:
            assert plan.width == size and abs(plan.height - shown_h * size / shown_w) <= 1, plan
        else:
            assert plan.height == size and abs(plan.width - shown_w * size / shown_h) <= 1, plan
