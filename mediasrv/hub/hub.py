"""The registry of live streams and their lifecycle events."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from mediasrv.hub.stream import PublisherHandle, Stream, StreamState

log = logging.getLogger("mediasrv.hub")


@dataclass(frozen=True, slots=True)
class HubEvent:
    stream: Stream


@dataclass(frozen=True, slots=True)
class StreamStarted(HubEvent):
    """A new broadcast began (not a reconnect within the grace)."""


@dataclass(frozen=True, slots=True)
class StreamWentPublic(HubEvent):
    """A broadcast that started private (backstage) was made public: what a public start
    sets off (listing, alerts, webhooks, recording) happens now (``Hub.make_public``)."""


@dataclass(frozen=True, slots=True)
class StreamEnded(HubEvent):
    """The broadcast is over: clean unpublish, grace ran out, or stopped by an operator."""


class StreamBusy(Exception):
    """The name is being published and takeover was not asked for."""


class Publication:
    """A publisher's attachment to a stream: push units through it, detach when done."""

    __slots__ = ("stream", "session", "_hub")

    def __init__(self, hub: "Hub", stream: Stream, session: int) -> None:
        self._hub = hub
        self.stream = stream
        self.session = session

    @property
    def active(self) -> bool:
        return self.stream._session == self.session and self.stream.state is StreamState.LIVE

    def push(self, unit) -> None:
        self.stream.push(self.session, unit)

    def set_metadata(self, values: dict) -> None:
        self.stream.set_metadata(self.session, values)

    def detach(self, *, clean: bool) -> None:
        """The publisher left: ``clean`` (it unpublished) ends the stream at once, otherwise
        the stream waits for a reconnect during the grace."""
        self.stream._detach(self.session, clean=clean, grace=self._hub.reconnect_grace)


class Hub:
    """Streams by name. Listeners get ``StreamStarted``/``StreamWentPublic``/``StreamEnded``
    synchronously.

    A broadcast is public (``Stream.private`` false) unless its name is backstage
    (``set_backstage``) when it starts: a private broadcast is live for its publisher and
    the platform's own readers (HLS, transcoding, monitoring) but not for the public
    until ``make_public``. ``StreamStarted`` carries the stream with its ``private`` flag
    already set, so every listener sees the same answer.
    """

    def __init__(
        self,
        *,
        reconnect_grace: float = 10.0,
        reader_queue_units: int = 2048,
        gop_cache_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.reconnect_grace = reconnect_grace
        self.reader_queue_units = reader_queue_units
        self.gop_cache_bytes = gop_cache_bytes
        self._clock = clock
        self._loop = loop
        self._streams: dict[str, Stream] = {}
        self._listeners: list[Callable[[HubEvent], None]] = []
        #: Names whose next new broadcasts start private (``set_backstage``).
        self._backstage: set[str] = set()
        #: Names → (visibility, mature) of their next new broadcasts (``set_audience``).
        self._audience: dict[str, tuple[str, bool]] = {}
        self.streams_started = 0
        self.streams_ended = 0

    def add_listener(self, listener: Callable[[HubEvent], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[HubEvent], None]) -> None:
        self._listeners.remove(listener)

    def get(self, name: str) -> Stream | None:
        return self._streams.get(name)

    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    def get_public(self, name: str) -> Stream | None:
        """The stream ``name`` when it is live and public (what anyone may know of: not a
        backstage, and public by its visibility)."""
        stream = self._streams.get(name)
        return stream if stream is not None and not stream.restricted else None

    def public_streams(self) -> list[Stream]:
        """The streams that are public (a private broadcast is nobody's business yet, and a
        live whose visibility is not public is not listed)."""
        return [s for s in self._streams.values() if not s.restricted]

    def set_backstage(self, name: str, on: bool) -> None:
        """Whether new broadcasts of ``name`` start private (the creator's backstage). A
        broadcast already running keeps its state; a reconnect or a takeover continues
        the broadcast, so it is not a new one."""
        if on:
            self._backstage.add(name)
        else:
            self._backstage.discard(name)

    def set_audience(self, name: str, visibility: str, mature: bool) -> None:
        """Who may watch the next new broadcasts of ``name`` (the creator's choice, issue 18);
        a broadcast already running keeps its own (``Stream.visibility``, changed by the
        live control)."""
        if visibility == "public" and not mature:
            self._audience.pop(name, None)
        else:
            self._audience[name] = (visibility, mature)

    def starts_private(self, name: str) -> bool:
        """Whether the next new broadcast of ``name`` starts private (``set_backstage``)."""
        return name in self._backstage

    def make_public(self, name: str) -> bool:
        """Make the private broadcast ``name`` public now (``StreamWentPublic``). False when
        there is no such stream or it is public already (nothing happens then)."""
        stream = self._streams.get(name)
        if stream is None or not stream.private or stream.state is StreamState.ENDED:
            return False
        stream.private = False
        stream.public_at = self._clock()
        self._emit(StreamWentPublic(stream))
        return True

    def publish(self, name: str, publisher: PublisherHandle, *, takeover: bool = True) -> Publication:
        """Attach ``publisher`` to stream ``name``.

        A stream orphaned within its grace continues. A live stream with another
        publisher is taken over when ``takeover`` (the old publisher is kicked: an encoder
        reconnecting after a network drop often arrives before the server has noticed
        the old TCP connection is dead), otherwise ``StreamBusy``.
        """
        stream = self._streams.get(name)
        if stream is not None and stream.state is StreamState.LIVE:
            if not takeover:
                raise StreamBusy(name)
            old = stream.publisher
            stream.stats.takeovers += 1
            session = stream._attach(publisher, continuing=True)
            if old is not None and old is not publisher:
                old.kick("another publisher took over the stream")
            return Publication(self, stream, session)
        if stream is not None and stream.state is StreamState.ORPHANED:
            session = stream._attach(publisher, continuing=True)
            log.info("stream %s: publisher reconnected within the grace", name)
            return Publication(self, stream, session)
        stream = Stream(self, name, started_at=self._clock(), gop_cache_bytes=self.gop_cache_bytes)
        if name in self._backstage:
            stream.private = True
            stream.public_at = None
        stream.visibility, stream.mature = self._audience.get(name, ("public", False))
        self._streams[name] = stream
        session = stream._attach(publisher, continuing=False)
        self.streams_started += 1
        self._emit(StreamStarted(stream))
        return Publication(self, stream, session)

    def stop(self, name: str, reason: str = "stopped by an operator") -> bool:
        """End a stream now (operator action). Its publisher is kicked. ``reason`` is kept
        as the stream's ``end_reason`` before the end is announced, so the listeners that
        tell viewers and the creator (chat, stats feed) can say why."""
        stream = self._streams.get(name)
        if stream is None:
            return False
        publisher = stream.publisher
        stream.end_reason = reason
        self._end(stream)
        if publisher is not None:
            publisher.kick(reason)
        return True

    def close(self) -> None:
        """End every stream (server shutdown)."""
        for stream in list(self._streams.values()):
            self._end(stream)

    def _end(self, stream: Stream) -> None:
        if stream.state is StreamState.ENDED:
            return
        stream._finish(self._clock())
        if self._streams.get(stream.name) is stream:
            del self._streams[stream.name]
        self.streams_ended += 1
        self._emit(StreamEnded(stream))

    def _emit(self, event: HubEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break publishing
                log.exception("hub listener failed on %s", type(event).__name__)

    def _call_later(self, delay: float, callback: Callable[[], None]):
        loop = self._loop or asyncio.get_running_loop()
        return loop.call_later(delay, callback)
