"""One WHIP session: a peer connection that publishes into the hub like an RTMP publisher.

Life of a session (``WhipServer`` creates it once the offer is answered):

- **setting up**: ICE and DTLS run; nothing is in the hub. A session whose first media
  frame has not arrived within ``webrtc.setup_timeout`` is reaped and leaves no trace;
- **live**: at the first decoded frame the session attaches to the hub
  (``hub.publish(name, self)``: a stream like any other, taking over a live publisher of
  the same name, or continuing an orphaned one within the reconnect grace) and frames go
  to its encoder thread, whose units are pushed into the hub from the loop. In open mode
  the takeover rule (``ingest/takeover.py``) is asked again just before: a session whose
  name another address started publishing since the offer is closed, never attached;
- **ended** by the client's ``DELETE`` (a clean unpublish: the stream ends at once), by
  the client disappearing (connection ``failed``: ICE consent freshness, RFC 7675, or
  ``closed``: DTLS closed) — the stream is orphaned for the reconnect grace exactly like
  a dropped RTMP publisher's —, by no media frame for ``webrtc.idle_timeout`` (a client
  that still answers ICE consent checks but sends nothing: orphaned too, as RTMP's
  ``rtmp.idle_timeout`` closes a silent connection), by ``kick`` (another publisher took
  over, or the stream was stopped), by an encoder failure, or by the server stopping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from aiortc import MediaStreamError, RTCPeerConnection

from mediasrv.hub import Hub
from mediasrv.hub.hub import Publication
from mediasrv.ingest.takeover import PUBLISHER_HOST
from mediasrv.ingest.whip.peer import close_peer
from mediasrv.ingest.whip.transcoder import SessionTranscoder
from mediasrv.media.types import MediaUnit

log = logging.getLogger("mediasrv.whip")


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    """How a session re-encodes (``webrtc.*`` and the HLS segment duration)."""

    video_bitrate: int
    audio_bitrate: int
    preset: str
    keyframe_interval: float


class SessionCounters(Protocol):
    """The server's counters a session adds to."""

    failures: int
    lost: int
    reaped: int
    idle_timeouts: int
    kicked: int


class SessionOwner(Protocol):
    """What a session needs of its server (``server.WhipServer``): a Protocol, so the two
    modules do not import each other."""

    hub: Hub
    encode_settings: EncodeSettings
    #: Seconds a live session may go without a media frame (``webrtc.idle_timeout``).
    idle_timeout: float
    stats: SessionCounters

    def join_refusal(self, session: "WhipSession") -> str | None: ...

    def session_live(self, session: "WhipSession", *, took_over: bool) -> None: ...

    def session_closed(self, session: "WhipSession") -> None: ...


