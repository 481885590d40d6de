"""Viewer figures that must agree do (issue 16, item 8): concurrent, peak and unique
viewers of a broadcast all count clients, so a player that opens a second session (the
watch page reloading its master playlist, a second tab) while its first is still counted
is one viewer, and the peak never exceeds the unique viewers.

The tracker and the monitor are fed the same request events on a clock the test moves
(``now`` passed in, ``tick(now)``): no sleeps.
"""

from __future__ import annotations

import asyncio

from mediasrv.hub import Hub
from mediasrv.observe.monitor import StreamMonitor
from mediasrv.observe.viewers import ViewerTracker, client_key
from mediasrv.store.sqlite import SqliteStore

START = 1_000_000.0


class Publisher:
    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        pass


#: (second, client, session token): playlist requests as players make them, each with a
#: media request (issue 18: a viewer counts once it fetches media). The tokens are
#: names here; ``Tokens`` gives each a real, server-signed one.
ANNA = client_key("10.0.0.1", "Chrome")
BEN = client_key("10.0.0.2", "Firefox")
EVENTS = [
    (0, ANNA, "a1"),
    (2, ANNA, "a1"),
    (3, ANNA, "a2"),   # Anna's page fetched the master playlist again: a new session, a1 still open
    (4, BEN, "b1"),
    (5, ANNA, "a2"),
    (6, BEN, "b1"),
    (8, ANNA, "a2"),
    (30, BEN, "b2"),   # Ben comes back after leaving: a new session, the same viewer
]


class Tokens(dict):
    """A real token of ``tracker`` for each token name of EVENTS."""

    def __init__(self, tracker: ViewerTracker) -> None:
        super().__init__()
        self.tracker = tracker

    def __missing__(self, name: str) -> str:
        token = self[name] = self.tracker.new_token()
        return token


def play(tracker: ViewerTracker, tokens: Tokens, stream: str, token: str, client: str, now: float) -> None:
    """A player's playlist request, then a media request."""
    tracker.touch(stream, tokens[token], client=client, now=now)
    tracker.media(stream, client=client, now=now)


def test_peak_never_exceeds_unique_when_a_player_reopens_its_session():
    tracker = ViewerTracker(idle_timeout=10)
    tokens = Tokens(tracker)
    audience = tracker.audience("s")
    for now, client, token in EVENTS:
        tracker.sweep(now)
        play(tracker, tokens, "s", token, client, now)
        assert audience.concurrent <= audience.peak <= audience.unique, (now, audience)
    assert audience.sessions_total == 4
    assert (audience.peak, audience.unique) == (2, 2)
    assert audience.concurrent == 1  # Anna left (idle since 8), Ben is back


def test_the_monitor_feed_and_the_broadcast_summary_agree():
    async def scenario():
        now = START
        hub = Hub(clock=lambda: now)
        store = SqliteStore(":memory:")
        tracker = ViewerTracker(idle_timeout=10)
        tokens = Tokens(tracker)
        monitor = StreamMonitor(hub, tracker, store, segment_duration=2.0, keep_after_end=30, clock=lambda: now)
        hub.add_listener(monitor._on_hub_event)  # what monitor.start() does, without its task
        publication = hub.publish("s", Publisher())
        snapshots = []
        events = iter(EVENTS)
        pending = next(events)
        for second in range(40):
            now = START + second
            while pending is not None and pending[0] == second:
                play(tracker, tokens, "s", pending[2], pending[1], now)
                pending = next(events, None)
            monitor.tick(now)
            snapshots.append(monitor.snapshot(monitor.streams["s"]))
        for snap in snapshots:
            assert snap["viewers"] <= snap["peak_viewers"] <= snap["unique_viewers"], snap
        assert max(s["viewers"] for s in snapshots) == snapshots[-1]["peak_viewers"] == 2
        assert snapshots[-1]["unique_viewers"] == 2
        assert publication is not None
        hub.stop("s")  # the broadcast ends: the monitor writes its summary
        await asyncio.gather(*monitor._pending)
        return monitor.streams["s"].summary

    summary = asyncio.run(scenario())
    assert summary.peak_viewers == 2 and summary.unique_viewers == 2
    assert summary.average_viewers <= summary.peak_viewers


def test_a_backstage_part_is_no_audience_and_a_never_public_broadcast_is_marked_private():
    """The average viewers of a broadcast that started backstage are over its public part
    (10 s private, then one viewer for 10 s: 1.0, not 0.5), and a broadcast that ended
    without going public is saved as ``private`` (``GET /api/broadcasts`` hides it)."""
    async def scenario():
        now = START
        hub = Hub(clock=lambda: now)
        store = SqliteStore(":memory:")
        tracker = ViewerTracker(idle_timeout=30)
        tokens = Tokens(tracker)
        monitor = StreamMonitor(hub, tracker, store, segment_duration=2.0, keep_after_end=30, clock=lambda: now)
        hub.add_listener(monitor._on_hub_event)  # what monitor.start() does, without its task
        hub.set_backstage("s", True)
        hub.set_backstage("t", True)
        hub.publish("s", Publisher())
        hub.publish("t", Publisher())
        for second in range(10):  # backstage: the delivery routes count nobody
            now = START + second
            monitor.tick(now)
        assert hub.make_public("s")
        for second in range(10, 20):
            now = START + second
            play(tracker, tokens, "s", "a1", ANNA, now)
            monitor.tick(now)
        hub.stop("s")
        hub.stop("t")
        await asyncio.gather(*monitor._pending)
        return monitor.streams["s"].summary, monitor.streams["t"].summary, store

    public, private, store = asyncio.run(scenario())
    assert (public.average_viewers, public.peak_viewers, public.private) == (1.0, 1, False)
    assert (private.average_viewers, private.peak_viewers, private.private) == (0.0, 0, True)
    assert [b.stream for b in store.list_broadcasts(include_private=False)] == ["s"]
    assert sorted(b.stream for b in store.list_broadcasts(include_private="t")) == ["s", "t"]
    assert sorted(b.stream for b in store.list_broadcasts(include_private="u")) == ["s"]
    assert len(store.list_broadcasts()) == 2
