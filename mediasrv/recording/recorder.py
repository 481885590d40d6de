"""The recorder: every broadcast's source rendition to disk, then save or discard.

While a stream is live its source units go through the pure HLS ``Segmenter`` (fMP4,
the same cuts as live HLS) and each finished segment is written to
``recording.dir/<id>/`` in a worker thread (``recording_files``: temp file, fsync,
rename, manifest line), so a crash loses at most the segment in progress. A publisher
that reconnects within the grace continues the same recording (EXT-X-DISCONTINUITY).
A broadcast that starts private (the creator's backstage) is not recorded until it is
made public (``StreamWentPublic``): the recording starts then, at the stream's last
keyframe, and its ``started_at`` is when it went public.

States and the only transitions (anything else is refused with the reason)::

    recording ──end──► pending_decision ──save──► saved ──discard──► discarded
        │                     └──────discard──────────────────────► discarded
        ├──fail (disk full, I/O error)──► failed ──save / discard──► saved / discarded
        └──end with nothing recorded──► discarded

When a broadcast ends, ``default_save`` is asked at once: a creator who saves by default
gets the VOD right away (decided_by "default"). Otherwise the recording waits for the
creator, and undecided recordings (``pending_decision``, ``failed``) follow
``default_save`` once ``recording.decide_within`` seconds passed since the stream ended;
one timer task does that, including for recordings left from before a restart. At start-up, recordings that
were being written when the server died (kill -9, power) are rebuilt from their manifest
and become ``pending_decision`` with every complete segment.

Disk full (or any write error): the recording stops, is marked ``failed`` with the reason,
``on_failed`` is called and a warning logged; the stream and its other readers go on (the
recorder's hub reader is closed; the hub never waits for it anyway).

Hooks (a ``RecordingHooks`` given to the constructor, each sync or async; the composition
root passes the creator-aware ones of ``recording.links``):

- ``authorize(request, recording) -> bool``: may this HTTP request decide / see it?
- ``default_save(stream_name) -> bool``: the creator's "save by default" (False here);
- ``on_ended(recording)``: it awaits a decision; ``on_saved(recording)``: it became a VOD
  (the ``broadcast.saved`` webhook); ``on_failed(recording)``: recording stopped (reason in
  ``recording.error``); ``on_discarded(recording)``;
- ``title_of(stream_name) -> str``: the broadcast's title, kept with the recording (and
  shown with the VOD).
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Awaitable, Callable

from mediasrv.config import RecordingConfig
from mediasrv.hls import names
from mediasrv.hls.segmenter import Container, Segment, Segmenter
from mediasrv.hub import Hub, Reader, Stream, StreamEnded, StreamStarted, StreamWentPublic
from mediasrv.hub.stream import expects_video
from mediasrv.recording import files as rf
from mediasrv.store.recordings import Recording, RecordingState, RecordingStore

log = logging.getLogger("mediasrv.recorder")

S = RecordingState
#: The state machine: (state, action) -> next state. Nothing else is allowed.
TRANSITIONS: dict[tuple[RecordingState, str], RecordingState] = {
    (S.RECORDING, "end"): S.PENDING,
    (S.RECORDING, "fail"): S.FAILED,
    (S.RECORDING, "empty"): S.DISCARDED,
    (S.PENDING, "save"): S.SAVED,
    (S.PENDING, "discard"): S.DISCARDED,
    (S.FAILED, "save"): S.SAVED,
    (S.FAILED, "discard"): S.DISCARDED,
    (S.SAVED, "discard"): S.DISCARDED,
}
UNDECIDED = (S.PENDING, S.FAILED)
#: 16 characters of base64url: 96 random bits.
ID_LENGTH = 16
ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
#: Seconds the recorder waits at shutdown for the last segments to reach the disk.
STOP_TIMEOUT = 15.0
#: A hook that raised is asked again this many seconds later.
RETRY_DELAY = 60.0


def is_recording_id(value: str) -> bool:
    return len(value) == ID_LENGTH and set(value) <= ID_ALPHABET


class RecordingNotFound(LookupError):
    pass


class DecisionRefused(Exception):
    """The recording's state does not allow the action (the message says why)."""


