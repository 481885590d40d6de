"""The transcoder's asyncio side: one worker process per live stream, its rungs into HLS.

For every stream that starts (``transcode.enabled``), a :class:`TranscodeSession`:

- reads the stream through its own hub ``Reader`` (the publisher never waits for it) and
  decides the aligned keyframes with a :class:`KeyframePlanner` that mirrors the HLS
  segmenter's cut rule over the source's keyframes (so rungs cut where ``source`` does);
- runs ``python -m mediasrv.transcode.worker`` (its own session, stdin/stdout pipes) and
  sends it the compressed units, framed by ``mediasrv.transcode.protocol``; never waits
  on the pipe: if the worker stops reading, units are dropped and the worker resumes at
  a keyframe. The units since the last aligned keyframe are kept (bounded), so a worker
  that starts late (process start, restart) begins at that keyframe, not the next one;
- turns the packets the worker sends back into ``MediaUnit``s of one ``TrackInfo`` per
  rung (the shared AAC track in every rung) and hands them to ``HlsService`` through a
  :class:`RungReader` per rung (``add_rendition``);
- restarts a worker that exits or stops sending its heartbeat (``HANG_TIMEOUT``), with
  exponential backoff; the ``source`` rendition never depends on the worker;
- on stream end sends END, lets the worker flush, ends the rungs (EXT-X-ENDLIST), and
  makes sure the process is gone. Service shutdown kills every worker; a worker also
  exits by itself when its stdin closes (the server died).

Rungs go to HLS through their own readers rather than back into the hub as
``NAME/720p`` streams: nothing else consumes them yet, and a hub publication would
rebase their timestamps on a worker restart (a reconnect to the hub), which would break
the alignment with ``source``.

Counters are plain ints/floats (:class:`SessionStats`, :class:`RungStats`, attached to the
hub stream as ``stream.attributes["transcode"]``; ``TranscodeService.metrics_snapshot()``
and ``rung_speeds()`` for the metrics collector and the stream monitor).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable


import mediasrv
from mediasrv.hls import names
from mediasrv.hls.segmenter import CUT_FRACTION
from mediasrv.hub import Hub, Stream, StreamEnded, StreamStarted
from mediasrv.media.errors import MediaError
from mediasrv.media.ingest import track_from_config
from mediasrv.media.types import Codec, MediaUnit, TrackInfo, TrackKind
from mediasrv.transcode import protocol
from mediasrv.transcode.ladder import KeyframePlanner, short_side
from mediasrv.transcode.protocol import AUDIO_INDEX, MessageType, PacketOut

log = logging.getLogger("mediasrv.transcode")

#: No message (the worker sends STATS every 0.5 s) for this long: the worker hangs.
HANG_TIMEOUT = 10.0
#: More time for the first message (interpreter start, imports).
START_TIMEOUT = 30.0
RESTART_MIN = 0.5
RESTART_MAX = 30.0
#: A worker that ran this long resets the backoff.
STABLE_AFTER = 60.0
#: Bytes we may have written to a worker's stdin that it has not read yet; beyond that
#: units are dropped (the worker is stuck or far behind) until a keyframe.
MAX_PIPE_BACKLOG = 16 * 1024 * 1024
#: Units kept since the last aligned keyframe for a worker that (re)starts: at most this
#: many bytes, and ``TranscodeService.backlog_ms`` of media.
BACKLOG_BYTES = 32 * 1024 * 1024
#: After END, how long the worker may take to flush before it is killed.
END_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0
STDERR_LINES = 20


@dataclass(slots=True)
class RungStats:
    """Plain counters of one rung (read by the metrics collector)."""

    name: str
    width: int = 0
    height: int = 0
    #: False while the worker has dropped this rung because it fell behind.
    enabled: bool = True
    frames_out: int = 0
    bytes_out: int = 0
    keyframes: int = 0
    #: Frames this rung did not encode because of overload (rung dropped, every other frame,
    #: resuming at a keyframe) plus source frames the worker skipped; across restarts.
    dropped_frames: int = 0
    #: Recent encode speed, × real time (media seconds per second of scale + encode work;
    #: below 1 the rung cannot keep up).
    encode_speed: float = 0.0
    #: Seconds the last source packet waited in the worker's input queue.
    queue_delay: float = 0.0
    #: Worker restarts of this stream (the rung went away and came back each time).
    restarts: int = 0


@dataclass(slots=True)
class SessionStats:
    """Plain counters of one stream's transcoding."""

    workers_started: int = 0
    restarts: int = 0
    crashes: int = 0
    hangs: int = 0
    #: Units not sent to the worker (no worker running, or its pipe backed up).
    units_not_sent: int = 0
    units_sent: int = 0
    #: Times the worker dropped a rung / took one back (overload), across restarts.
    sheds: int = 0
    restores: int = 0
    degrade_level: int = 0
    queue_delay: float = 0.0
    queue_delay_max: float = 0.0
    input_dropped: int = 0
    forced_keyframes: int = 0
    events: int = 0
    last_exit: str = ""
    rungs: dict[str, RungStats] = field(default_factory=dict)


