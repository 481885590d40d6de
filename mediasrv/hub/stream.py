"""One live stream: its publisher session, its readers and its GOP cache."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Callable, Protocol

from mediasrv.hub.reader import Reader, is_video_keyframe
from mediasrv.media.types import MediaUnit, TrackInfo, TrackKind



class StreamOwner(Protocol):
    """What a stream needs of its hub (``hub.hub.Hub``): its readers' queue size, a timer
    for the reconnect grace, and to be told when it ended. A Protocol, so this module does
    not import the hub's."""

    reader_queue_units: int

    def _end(self, stream: "Stream") -> None: ...

    def _call_later(self, delay: float, callback: Callable[[], None]): ...

#: Gap put between the last unit of a dropped publisher and the first of its successor.
RECONNECT_GAP_MS = 40


class PublisherHandle(Protocol):
    """What the hub needs from whoever publishes: a way to make it stop (takeover)."""

    def kick(self, reason: str) -> None:
        """Close the publisher's connection; a newer publisher took the stream."""


class StreamState(enum.Enum):
    LIVE = "live"  # a publisher is attached
    ORPHANED = "orphaned"  # the publisher dropped; waiting for it within the grace
    ENDED = "ended"


# Enum members as module constants for the per-message paths: on CPython 3.11
# ``Enum.MEMBER`` is an unspecialised class attribute look-up (~60 ns), a module
# global ~5 ns, and these are read for every audio/video message.
_LIVE = StreamState.LIVE
_VIDEO = TrackKind.VIDEO


@dataclass(slots=True)
class StreamStats:
    """Plain counters read at scrape time (never pushed)."""

    units_in: int = 0
    bytes_in: int = 0
    video_units: int = 0
    audio_units: int = 0
    keyframes: int = 0
    publishes: int = 0
    reconnects: int = 0
    takeovers: int = 0
    units_dropped_waiting_keyframe: int = 0
    last_keyframe_dts: int | None = None
    #: Last intervals between video keyframes, in ms (newest last, a few kept).
    keyframe_intervals: list[int] = field(default_factory=list)


