"""Load shedding decisions of an overloaded worker (pure; time is a parameter)."""

from __future__ import annotations

from mediasrv.transcode.governor import MAX_RECOVER_AFTER, LoadGovernor


def test_sheds_the_most_expensive_rung_first_then_frames():
    g = LoadGovernor([0, 1, 2], max_delay=2.0, recover_after=10.0, cooldown=1.0)
    assert g.observe(0.5, 0.0) is None
    step = g.observe(2.5, 1.0)
    assert (step.action, step.index, g.disabled, g.decimate) == ("shed", 0, {0}, False)
    assert g.observe(3.0, 1.5) is None  # within the cooldown: let the backlog drain
    step = g.observe(3.0, 2.1)
    assert (step.action, step.index, g.disabled) == ("shed", 1, {0, 1})
    step = g.observe(3.0, 3.2)
    assert (step.action, g.disabled, g.decimate) == ("decimate", {0, 1}, True)
    assert g.observe(9.0, 10.0) is None  # nothing left to shed: the queue's hard bound acts
    assert g.level == g.max_level == 3


def test_recovers_one_level_at_a_time_after_a_quiet_period():
    g = LoadGovernor([0, 1], max_delay=1.0, recover_after=5.0, cooldown=1.0)
    g.observe(2.0, 0.0)
    g.observe(2.0, 1.5)
    assert g.decimate and g.disabled == {0}
    assert g.observe(0.1, 2.0) is None
    assert g.observe(0.5, 6.0) is None  # not low enough (>= max/4): the quiet period restarts
    assert g.observe(0.1, 6.5) is None
    step = g.observe(0.1, 11.6)
    assert (step.action, g.decimate, g.disabled) == ("undecimate", False, {0})
    assert g.observe(0.1, 12.0) is None
    step = g.observe(0.1, 17.0)
    assert (step.action, step.index, g.level) == ("restore", 0, 0)
    assert (g.sheds, g.restores) == (2, 2)


def test_falling_behind_soon_after_recovering_lengthens_the_wait():
    g = LoadGovernor([0, 1], max_delay=1.0, recover_after=5.0, cooldown=1.0)
    g.observe(2.0, 0.0)
    g.observe(0.1, 1.0)
    assert g.observe(0.1, 6.1).action == "restore"
    assert g.observe(2.0, 8.0).action == "shed"  # flapping
    assert g.recover_after == 10.0
    for _ in range(10):
        g.recover_after = min(MAX_RECOVER_AFTER, g.recover_after * 2)
    assert g.recover_after == MAX_RECOVER_AFTER


def test_a_single_rung_is_never_dropped_only_thinned():
    g = LoadGovernor([0], max_delay=1.0, cooldown=0.0)
    step = g.observe(5.0, 0.0)
    assert step.action == "decimate" and g.disabled == frozenset() and g.decimate
    assert g.observe(5.0, 1.0) is None


def test_no_rungs_no_steps():
    g = LoadGovernor([], max_delay=1.0)
    assert g.observe(10.0, 0.0) is None and not g.decimate