class RungReader:
    """What ``HlsService`` reads one rung from: a bounded queue fed by the session.

    Like a hub ``Reader``: ``read()`` waits for the next unit and returns None once the
    rung ended and the queue is drained; a queue that overflows is emptied and resumes at
    the next video keyframe (``skips``).
    """

    __slots__ = ("stream", "name", "max_units", "_queue", "_waiter", "_closed", "_ended",
                 "_awaiting_keyframe", "skips", "dropped_units", "delivered_units")

    def __init__(self, stream: Stream, name: str, max_units: int) -> None:
        self.stream = stream
        self.name = name
        self.max_units = max_units
        self._queue: collections.deque[MediaUnit] = collections.deque()
        self._waiter: asyncio.Future | None = None
        self._closed = False
        self._ended = False
        self._awaiting_keyframe = False
        self.skips = 0
        self.dropped_units = 0
        self.delivered_units = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        return len(self._queue)

    def offer(self, unit: MediaUnit) -> None:
        if self._closed or self._ended:
            return
        if self._awaiting_keyframe:
            if not (unit.kind is TrackKind.VIDEO and unit.keyframe):
                self.dropped_units += 1
                return
            self._awaiting_keyframe = False
        elif len(self._queue) >= self.max_units:
            self.skips += 1
            self.dropped_units += len(self._queue)
            self._queue.clear()
            if not (unit.kind is TrackKind.VIDEO and unit.keyframe):
                self._awaiting_keyframe = True
                self.dropped_units += 1
                return
        self._queue.append(unit)
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> MediaUnit | None:
        while not self._queue:
            if self._ended or self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.delivered_units += 1
        return self._queue.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.clear()
            self._wake()


