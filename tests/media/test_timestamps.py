from hypothesis import given, settings
from hypothesis import strategies as st

from mediasrv.media.timestamps import TrackClock

WRAP = 1 << 32


def run(clock, stamps, ctss=None):
    ctss = ctss or [0] * len(stamps)
    return [clock.convert(t, c) for t, c in zip(stamps, ctss, strict=True)]


def test_plain_sequence_is_unchanged():
    clock = TrackClock()
    out = run(clock, [0, 33, 67, 100], [67, 100, 0, 33])
    assert [(r.dts, r.pts) for r in out] == [(0, 67), (33, 133), (67, 67), (100, 133)]
    assert clock.corrections == 0 and not any(r.discontinuity for r in out)


def test_wrap_at_2_32():
    clock = TrackClock()
    out = run(clock, [WRAP - 40, WRAP - 7, 26, 59])
    assert [r.dts for r in out] == [WRAP - 40, WRAP - 7, WRAP + 26, WRAP + 59]
    assert clock.wraps == 1 and clock.rebases == 0
    # the epoch keeps counting up across further wraps (big steps allowed here)
    long_run = TrackClock(max_jump_ms=1 << 40)
    q = 1 << 30
    out = run(long_run, [0, q, 2 * q, 3 * q, 5, q, 2 * q, 3 * q, 7])
    assert long_run.wraps == 2 and out[-1].dts == 2 * WRAP + 7


def test_timestamps_beyond_32_bits_are_masked():
    clock = TrackClock()
    assert clock.convert(WRAP + 10).dts == 10


def test_straggler_from_before_the_wrap():
    clock = TrackClock()
    run(clock, [WRAP - 20, 10])
    late = clock.convert(WRAP - 5)  # arrives after the wrap, belongs before it
    assert late.dts == WRAP + 10  # raised to the last DTS
    assert clock.wraps == 1 and clock.monotonic_fixes == 1
    assert clock.convert(43).dts == WRAP + 43  # and does not count as a wrap back


def test_non_monotonic_dts_is_raised():
    clock = TrackClock()
    out = run(clock, [1000, 1040, 1020, 1080], [0, 0, 10, 0])
    assert [r.dts for r in out] == [1000, 1040, 1040, 1080]
    assert out[2].pts == 1040  # 1020 + 10 < 1040 → raised to the DTS
    assert clock.monotonic_fixes == 1 and clock.pts_fixes == 1


def test_forward_jump_is_rebased():
    clock = TrackClock(max_jump_ms=5000)
    out = run(clock, [0, 40, 80, 60_000, 60_040], [0, 0, 0, 80, 0])
    assert [r.dts for r in out] == [0, 40, 80, 120, 160]  # continues at last + interval
    assert out[3].pts == 200  # the composition offset survives the rebase
    assert [r.discontinuity for r in out] == [False, False, False, True, False]
    assert clock.rebases == 1


def test_backward_jump_is_rebased():
    clock = TrackClock(max_jump_ms=5000)
    out = run(clock, [100_000, 100_023, 100_046, 10, 33])
    assert [r.dts for r in out] == [100_000, 100_023, 100_046, 100_069, 100_092]
    assert clock.rebases == 1 and clock.monotonic_fixes == 0


def test_rebase_before_an_interval_is_known_uses_the_default():
    clock = TrackClock(default_interval_ms=20)
    out = run(clock, [5, 90_000])
    assert [r.dts for r in out] == [5, 25]


def test_jump_just_below_the_threshold_is_kept():
    clock = TrackClock(max_jump_ms=5000)
    assert [r.dts for r in run(clock, [0, 5000, 1])] == [0, 5000, 5000]
    assert clock.rebases == 0 and clock.monotonic_fixes == 1


def test_b_frame_composition_offsets():
    # IPBB with 2 B-frames at 30 fps: dts steps 33/34 ms, pts = dts + cts
    stamps = [0, 33, 67, 100, 133, 167]
    ctss = [67, 100, 0, 0, 100, 0]
    clock = TrackClock()
    out = run(clock, stamps, ctss)
    assert [r.pts for r in out] == [67, 133, 67, 100, 233, 167]
    assert clock.corrections == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.integers(0, WRAP - 1), st.integers(WRAP - 100_000, WRAP - 1), st.integers(0, 100_000)),
            st.integers(-(1 << 23), (1 << 23) - 1),
        ),
        max_size=60,
    ),
    st.integers(1, 100_000),
)
def test_property_dts_non_decreasing_and_pts_not_below_dts(events, max_jump):
    clock = TrackClock(max_jump_ms=max_jump)
    last = None
    for ts, cts in events:
        r = clock.convert(ts, cts)
        assert r.pts >= r.dts
        if last is not None:
            assert r.dts >= last
            assert r.dts - last <= max(max_jump, 0) + 1 or not r.discontinuity
        last = r.dts


@settings(max_examples=100, deadline=None)
@given(st.integers(0, WRAP - 1), st.lists(st.integers(1, 100), min_size=1, max_size=100))
def test_property_small_steps_across_a_wrap_are_exact(start, steps):
    clock = TrackClock()
    t = start
    expected = [start]
    out = [clock.convert(t).dts]
    for step in steps:
        t += step
        expected.append(t)
        out.append(clock.convert(t % WRAP).dts)
    assert out == expected
    assert clock.rebases == clock.monotonic_fixes == 0


def test_convert_values_is_convert_as_a_tuple() -> None:
    """The ingest's tuple form gives what ``convert`` gives, corrections and counters too
    (a wrap, a step back, a jump rebased, a PTS below its DTS)."""
    inputs = [(0, 0), (33, 66), (WRAP - 10, 0), (5, 40), (2, 0), (60_000, 0), (60_033, -100)]
    by_object, by_tuple = TrackClock(5000, 33), TrackClock(5000, 33)
    for timestamp, offset in inputs:
        reading = by_object.convert(timestamp, offset)
        assert by_tuple.convert_values(timestamp, offset) == (reading.dts, reading.pts, reading.discontinuity)
    assert by_object.corrections == by_tuple.corrections > 0
    assert (by_object.wraps, by_object.monotonic_fixes, by_object.rebases, by_object.pts_fixes) == (
        by_tuple.wraps, by_tuple.monotonic_fixes, by_tuple.rebases, by_tuple.pts_fixes)
