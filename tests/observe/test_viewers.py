"""Viewer session accounting, time passed in."""

from __future__ import annotations

from mediasrv.observe.viewers import ViewerTracker, client_key


def test_sessions_peak_unique_watch_time_and_expiry():
    tracker = ViewerTracker(idle_timeout=10)
    a, b = client_key("10.0.0.1", "hls.js"), client_key("10.0.0.2", "vlc")
    t1 = tracker.new_token()
    t2 = tracker.new_token()
    assert t1 != t2
    tracker.touch("s", t1, client=a, now=0)
    tracker.touch("s", t2, client=b, now=1, rendition="source", nbytes=100)
    tracker.touch("s", t1, client=a, now=4, rendition="720p", nbytes=50)
    audience = tracker.audience("s")
    assert (audience.concurrent, audience.peak, audience.unique) == (2, 2, 2)
    assert audience.watch_seconds == 4
    assert audience.bytes_sent == 150
    assert audience.per_rendition() == {"source": 1, "720p": 1}
    tracker.sweep(now=11.5)  # b last seen at 1: gone; a at 4: stays
    assert audience.concurrent == 1 and audience.peak == 2
    tracker.sweep(now=14.5)
    assert audience.concurrent == 0
    # a returns after leaving: a new session, but not a new unique viewer
    tracker.touch("s", t1, client=a, now=30)
    assert (audience.concurrent, audience.unique, audience.sessions_total) == (1, 2, 3)


def test_requests_without_token_count_by_client():
    tracker = ViewerTracker(idle_timeout=10)
    for now in range(5):
        tracker.touch("s", None, client=client_key("1.2.3.4", "curl"), now=now)
    tracker.touch("s", None, client=client_key("1.2.3.4", "ffmpeg"), now=5)
    audience = tracker.audience("s")
    assert (audience.concurrent, audience.unique) == (2, 2)


def test_streams_are_separate_and_forget_resets():
    tracker = ViewerTracker()
    tracker.touch("a", "t", client="c", now=0)
    tracker.touch("b", "t", client="c", now=0)
    assert tracker.audience("a").concurrent == 1 == tracker.audience("b").concurrent
    tracker.forget("a")
    assert tracker.audience("a").concurrent == 0
