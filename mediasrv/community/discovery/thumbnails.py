"""A thumbnail of every live stream, at most every ``thumbnails.interval`` seconds.

One hub reader of video keyframes per stream (renditions such as ``name/720p`` are
skipped); when a keyframe arrives and the interval has passed, that keyframe is decoded and
encoded to JPEG in a worker thread (``asyncio.to_thread``), one at a time per stream and at
most two at once overall. Only while it is wanted: a stream's first thumbnail is always
taken (listings show one from the start), later ones only while someone looked at that
stream's thumbnail (``get``: the live listings, the thumbnail URL) within the last
``WANTED_FOR`` seconds. Decoding a 720p keyframe and encoding a JPEG is the costliest
thing done per live stream besides muxing; a stream nobody browses costs none of it, and
the first look after a quiet spell gets the older picture once, a fresh one an interval
later. The reader itself only looks at each unit, so it never falls
behind; the newest JPEG is kept in memory and dropped when the broadcast ends. Nothing is
taken while a broadcast is private (backstage): its first picture is one of it public.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from mediasrv.hub import Hub, Stream, StreamEnded, StreamStarted
from mediasrv.hub.stream import StreamState
from mediasrv.media.types import TrackKind
from mediasrv.images import thumbnail_from_keyframe

log = logging.getLogger("mediasrv.thumbnails")

#: Seconds after the last ``get`` of a stream's thumbnail during which it is kept fresh
#: (at least three intervals): a listing refreshed every few seconds keeps its pictures
#: current, an idle one lets the decoding stop.
WANTED_FOR = 60.0


@dataclass(frozen=True, slots=True)
class Thumbnail:
    jpeg: bytes
    width: int
    height: int
    taken_at: float
    #: 1, 2, ... within the broadcast (for cache-busting URLs and ETags).
    number: int


class ThumbnailService:
    """The thumbnails component (``app[THUMBNAILS]``)."""

    def __init__(self, hub: Hub, *, interval: float, width: int, concurrency: int = 2,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.interval = interval
        self.width = width
        self.clock = clock
        self.latest: dict[str, Thumbnail] = {}
        #: Stream name -> when its thumbnail was last asked for (``get``).
        self._wanted_at: dict[str, float] = {}
        self.wanted_for = max(WANTED_FOR, 3 * interval)
        self._tasks: dict[str, asyncio.Task] = {}
        self._busy: set[str] = set()
        self._takes: set[asyncio.Task] = set()
        self._limit = asyncio.Semaphore(concurrency)
        self.taken = 0
        self.failed = 0

    async def start(self) -> None:
        self.hub.add_listener(self._on_event)
        for stream in self.hub.streams():
            self._track(stream)

    async def stop(self) -> None:
        self.hub.remove_listener(self._on_event)
        tasks = list(self._tasks.values()) + list(self._takes)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def get(self, name: str) -> Thumbnail | None:
        """The newest thumbnail of live stream ``name`` (None before the first); asking
        keeps that stream's thumbnail fresh for ``wanted_for`` seconds."""
        if name in self._tasks:  # live streams only: lookups of any other name add nothing
            self._wanted_at[name] = self.clock()
        return self.latest.get(name)

    def _on_event(self, event) -> None:
        if isinstance(event, StreamStarted):
            self._track(event.stream)
        elif isinstance(event, StreamEnded):
            self.latest.pop(event.stream.name, None)
            self._wanted_at.pop(event.stream.name, None)

    def _track(self, stream: Stream) -> None:
        if "/" in stream.name:  # a rendition of a stream, not a broadcast
            return
        # Keyframes only: the other ~95 % of units would each wake this task for nothing.
        reader = stream.subscribe(max_units=16, name="thumbnails", keyframes_only=True)
        task = asyncio.get_running_loop().create_task(self._run(stream, reader), name=f"thumbnails:{stream.name}")
        self._tasks[stream.name] = task
        task.add_done_callback(lambda t, name=stream.name: self._tasks.pop(name, None) if self._tasks.get(name) is t else None)

    async def _run(self, stream: Stream, reader) -> None:
        last = float("-inf")
        number = 0
        try:
            while True:
                unit = await reader.read()
                if unit is None:
                    break
                if unit.kind is not TrackKind.VIDEO or not unit.keyframe or stream.name in self._busy or stream.private:
                    continue
                now = self.clock()
                if now - last < self.interval:
                    continue
                if stream.name in self.latest and now - self._wanted_at.get(stream.name, float("-inf")) > self.wanted_for:
                    continue  # it has one, and nobody looked at it lately
                last = now
                number += 1
                self._busy.add(stream.name)
                take = asyncio.get_running_loop().create_task(self._take(stream, unit, number))
                self._takes.add(take)
                take.add_done_callback(self._takes.discard)
        finally:
            reader.close()

    async def _take(self, stream: Stream, unit, number: int) -> None:
        try:
            async with self._limit:
                image = await asyncio.to_thread(thumbnail_from_keyframe, unit.track.codec.value, unit.track.config,
                                                unit.data, width=self.width)
        except Exception as exc:  # a bad frame costs one thumbnail, never the stream
            self.failed += 1
            log.info("stream %s: thumbnail failed: %s", stream.name, exc)
            return
        finally:
            self._busy.discard(stream.name)
        if stream.state is StreamState.ENDED or self.hub.get(stream.name) is not stream:
            return
        self.taken += 1
        self.latest[stream.name] = Thumbnail(image.jpeg, image.width, image.height, self.clock(), number)
