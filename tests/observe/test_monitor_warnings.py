"""The stream monitor's health warnings (issue 6, deliverable 6), driven with crafted input.

A real ``Hub`` with a stream pushed unit by unit on a clock the test moves, and the real
``StreamMonitor`` sampling it through ``tick(now)`` once a simulated second, as its task
does: "bitrate collapsed", "frame rate dropped" and "transcoder behind real time" appear
when (and only when) their cause is there, and reach the live feed's snapshots.
"""

from __future__ import annotations

import pytest

from mediasrv.hub import Hub
from mediasrv.media.types import Codec, MediaUnit, TrackInfo
from mediasrv.observe.monitor import StreamMonitor
from mediasrv.observe.viewers import ViewerTracker
from mediasrv.store.sqlite import SqliteStore

VIDEO = TrackInfo(Codec.H264, b"\x01\x64\x00\x1f\xff", "avc1.64001f", 320, 240)
AUDIO = TrackInfo(Codec.AAC, b"\x12\x10", "mp4a.40.2", sample_rate=44100, channels=2)
#: Segments of 2 s; the pushes below put a keyframe every second, so the keyframe
#: warning never fires and each test sees only the warning it is about.
SEGMENT = 2.0
START = 1_000_000.0


class Publisher:
    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        pass


class Feed:
    """One stream pushed second by second on a simulated clock, sampled by the monitor."""

    def __init__(self, transcode_stats=lambda name: {}) -> None:
        self.now = START
        self.hub = Hub(clock=lambda: self.now)
        self.store = SqliteStore(":memory:")
        self.monitor = StreamMonitor(self.hub, ViewerTracker(), self.store, segment_duration=SEGMENT,
                                     keep_after_end=30, transcode_stats=transcode_stats, clock=lambda: self.now)
        self.hub.add_listener(self.monitor._on_hub_event)  # what monitor.start() does, without its task
        self.publication = self.hub.publish("s", Publisher())
        self.dts = 0
        #: Warnings of each simulated second, in order.
        self.history: list[list[str]] = []

    def second(self, *, fps: int = 25, video_bytes: int = 4000, audio: bool = True) -> list[str]:
        """Push one second of media (a keyframe at its start, ``fps`` video units of
        ``video_bytes``, 43 AAC frames), advance the clock, tick; return the warnings."""
        for i in range(fps):
            dts = self.dts + i * 1000 // fps
            self.publication.push(MediaUnit(VIDEO, dts, dts, i == 0, b"v" * video_bytes))
        if audio:
            for i in range(43):
                dts = self.dts + i * 1000 // 43
                self.publication.push(MediaUnit(AUDIO, dts, dts, True, b"a" * 200))
        self.dts += 1000
        self.now += 1.0
        self.monitor.tick(self.now)
        warnings = list(self.monitor.streams["s"].warnings)
        self.history.append(warnings)
        return warnings

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def feed():
    feeds = []

    def make(**kwargs) -> Feed:
        feeds.append(Feed(**kwargs))
        return feeds[-1]

    yield make
    for f in feeds:
        f.close()


def test_a_steady_stream_has_no_warning(feed):
    f = feed()
    for _ in range(40):
        assert f.second() == []


def test_bitrate_collapse_is_warned_against_the_usual_bitrate(feed):
    f = feed()
    for _ in range(30):
        assert f.second(video_bytes=4000) == []  # ~ 870 kbit/s with the audio
    # The encoder's bitrate falls to a twentieth (same frame rate): within the 5 s rate
    # window the warning is up, naming now and the usual bitrate.
    for _ in range(6):
        f.second(video_bytes=200)
    warnings = f.history[-1]
    assert len(warnings) == 1 and warnings[0].startswith("bitrate collapsed: "), f.history[-6:]
    now, usual = [int(w) for w in warnings[0].replace(",", "").split() if w.isdigit()]
    assert now < 0.3 * usual and 600 < usual < 900
    # ... and it reaches the live feed (the SSE snapshot).
    assert f.monitor.snapshot(f.monitor.streams["s"])["warnings"] == warnings
    # A small dip (to 70 %) is no collapse: back up, then down a little.
    for _ in range(8):
        f.second(video_bytes=4000)
    assert f.history[-1] == []
    for _ in range(8):
        assert f.second(video_bytes=2800) == []


def test_frame_rate_drop_is_warned_and_clears_when_it_recovers(feed):
    f = feed()
    for _ in range(30):
        assert f.second(fps=30, video_bytes=3000) == []
    # 30 → 10 fps at the same bitrate (bigger frames): only the frame rate warning.
    for _ in range(6):
        f.second(fps=10, video_bytes=9000)
    warnings = f.history[-1]
    assert len(warnings) == 1 and warnings[0].startswith("frame rate dropped: 10.0 fps, usually "), f.history[-6:]
    usual = float(warnings[0].rsplit(" ", 1)[1])
    assert 25 < usual <= 30
    # Back to 30 fps: the warning goes away once the rate window has only the new rate.
    for _ in range(6):
        f.second(fps=30, video_bytes=3000)
    assert f.history[-1] == []
    # 30 → 20 fps (two thirds) is not a drop worth a warning.
    for _ in range(8):
        assert f.second(fps=20, video_bytes=4500) == []


def test_transcoder_behind_real_time_names_each_slow_rung(feed):
    speeds = {"720p": 1.6, "360p": 3.0}
    f = feed(transcode_stats=lambda name: dict(speeds) if name == "s" else {})
    for _ in range(6):
        assert f.second() == []
    speeds["720p"] = 0.62
    assert f.second() == ["transcoder behind real time: rung 720p at 0.62x"]
    speeds["360p"] = 0.9
    assert f.second() == ["transcoder behind real time: rung 720p at 0.62x",
                          "transcoder behind real time: rung 360p at 0.90x"]
    # Keeping up (0.95x and more) or not measured yet (0): no warning.
    speeds.update({"720p": 0.95, "360p": 0.0})
    assert f.second() == []
    # Transcoding off for this stream: nothing to say.
    speeds.clear()
    assert f.second() == []


def test_no_rate_warning_in_the_first_seconds(feed):
    """Rates need a full window: a stream that starts slow is not "collapsed"."""
    speeds = {"720p": 0.5}
    f = feed(transcode_stats=lambda name: speeds)
    assert f.second(fps=5, video_bytes=100) == []
    assert f.second(fps=5, video_bytes=100) == []
    assert f.second(fps=5, video_bytes=100) == []
    assert f.second(fps=5, video_bytes=100) == []
    # From RATE_WINDOW on, the rung's speed is reported; there is no baseline to fall from.
    for _ in range(3):
        f.second(fps=5, video_bytes=100)
    assert f.history[-1] == ["transcoder behind real time: rung 720p at 0.50x"]