@dataclass(slots=True)
class RecorderStats:
    """Plain counters (read at scrape time)."""

    recordings_started: int = 0
    segments_written: int = 0
    bytes_written: int = 0
    failures: int = 0
    saved: int = 0
    discarded: int = 0
    recovered: int = 0
    reader_skips: int = 0


@dataclass(slots=True, eq=False)
class _Active:
    recording: Recording
    stream: Stream
    reader: Reader
    segmenter: Segmenter
    files: rf.RecordingFiles
    task: asyncio.Task | None = None
    seen_skips: int = 0


@dataclass(slots=True)
class VodIndex:
    """A saved recording as served: its playlist and the files it may serve."""

    recording: Recording
    playlist: bytes
    files: frozenset[str]


@dataclass(slots=True, eq=False)
class _Remux:
    task: asyncio.Future
    abort: threading.Event = field(default_factory=threading.Event)




async def _call(hook: Callable[..., Any] | None, *args: Any) -> Any:
    if hook is None:
        return None
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _never(*args) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class RecordingHooks:
    """Who decides, the creator's default and who hears of a recording (module docstring).
    The defaults: nobody may decide over HTTP, nothing is saved by default, nobody is told."""

    authorize: Callable[[Any, "Recording"], bool | Awaitable[bool]] = _never
    default_save: Callable[[str], bool | Awaitable[bool]] = _never
    on_ended: Callable[["Recording"], Any] | None = None
    on_saved: Callable[["Recording"], Any] | None = None
    on_failed: Callable[["Recording"], Any] | None = None
    on_discarded: Callable[["Recording"], Any] | None = None
    title_of: Callable[[str], str | Awaitable[str]] | None = None