class WorkerProcess:
    """One ``python -m mediasrv.transcode.worker`` process and its pipes.

    ``on_message(kind, value)`` is called (on the event loop) for every message the
    worker sends. ``exited`` resolves with the exit status once the process is gone
    and its output is read.
    """

    def __init__(self, name: str, on_message: Callable[[MessageType, object], None]) -> None:
        self.name = name
        self.on_message = on_message
        self.proc: asyncio.subprocess.Process | None = None
        self.last_message_at = 0.0
        self.messages = 0
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._tasks: list[asyncio.Task] = []
        self.exited: asyncio.Future | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self, config: dict) -> None:
        loop = asyncio.get_running_loop()
        root = os.path.dirname(os.path.dirname(os.path.abspath(mediasrv.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "0")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediasrv.transcode.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, env=env, limit=1 << 20,
        )
        self.last_message_at = loop.time()
        self.exited = loop.create_future()
        self._tasks = [
            loop.create_task(self._read_stdout(), name=f"transcode-out:{self.name}"),
            loop.create_task(self._read_stderr(), name=f"transcode-err:{self.name}"),
        ]
        loop.create_task(self._wait_exit(), name=f"transcode-wait:{self.name}")
        self.send(protocol.json_message(MessageType.CONFIG, config))

    def backlog(self) -> int:
        """Bytes written to the worker's stdin that it has not taken yet (our side)."""
        proc = self.proc
        if proc is None or proc.stdin is None:
            return 0
        transport = proc.stdin.transport
        return transport.get_write_buffer_size() if not transport.is_closing() else 0

    def send(self, data: bytes) -> bool:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdin.transport.is_closing() or proc.returncode is not None:
            return False
        try:
            proc.stdin.write(data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def close_stdin(self) -> None:
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Close stdin (the worker exits on end of file); kill it if it is still there."""
        if self.proc is None:
            return None
        self.close_stdin()
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), timeout)
        except asyncio.TimeoutError:
            self.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), timeout)
        return self.proc.returncode

    async def _read_stdout(self) -> None:
        stdout = self.proc.stdout
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await stdout.readexactly(protocol.HEADER_SIZE)
                size, kind = protocol.parse_header(header)
                body = await stdout.readexactly(size) if size else b""
                value = protocol.parse(kind, body)
                self.last_message_at = loop.time()
                self.messages += 1
                try:
                    self.on_message(MessageType(kind), value)
                except Exception:
                    log.exception("transcode %s: handling a worker message failed", self.name)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except protocol.ProtocolError as exc:
            log.error("transcode %s: worker output is not protocol (%s): killing it", self.name, exc)
            self.kill()

    async def _read_stderr(self) -> None:
        stderr = self.proc.stderr
        with contextlib.suppress(ConnectionError, ValueError):
            while True:
                line = await stderr.readline()
                if not line:
                    break
                text = line.decode(errors="replace").rstrip()
                if text:
                    self.stderr_tail.append(text)
                    log.debug("transcode %s worker: %s", self.name, text)

    async def _wait_exit(self) -> None:
        status = await self.proc.wait()
        # Let the readers take what the worker wrote before it went.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 2.0)
        for task in self._tasks:
            task.cancel()
        if not self.exited.done():
            self.exited.set_result(status)


@dataclass(slots=True)
class _Rung:
    index: int
    name: str
    reader: RungReader | None = None
    track: TrackInfo | None = None
    registered: bool = False
    #: The next unit given to this rung starts a discontinuity (after a worker restart).
    pending_discontinuity: bool = False
    delivered: bool = False
    last_video_dts: int | None = None
    last_audio_dts: int | None = None


class TranscodeSession:
    """Transcoding of one live stream (see the module docstring)."""

    def __init__(self, service: "TranscodeService", stream: Stream) -> None:
        self.service = service
        self.stream = stream
        self.name = stream.name
        self.stats = SessionStats()
        stream.attributes["transcode"] = self.stats
        self.reader = stream.subscribe(from_gop=True, name=f"transcode:{stream.name}")
        self.planner = KeyframePlanner(service.cut_ms, service.max_gap_ms)
        self.worker: WorkerProcess | None = None
        self._worker_ready = False
        self._need_keyframe = True
        self._sent_tracks: dict[TrackKind, TrackInfo] = {}
        self._planned_track: TrackInfo | None = None
        self._fits_track: TrackInfo | None = None
        self._fits = False
        self._backlog: list[tuple[MediaUnit, bool]] = []
        self._backlog_bytes = 0
        self._gap = False
        self._seen_skips = 0
        self._rungs: dict[int, _Rung] = {}
        self._audio_track: TrackInfo | None = None
        self._base: dict[str, dict] = {}
        self._last_stats: dict | None = None
        self._input_ended = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()
        self._wake_supervisor = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._pump_task = loop.create_task(self._pump(), name=f"transcode-pump:{self.name}")
        self._supervisor_task = loop.create_task(self._supervise(), name=f"transcode:{self.name}")

    # --- input: hub → worker ---------------------------------------------------------------

    async def _pump(self) -> None:
        reader = self.reader
        try:
            while True:
                unit = await reader.read()
                if unit is None:
                    break
                if reader.skips != self._seen_skips:
                    self._seen_skips = reader.skips
                    self._gap = True
                self._unit(unit)
        finally:
            reader.close()
            self._input_ended.set()
            self._wake_supervisor.set()

    def _unit(self, unit: MediaUnit) -> None:
        force = False
        if unit.kind is TrackKind.VIDEO:
            previous = self._planned_track
            if unit.discontinuity or (previous is not None and previous is not unit.track and previous != unit.track):
                self.planner.reset()  # the source segmenter cuts here too
            self._planned_track = unit.track
            force = self.planner.decide(unit.pts, unit.keyframe)
            if force:
                self.stats.forced_keyframes += 1
        if not self._ladder_fits():
            self.stats.units_not_sent += 1  # nothing to encode: spare the worker the decoding
            self._need_keyframe = True
            self._backlog.clear()
            return
        self._remember(unit, force)
        worker = self.worker
        if worker is None or not self._worker_ready:
            self.stats.units_not_sent += 1
            return
        self._send_unit(worker, unit, force)

    def _ladder_fits(self) -> bool:
        """Whether the current video track gets at least one rung (unknown size: assume
        so; no video yet: no, audio alone makes no rung)."""
        track = self._planned_track
        if track is None:
            return False
        if track is not self._fits_track:
            self._fits_track = track
            # A rung's height is its short side (transcode/ladder.py): a portrait source
            # fits the rungs up to its width.
            short = short_side(track.width, track.height) if track.width and track.height else 0
            self._fits = (not track.width or not track.height
                          or any(r.height <= short for r in self.service.config.transcode.ladder))
        return self._fits

    def _remember(self, unit: MediaUnit, force: bool) -> None:
        """Keep the units since the last aligned source keyframe (bounded), so a worker
        that starts (stream start, restart) begins there instead of at the next one."""
        backlog = self._backlog
        if unit.kind is TrackKind.VIDEO and unit.keyframe and force:
            backlog.clear()
            backlog.append((unit, True))
            self._backlog_bytes = len(unit.data)
            return
        if not backlog:
            return
        self._backlog_bytes += len(unit.data)
        if unit.dts - backlog[0][0].dts > self.service.backlog_ms or self._backlog_bytes > BACKLOG_BYTES:
            backlog.clear()
            return
        backlog.append((unit, force))

    def _send_unit(self, worker: "WorkerProcess", unit: MediaUnit, force: bool) -> None:
        if worker.backlog() > MAX_PIPE_BACKLOG:
            self.stats.units_not_sent += 1
            self._need_keyframe = True
            self._gap = True
            return
        if unit.kind is TrackKind.VIDEO:
            if self._need_keyframe:
                if not unit.keyframe:
                    self.stats.units_not_sent += 1
                    return
                self._need_keyframe = False
            sent = self._sent_tracks.get(TrackKind.VIDEO)
            if sent is not unit.track and sent != unit.track:
                if not self._send_track(worker, unit.track):
                    return
            discontinuity = unit.discontinuity or self._gap
            self._gap = False
            data = protocol.video_message(unit.dts, unit.pts, unit.data, keyframe=unit.keyframe,
                                          force_keyframe=force, discontinuity=discontinuity)
        else:
            sent = self._sent_tracks.get(TrackKind.AUDIO)
            if sent is not unit.track and sent != unit.track:
                if not self._send_track(worker, unit.track):
                    return
            data = protocol.audio_message(unit.dts, unit.pts, unit.data)
        if worker.send(data):
            self.stats.units_sent += 1
        else:
            self.stats.units_not_sent += 1

    def _send_track(self, worker: WorkerProcess, track: TrackInfo) -> bool:
        value = {
            "codec": track.codec.value, "config": protocol.b64(track.config),
            "width": track.width, "height": track.height,
            "sample_rate": track.sample_rate, "channels": track.channels,
        }
        if track.kind is TrackKind.VIDEO:
            fps = self.stream.metadata.get("framerate") or self.stream.metadata.get("fps")
            if isinstance(fps, (int, float)) and 1 <= fps <= 240:
                value["fps"] = float(fps)
            kind = MessageType.VIDEO_TRACK
        else:
            kind = MessageType.AUDIO_TRACK
        if not worker.send(protocol.json_message(kind, value)):
            return False
        self._sent_tracks[track.kind] = track
        return True

    # --- worker lifecycle -------------------------------------------------------------------

    def _worker_config(self) -> dict:
        config = self.service.config
        return {
            "stream": self.name,
            "rungs": [
                {"name": r.name, "height": r.height, "video_bitrate": r.video_bitrate, "maxrate": r.maxrate,
                 "bufsize": r.bufsize, "max_fps": r.max_fps, "preset": r.preset}
                for r in config.transcode.ladder
            ],
            "audio_bitrate": config.transcode.audio_bitrate,
            "max_queue_seconds": config.transcode.max_queue_seconds,
            "live": True,
        }

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = RESTART_MIN
        try:
            while not self._closing and not self._input_ended.is_set():
                worker = WorkerProcess(self.name, self._on_message)
                started = loop.time()
                try:
                    await worker.start(self._worker_config())
                except OSError as exc:
                    log.error("transcode %s: cannot start a worker: %s", self.name, exc)
                    worker = None
                if worker is not None:
                    self.stats.workers_started += 1
                    self.worker = worker
                    self._sent_tracks.clear()
                    self._need_keyframe = True
                    self._gap = False
                    self._worker_ready = True
                    for unit, force in list(self._backlog):
                        self._send_unit(worker, unit, force)
                    reason = await self._watch(worker)
                    self._worker_ready = False
                    self._fold_stats()
                    if reason is None:  # the stream ended and the worker flushed
                        await worker.stop()
                        self.worker = None
                        break
                    if self._closing:
                        await worker.stop(0.5)
                        self.worker = None
                        break
                    worker.kill()
                    status = await worker.stop(1.0)
                    self.worker = None
                    self._count_failure(reason, status, worker)
                    if loop.time() - started >= STABLE_AFTER:
                        backoff = RESTART_MIN
                self._restart_pending()
                self._wake_supervisor.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake_supervisor.wait(), backoff)
                backoff = min(RESTART_MAX, backoff * 2)
        finally:
            if self.worker is not None:
                self.worker.kill()
                with contextlib.suppress(Exception):
                    await self.worker.stop(1.0)
                self.worker = None
            for rung in self._rungs.values():
                if rung.reader is not None:
                    rung.reader.end()
            self.service._session_done(self)

    async def _watch(self, worker: WorkerProcess) -> str | None:
        """Wait until the worker exits ("exit"), hangs ("hang"), or — after the stream
        ended — has flushed (None)."""
        loop = asyncio.get_running_loop()
        end_sent_at: float | None = None
        while True:
            if self._input_ended.is_set() and end_sent_at is None:
                worker.send(protocol.frame(MessageType.END))
                end_sent_at = loop.time()
            if self._closing:
                return "closing"
            closing = loop.create_task(self._closed.wait())
            try:
                await asyncio.wait([worker.exited, closing], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
            if self._closing:
                return "closing"
            if worker.exited.done():
                return None if end_sent_at is not None and worker.exited.result() == 0 else "exit"
            now = loop.time()
            if end_sent_at is not None and now - end_sent_at > END_TIMEOUT:
                log.warning("transcode %s: the worker did not finish within %g s of the end", self.name, END_TIMEOUT)
                return None
            limit = START_TIMEOUT if worker.messages == 0 else HANG_TIMEOUT
            if now - worker.last_message_at > limit:
                return "hang"

    def _count_failure(self, reason: str, status: int | None, worker: WorkerProcess) -> None:
        stats = self.stats
        stats.restarts += 1
        if reason == "hang":
            stats.hangs += 1
            what = f"sent nothing for {HANG_TIMEOUT:g} s: killed"
        else:
            stats.crashes += 1
            if status is not None and status < 0:
                try:
                    what = f"was killed by {signal.Signals(-status).name}"
                except ValueError:
                    what = f"was killed by signal {-status}"
            else:
                what = f"exited with status {status}"
        stats.last_exit = what
        for rung in stats.rungs.values():
            rung.restarts += 1
        tail = " | ".join(list(worker.stderr_tail)[-3:])
        log.warning("transcode %s: worker (pid %s) %s; restarting (restart %d)%s", self.name, worker.pid, what,
                    stats.restarts, f"; stderr: {tail}" if tail else "")

    def _restart_pending(self) -> None:
        for rung in self._rungs.values():
            if rung.delivered:
                rung.pending_discontinuity = True

    # --- output: worker → HLS ---------------------------------------------------------------

    def _on_message(self, kind: MessageType, value) -> None:
        if kind is MessageType.PACKET:
            self._packet(value)
        elif kind is MessageType.RUNG:
            self._rung_track(value)
        elif kind is MessageType.STATS:
            self._worker_stats(value)
        elif kind is MessageType.EVENT:
            self.stats.events += 1
            level = {"error": logging.ERROR, "warning": logging.WARNING}.get(value.get("level"), logging.INFO)
            log.log(level, "transcode %s: %s", self.name, value.get("message", ""))

    def _rung_track(self, value: dict) -> None:
        index = int(value.get("index", -1))
        try:
            config = protocol.unb64(value.get("config", ""))
            codec = Codec.AAC if index == AUDIO_INDEX else Codec.H264
            track = track_from_config(codec, config)
        except (MediaError, ValueError) as exc:
            log.error("transcode %s: the worker announced an unusable track: %s", self.name, exc)
            return
        if index == AUDIO_INDEX:
            if self._audio_track != track:
                self._audio_track = track
            return
        rung = self._rungs.get(index)
        name = str(value.get("name", ""))
        if rung is None:
            rung = self._rungs[index] = _Rung(index, name)
        if rung.track != track:
            rung.track = track
        stats = self.stats.rungs.setdefault(name, RungStats(name))
        stats.width, stats.height = track.width, track.height
        if rung.reader is None:
            self._register(rung)

    def _register(self, rung: _Rung) -> None:
        hls = self.service.hls
        rendition = rung.name.lower()
        reader = RungReader(self.stream, f"transcode:{self.name}/{rendition}", self.service.reader_units)
        rung.reader = reader
        if hls is None:
            return
        if not names.is_rendition_name(rendition) or rendition == names.SOURCE:
            log.warning("transcode %s: rung name %r cannot be an HLS rendition name", self.name, rung.name)
            reader.close()
            return
        rung.registered = hls.add_rendition(self.name, rendition, reader, expect_video=True)
        if not rung.registered:
            log.info("transcode %s: HLS did not take rung %s (stream gone?)", self.name, rendition)

    def _packet(self, packet: PacketOut) -> None:
        if packet.index == AUDIO_INDEX:
            track = self._audio_track
            if track is None:
                return
            unit = MediaUnit(track, packet.dts, packet.pts, True, packet.data)
            for rung in self._rungs.values():
                self._deliver(rung, unit)
            return
        rung = self._rungs.get(packet.index)
        if rung is None or rung.track is None:
            return
        unit = MediaUnit(rung.track, packet.dts, packet.pts, packet.keyframe, packet.data,
                         discontinuity=packet.discontinuity)
        stats = self.stats.rungs.get(rung.name)
        if stats is not None:
            stats.frames_out += 1
            stats.bytes_out += len(packet.data)
            stats.keyframes += packet.keyframe
        self._deliver(rung, unit)

    def _deliver(self, rung: _Rung, unit: MediaUnit) -> None:
        reader = rung.reader
        if reader is None or reader.closed:
            return
        video = unit.kind is TrackKind.VIDEO
        last = rung.last_video_dts if video else rung.last_audio_dts
        if last is not None and unit.dts <= last:
            return  # already delivered before a restart (the new worker re-encodes its backlog)
        if rung.pending_discontinuity:
            if not video or not unit.keyframe:
                return  # after a restart the rung resumes at its next keyframe
            rung.pending_discontinuity = False
            if not unit.discontinuity:
                unit = MediaUnit(unit.track, unit.dts, unit.pts, unit.keyframe, unit.data, discontinuity=True)
        if video:
            rung.last_video_dts = unit.dts
        else:
            rung.last_audio_dts = unit.dts
        reader.offer(unit)
        rung.delivered = True

    def _worker_stats(self, value: dict) -> None:
        self._last_stats = value
        self._apply_stats(value)

    def _fold_stats(self) -> None:
        """A worker ends: keep its cumulative counters as the base of the next one's."""
        last = self._last_stats
        self._last_stats = None
        if not last:
            return
        base = self._base
        for key in ("sheds", "restores", "input_dropped"):
            base.setdefault("_", {})[key] = base.get("_", {}).get(key, 0) + int(last.get(key, 0))
        for entry in (last.get("rungs") or {}).values():
            name = entry.get("name")
            b = base.setdefault(name, {})
            b["dropped"] = b.get("dropped", 0) + int(entry.get("frames_dropped", 0))

    def _apply_stats(self, value: dict) -> None:
        stats = self.stats
        base = self._base.get("_", {})
        stats.sheds = base.get("sheds", 0) + int(value.get("sheds", 0))
        stats.restores = base.get("restores", 0) + int(value.get("restores", 0))
        stats.input_dropped = base.get("input_dropped", 0) + int(value.get("input_dropped", 0))
        stats.degrade_level = int(value.get("degrade_level", 0))
        stats.queue_delay = float(value.get("queue_delay", 0.0))
        stats.queue_delay_max = max(stats.queue_delay_max, float(value.get("queue_delay_max", 0.0)))
        for entry in (value.get("rungs") or {}).values():
            name = entry.get("name")
            rung = stats.rungs.setdefault(name, RungStats(name))
            rung.enabled = bool(entry.get("enabled", True))
            rung.dropped_frames = (self._base.get(name, {}).get("dropped", 0) + int(entry.get("frames_dropped", 0))
                                   + stats.input_dropped)
            rung.encode_speed = float(entry.get("speed", 0.0))
            rung.queue_delay = stats.queue_delay

    # --- end ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop now (server shutdown): kill the worker, end the rungs."""
        self._closing = True
        self._closed.set()
        self.reader.close()
        self._wake_supervisor.set()
        self._pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump_task
        with contextlib.suppress(asyncio.CancelledError):
            await self._supervisor_task

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._supervisor_task)

    def rung_names(self) -> list[str]:
        return [r.name for r in sorted(self._rungs.values(), key=lambda r: r.index)]


class TranscodeService:
    """Starts a :class:`TranscodeSession` for every stream of the hub."""

    def __init__(self, config, hub: Hub, hls=None) -> None:
        self.config = config
        self.hub = hub
        self.hls = hls
        segment = float(config.hls.segment_duration)
        self.cut_ms = max(1, int(segment * 1000 * CUT_FRACTION))
        self.max_gap_ms = max(self.cut_ms, int(3 * segment * 1000))
        self.reader_units = int(config.hub.reader_queue_units)
        self.backlog_ms = self.max_gap_ms + 1000
        self._sessions: dict[str, TranscodeSession] = {}
        self._all: set[TranscodeSession] = set()
        self._started = False
        self.sessions_started = 0

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.hub.add_listener(self._on_hub_event)
        for stream in self.hub.streams():
            self._on_hub_event(StreamStarted(stream))

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        with contextlib.suppress(ValueError):
            self.hub.remove_listener(self._on_hub_event)
        sessions = list(self._all)
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        self._sessions.clear()
        self._all.clear()

    def _on_hub_event(self, event) -> None:
        stream = event.stream
        if not names.is_stream_name(stream.name):
            return
        if isinstance(event, StreamStarted) and not stream.ended:
            if self._sessions.get(stream.name) is not None and self._sessions[stream.name].stream is stream:
                return
            session = TranscodeSession(self, stream)
            self._sessions[stream.name] = session
            self._all.add(session)
            self.sessions_started += 1
        elif isinstance(event, StreamEnded):
            pass  # the session's reader ends; it drains and finishes on its own

    def _session_done(self, session: TranscodeSession) -> None:
        self._all.discard(session)
        if self._sessions.get(session.name) is session:
            del self._sessions[session.name]

    def session(self, name: str) -> TranscodeSession | None:
        return self._sessions.get(name)

    def sessions(self) -> list[TranscodeSession]:
        return list(self._sessions.values())

    def metrics_snapshot(self) -> dict[str, dict]:
        """Per live stream, for the metrics collector: ``queue_delay_seconds``,
        ``restarts`` and per rung ``speed`` (× real time) and ``dropped_frames``."""
        out = {}
        for name, session in list(self._sessions.items()):
            stats = session.stats
            out[name] = {
                "queue_delay_seconds": stats.queue_delay,
                "restarts": stats.restarts,
                "degrade_level": stats.degrade_level,
                "rungs": {r.name: {"speed": r.encode_speed, "dropped_frames": r.dropped_frames, "enabled": r.enabled}
                          for r in list(stats.rungs.values())},
            }
        return out

    def rung_speeds(self, name: str) -> dict[str, float]:
        """Recent encode speed (× real time) of each rung being encoded for stream ``name``."""
        session = self._sessions.get(name)
        if session is None:
            return {}
        return {r.name: r.encode_speed for r in list(session.stats.rungs.values()) if r.enabled and r.encode_speed > 0}

    def worker_pids(self) -> list[int]:
        return [s.worker.pid for s in self._all if s.worker is not None and s.worker.pid is not None]
