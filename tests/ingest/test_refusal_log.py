"""``RefusalLog``: one warning per address per interval, with the count of the ones it
held back (a fake clock; no waiting)."""

from __future__ import annotations

import logging

from mediasrv.ingest.refusal_log import OVERFLOW, RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.refusals"]


def test_a_flood_from_one_address_is_one_line_per_interval_with_its_count(caplog):
    clock = Clock()
    refusals = RefusalLog(logging.getLogger("test.refusals"), interval=60, clock=clock)
    caplog.set_level(logging.WARNING, "test.refusals")
    assert refusals.warning("10.0.0.9", "c%d %s: refused", 1, "10.0.0.9")
    for n in range(2, 1002):  # a retry loop: a thousand more within the minute
        clock.now += 0.05
        assert not refusals.warning("10.0.0.9", "c%d %s: refused", n, "10.0.0.9")
    assert lines(caplog) == ["c1 10.0.0.9: refused"]
    assert refusals.suppressed("10.0.0.9") == 1000
    # Another address is not held back by the first one's flood.
    assert refusals.warning("10.0.0.7", "c%d %s: refused", 5000, "10.0.0.7")
    # After the interval: the next refusal is written, with how many were held back.
    clock.now = 1000.0 + 60
    assert refusals.warning("10.0.0.9", "c%d %s: refused", 1002, "10.0.0.9")
    assert lines(caplog)[-1] == "c1002 10.0.0.9: refused (1000 more refusals from 10.0.0.9 in the last 60 s)"
    assert refusals.suppressed("10.0.0.9") == 0
    # A quiet address's next refusal, an interval later, is plain again.
    clock.now += 61
    assert refusals.warning("10.0.0.9", "c%d %s: refused", 1003, "10.0.0.9")
    assert lines(caplog)[-1] == "c1003 10.0.0.9: refused"


def test_many_addresses_share_one_entry_past_the_limit(caplog):
    clock = Clock()
    refusals = RefusalLog(logging.getLogger("test.refusals"), interval=60, clock=clock, max_keys=3)
    caplog.set_level(logging.WARNING, "test.refusals")
    for n in range(3):
        assert refusals.warning(f"2001:db8::{n}", "refused %s", n)
    # The table is full of addresses still in their interval: the rest share one entry,
    # written once per interval like any address.
    assert refusals.warning("2001:db8::a", "refused %s", "a")
    assert not refusals.warning("2001:db8::b", "refused %s", "b")
    assert refusals.suppressed(OVERFLOW) == 1
    assert len(lines(caplog)) == 4
    # Once their interval is over, quiet addresses make room again.
    clock.now += 60
    assert refusals.warning("2001:db8::c", "refused %s", "c")
    assert refusals.suppressed("2001:db8::c") == 0 and "2001:db8::c" in refusals._seen
