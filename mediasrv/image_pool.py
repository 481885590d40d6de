"""Bounded image decoding: a few worker threads and a short queue (``images.*``).

Issue 18: 12 concurrent 5000x5000 16-bit PNG covers took both cores for 20 s and 1.2 GB
of memory, and every other request waited. Decoding (``mediasrv.images``) now runs in a
pool of ``decode_workers`` threads; at most ``decode_queue`` more images may wait for
one. A request beyond that is refused at once (``PoolBusy``: the HTTP layer answers 503
with ``Retry-After``) instead of queueing work and memory without end. Memory per image
is bounded in ``mediasrv.images`` (the header's size and bit depth, before decoding).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Callable, TypeVar

T = TypeVar("T")


class PoolBusy(Exception):
    """Every worker is busy and the queue is full: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the image decoders are busy: try again in {retry_after} s")
        self.retry_after = retry_after


class DecodePool:
    """Runs blocking decodes on ``workers`` threads, with at most ``queue`` waiting."""

    def __init__(self, workers: int, queue: int, *, retry_after: int = 2) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.retry_after = retry_after
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="image-decode")
        #: Decodes running or waiting now.
        self.in_flight = 0
        #: Decodes refused because the pool was full.
        self.refused = 0

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """``fn(*args, **kwargs)`` on a worker thread; ``PoolBusy`` when full."""
        if self.in_flight >= self.capacity:
            self.refused += 1
            raise PoolBusy(self.retry_after)
        loop = asyncio.get_running_loop()
        future = self._executor.submit(fn, *args, **kwargs)
        self.in_flight += 1
        # Counted until the work itself ends, not the request: a client that hangs up
        # does not free a slot while its decode still runs.
        future.add_done_callback(lambda _: self._finished(loop))
        return await asyncio.wrap_future(future)

    def _finished(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._release)
        except RuntimeError:  # the loop is closed (shutting down): nothing to count for
            pass

    def _release(self) -> None:
        self.in_flight -= 1

    def close(self) -> None:
        """Stop the workers (running decodes finish; nothing new starts)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
