"""Fault: the encoder's TCP connection drops in the middle of an RTMP message.

A raw publisher sends the first chunk of a video message whose header announces more
bytes, then resets the socket (RST, no FIN, no FCUnpublish). The server must treat it as
a dropped publisher — the stream is orphaned for ``hls.reconnect_grace`` and either
continues (a publisher of the same name comes back) or ends — with no exception reaching
the event loop, nothing logged above a warning, and an unrelated stream untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from mediasrv.hub.stream import StreamState
from tests.support.clients import ffmpeg_push
from tests.faults.support import LoopErrors
from tests.support.rawpublisher import RawPublisher, tiny_clip
from tests.support.rawrtmp import chunk_fmt0
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

GRACE = 1.5


def half_a_message() -> bytes:
    """A video message (csid 6, stream 1) announcing 20,000 bytes, of which only the first
    chunk's 4,000 arrive: the chunk reader holds a partial message when the peer vanishes."""
    return chunk_fmt0(6, 9, bytes([0x27, 0x01, 0, 0, 0]) + bytes(3995), timestamp=2000, stream_id=1, length=20_000)


async def wait_state(srv, name: str, state: StreamState | None, timeout: float = 10.0) -> float:
    """Wait until the hub's stream ``name`` is in ``state`` (None: gone); return the seconds."""
    started = time.monotonic()
    while True:
        stream = srv.hub.get(name)
        current = None if stream is None else stream.state
        if current is state:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{name}: {current} after {timeout} s, expected {state}"
        await asyncio.sleep(0.02)


def _video_frames(units) -> int:
    return sum(1 for u in units if u.kind.value == "video")


def _clip_frames(tags) -> int:
    """Video tags that carry a frame (AVC packet type 1; not the sequence header or end)."""
    return sum(1 for t in tags if t.type == 9 and t.body[1] == 1)


@pytest.mark.parametrize("comes_back", [True, False], ids=["back-within-grace", "never-back"])
async def test_connection_reset_mid_message(tmp_path, caplog, comes_back):
    caplog.set_level(logging.WARNING)
    clip = tiny_clip(30)
    async with running_server(tmp_path, f"hls.reconnect_grace={GRACE}", "hls.segment_duration=1") as srv:
        recorder = StreamRecorder(srv.hub)
        with LoopErrors() as loop_errors:
            good = asyncio.ensure_future(ffmpeg_push(srv.rtmp_url("good"), seconds=4, realtime=True))
            try:
                await _drop_and_check(srv, recorder, good, clip, comes_back)
            finally:
                if not good.done():
                    good.cancel()
                    await asyncio.gather(good, return_exceptions=True)
        assert loop_errors.contexts == [], loop_errors.contexts
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


async def _drop_and_check(srv, recorder, good, clip, comes_back: bool) -> None:
    """The victim drops mid-message (and maybe comes back) while ``good`` publishes."""
    await recorder.wait_started("good")

    victim = await RawPublisher.open(srv.rtmp_port, "victim")
    await victim.send_tags(clip)  # 1 s of media
    await recorder.wait_started("victim")
    await victim.send_raw(half_a_message())
    await asyncio.sleep(0.1)  # let the partial chunk reach the server's chunk reader
    await victim.reset()
    await wait_state(srv, "victim", StreamState.ORPHANED, timeout=5)

    if comes_back:
        again = await RawPublisher.open(srv.rtmp_port, "victim")
        await again.send_tags(clip)
        await wait_state(srv, "victim", StreamState.LIVE, timeout=5)
        await again.close()
        units = await recorder.wait_ended("victim", timeout=5)  # a clean unpublish ends it at once
        assert srv.hub.get("victim") is None
        # One broadcast: the second session continued it, after a discontinuity.
        assert sum(1 for u in units if u.discontinuity) == 1
        assert _video_frames(units) == 2 * _clip_frames(clip)
        dts = [u.dts for u in units if u.kind.value == "video"]
        assert dts == sorted(dts)
    else:
        dropped_at = time.monotonic()
        units = await recorder.wait_ended("victim", timeout=GRACE + 5)
        assert GRACE - 0.3 <= time.monotonic() - dropped_at <= GRACE + 3
        assert srv.hub.get("victim") is None
        assert _video_frames(units) == _clip_frames(clip)
        assert not any(u.discontinuity for u in units)

    # The unrelated stream: every frame, its publisher never disturbed.
    status, output = await good
    assert status == 0, output
    good_units = await recorder.wait_ended("good")
    assert _video_frames(good_units) == 100
    assert srv.rtmp.stats.connections_open == 0
