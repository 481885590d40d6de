"""Viewer session accounting, time passed in."""

from __future__ import annotations

from mediasrv.observe.viewers import ViewerTracker, client_key


def play(tracker: ViewerTracker, stream: str, token: str | None, *, client: str, now: float,
         address: str | None = None, **touch) -> str:
    """A player's playlist request followed by a media request (what makes a viewer)."""
    token = tracker.touch(stream, token, client=client, now=now, address=address, **touch)
    tracker.media(stream, client=client, now=now)
    return token


def test_sessions_peak_unique_watch_time_and_expiry():
    tracker = ViewerTracker(idle_timeout=10)
    a, b = client_key("10.0.0.1", "hls.js"), client_key("10.0.0.2", "vlc")
    t1 = tracker.new_token()
    t2 = tracker.new_token()
    assert t1 != t2
    play(tracker, "s", t1, client=a, now=0)
    play(tracker, "s", t2, client=b, now=1, rendition="source", nbytes=100)
    play(tracker, "s", t1, client=a, now=4, rendition="720p", nbytes=50)
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
    play(tracker, "s", t1, client=a, now=30)
    assert (audience.concurrent, audience.unique, audience.sessions_total) == (1, 2, 3)


def test_requests_without_token_count_by_client():
    tracker = ViewerTracker(idle_timeout=10)
    for now in range(5):
        play(tracker, "s", None, client=client_key("1.2.3.4", "curl"), now=now)
    play(tracker, "s", None, client=client_key("1.2.3.4", "ffmpeg"), now=5)
    audience = tracker.audience("s")
    assert (audience.concurrent, audience.unique) == (2, 2)


def test_streams_are_separate_and_forget_resets():
    tracker = ViewerTracker()
    token = tracker.new_token()
    play(tracker, "a", token, client="c", now=0)
    play(tracker, "b", token, client="c", now=0)
    assert tracker.audience("a").concurrent == 1 == tracker.audience("b").concurrent
    tracker.forget("a")
    assert tracker.audience("a").concurrent == 0


def test_playlists_alone_make_no_viewer_until_media_is_fetched():
    tracker = ViewerTracker(idle_timeout=10)
    audience = tracker.audience("s")
    token = tracker.new_token()
    for now in range(5):
        tracker.touch("s", token, client="c", now=now)
    assert (audience.concurrent, audience.peak, audience.unique, audience.watch_seconds) == (0, 0, 0, 0)
    tracker.media("s", client="c", now=5)
    assert (audience.concurrent, audience.peak, audience.unique) == (1, 1, 1)
    # A client still polling playlists but fetching no media for idle_timeout stops counting.
    for now in range(6, 17):
        tracker.touch("s", token, client="c", now=now)
        tracker.sweep(now)
    assert audience.concurrent == 0 and audience.sessions  # its session is still open
    # Media from a client without an open session is nobody; a stream nobody asked
    # a playlist of is not created.
    tracker.media("s", client="stranger", now=17)
    tracker.media("other", client="c", now=17)
    assert audience.concurrent == 0 and "other" not in tracker.streams
    tracker.media("s", client="c", now=17)  # it fetches media again: a viewer again
    assert audience.concurrent == 1 and audience.unique == 1


def test_made_up_tokens_open_no_sessions():
    tracker = ViewerTracker(idle_timeout=10)
    audience = tracker.audience("s")
    real = tracker.new_token()
    forged = [f"tok-{i}" for i in range(50)] + [real[:-1] + ("A" if real[-1] != "A" else "B"),
                                                  ViewerTracker().new_token(), "x" * 64, real + "."]
    for index, token in enumerate(forged):
        assert not tracker.is_token(token)
        assert tracker.touch("s", token, client="c", now=index / 100) == "c-c"
    assert audience.sessions_total == 1 and list(audience.sessions) == ["c-c"]
    assert tracker.is_token(real) and tracker.touch("s", real, client="c", now=1) == real


def test_clients_of_one_address_count_at_most_the_cap():
    tracker = ViewerTracker(idle_timeout=10, max_per_address=3)
    audience = tracker.audience("s")
    for index in range(10):  # ten user agents from one address
        play(tracker, "s", tracker.new_token(), client=client_key("6.6.6.6", f"ua-{index}"), now=0,
             address="6.6.6.6", rendition="source")
    play(tracker, "s", tracker.new_token(), client=client_key("7.7.7.7", "ua"), now=0, address="7.7.7.7",
         rendition="source")
    assert (audience.concurrent, audience.peak, audience.unique) == (4, 4, 4)
    assert audience.per_rendition() == {"source": 4}
    assert audience.sessions_total == 11
    # The counted ones of that address leave: waiting ones take their places.
    counted = [c for c in audience.counted if c != client_key("7.7.7.7", "ua")]
    for token, session in list(audience.sessions.items()):
        if session.client in counted:
            tracker._close(audience, token, session)
    assert audience.concurrent == 4
    assert audience.concurrent <= audience.peak <= audience.unique


def test_an_address_learnt_after_the_master_playlist_caps_too():
    """The master playlist's request may not say the address (``address=None``); the
    media playlist's does, and the cap then applies."""
    tracker = ViewerTracker(idle_timeout=10, max_per_address=2)
    audience = tracker.audience("s")
    for index in range(5):
        client = client_key("6.6.6.6", f"ua-{index}")
        token = tracker.touch("s", tracker.new_token(), client=client, now=0)
        play(tracker, "s", token, client=client, now=0, address="6.6.6.6")
    assert audience.concurrent == 2
