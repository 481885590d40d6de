"""The pure segmenter: cutting, window, retention, discontinuities, init segments.

Playlists are checked with the RFC 8216 rules in conftest (per playlist and between
successive versions), never against copies of our own output.
"""

from __future__ import annotations

import dataclasses
import io

import av

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasrv.hls import names
from mediasrv.hls.playlist import render_media_playlist
from mediasrv.hls.segmenter import MAX_SEGMENT_MS, Container, Segmenter
from mediasrv.media.types import Codec, TrackInfo, TrackKind
from tests.hls.conftest import (
    AVCC,
    VIDEO,
    check_media_playlist,
    check_playlist_update,
    parse_media_playlist,
    synthetic,
)

T0 = 1_700_000_000.0


class Run:
    """Feeds a segmenter, checking the playlist rules after every change."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("tag", "t")
        self.seg = Segmenter(**kwargs)
        self.fmp4 = self.seg.container is Container.FMP4
        self.made = []
        self.last = None
        self.version = -1

    def push_all(self, units, *, start=T0, pace=None, speed=1.0):
        """``pace``: wall seconds per unit; default real time from the DTS (scaled by speed)."""
        base = units[0].dts if units else 0
        now = start
        for i, unit in enumerate(units):
            now = start + (i * pace if pace is not None else (unit.dts - base) / 1000 / speed)
            self.made += self.seg.push(unit, now)
            self.check()
        return now

    def finish(self, now):
        self.made += self.seg.finish(now)
        self.check()

    def check(self):
        if self.seg.version == self.version or not self.seg.segments:
            return
        self.version = self.seg.version
        text = render_media_playlist(self.seg.playlist())
        pl = check_media_playlist(text, fmp4=self.seg.container is Container.FMP4)
        assert len(pl.segments) <= self.seg.window
        if self.last is not None:
            check_playlist_update(self.last, pl)
        self.last = pl
        # Every listed segment and its init can be fetched.
        for s in pl.segments:
            assert self.seg.get(s.uri) is not None
            if s.map_uri:
                assert self.seg.get(s.map_uri) is not None

    @property
    def playlist(self):
        return parse_media_playlist(render_media_playlist(self.seg.playlist()))


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
def test_cuts_at_keyframes_once_the_target_is_reached(container):
    units = synthetic(10, gop=25)  # keyframe every 1 s, target 2 s
    run = Run(segment_duration=2.0, window=10, container=container)
    run.finish(run.push_all(units))
    keyframes = {u.dts for u in units if u.kind is TrackKind.VIDEO and u.keyframe}
    assert [s.duration for s in run.made] == [2.0] * 5
    assert all(s.start_dts in keyframes for s in run.made)
    assert run.playlist.target_duration == 2 and run.playlist.ended
    assert sum(s.video_frames for s in run.made) == 250


def test_gop_longer_than_the_target_gives_longer_segments_and_target_duration():
    run = Run(segment_duration=2.0, window=10)
    run.finish(run.push_all(synthetic(9, gop=75)))  # 3 s GOP
    assert [s.duration for s in run.made] == [3.0, 3.0, 3.0]
    assert run.playlist.target_duration == 3


def test_millisecond_jitter_of_keyframes_does_not_double_segments():
    # 29.97 fps, keyframe every 60 frames: intervals of 2001-2002 ms, and at 30 fps of
    # 1999-2000 ms after rounding. Neither may skip a keyframe and make 4 s segments.
    for fps in (30000 / 1001, 30.0, 59.94):
        run = Run(segment_duration=2.0, window=20)
        run.finish(run.push_all(synthetic(20, fps=fps, gop=round(2 * fps))))
        assert all(1.9 < s.duration < 2.1 for s in run.made), (fps, [s.duration for s in run.made])


def test_audio_only_streams_are_cut_by_time():
    run = Run(segment_duration=2.0, window=10, expect_video=None)
    run.finish(run.push_all(synthetic(9, video=False)))
    durations = [s.duration for s in run.made]
    assert all(1.9 <= d <= 2.05 for d in durations[:-1]), durations
    assert not run.seg.tracks.get(TrackKind.VIDEO)
    assert run.seg.codecs == "mp4a.40.2"


def test_segments_tile_the_timeline_and_pdt_follows_extinf():
    run = Run(segment_duration=2.0, window=10)
    run.push_all(synthetic(12, gop=50))
    segs = run.made
    for a, b in zip(segs, segs[1:]):
        assert a.start_dts + round(a.duration * 1000) == b.start_dts
        assert b.program_date_time == pytest.approx(a.program_date_time + a.duration)
    assert segs[0].program_date_time == pytest.approx(T0)


def test_window_media_sequence_and_retention():
    # Real-time pace: 2 s segments, window 3.
    run = Run(segment_duration=2.0, window=3)
    end = run.push_all(synthetic(20, gop=50))
    pl = run.playlist
    made = run.made
    assert len(pl.segments) == 3
    assert pl.media_sequence == len(made) - 3 == made[-3].msn
    # Removed segments stay downloadable for playlist duration + target duration (§6.2.2)...
    gone = [s for s in made if s.uri not in {p.uri for p in pl.segments}]
    for s in gone:
        assert s.expires_at is not None
        if s.expires_at > end:
            assert run.seg.get(s.uri) is not None
    last_gone = gone[-1]
    assert last_gone.expires_at >= end + 3 * 2.0 + 2 - 2.0 - 1e-6  # left when the newest was added
    # ...and are dropped after.
    run.seg.expire(last_gone.expires_at + 0.001)
    assert all(run.seg.get(s.uri) is None for s in gone)
    assert all(run.seg.get(s.uri) is not None for s in pl.segments)


def test_removed_segment_lives_exactly_its_grace():
    run = Run(segment_duration=1.0, window=2)
    units = synthetic(6, gop=25)
    run.push_all(units, pace=0.0)  # everything at T0: retention is pure wall time
    first = run.made[0]
    assert first.expires_at == pytest.approx(T0 + 2 * 1.0 + 1)  # two listed 1 s segments + target
    run.seg.expire(first.expires_at - 0.01)
    assert run.seg.get(first.uri) is not None
    run.seg.expire(first.expires_at)
    assert run.seg.get(first.uri) is None


def test_memory_is_bounded_however_fast_units_come():
    run = Run(segment_duration=1.0, window=4)
    run.push_all(synthetic(120, gop=25), pace=0.0)  # 2 minutes at once: no wall time passes
    seg = run.seg
    assert len(seg.segments) == 4
    assert len(seg.removed) <= seg.max_removed == 4 + 3
    media = [n for n in seg.file_names() if not names.is_init_name(n)]
    assert len(media) <= 2 * 4 + 3


def test_discontinuity_closes_the_segment_and_is_counted_when_removed():
    run = Run(segment_duration=2.0, window=3)
    first = synthetic(5, gop=50)
    now = run.push_all(first)
    last_dts = max(u.dts for u in first)
    # The hub rebases a reconnecting publisher to continue; its first unit is marked.
    second = synthetic(9, gop=50, start_ms=last_dts + 40, first_discontinuity=True)
    run.push_all(second, start=now + 3)
    pl = run.playlist
    disc = [s for s in run.made if s.discontinuity]
    assert len(disc) == 1
    # The segment before the break ends at its last frame plus one frame.
    before = run.made[run.made.index(disc[0]) - 1]
    assert before.duration == pytest.approx(1.0)  # 4.00 s to 4.96 s + one 40 ms frame
    # Same tracks: no new init, the map stays.
    assert disc[0].init is before.init
    # Keep going until the discontinuity leaves the window.
    third = synthetic(10, gop=50, start_ms=last_dts + 40 + 9000)
    run.push_all(third, start=now + 20)
    pl = run.playlist
    assert pl.discontinuity_sequence == 1
    assert not any(s.discontinuity for s in pl.segments)
    # And the segment after the break is anchored to the wall clock at the reconnect.
    assert disc[0].program_date_time == pytest.approx(now + 3)


def test_codec_change_makes_a_new_init_and_map():
    run = Run(segment_duration=1.0, window=10)
    now = run.push_all(synthetic(3, gop=25))
    other = TrackInfo(Codec.H264, AVCC[:1] + b"\x64" + AVCC[2:], "avc1.64400d", width=640, height=480)
    units = synthetic(3, gop=25, start_ms=3000, video_track=other, first_discontinuity=False)
    run.finish(run.push_all(units, start=now + 1))
    pl = run.playlist
    maps = [s.map_uri for s in pl.segments]
    assert maps[0] == "init_t_0.mp4" and maps[-1] == "init_t_1.mp4"
    change = maps.index("init_t_1.mp4")
    assert pl.segments[change].discontinuity
    assert run.seg.tracks[TrackKind.VIDEO] == other
    assert run.seg.get("init_t_0.mp4") != run.seg.get("init_t_1.mp4")


def test_unused_init_segments_are_dropped_with_their_segments():
    run = Run(segment_duration=1.0, window=2)
    now = run.push_all(synthetic(2, gop=25), pace=0.0)
    other = dataclasses.replace(VIDEO, config=AVCC[:3] + b"\x1f" + AVCC[4:], codec_string="avc1.4d401f")
    run.push_all(synthetic(8, gop=25, start_ms=2000, video_track=other), start=now, pace=0.0)
    assert run.seg.get("init_t_1.mp4") is not None
    run.seg.expire(now + 1000)
    assert run.seg.get("init_t_0.mp4") is None


def test_mark_gap_starts_a_discontinuity():
    run = Run(segment_duration=1.0, window=10)
    units = synthetic(6, gop=25)
    run.push_all(units[: len(units) // 2])
    run.seg.mark_gap()
    # A reader that skipped resumes at a keyframe.
    rest = units[len(units) // 2:]
    k = next(i for i, u in enumerate(rest) if u.kind is TrackKind.VIDEO and u.keyframe)
    run.finish(run.push_all(rest[k:], start=T0 + 3))
    assert sum(s.discontinuity for s in run.made) == 1


def test_video_before_the_first_keyframe_and_older_audio_are_dropped():
    units = synthetic(4, gop=50)
    # Start the feed in the middle of a GOP: frames up to the keyframe at 2 s are unusable.
    start = next(i for i, u in enumerate(units) if u.dts >= 1000)
    run = Run(segment_duration=1.0, window=10)
    run.finish(run.push_all(units[start:]))
    assert run.made[0].start_dts == 2000
    assert run.seg.stats.units_dropped > 0


def test_finish_adds_endlist_and_closes_the_open_segment():
    run = Run(segment_duration=2.0, window=10)
    now = run.push_all(synthetic(5, gop=50))
    assert len(run.made) == 2
    run.finish(now)
    assert len(run.made) == 3
    assert run.made[-1].duration == pytest.approx(1.0)  # 25 frames of 40 ms
    pl = run.playlist
    assert pl.ended and pl.lines[-1] == "#EXT-X-ENDLIST"
    assert run.seg.push(synthetic(1)[0], now) == []


def test_audio_stamped_after_the_cut_moves_to_the_next_segment():
    units = synthetic(4, gop=25)
    # Audio sent 30 ms early (as some encoders do) arrives before the keyframe it follows.
    early = sorted(units, key=lambda u: (u.dts - (30 if u.kind is TrackKind.AUDIO else 0), u.kind is not TrackKind.VIDEO))
    run = Run(segment_duration=1.0, window=10)
    run.finish(run.push_all(early))
    assert len(run.made) == 4
    total = 0
    for s in run.made:
        with av.open(io.BytesIO(run.seg.init.data + s.data)) as c:
            audio = [p for p in c.demux(audio=0) if p.pts is not None]
        total += len(audio)
        # Every audio frame of a segment lies within [start, start + EXTINF).
        assert all(s.start_dts <= round(p.pts * p.time_base * 1000) < s.start_dts + s.duration * 1000 for p in audio)
    assert total == sum(u.kind is TrackKind.AUDIO for u in units)


def test_broken_encoder_without_keyframes_is_cut_anyway():
    units = [u for u in synthetic(70, gop=10_000, audio=False)]
    run = Run(segment_duration=2.0, window=3)
    run.push_all(units, pace=0.0)
    assert run.made and run.made[0].duration == pytest.approx(MAX_SEGMENT_MS / 1000)
    assert not run.made[1].independent
    assert "#EXT-X-INDEPENDENT-SEGMENTS" not in "\n".join(run.playlist.lines)


def test_mpegts_falls_back_to_fmp4_for_codecs_ts_cannot_carry():
    av1 = TrackInfo(Codec.AV1, bytes.fromhex("81000c00"), "av01.0.00M.08", width=320, height=240)
    units = [dataclasses.replace(u, track=av1, data=b"\x12\x00" + u.data) if u.kind is TrackKind.VIDEO else u
             for u in synthetic(3, gop=25)]
    run = Run(segment_duration=1.0, window=5, container="mpegts")
    run.finish(run.push_all(units))
    assert run.seg.container is Container.FMP4
    assert run.made[0].uri.endswith(".m4s") and run.seg.codecs == "av01.0.00M.08,mp4a.40.2"


def test_audio_only_waits_for_video_when_told():
    run = Run(segment_duration=1.0, window=5, expect_video=True)
    run.push_all(synthetic(3, video=False))
    assert run.made == []


def test_stats_bandwidth_and_frame_rate():
    run = Run(segment_duration=1.0, window=5)
    run.finish(run.push_all(synthetic(6, gop=25)))
    seg = run.seg
    sizes = [len(s.data) * 8 / s.duration for s in run.made if s.duration >= 0.5]
    assert seg.peak_bitrate == int(max(sizes))
    assert 0 < seg.average_bitrate <= seg.peak_bitrate
    assert seg.frame_rate == pytest.approx(25.0)
    assert seg.codecs == "avc1.4d400d,mp4a.40.2"


# --- property: the rules hold whatever the input does -----------------------------------------

_event = st.one_of(
    st.tuples(st.just("gop"), st.integers(1, 120), st.sampled_from([24, 25, 30, 60])),
    st.tuples(st.just("reconnect"), st.integers(0, 3)),
    st.tuples(st.just("gap"), st.integers(0, 2)),
    st.tuples(st.just("change"), st.integers(0, 1)),
    st.tuples(st.just("wait"), st.floats(0, 30)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(_event, min_size=1, max_size=25),
    window=st.integers(1, 6),
    duration=st.sampled_from([1.0, 2.0, 4.0]),
    container=st.sampled_from(["fmp4", "mpegts"]),
)
def test_playlist_rules_hold_for_any_input(events, window, duration, container):
    run = Run(segment_duration=duration, window=window, container=container)
    dts = 0
    now = T0
    video = VIDEO
    variants = [VIDEO, dataclasses.replace(VIDEO, config=AVCC[:3] + b"\x1f" + AVCC[4:], codec_string="avc1.4d401f")]
    discontinuity = False
    for event in events:
        kind = event[0]
        if kind == "gop":
            frames, fps = event[1], event[2]
            units = synthetic(frames / fps, fps=fps, gop=frames, start_ms=dts, video_track=video,
                              first_discontinuity=discontinuity)
            discontinuity = False
            if units:
                run.push_all(units, start=now)
                dts = max(u.dts for u in units) + round(1000 / fps)
                now += frames / fps
        elif kind == "reconnect":
            discontinuity = True
            dts += 40 + event[1] * 10
        elif kind == "gap":
            run.seg.mark_gap()
        elif kind == "change":
            video = variants[event[1]]
        else:
            now += event[1]
            run.seg.expire(now)
            run.check()
    run.finish(now)
    seg = run.seg
    assert len(seg.removed) <= seg.max_removed
    for s in seg.removed:
        assert s.expires_at is not None
    if run.last is not None:
        assert run.last.ended
        assert run.last.media_sequence == (run.made[0].msn + len(run.made) - len(run.last.segments) if run.made else 0)
    # MEDIA-SEQUENCE numbers are consecutive from 0.
    assert [s.msn for s in run.made] == list(range(len(run.made)))


def test_video_that_stops_while_audio_goes_on_is_bounded():
    units = synthetic(3, gop=25) + [u for u in synthetic(70, video=False, start_ms=3000)]
    run = Run(segment_duration=1.0, window=3)
    run.push_all(units, pace=0.0)
    assert run.seg.stats.forced_cuts == 1
    # The last segment with video ends a few seconds after it, then audio-only ones follow.
    assert [s.duration for s in run.made[:2]] == [1.0, 1.0]
    assert run.made[2].duration == pytest.approx(1 + run.seg.video_gone_ms / 1000, abs=0.05)
    assert all(s.video_frames == 0 and s.duration < 1.1 for s in run.made[3:])
    assert run.made[-1].init is run.made[0].init  # a paused kind keeps the init
