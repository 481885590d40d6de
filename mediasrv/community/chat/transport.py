"""The chat's WebSocket writing path: each member's frames go straight to its connection
(``FrameSink``), and every connection with frames waiting is written once per loop turn,
or once per ``chat.flush_interval`` in a busy big room (``Flusher``). See docs/chat.md."""

from __future__ import annotations

import asyncio
import collections
import logging

from aiohttp import web

log = logging.getLogger("mediasrv.chat")


class FrameSink:
    """Writes a member's frames straight to its connection as WebSocket text frames
    (RFC 6455 §5.2: FIN + opcode 1, unmasked from a server), with no task per member.

    Frames pushed during one turn of the event loop are joined and written once, at the
    end of the turn (``Flusher``): a broadcast costs one append per member, and when the
    server is busy (several messages handled in one turn) one write carries them all.

    Flow control as with a queue: frames not yet handed to the kernel (buffered here or
    in the transport, counted from its write-buffer size) are pending, and a member with
    ``limit`` of them is too slow. A frame without RSV1 is valid whatever extension was
    negotiated (RFC 7692 §6).
    """

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, limit: int,
                 flusher: "Flusher") -> None:
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.flusher = flusher
        self.written = 0
        #: Encoded frames of this turn, not yet written.
        self.buffer: list[bytes] = []
        #: Where each frame still in the transport's buffer ends (bytes written so far).
        self.pending: collections.deque[int] = collections.deque()

    def _closing(self) -> bool:
        return self.ws.closed or self.transport.is_closing()

    def __call__(self, frame: str) -> bool:
        if self._closing():
            return True  # the connection is closing: its reader will leave the room
        pending = self.pending
        if pending:
            flushed = self.written - self.transport.get_write_buffer_size()
            while pending and pending[0] <= flushed:
                pending.popleft()
        if len(pending) + len(self.buffer) >= self.limit:
            return False
        self.buffer.append(websocket_frame(frame))
        if len(self.buffer) == 1:
            self.flusher.add(self)
        return True

    def flush(self) -> None:
        frames, self.buffer = self.buffer, []
        if not frames or self._closing():
            return
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        if self.transport.get_write_buffer_size() == 0:
            # All of it went to the kernel at once (the usual case): nothing is pending.
            self.pending.clear()
            self.written += sum(map(len, frames))
            return
        for data in frames:
            self.written += len(data)
            self.pending.append(self.written)


class Flusher:
    """Writes every sink with buffered frames once.

    A fan-out to few connections is written at the end of the loop's turn: no added
    latency. Once one flush has written to at least ``batch_above`` connections (a big
    room that is talking), the following frames gather for ``interval`` seconds before
    the next flush (``chat.flush_interval``, ``chat.batch_above``): each connection then
    gets one write for all the messages of that time instead of one per message, which
    divides the system calls of a busy big room by its message rate times the interval,
    at the cost of at most ``interval`` of delivery latency (70 ms by default, not
    noticed in a chat). When the room quietens, flushes fall back to once per turn.
    """

    def __init__(self, interval: float = 0.07, batch_above: int = 1000) -> None:
        self.interval = interval
        self.batch_above = batch_above
        self.dirty: list[FrameSink] = []
        #: The last flush wrote to ``batch_above`` connections or more.
        self.batching = False

    def add(self, sink: FrameSink) -> None:
        if not self.dirty:
            loop = asyncio.get_running_loop()
            if self.batching and self.interval > 0:
                loop.call_later(self.interval, self.flush)
            else:
                loop.call_soon(self.flush)
        self.dirty.append(sink)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        self.batching = len(dirty) >= self.batch_above
        for sink in dirty:
            try:
                sink.flush()
            except Exception:  # one broken connection must not stop the others' frames
                log.exception("chat: writing to a connection failed")


_last_frame: list = [None, b""]


def websocket_frame(text: str) -> bytes:
    """``text`` as one unmasked WebSocket text frame. A room sends the same string to every
    member: the last one is kept, so it is encoded once per broadcast."""
    if _last_frame[0] is text:
        return _last_frame[1]
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    data = head + payload
    _last_frame[0], _last_frame[1] = text, data
    return data
