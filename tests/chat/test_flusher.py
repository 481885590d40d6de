"""The chat flusher: small fan-outs are written in the same loop turn; after a fan-out
to ``batch_above`` connections, frames gather for ``flush_interval``; when the room
quietens, writes are immediate again."""

from __future__ import annotations

import asyncio

from mediasrv.community.chat.transport import Flusher

INTERVAL = 0.2


class RecordingSink:
    """Stands in for a connection: notes when the flusher wrote it."""

    def __init__(self, written: asyncio.Queue) -> None:
        self.written = written

    def flush(self) -> None:
        self.written.put_nowait(asyncio.get_running_loop().time())


async def fan_out(flusher: Flusher, connections: int) -> float:
    """Add ``connections`` sinks; return the delay until the flusher wrote them all."""
    loop = asyncio.get_running_loop()
    written: asyncio.Queue = asyncio.Queue()
    added_at = loop.time()
    for _ in range(connections):
        flusher.add(RecordingSink(written))
    times = [await asyncio.wait_for(written.get(), 5) for _ in range(connections)]
    assert written.empty()
    return max(times) - added_at


async def test_small_fan_outs_are_immediate_big_ones_make_the_next_frames_gather():
    flusher = Flusher(interval=INTERVAL, batch_above=3)
    assert await fan_out(flusher, 2) < INTERVAL / 2  # a small room: no added latency
    assert not flusher.batching
    assert await fan_out(flusher, 3) < INTERVAL / 2  # the first big fan-out: at once...
    assert flusher.batching
    assert await fan_out(flusher, 3) >= INTERVAL  # ...the next frames gather
    assert await fan_out(flusher, 1) >= INTERVAL  # still gathering: the last was big
    assert not flusher.batching  # that flush was small: the room has quietened
    assert await fan_out(flusher, 1) < INTERVAL / 2


async def test_a_zero_interval_never_delays():
    flusher = Flusher(interval=0.0, batch_above=1)
    for _ in range(3):
        assert await fan_out(flusher, 4) < INTERVAL / 2


async def test_a_broken_connection_does_not_stop_the_others():
    flusher = Flusher(interval=INTERVAL, batch_above=1000)
    written: asyncio.Queue = asyncio.Queue()

    class Broken:
        def flush(self) -> None:
            raise OSError("connection reset")

    flusher.add(Broken())
    flusher.add(RecordingSink(written))
    await asyncio.wait_for(written.get(), 5)