class Stream:
    """A named live stream in the hub.

    The stream outlives a dropped publisher for the hub's reconnect grace: a new
    publisher of the same name within it continues the same stream (timestamps rebased
    to continue, first unit marked ``discontinuity``); readers see no end.
    """

    def __init__(self, hub: StreamOwner, name: str, *, started_at: float, gop_cache_bytes: int) -> None:
        self.hub = hub
        self.name = name
        self.started_at = started_at
        self.ended_at: float | None = None
        #: Why an operator ended it (``Hub.stop``); None for an end by the publisher.
        self.end_reason: str | None = None
        #: Backstage: live, but only for the creator, their moderators and operators (not
        #: listed, no alerts, no recording) until ``Hub.make_public``.
        self.private = False
        #: Who may watch it (issue 18): "public", "followers", "unlisted" or "private"
        #: (``community.live.audience`` decides who that is); set from the creator's
        #: choice before ``StreamStarted``, changeable while live.
        self.visibility = "public"
        #: 18+: viewers confirm their age; not listed for signed-out viewers.
        self.mature = False
        #: When the public could first know of it: the start, or when it was made public;
        #: None while private (and for a broadcast that ended without going public).
        self.public_at: float | None = started_at
        self.state = StreamState.LIVE
        self.metadata: dict = {}
        self.tracks: dict[TrackKind, TrackInfo] = {}
        self.stats = StreamStats()
        #: Free-form attributes components attach (e.g. the publisher's address).
        self.attributes: dict = {}
        self._readers: list[Reader] = []
        self._gop: list[MediaUnit] = []
        self._gop_bytes = 0
        self._gop_cache_bytes = gop_cache_bytes
        self._publisher: PublisherHandle | None = None
        self._session = 0
        self._offset: int | None = 0  # added to the session's timestamps; None = not known yet
        self._last_dts: int | None = None
        self._need_keyframe = False
        self._pending_discontinuity = False
        self._grace_timer = None

    # --- publisher side ---------------------------------------------------------------

    @property
    def publisher(self) -> PublisherHandle | None:
        return self._publisher

    @property
    def restricted(self) -> bool:
        """Not everyone may play it: private (backstage) or not public by visibility."""
        return self.private or self.visibility != "public"

    @property
    def has_video(self) -> bool:
        return TrackKind.VIDEO in self.tracks

    def _attach(self, publisher: PublisherHandle, *, continuing: bool) -> int:
        self._session += 1
        self.stats.publishes += 1
        self._publisher = publisher
        self.state = StreamState.LIVE
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if continuing:
            self._offset = None  # computed from the new session's first unit
            self._need_keyframe = True
            self._pending_discontinuity = True
        return self._session

    def push(self, session: int, unit: MediaUnit) -> None:
        """Publish one unit from publisher ``session``. Never blocks; stale sessions are ignored."""
        if session != self._session or self.state is not _LIVE:
            return
        if self._need_keyframe:
            # A continuing session resumes at a keyframe so every reader can decode on.
            if self.has_video and not (unit.kind is TrackKind.VIDEO and unit.keyframe):
                self.stats.units_dropped_waiting_keyframe += 1
                return
            self._need_keyframe = False
        if self._offset is None:
            base = 0 if self._last_dts is None else self._last_dts + RECONNECT_GAP_MS
            self._offset = base - unit.dts
        if self._offset or self._pending_discontinuity:
            unit = dataclasses.replace(
                unit,
                dts=unit.dts + self._offset,
                pts=unit.pts + self._offset,
                discontinuity=unit.discontinuity or self._pending_discontinuity,
            )
            self._pending_discontinuity = False
        # ``unit.kind`` is a property (a Python call): read the track's kind once per unit.
        kind = unit.track.kind
        self._account(unit, kind)
        self._cache(unit, kind)
        has_video = _VIDEO in self.tracks
        for reader in self._readers:
            reader._offer(unit, has_video=has_video)

    def set_metadata(self, session: int, values: dict) -> None:
        """Record the encoder's ``onMetaData``."""
        if session == self._session:
            self.metadata = dict(values)

    def _account(self, unit: MediaUnit, kind: TrackKind) -> None:
        stats = self.stats
        stats.units_in += 1
        stats.bytes_in += len(unit.data)
        self.tracks[kind] = unit.track
        if self._last_dts is None or unit.dts > self._last_dts:
            self._last_dts = unit.dts
        if kind is _VIDEO:
            stats.video_units += 1
            if unit.keyframe:
                stats.keyframes += 1
                if stats.last_keyframe_dts is not None:
                    stats.keyframe_intervals.append(unit.dts - stats.last_keyframe_dts)
                    del stats.keyframe_intervals[:-8]
                stats.last_keyframe_dts = unit.dts
        else:
            stats.audio_units += 1

    def _cache(self, unit: MediaUnit, kind: TrackKind) -> None:
        # GOP cache: everything since the last video keyframe (audio-only: the last unit),
        # so a new reader starts decodable at once. Bounded in bytes: an over-long GOP is
        # dropped and the cache waits for the next keyframe.
        if kind is _VIDEO and unit.keyframe:
            self._gop = [unit]
            self._gop_bytes = len(unit.data)
            return
        if _VIDEO not in self.tracks:
            self._gop = [unit]
            self._gop_bytes = len(unit.data)
            return
        if not self._gop:
            return
        self._gop_bytes += len(unit.data)
        if self._gop_bytes > self._gop_cache_bytes:
            self._gop = []
            self._gop_bytes = 0
            return
        self._gop.append(unit)

    def _detach(self, session: int, *, clean: bool, grace: float) -> None:
        if session != self._session or self.state is not StreamState.LIVE:
            return
        self._publisher = None
        if clean or grace <= 0:
            self.hub._end(self)
            return
        self.state = StreamState.ORPHANED
        self.stats.reconnects += 1
        self._grace_timer = self.hub._call_later(grace, self._grace_expired)

    def _grace_expired(self) -> None:
        self._grace_timer = None
        if self.state is StreamState.ORPHANED:
            self.hub._end(self)

    def _finish(self, now: float) -> None:
        self.state = StreamState.ENDED
        self.ended_at = now
        self._publisher = None
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        self._gop = []
        for reader in list(self._readers):
            reader._end()
        self._readers.clear()

    # --- reader side ------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.state is StreamState.ENDED

    @property
    def readers(self) -> tuple[Reader, ...]:
        return tuple(self._readers)

    @property
    def gop_cache_bytes(self) -> int:
        return self._gop_bytes

    def subscribe(self, *, max_units: int | None = None, from_gop: bool = True, name: str = "",
                  keyframes_only: bool = False) -> Reader:
        """Add a reader. With ``from_gop`` it starts at the cached last keyframe; with
        ``keyframes_only`` it receives video keyframes only (see ``Reader``)."""
        reader = Reader(self, max_units or self.hub.reader_queue_units, name=name, keyframes_only=keyframes_only)
        if self.state is StreamState.ENDED:
            reader._end()
            return reader
        if from_gop:
            for unit in self._gop[-reader.max_units:]:
                if not keyframes_only or is_video_keyframe(unit):
                    reader._queue.append(unit)
        self._readers.append(reader)
        return reader

    def _remove_reader(self, reader: Reader) -> None:
        try:
            self._readers.remove(reader)
        except ValueError:
            pass


def expects_video(stream: Stream) -> bool | None:
    """Whether the publisher announced video (tracks seen, or onMetaData), None if unknown."""
    if TrackKind.VIDEO in stream.tracks:
        return True
    metadata = stream.metadata
    if not metadata:
        return None
    if any(key in metadata for key in ("videocodecid", "width", "height", "framerate")):
        return True
    return False if "audiocodecid" in metadata else None