class WhipSession:
    """A negotiated peer connection, its receive tasks, its encoder and its publication."""

    def __init__(self, server: SessionOwner, session_id: str, *, name: str, client: str, key_digest: bytes,
                 pc: RTCPeerConnection, has_audio: bool, created_at: float,
                 monotonic: Callable[[], float] = time.monotonic, codecs: tuple[str, str] = ("", ""),
                 proves_owner: bool = False) -> None:
        self.server = server
        self.id = session_id
        self.name = name
        self.client = client
        #: SHA-256 of the bearer token that created it (DELETE must bring the same one).
        self.key_digest = key_digest
        #: Whether that token was a creator's key (the open mode's takeover rule, asked again
        #: when the session joins the hub).
        self.proves_owner = proves_owner
        self.pc = pc
        self.has_audio = has_audio
        #: The negotiated video and audio codecs (from the answer), e.g. ("VP8", "opus").
        self.codecs = codecs
        self.created_at = created_at
        self.monotonic = monotonic
        self.publication: Publication | None = None
        self.transcoder: SessionTranscoder | None = None
        self.closed = False
        self.end_reason = ""
        #: Seconds from the offer to the connection ("connected") and to the first frame.
        self.connect_seconds: float | None = None
        self.first_frame_seconds: float | None = None
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task] = set()
        self._setup_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        #: The loop's time of the last media frame (any track): the idle check's clock
        #: is the loop's, like RTMP's, not the injectable monotonic one.
        self.last_media = 0.0
        self._close_task: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"whip {self.id[:8]} {self.client}"

    @property
    def live(self) -> bool:
        """Attached to the hub (media has flowed)."""
        return self.publication is not None

    # --- start ----------------------------------------------------------------------------

    def watch(self, setup_timeout: float) -> None:
        """Follow the peer connection: its tracks, its state, the set-up deadline. Call it
        before the answer is sent (tracks were announced by ``setRemoteDescription``)."""
        self.pc.on("connectionstatechange", self._on_state)
        for transceiver in self.pc.getTransceivers():
            track = transceiver.receiver.track
            if track is not None and transceiver.mid is not None:
                self._spawn(self._receive(track))
        self._setup_timer = self._loop.call_later(setup_timeout, self._setup_expired)

    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- events from aiortc ---------------------------------------------------------------

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connect_seconds is None:
            self.connect_seconds = self.monotonic() - self.created_at
            log.info("%r: connected in %.2f s", self, self.connect_seconds)
        elif state in ("failed", "closed") and not self.closed:
            # The client is gone without a DELETE (ICE consent lapsed, DTLS closed: which
            # of the two states aiortc reports depends on which transport noticed first),
            # or never got through: orphan the stream like a dropped RTMP publisher's.
            if self.publication is not None:
                self.server.stats.lost += 1
            else:
                self.server.stats.failures += 1
            self._end(f"connection {state}", clean=False)

    async def _receive(self, track) -> None:
        kind = track.kind
        while not self.closed:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.closed:
                return
            arrival = self.monotonic()
            self.last_media = self._loop.time()
            if self.publication is None and not self._attach():
                return
            self.transcoder.put(kind, frame, arrival)

    # --- the hub --------------------------------------------------------------------------

    def _attach(self) -> bool:
        """Media flows: publish into the hub (once). False if the session ended meanwhile."""
        if self.closed:
            return False
        self._cancel_setup_timer()
        server = self.server
        # The offer passed the takeover rule, but seconds of ICE and DTLS went by since: ask
        # again now, in the same loop step as ``hub.publish`` below (nothing can publish
        # the name in between), so a publisher that started from another address meanwhile
        # keeps its stream.
        refusal = server.join_refusal(self)
        if refusal is not None:
            self.close(refusal)
            return False
        self.first_frame_seconds = self.monotonic() - self.created_at
        settings = server.encode_settings
        self.transcoder = SessionTranscoder(
            self.id[:8], emit=self._units_from_thread, on_failure=self._failure_from_thread,
            video_bitrate=settings.video_bitrate, audio_bitrate=settings.audio_bitrate,
            preset=settings.preset, keyframe_interval=settings.keyframe_interval)
        hub = server.hub
        existing = hub.get(self.name)
        took_over = existing is not None and existing.publisher is not None
        self.publication = hub.publish(self.name, self)
        stream = self.publication.stream
        stream.attributes["publisher_address"] = self.client
        stream.attributes[PUBLISHER_HOST] = self.client
        stream.attributes["ingest_protocol"] = "whip"
        stream.attributes["ingest_stats"] = self.transcoder.stats
        # What the HLS muxer and the recorder read to wait for video (FLV codec ids: AVC, AAC).
        metadata = {"videocodecid": 7.0, "encoder": "WHIP (re-encoded by mediasrv)"}
        if self.has_audio:
            metadata["audiocodecid"] = 10.0
        self.publication.set_metadata(metadata)
        self.transcoder.start()
        self._idle_timer = self._loop.call_later(server.idle_timeout, self._check_idle)
        server.session_live(self, took_over=took_over)
        log.info("%r: publishing stream %s (first frame %.2f s after the offer)%s", self, self.name,
                 self.first_frame_seconds, " (took over)" if took_over else "")
        return True

    def _units_from_thread(self, units: list[MediaUnit]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._push, units)
        except RuntimeError:  # the loop is closed: the server is gone
            pass

    def _push(self, units: list[MediaUnit]) -> None:
        publication = self.publication
        if publication is None:
            return
        for unit in units:
            publication.push(unit)

    def _failure_from_thread(self, reason: str) -> None:
        try:
            self._loop.call_soon_threadsafe(self._encoder_failed, reason)
        except RuntimeError:
            pass

    def _encoder_failed(self, reason: str) -> None:
        if not self.closed:
            self.server.stats.failures += 1
            log.warning("%r: %s; ending the session", self, reason)
            self._end(reason, clean=False)

    # --- hub's PublisherHandle --------------------------------------------------------------

    def kick(self, reason: str) -> None:
        """Another publisher took the stream, or it was stopped: close the connection. The
        hub has moved on already: nothing to detach."""
        self.publication = None
        self.server.stats.kicked += 1
        log.info("%r: closed: %s", self, reason)
        self.close(reason)

    # --- ending ---------------------------------------------------------------------------

    def delete(self) -> None:
        """The client's DELETE: a clean unpublish (the stream ends at once)."""
        self._end("ended by the client (DELETE)", clean=True)

    def shutdown(self, reason: str) -> None:
        """The server stops: like a dropped publisher (the hub then ends every stream)."""
        self._end(reason, clean=False)

    def _end(self, reason: str, *, clean: bool) -> None:
        if self.closed:
            return
        publication, self.publication = self.publication, None
        if publication is not None:
            log.info("%r: stream %s %s: %s", self, self.name, "ended" if clean else "orphaned", reason)
            publication.detach(clean=clean)
        self.close(reason)

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self.closed or self.publication is None:
            return
        limit = self.server.idle_timeout
        idle = self._loop.time() - self.last_media
        if idle < limit:
            self._idle_timer = self._loop.call_later(limit - idle, self._check_idle)
            return
        # Connected (ICE consent still answered) but silent: the stream waits for a
        # reconnect like a dropped publisher's rather than freeze for as long as the
        # client keeps its connection.
        self.server.stats.idle_timeouts += 1
        log.info("%r: no media for %.1f s", self, idle)
        self._end(f"no media for {idle:.1f} s (webrtc.idle_timeout)", clean=False)

    def _setup_expired(self) -> None:
        self._setup_timer = None
        if self.publication is None and not self.closed:
            self.server.stats.reaped += 1
            state = self.pc.connectionState
            log.info("%r: reaped: no media %.1f s after the offer (connection %s)", self,
                     self.monotonic() - self.created_at, state)
            self.close(f"no media within the set-up time (connection {state})")

    def close(self, reason: str) -> None:
        """End the session (idempotent): stop the encoder, close the peer connection (in
        the background: aiortc's close awaits its transports), leave the server."""
        if self.closed:
            return
        self.closed = True
        self.end_reason = reason
        self._cancel_setup_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.transcoder is not None:
            self.transcoder.stop()
        for task in list(self._tasks):
            task.cancel()
        self._close_task = self._loop.create_task(self._close_peer())
        self.server.session_closed(self)

    async def _close_peer(self) -> None:
        await close_peer(self.pc)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait for the peer connection's close and the encoder thread (off the loop)."""
        if self._close_task is not None:
            await asyncio.wait({self._close_task}, timeout=timeout)
        if self.transcoder is not None and self.transcoder.alive:
            await asyncio.to_thread(self.transcoder.join, timeout)

    def _cancel_setup_timer(self) -> None:
        if self._setup_timer is not None:
            self._setup_timer.cancel()
            self._setup_timer = None
