"""The stream hub: readers, skips, GOP cache, takeover, reconnect grace, lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from mediasrv.hub import Hub, StreamEnded, StreamStarted
from mediasrv.hub.stream import RECONNECT_GAP_MS, StreamState
from mediasrv.media.types import Codec, MediaUnit, TrackInfo

VIDEO = TrackInfo(Codec.H264, b"\x01\x64\x00\x1f\xff", "avc1.64001f", 320, 240)
AUDIO = TrackInfo(Codec.AAC, b"\x12\x10", "mp4a.40.2", sample_rate=44100, channels=2)


def video(dts: int, key: bool = False, pts: int | None = None) -> MediaUnit:
    return MediaUnit(VIDEO, dts, dts if pts is None else pts, key, b"v%d" % dts)


def audio(dts: int) -> MediaUnit:
    return MediaUnit(AUDIO, dts, dts, True, b"a%d" % dts)


class Publisher:
    def __init__(self) -> None:
        self.kicked: list[str] = []

    def kick(self, reason: str) -> None:
        self.kicked.append(reason)


@pytest.fixture
def hub():
    return Hub(reconnect_grace=0.2, reader_queue_units=8, gop_cache_bytes=1000)


def drain(reader) -> list[MediaUnit]:
    out = []
    while (unit := reader.read_nowait()) is not None:
        out.append(unit)
    return out


async def test_lifecycle_events_and_clean_end(hub):
    seen = []
    hub.add_listener(seen.append)
    pub = hub.publish("s", Publisher())
    assert [type(e) for e in seen] == [StreamStarted]
    reader = pub.stream.subscribe()
    pub.push(video(0, True))
    pub.detach(clean=True)
    assert [type(e) for e in seen] == [StreamStarted, StreamEnded]
    assert hub.get("s") is None
    assert await reader.read() == video(0, True)
    assert await reader.read() is None


async def test_slow_reader_skips_to_next_keyframe_and_publisher_never_waits(hub):
    pub = hub.publish("s", Publisher())
    reader = pub.stream.subscribe(max_units=4, from_gop=False)
    fast = pub.stream.subscribe(max_units=100, from_gop=False)
    pub.push(video(0, True))
    for dts in range(40, 200, 40):
        pub.push(video(dts))  # reader's queue overflows here
    assert reader.skips == 1
    pub.push(video(200))  # still waiting for a keyframe: dropped
    pub.push(video(240, True))
    pub.push(video(280))
    got = drain(reader)
    assert [u.dts for u in got] == [240, 280]
    assert reader.dropped_units == 6
    assert len(drain(fast)) == 8  # the other reader lost nothing


async def test_gop_cache_starts_new_reader_at_last_keyframe(hub):
    pub = hub.publish("s", Publisher())
    for unit in [video(0, True), audio(10), video(40), video(80, True), audio(90), video(120)]:
        pub.push(unit)
    late = pub.stream.subscribe()
    assert [u.dts for u in drain(late)] == [80, 90, 120]


async def test_keyframes_only_reader_gets_video_keyframes_and_nothing_else(hub):
    pub = hub.publish("s", Publisher())
    pub.push(video(0, True))
    pub.push(audio(10))  # audio units are "keyframes" too: still not for this reader
    pub.push(video(40))
    keys = pub.stream.subscribe(keyframes_only=True)  # from the GOP cache: the keyframe only
    for unit in [audio(50), video(80), video(120, True), audio(130), video(160)]:
        pub.push(unit)
    assert [u.dts for u in drain(keys)] == [0, 120]
    assert keys.dropped_units == 0 and keys.skips == 0
    # More keyframes than its queue holds: it skips like any reader.
    for dts in range(200, 200 + 40 * (hub.reader_queue_units + 1), 40):
        pub.push(video(dts, True))
    assert keys.skips == 1


async def test_gop_cache_is_bounded_in_bytes():
    hub = Hub(gop_cache_bytes=10)
    pub = hub.publish("s", Publisher())
    pub.push(video(0, True))
    for dts in range(40, 400, 40):
        pub.push(video(dts))  # grows past 10 bytes: cache dropped until the next keyframe
    assert pub.stream.subscribe().queued == 0
    pub.push(video(400, True))
    assert pub.stream.subscribe().queued == 1


async def test_takeover_kicks_the_stale_publisher_and_continues(hub):
    events = []
    hub.add_listener(events.append)
    first = Publisher()
    old = hub.publish("s", first)
    reader = old.stream.subscribe()
    old.push(video(1000, True))
    second = Publisher()
    new = hub.publish("s", second)
    assert first.kicked and not second.kicked
    assert new.stream is old.stream
    old.push(video(1040))  # the stale session is ignored
    new.push(video(5, False))  # a continuing session starts at a keyframe
    new.push(video(0, True))
    new.push(video(40))
    got = drain(reader)
    assert [u.dts for u in got] == [1000, 1000 + RECONNECT_GAP_MS, 1040 + RECONNECT_GAP_MS]
    assert got[1].discontinuity and not got[2].discontinuity
    old.detach(clean=True)  # the stale session cannot end the stream
    assert new.stream.state is StreamState.LIVE
    assert [type(e) for e in events] == [StreamStarted]


async def test_reconnect_within_grace_continues_the_same_stream(hub):
    events = []
    hub.add_listener(events.append)
    timers = []  # the grace timers the hub starts, to see the reconnect cancel its one
    start_timer = hub._call_later
    hub._call_later = lambda delay, callback: timers.append(start_timer(delay, callback)) or timers[-1]
    pub = hub.publish("s", Publisher())
    reader = pub.stream.subscribe()
    pub.push(video(500, True, pts=540))
    pub.detach(clean=False)
    assert pub.stream.state is StreamState.ORPHANED
    again = hub.publish("s", Publisher())
    assert again.stream is pub.stream
    again.push(video(0, True, pts=40))
    got = drain(reader)
    assert got[1].dts == 500 + RECONNECT_GAP_MS and got[1].pts == 580
    assert got[1].discontinuity
    # the grace timer was cancelled, so the stream cannot end when it would have run out
    assert len(timers) == 1 and timers[0].cancelled()
    assert again.stream.state is StreamState.LIVE
    assert [type(e) for e in events] == [StreamStarted]
    assert again.stream.stats.reconnects == 1


async def test_grace_expiry_ends_the_stream(hub):
    ended = asyncio.Event()
    hub.add_listener(lambda e: isinstance(e, StreamEnded) and ended.set())
    pub = hub.publish("s", Publisher())
    reader = pub.stream.subscribe()
    pub.detach(clean=False)
    await asyncio.wait_for(ended.wait(), 2)
    assert await reader.read() is None
    # a new publish after the end is a new broadcast
    assert hub.publish("s", Publisher()).stream is not pub.stream


async def test_operator_stop_kicks_publisher(hub):
    p = Publisher()
    hub.publish("s", p)
    assert hub.stop("s") and p.kicked
    assert hub.get("s") is None
    assert not hub.stop("s")


async def test_closed_reader_is_forgotten(hub):
    pub = hub.publish("s", Publisher())
    reader = pub.stream.subscribe()
    reader.close()
    assert pub.stream.readers == ()
    pub.push(video(0, True))
    assert reader.read_nowait() is None
    assert await reader.read() is None


async def test_audio_only_reader_resumes_on_any_unit():
    hub = Hub(reader_queue_units=2)
    pub = hub.publish("s", Publisher())
    reader = pub.stream.subscribe(from_gop=False)
    for dts in (0, 20, 40):
        pub.push(audio(dts))
    assert reader.skips == 1
    assert [u.dts for u in drain(reader)] == [40]
