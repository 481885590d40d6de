"""``http.send_timeout``: close a connection whose client stopped taking its answer.

aiohttp writes a response into the transport and awaits the drain before it reads the
connection's next request (flow control), so a viewer that stops reading holds one
response in user space and one task, for as long as it keeps the socket open — a few
hundred such "slow readers" hold a segment each. nginx's ``send_timeout`` is the usual
cure: a connection on which the client has taken no byte for that long is closed.

:class:`SendTimeout` sweeps the listener's connections once a ``period``: a transport with
bytes waiting in its write buffer whose size has not changed since the sweep that first
saw it at that size, ``timeout`` seconds ago, is aborted (the kernel's send buffer was full
all that time: the peer's receive window stayed shut). A client that reads, however
slowly, moves the buffer and keeps its connection; one that is merely idle between
requests has nothing buffered and is aiohttp's keep-alive timeout's business.

The clock is passed in (``clock``) and :meth:`SendTimeout.sweep` does the work, so tests
drive it without waiting; :meth:`SendTimeout.start` runs it on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable, Iterable

from aiohttp import web

from mediasrv.httpkit.keys import HTTP_STATS
from mediasrv.httpkit.stats import HttpStats

log = logging.getLogger("mediasrv.httpkit.send_timeout")


class SendTimeout:
    """Abort transports whose write buffer stayed the same non-empty size for ``timeout`` s."""

    def __init__(self, transports: Callable[[], Iterable[asyncio.BaseTransport | None]], timeout: float, *,
                 period: float = 1.0, stats: HttpStats | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transports = transports
        self.timeout = timeout
        self.period = period
        self.clock = clock
        #: Transport -> (buffered bytes, when first seen at that size).
        self._stuck: dict[asyncio.BaseTransport, tuple[int, float]] = {}
        #: Connections closed so far.
        self.closed = 0
        #: Where the metrics read the count at scrape time (``HttpStats.send_timeouts``).
        self.stats = stats
        self._task: asyncio.Task | None = None

    def sweep(self) -> int:
        """One look at every connection; returns how many were closed now."""
        now = self.clock()
        previous, stuck, closed = self._stuck, {}, 0
        for transport in self.transports():
            if transport is None or transport.is_closing():
                continue
            buffered = transport.get_write_buffer_size()  # type: ignore[attr-defined]
            if not buffered:
                continue
            size, since = previous.get(transport, (buffered, now))
            if size != buffered:
                since = now  # the client took something: the clock starts again
            if now - since >= self.timeout:
                peer = transport.get_extra_info("peername")
                log.info("closed the connection of %s: it took no byte of its answer for %.0f s "
                         "(%d bytes waiting; http.send_timeout)", peer[0] if peer else "?", now - since, buffered)
                transport.abort()
                closed += 1
                continue
            stuck[transport] = (buffered, since)
        self._stuck = stuck  # connections gone or drained are forgotten
        self.closed += closed
        if closed and self.stats is not None:
            self.stats.send_timeouts += closed
        return closed

    def start(self) -> None:
        """Sweep every ``period`` seconds on the running loop until :meth:`stop`."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="http-send-timeout")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self.sweep()


def watch(runner: web.AppRunner, timeout: float) -> SendTimeout:
    """A started :class:`SendTimeout` over every HTTP connection of ``runner`` (after its
    ``setup()``)."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    sweeper = SendTimeout(lambda: [handler.transport for handler in server.connections], timeout,
                          period=min(1.0, timeout / 4), stats=runner.app.get(HTTP_STATS))
    sweeper.start()
    return sweeper