class Recorder:
    """Records hub streams and carries out save / discard decisions."""

    def __init__(
        self,
        settings: RecordingConfig,
        hub: Hub,
        *,
        data_dir: str | Path,
        segment_duration: float,
        hooks: RecordingHooks = RecordingHooks(),
        store_path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``settings``: the ``recording`` config section; ``data_dir``: where the database and
        (without ``recording.dir``) the recordings are; ``segment_duration``: the live
        segments' (recordings are cut the same way)."""
        self.enabled = bool(settings.enabled)
        self.root = Path(settings.dir) if settings.dir else Path(data_dir) / "recordings"
        self.decide_within = float(settings.decide_within)
        self.min_free_bytes = int(settings.min_free_bytes)
        self.segment_duration = float(segment_duration)
        self.store_path = Path(store_path) if store_path is not None else Path(data_dir) / "mediasrv.db"
        self.hub = hub
        self.clock = clock
        self.stats = RecorderStats()
        # Hooks (see the module docstring), read where they are called.
        self.authorize = hooks.authorize
        self.default_save = hooks.default_save
        self.on_ended = hooks.on_ended
        self.on_saved = hooks.on_saved
        self.on_failed = hooks.on_failed
        self.on_discarded = hooks.on_discarded
        #: ``title_of(stream_name)``: the broadcast's title, kept with its recording.
        self.title_of = hooks.title_of
        self.store: RecordingStore | None = None
        self._active: dict[str, _Active] = {}
        self._remux: dict[str, _Remux] = {}
        self._vod_cache: dict[str, VodIndex] = {}
        self._decisions = asyncio.Lock()
        self._wake: asyncio.Event | None = None
        self._decider: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._watchers: set[Callable] = set()
        self._started = False
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._stopping = False
        self.store = await asyncio.to_thread(RecordingStore, self.store_path)
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._recover)
        self._wake = asyncio.Event()
        self._decider = asyncio.get_running_loop().create_task(self._decide_loop(), name="recorder-decider")
        if self.enabled:
            self.hub.add_listener(self._on_hub_event)
            for stream in self.hub.streams():
                self._on_hub_event(StreamStarted(stream))

    async def stop(self) -> None:
        """Let the recordings finish (the hub ended the streams first), then stop."""
        if not self._started:
            return
        self._started = False
        for listener in [self._on_hub_event, *self._watchers]:
            try:
                self.hub.remove_listener(listener)
            except ValueError:
                pass
        self._watchers.clear()
        tasks = [a.task for a in self._active.values() if a.task is not None]
        for active in self._active.values():
            if not active.stream.ended:  # still live (the hub was not closed): end it here
                active.reader.close()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:  # a stuck disk: what is listed is safe; start-up recovers it
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        self._stopping = True
        self._poke()
        if self._decider is not None:
            self._decider.cancel()
            await asyncio.gather(self._decider, return_exceptions=True)
        for remux in list(self._remux.values()):
            remux.abort.set()
        pending_work = [r.task for r in self._remux.values()] + list(self._tasks)
        if pending_work:
            await asyncio.gather(*pending_work, return_exceptions=True)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None

    # --- recording -------------------------------------------------------------------------------

    def _on_hub_event(self, event) -> None:
        stream = event.stream
        if not names.is_stream_name(stream.name):
            return  # transcoder renditions (NAME/720p): the source is what is kept
        public_start = isinstance(event, StreamStarted) and not stream.private or isinstance(event, StreamWentPublic)
        if public_start and not any(a.stream is stream for a in self._active.values()):
            self._begin(stream)

    def _begin(self, stream: Stream) -> None:
        recording_id = secrets.token_urlsafe(12)
        # A broadcast made public after a backstage is recorded from then on.
        started_at = stream.public_at if stream.public_at is not None else stream.started_at
        recording = Recording(id=recording_id, stream=stream.name, state=S.RECORDING, started_at=started_at,
                              visibility=stream.visibility, mature=stream.mature)
        # Subscribe now (synchronously) so no unit is missed while the row is written.
        reader = stream.subscribe(from_gop=True, name=f"recorder:{stream.name}")
        segmenter = Segmenter(
            segment_duration=self.segment_duration,
            window=1,
            container=Container.FMP4,
            tag=names.make_tag(int(started_at * 1000)),
            expect_video=expects_video(stream),
        )
        files = rf.RecordingFiles(self.root / recording_id, min_free_bytes=self.min_free_bytes)
        active = _Active(recording, stream, reader, segmenter, files)
        self._active[recording_id] = active
        self.stats.recordings_started += 1
        active.task = asyncio.get_running_loop().create_task(
            self._record(active), name=f"recorder:{stream.name}:{recording_id}")

    async def _record(self, active: _Active) -> None:
        recording = active.recording
        reader = active.reader
        segmenter = active.segmenter
        try:
            recording.title = await self._title(recording.stream)
            try:
                await asyncio.to_thread(self._create, active)
            except Exception as exc:
                await self._fail(active, exc)
                return
            log.info("recording %s of stream %s started in %s", recording.id, recording.stream, active.files.path)
            while recording.state is S.RECORDING:
                unit = await reader.read()
                if unit is None:
                    break
                if segmenter.expect_video is None and not segmenter.started:
                    segmenter.expect_video = expects_video(reader.stream)
                if reader.skips != active.seen_skips:
                    self.stats.reader_skips += reader.skips - active.seen_skips
                    active.seen_skips = reader.skips
                    segmenter.mark_gap()  # units were lost: the recording says so
                try:
                    made = segmenter.push(unit, self.clock())
                except Exception:
                    log.exception("recording %s: a unit could not be packaged", recording.id)
                    segmenter.mark_gap()
                    continue
                if made:
                    segmenter.expire(math.inf)  # written to disk: drop them from memory
                    if not await self._write(active, made):
                        return
            if recording.state is S.RECORDING:
                made = segmenter.finish(self.clock())
                if made and not await self._write(active, made):
                    return
                await self._end(active)
        finally:
            reader.close()
            self._active.pop(recording.id, None)
            if recording.state is S.FAILED and recording.ended_at is None:
                # Writing stopped early; the broadcast itself ends when the stream does.
                self._watch_end(recording, active.stream)
            elif recording.state is S.FAILED:
                # Failed as the broadcast ended (its last segment): it has ended already.
                self._spawn(self._default_at_end(recording.id))

    async def _title(self, stream_name: str) -> str:
        """The title hook's answer; "" without one, or when it fails (never stops a recording)."""
        try:
            title = await _call(self.title_of, stream_name)
        except Exception:
            log.exception("recording of stream %s: title_of hook failed", stream_name)
            return ""
        return title if isinstance(title, str) else ""

    def _create(self, active: _Active) -> None:
        recording = active.recording
        assert self.store is not None
        self.store.insert(recording)
        active.files.create({"id": recording.id, "stream": recording.stream, "started_at": recording.started_at,
                             "title": recording.title})

    async def _write(self, active: _Active, segments: list[Segment]) -> bool:
        """Write segments (in a thread); False if writing failed (the recording failed)."""
        recording = active.recording
        try:
            snapshot = await asyncio.to_thread(self._write_segments, active, segments)
        except OSError as exc:
            await self._fail(active, exc)
            return False
        except Exception as exc:  # a bug must not take the stream down either
            log.exception("recording %s: writing a segment failed", recording.id)
            await self._fail(active, exc)
            return False
        recording.size, recording.duration, recording.segments, recording.video_frames = snapshot
        return True

    def _write_segments(self, active: _Active, segments: list[Segment]) -> tuple[int, float, int, int]:
        recording = active.recording
        updated = replace(recording)
        for segment in segments:
            before = active.files.size
            entry = active.files.add_segment(segment)
            updated.segments += 1
            updated.duration += entry.duration
            updated.video_frames += entry.frames
            updated.size = active.files.size
            self.stats.segments_written += 1
            self.stats.bytes_written += active.files.size - before
        try:
            assert self.store is not None
            self.store.update(updated)
        except Exception:  # the row catches up later; the files are what matters
            log.warning("recording %s: could not update its row", recording.id, exc_info=True)
        return updated.size, updated.duration, updated.segments, updated.video_frames

    async def _fail(self, active: _Active, exc: BaseException) -> None:
        recording = active.recording
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = exc.strerror if isinstance(exc, rf.DiskFull) else f"disk full ({exc.strerror or exc})"
        elif isinstance(exc, OSError):
            reason = f"write error: {exc.strerror or exc}"
        else:
            reason = f"internal error: {exc!r}"
        reason += f"; {recording.segments} segments ({recording.duration:.1f} s) were kept"
        active.reader.close()
        async with self._decisions:
            recording.state = TRANSITIONS[(recording.state, "fail")]
            recording.error = reason
            if active.stream.ended:
                recording.ended_at = active.stream.ended_at
            await self._persist(recording)
        self.stats.failures += 1
        log.warning("recording %s of stream %s failed: %s; the stream goes on", recording.id, recording.stream, reason)
        await self._hook("on_failed", recording)
        self._poke()

    async def _end(self, active: _Active) -> None:
        recording = active.recording
        recording.ended_at = active.stream.ended_at or self.clock()
        if recording.segments == 0:
            recording.state = TRANSITIONS[(recording.state, "empty")]
            recording.error = "nothing was recorded (no decodable media arrived)"
            recording.decided_at = self.clock()
            recording.decided_by = "recorder"
            await self._persist(recording)
            await asyncio.to_thread(self._delete_files, recording.id)
            log.info("recording %s of stream %s: nothing recorded, removed", recording.id, recording.stream)
            return
        try:
            await asyncio.to_thread(active.files.finish, recording.ended_at)
        except OSError as exc:  # the end line is a nicety: recovery does without it
            log.warning("recording %s: could not mark its end: %s", recording.id, exc)
        async with self._decisions:
            recording.state = TRANSITIONS[(recording.state, "end")]
            # The recording keeps who could watch the live at its end (changed while live).
            recording.visibility, recording.mature = active.stream.visibility, active.stream.mature
            await self._persist(recording)
        # No longer written: from here the row is the truth (list() and get() would
        # otherwise answer with this copy, still pending, after a save by default).
        self._active.pop(recording.id, None)
        log.info("recording %s of stream %s ended: %d segments, %.1f s, %d bytes",
                 recording.id, recording.stream, recording.segments, recording.duration, recording.size)
        if await self._save_by_default(recording.id):
            return  # on_saved told the creator; there is nothing to decide
        await self._hook("on_ended", recording)
        self._poke()

    async def _save_by_default(self, recording_id: str) -> bool:
        """At the end of the broadcast: save it now if the creator saves by default.

        Only a yes acts here. A no (or a hook that fails) leaves the recording to the
        creator, and the decision timer applies the default after ``decide_within``, as
        for any undecided recording (a creator who does not save by default still gets
        the time to save it by hand)."""
        recording = await self.get(recording_id)
        if recording is None or recording.state not in UNDECIDED:
            return False
        try:
            keep = bool(await _call(self.default_save, recording.stream))
        except Exception:
            log.exception("recording %s: default_save hook failed; the recording awaits a decision", recording_id)
            return False
        if not keep:
            return False
        try:
            await self.save(recording_id, by="default")
        except (RecordingNotFound, DecisionRefused) as exc:
            log.info("recording %s: not saved by default (%s)", recording_id, exc)
            return False
        return True

    def _watch_end(self, recording: Recording, stream: Stream) -> None:
        """A failed recording's broadcast goes on: note when it ends (the decision clock)."""
        if stream.ended:
            self._spawn(self._note_end(recording.id, stream.ended_at or self.clock()))
            return

        def on_event(event) -> None:
            if isinstance(event, StreamEnded) and event.stream is stream:
                self._watchers.discard(on_event)
                self.hub.remove_listener(on_event)
                self._spawn(self._note_end(recording.id, stream.ended_at or self.clock()))

        self._watchers.add(on_event)
        self.hub.add_listener(on_event)

    async def _note_end(self, recording_id: str, ended_at: float) -> None:
        async with self._decisions:
            current = await self.get(recording_id)
            if current is not None and current.ended_at is None and current.state is not S.DISCARDED:
                current.ended_at = ended_at
                await self._persist(current)
        await self._default_at_end(recording_id)

    async def _default_at_end(self, recording_id: str) -> None:
        """A failed recording's broadcast ended: what was kept is saved at once when the
        creator saves by default, as for a recording that ended normally."""
        current = await self.get(recording_id)
        if current is not None and current.state is S.FAILED and current.segments > 0:
            await self._save_by_default(recording_id)
        self._poke()

    async def _persist(self, recording: Recording) -> None:
        try:
            assert self.store is not None
            await asyncio.to_thread(self.store.update, recording)
        except Exception:
            log.exception("recording %s: could not store its state %s", recording.id, recording.state)

    # --- queries ---------------------------------------------------------------------------------

    async def get(self, recording_id: str) -> Recording | None:
        if not is_recording_id(recording_id) or self.store is None:
            return None
        active = self._active.get(recording_id)
        if active is not None:
            return replace(active.recording)
        return await asyncio.to_thread(self.store.get, recording_id)

    async def list(
        self, *, stream: str | None = None, states: tuple[RecordingState, ...] | None = None, limit: int = 100,
    ) -> list[Recording]:
        if self.store is None:
            return []
        rows = await asyncio.to_thread(self.store.list, stream=stream, states=states, limit=limit)
        for index, row in enumerate(rows):
            active = self._active.get(row.id)
            if active is not None:  # fresher than the row
                rows[index] = replace(active.recording)
        return rows

    def recording_of(self, stream: Stream) -> str | None:
        """The id of the recording being written of the live ``stream`` (None: none, e.g.
        a private broadcast, or recording is off)."""
        for active in self._active.values():
            if active.stream is stream:
                return active.recording.id
        return None

    async def settled(self, recording_id: str, *, timeout: float) -> Recording | None:
        """The recording once it is no longer being written (its broadcast ended: the last
        segment is on disk and it awaits a decision, or was saved by default), waiting at
        most ``timeout`` seconds; after that, as it is."""
        active = self._active.get(recording_id)
        if active is not None and active.task is not None:
            await asyncio.wait([active.task], timeout=timeout)
        return await self.get(recording_id)

    def decide_by(self, recording: Recording) -> float | None:
        """When an undecided recording follows the default (None: not ended yet / decided)."""
        if recording.state not in UNDECIDED or recording.ended_at is None:
            return None
        return recording.ended_at + self.decide_within

    def path_of(self, recording_id: str) -> Path:
        return self.root / recording_id

    # --- decisions -------------------------------------------------------------------------------

    async def save(self, recording_id: str, *, by: str = "creator") -> Recording:
        async with self._decisions:
            recording = await self._decidable(recording_id, "save")
            if recording.state is S.SAVED:
                return recording
            if recording.segments == 0:
                raise DecisionRefused("nothing was recorded; there is nothing to save")
            recording.state = TRANSITIONS[(recording.state, "save")]
            recording.decided_at = self.clock()
            recording.decided_by = by
            assert self.store is not None
            await asyncio.to_thread(self.store.update, recording)
            self.stats.saved += 1
            log.info("recording %s of stream %s saved (%s)", recording.id, recording.stream, by)
        self._start_remux(recording.id)  # the MP4 download is made once, in the background
        await self._hook("on_saved", recording)
        self._poke()
        return recording

    async def discard(self, recording_id: str, *, by: str = "creator") -> Recording:
        async with self._decisions:
            recording = await self._decidable(recording_id, "discard")
            if recording.state is S.DISCARDED:
                return recording
            recording.state = TRANSITIONS[(recording.state, "discard")]
            recording.decided_at = self.clock()
            recording.decided_by = by
            self._vod_cache.pop(recording.id, None)
            remux = self._remux.get(recording.id)
            if remux is not None:
                remux.abort.set()
                await asyncio.gather(remux.task, return_exceptions=True)
            assert self.store is not None
            # The row first: a crash between the two leaves files of a discarded recording,
            # which start-up deletes (the other order could resurrect a discarded one).
            await asyncio.to_thread(self.store.update, recording)
            await asyncio.to_thread(self._delete_files, recording.id)
            self.stats.discarded += 1
            log.info("recording %s of stream %s discarded (%s), files deleted", recording.id, recording.stream, by)
        await self._hook("on_discarded", recording)
        self._poke()
        return recording

    async def _decidable(self, recording_id: str, action: str) -> Recording:
        recording = await self.get(recording_id)
        if recording is None:
            raise RecordingNotFound(recording_id)
        if recording.state is S.SAVED and action == "save" or recording.state is S.DISCARDED and action == "discard":
            return recording
        if recording.state is S.RECORDING:
            raise DecisionRefused("the broadcast is still live; decide once it has ended")
        if (recording.state, action) not in TRANSITIONS:
            why = "its files are gone" if recording.state is S.DISCARDED else "not allowed"
            raise DecisionRefused(f"a {recording.state.value} recording cannot be {action + 'd'} ({why})")
        return recording

    def _delete_files(self, recording_id: str) -> None:
        path = self.path_of(recording_id)
        if path.exists():
            rf.delete_recording(path)

    async def _decide_loop(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            next_at = None
            try:
                assert self.store is not None
                undecided = await asyncio.to_thread(self.store.list, states=UNDECIDED, limit=1_000_000)
                now = self.clock()
                for recording in undecided:
                    if recording.id in self._active:
                        continue
                    due = self.decide_by(recording)
                    if due is None:
                        continue
                    if due > now:
                        next_at = due if next_at is None else min(next_at, due)
                        continue
                    if not await self._apply_default(recording):
                        retry = now + RETRY_DELAY
                        next_at = retry if next_at is None else min(next_at, retry)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recorder: applying default decisions failed")
                next_at = self.clock() + RETRY_DELAY
            # Not kept while sleeping (up to an hour): with many broadcasts a day the list of
            # every undecided recording is the recorder's biggest object (benchmarks/churn.py).
            undecided = recording = None
            if self._stopping:
                return
            timeout = None if next_at is None else min(3600.0, max(0.05, next_at - self.clock()))
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                # that arrives just as the event is set.
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _apply_default(self, recording: Recording) -> bool:
        try:
            keep = bool(await _call(self.default_save, recording.stream))
        except Exception:
            log.exception("recording %s: default_save hook failed; asking again later", recording.id)
            return False
        try:
            if keep and recording.segments > 0:
                await self.save(recording.id, by="default")
            else:
                await self.discard(recording.id, by="default")
        except (RecordingNotFound, DecisionRefused):
            pass  # decided meanwhile
        return True

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _hook(self, name: str, recording: Recording) -> None:
        try:
            await _call(getattr(self, name), replace(recording))
        except Exception:
            log.exception("recorder hook %s failed for recording %s", name, recording.id)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- VOD -------------------------------------------------------------------------------------

    async def set_audience(self, recording_id: str, *, visibility: str | None = None,
                           mature: bool | None = None) -> Recording:
        """Change who may watch a recording (its creator's choice); raises
        ``RecordingNotFound``, ``DecisionRefused`` while it is still being recorded (the
        live's visibility applies then)."""
        async with self._decisions:
            recording = await self.get(recording_id)
            if recording is None:
                raise RecordingNotFound(recording_id)
            if recording_id in self._active:
                raise DecisionRefused("the live is still on: change the live's visibility (PATCH /api/me/live)")
            if visibility is not None:
                recording.visibility = visibility
            if mature is not None:
                recording.mature = mature
            await asyncio.to_thread(self.store.update, recording)
            self._vod_cache.pop(recording_id, None)
        return recording

    async def vod(self, recording_id: str) -> VodIndex | None:
        """The playlist and file list of a saved recording; None otherwise."""
        cached = self._vod_cache.get(recording_id)
        if cached is not None:
            return cached
        recording = await self.get(recording_id)
        if recording is None or recording.state is not S.SAVED:
            return None
        manifest = await asyncio.to_thread(rf.load_manifest, self.path_of(recording_id))
        if manifest is None:
            return None
        index = VodIndex(recording, rf.render_vod_playlist(manifest).encode(), frozenset(manifest.files()))
        current = await self.get(recording_id)  # not discarded meanwhile
        if current is None or current.state is not S.SAVED:
            return None
        if len(self._vod_cache) >= 256:
            self._vod_cache.pop(next(iter(self._vod_cache)))
        self._vod_cache[recording_id] = index
        return index

    async def mp4(self, recording_id: str) -> Path:
        """The progressive MP4 of a saved recording, made on first need (off the event loop)
        and cached on disk. Raises ``RecordingNotFound`` or ``rf.RemuxError``."""
        recording = await self.get(recording_id)
        if recording is None or recording.state is not S.SAVED:
            raise RecordingNotFound(recording_id)
        path = self.path_of(recording_id) / rf.DOWNLOAD
        if await asyncio.to_thread(path.exists):
            return path
        remux = self._start_remux(recording_id)
        try:
            return await asyncio.shield(remux.task)
        except rf.RemuxAborted:
            raise RecordingNotFound(recording_id) from None

    def _start_remux(self, recording_id: str) -> _Remux:
        remux = self._remux.get(recording_id)
        if remux is not None:
            return remux
        abort = threading.Event()
        directory = self.path_of(recording_id)

        def work() -> Path:
            final = directory / rf.DOWNLOAD
            if final.exists():
                return final
            manifest = rf.load_manifest(directory)
            if manifest is None:
                raise rf.RemuxError("the recording's files are missing")
            started = time.perf_counter()
            out = rf.remux_mp4(directory, manifest, abort=abort)
            log.info("recording %s: MP4 made in %.2f s (%d bytes)", recording_id,
                     time.perf_counter() - started, out.stat().st_size)
            return out

        task = asyncio.ensure_future(asyncio.to_thread(work))
        remux = _Remux(task, abort)
        self._remux[recording_id] = remux

        def done(fut: asyncio.Future) -> None:
            if self._remux.get(recording_id) is remux:
                del self._remux[recording_id]
            if not fut.cancelled() and fut.exception() is not None:
                exc = fut.exception()
                if not isinstance(exc, rf.RemuxAborted):
                    log.warning("recording %s: no MP4: %s", recording_id, exc)

        task.add_done_callback(done)
        return remux

    # --- start-up recovery -----------------------------------------------------------------------

    def _recover(self) -> None:
        """Rows and directories left by an earlier run (thread)."""
        store = self.store
        assert store is not None
        now = self.clock()
        known: set[str] = set()
        for recording in store.list(limit=10_000_000):
            known.add(recording.id)
            path = self.path_of(recording.id)
            if recording.state is S.DISCARDED:
                if path.exists():
                    rf.delete_recording(path)  # a discard interrupted half-way
                continue
            if recording.state is S.RECORDING:
                self._recover_one(recording, path, now)
                continue
            if recording.state in UNDECIDED and recording.ended_at is None:
                manifest = rf.load_manifest(path)
                recording.ended_at = (manifest.ended_at if manifest else None) or _mtime(path) or now
                store.update(recording)
        # Directories without a row (the database was lost or replaced): rebuilt from their
        # manifest as undecided recordings. Anything else there is left alone.
        try:
            children = list(self.root.iterdir())
        except OSError:
            children = []
        for child in children:
            if not child.is_dir() or child.name in known or not is_recording_id(child.name):
                continue
            manifest = rf.load_manifest(child, repair=True)
            if manifest is None or manifest.header.get("id") != child.name:
                log.warning("recorder: %s is not a recording (no manifest); left alone", child)
                continue
            recording = Recording(
                id=child.name, stream=str(manifest.header.get("stream", "")), state=S.RECORDING,
                started_at=float(manifest.header.get("started_at", 0.0)),
                title=str(manifest.header.get("title", "")),
            )
            store.insert(recording)
            self._recover_one(recording, child, now)

    def _recover_one(self, recording: Recording, path: Path, now: float) -> None:
        """A recording that was being written when the server died."""
        store = self.store
        assert store is not None
        manifest = rf.load_manifest(path, repair=True) if path.exists() else None
        if manifest is None or not manifest.segments:
            recording.state = S.DISCARDED
            recording.error = "the server stopped before a segment was complete; nothing was recorded"
            recording.decided_at = now
            recording.decided_by = "recorder"
            recording.ended_at = recording.ended_at or now
            store.update(recording)
            if path.exists():
                rf.delete_recording(path)
            return
        recording.state = S.PENDING
        recording.segments = len(manifest.segments)
        recording.duration = manifest.duration
        recording.video_frames = manifest.video_frames
        recording.size = sum(s.bytes for s in manifest.segments) + sum(
            _size(path / uri) for uri in manifest.inits())
        recording.ended_at = manifest.ended_at or _mtime(path / rf.MANIFEST) or now
        store.update(recording)
        self.stats.recovered += 1
        log.warning(
            "recording %s of stream %s was interrupted (server stopped uncleanly): recovered %d segments "
            "(%.1f s) up to the last complete one; awaiting a decision",
            recording.id, recording.stream, recording.segments, recording.duration)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
