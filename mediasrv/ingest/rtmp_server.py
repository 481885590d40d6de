"""The asyncio adapter around ``RtmpConnection``: sockets, timeouts, auth, the hub.

Thin on purpose (rule 1 of docs/architecture.md): every protocol decision is in
``mediasrv.rtmp``; this module moves bytes, owns timers and maps events to the hub.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs

from mediasrv.config import STREAM_NAME_RE, RtmpConfig
from mediasrv.hub import Hub
from mediasrv.hub.hub import Publication
from mediasrv.media import flv
from mediasrv.media.errors import MalformedMediaError, UnsupportedCodecError
from mediasrv.media.ingest import FlvIngest
from mediasrv.media.types import TrackKind
from mediasrv.rtmp import events as ev
from mediasrv.rtmp.connection import RtmpConnection
from mediasrv.rtmp.errors import RtmpError
from mediasrv.ingest.publish_auth import PublishAuthorizer, redact_key
from mediasrv.ingest.refusal_log import RefusalLog
from mediasrv.ingest.takeover import PUBLISHER_HOST, takeover_refusal
from mediasrv.ports import PLAYBACK_GRANT_PARAM, PlaybackGate, looks_like_stream_key, playback_access

log = logging.getLogger("mediasrv.rtmp")

#: Most bytes we ask the kernel to gather before a publisher's socket wakes us.
MAX_RCVLOWAT = 256 * 1024
#: A private stream's player presents its grant once (in the play name): it is checked
#: again every this many milliseconds of media.
GRANT_RECHECK_MS = 1000
#: Pause the playback reader while this much is waiting in the socket's send buffer.
PLAY_WRITE_HIGH_WATER = 4 * 1024 * 1024


@dataclass(slots=True)
class RtmpServerStats:
    """Plain counters, read by the metrics collector at scrape time."""

    connections_total: int = 0
    connections_open: int = 0
    refused_over_limit: int = 0
    #: Connections closed at once because their address had rtmp.max_connections_per_address
    #: connections open, or rtmp.max_handshakes_per_address still in their handshake.
    refused_per_address: int = 0
    refused_handshakes_per_address: int = 0
    protocol_errors: int = 0
    media_errors: int = 0
    handshake_timeouts: int = 0
    idle_timeouts: int = 0
    publishes: int = 0
    publish_refused: int = 0
    plays: int = 0
    play_refused: int = 0
    takeovers: int = 0
    #: Open mode: publishes of a live name from another address, refused.
    takeovers_refused: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)


class RtmpServer:
    """Listens for RTMP (and, with an SSL context, RTMPS) and serves each connection."""

    def __init__(
        self,
        config: RtmpConfig,
        hub: Hub,
        authorizer: PublishAuthorizer,
        *,
        ssl_context: ssl.SSLContext | None = None,
        playback: PlaybackGate | None = None,
    ) -> None:
        """``playback``: who may play a stream (without one, a private stream is nobody's)."""
        self.config = config
        self.hub = hub
        self.authorizer = authorizer
        self.playback = playback
        self.ssl_context = ssl_context
        self.stats = RtmpServerStats()
        self.connections: set[RtmpSession] = set()
        self._server: asyncio.base_events.Server | None = None
        #: The RTMPS listener (``start_tls``), sharing sessions, limits and stats.
        self._tls_server: asyncio.base_events.Server | None = None
        self._ids = itertools.count(1)
        #: Publishing sessions by stream name (also used to find a stream's publisher address).
        self.ingests: dict[str, RtmpSession] = {}
        #: Open connections, and those still in their handshake (no publish or play yet),
        #: per peer address: one address may not hold every slot (rtmp.max_*_per_address).
        self.open_by_host: dict[str, int] = {}
        self.handshaking_by_host: dict[str, int] = {}
        #: Refusals are warned once per address a minute (a retry loop cannot flood the log).
        self.refusals = RefusalLog(log)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_session, host, port, ssl=self.ssl_context, reuse_address=True, backlog=512
        )

    async def start_tls(self, host: str, port: int, ssl_context: ssl.SSLContext) -> None:
        """A second listener for RTMPS: the same sessions behind a TLS handshake."""
        loop = asyncio.get_running_loop()
        self._tls_server = await loop.create_server(
            self._make_session, host, port, ssl=ssl_context, reuse_address=True, backlog=512,
            ssl_handshake_timeout=self.config.handshake_timeout,
        )

    @property
    def tls_port(self) -> int | None:
        """The RTMPS port, or None without an RTMPS listener."""
        if self._tls_server is None or not self._tls_server.sockets:
            return None
        return self._tls_server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        servers = [s for s in (self._server, self._tls_server) if s is not None]
        for server in servers:
            server.close()
        for session in list(self.connections):
            session.close("server shutting down")
        for server in servers:
            await server.wait_closed()
        self._server = self._tls_server = None

    def _make_session(self) -> "RtmpSession":
        return RtmpSession(self, next(self._ids))

    def may_play(self, stream, query: str) -> bool:
        """The playback gate's answer for a player of ``stream`` whose play name had
        ``query`` after its ``?``."""
        grant = parse_qs(query[:1024]).get(PLAYBACK_GRANT_PARAM, [""])[0] if query else ""
        return playback_access(self.playback, stream, grant).allowed

    def count_error(self, kind: str) -> None:
        self.stats.errors_by_kind[kind] = self.stats.errors_by_kind.get(kind, 0) + 1

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host``; or why it is refused (a limit reached)."""
        cfg = self.config
        if len(self.connections) >= cfg.max_connections:
            self.stats.refused_over_limit += 1
            return f"{cfg.max_connections} connections is the limit"
        if self.open_by_host.get(host, 0) >= cfg.max_connections_per_address:
            self.stats.refused_per_address += 1
            self.count_error("address_connection_limit")
            return f"{cfg.max_connections_per_address} connections from one address is the limit"
        if self.handshaking_by_host.get(host, 0) >= cfg.max_handshakes_per_address:
            self.stats.refused_handshakes_per_address += 1
            self.count_error("address_handshake_limit")
            return f"{cfg.max_handshakes_per_address} handshakes in progress from one address is the limit"
        _add(self.open_by_host, host, 1)
        _add(self.handshaking_by_host, host, 1)
        return None

    def handshake_done(self, host: str) -> None:
        """A connection from ``host`` left its handshake (it publishes, plays or closed)."""
        _add(self.handshaking_by_host, host, -1)

    def released(self, host: str) -> None:
        """A connection from ``host`` closed."""
        _add(self.open_by_host, host, -1)


class RtmpSession(asyncio.Protocol):
    """One TCP connection: an ``RtmpConnection`` plus its role (publisher or player)."""

    def __init__(self, server: RtmpServer, conn_id: int) -> None:
        self.server = server
        self.id = conn_id
        cfg = server.config
        self.rtmp = RtmpConnection(max_message_size=cfg.max_message_size, out_chunk_size=cfg.chunk_size)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        #: The peer's IP address (no port): what the per-address limits and the open
        #: mode's takeover rule compare.
        self.host = ""
        self.app = ""
        self.connected = False
        self.closed = False
        self.publication: Publication | None = None
        self.publish_stream_id = 0
        self.ingest: FlvIngest | None = None
        self.play_task: asyncio.Task | None = None
        self._loop = asyncio.get_running_loop()
        self._last_rx = self._loop.time()
        self._setup_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._backlog: list[ev.Event] = []
        self._busy = False  # an async decision (auth) is pending; events wait in _backlog
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._warned_codecs: set[str] = set()
        self._batch_delay = server.config.read_batch_ms / 1000
        self._lowat = 1
        #: Counted in the server's per-address handshakes (until publish, play or close).
        self._handshaking = False
        self._rate_bytes = 0
        self._rate_since = self._loop.time()

    def __repr__(self) -> str:
        return f"c{self.id} {self.peer}"

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.host = str(peer[0]) if peer else ""
        stats = self.server.stats
        stats.connections_total += 1
        refusal = self.server.admit(self.host)
        if refusal is not None:
            self.server.refusals.warning(self.host, "%r: refused, %s", self, refusal)
            self.closed = True
            transport.abort()
            return
        self._handshaking = True
        self.server.connections.add(self)
        stats.connections_open = len(self.server.connections)
        if transport.get_extra_info("sslcontext") is not None:
            # RTMPS: the kernel's read batching counts TLS records, not RTMP bytes, and
            # the TLS layer buffers on its own; read at once.
            self._batch_delay = 0.0
        cfg = self.server.config
        self._setup_timer = self._loop.call_later(cfg.handshake_timeout, self._setup_timed_out)
        self._idle_timer = self._loop.call_later(cfg.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._last_rx = self._loop.time()
        try:
            events = self.rtmp.receive_data(data)
        except RtmpError as exc:
            self._fail("protocol", exc)
            return
        if self._busy:
            self._backlog.extend(events)
        else:
            self._handle_events(events)
        self._flush()
        if self.publication is not None and self._batch_delay:
            self._tune_read_batch(len(data))

    def _tune_read_batch(self, nbytes: int) -> None:
        """Let the kernel gather about ``rtmp.read_batch_ms`` of a publisher's bytes
        before waking us (SO_RCVLOWAT), measured from its own rate.

        At ~4 KB per read, the fixed cost of a wake-up (epoll, the read, Python dispatch,
        the HLS muxer's wake) is most of a stream's CPU; the kernel batching reads costs
        no timers or syscalls per read, and scales with the bitrate. EOF still wakes us at
        once; the delay added to media is at most the batch time."""
        now = self._loop.time()
        self._rate_bytes += nbytes
        elapsed = now - self._rate_since
        if elapsed < 1.0:
            return
        rate = self._rate_bytes / elapsed
        self._rate_bytes, self._rate_since = 0, now
        lowat = int(min(MAX_RCVLOWAT, max(1, rate * self._batch_delay)))
        if abs(lowat - self._lowat) > self._lowat // 4:
            sock = self.transport.get_extra_info("socket") if self.transport is not None else None
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
                    self._lowat = lowat
                    log.debug("%r: read batch %d bytes", self, lowat)
                except OSError:
                    self._batch_delay = 0.0  # not supported here; read at once

    def connection_lost(self, exc: Exception | None) -> None:
        self._teardown(clean=False)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- events -----------------------------------------------------------------------

    def _handle_events(self, events: list[ev.Event]) -> None:
        for index, event in enumerate(events):
            if self.closed:
                return
            try:
                decision_pending = self._handle(event)
            except MalformedMediaError as exc:
                self._fail("media", exc)
                return
            if decision_pending:
                # Hold the rest until the decision is made (the peer normally waits too).
                self._backlog = list(events[index + 1:]) + self._backlog
                return

    def _handle(self, event: ev.Event) -> bool:
        """Handle one event; True when an async decision now holds later events."""
        if isinstance(event, ev.VideoData):
            if self.ingest is not None and event.stream_id == self.publish_stream_id:
                self._media(self.ingest.video, event.timestamp, event.payload)
        elif isinstance(event, ev.AudioData):
            if self.ingest is not None and event.stream_id == self.publish_stream_id:
                self._media(self.ingest.audio, event.timestamp, event.payload)
        elif isinstance(event, ev.DataMessage):
            if event.name == "onMetaData" and self.publication is not None and event.values:
                values = event.values[0]
                if isinstance(values, dict):
                    self.publication.set_metadata(_plain_metadata(values))
        elif isinstance(event, ev.ConnectRequest):
            self._on_connect(event)
        elif isinstance(event, ev.PublishRequest):
            self._start_decision(self._on_publish(event))
            return True
        elif isinstance(event, ev.PlayRequest):
            self._on_play(event)
        elif isinstance(event, ev.Unpublish):
            if self.publication is not None and event.stream_id == self.publish_stream_id:
                log.info("%r: stream %s unpublished", self, self.publication.stream.name)
                self.publication.detach(clean=True)
                self.publication = None
                self.ingest = None
        elif isinstance(event, ev.PlayStop):
            self._stop_play()
        return False

    def _media(self, feed: Callable[[int, bytes], object], timestamp: int, payload: bytes) -> None:
        try:
            unit = feed(timestamp, payload)
        except UnsupportedCodecError as exc:
            # Valid but not something we carry (e.g. Opus audio): drop that track, say so once.
            text = str(exc)
            if text not in self._warned_codecs:
                self._warned_codecs.add(text)
                log.warning("%r: %s; that track is dropped", self, text)
            self.server.count_error("unsupported_codec")
            return
        if unit is not None and self.publication is not None:
            self.publication.push(unit)

    def _on_connect(self, event: ev.ConnectRequest) -> None:
        app = event.app.split("?", 1)[0].strip("/")
        if app != self.server.config.app:
            log.info("%r: connect to unknown application %r refused", self, app[:64])
            self.server.count_error("unknown_app")
            self.rtmp.reject_connect(f"unknown application; use rtmp://HOST/{self.server.config.app}/KEY")
            self._flush()
            self.close("unknown application", flush=True)
            return
        self.app = app
        self.connected = True
        self.rtmp.accept_connect()

    async def _on_publish(self, event: ev.PublishRequest) -> None:
        server = self.server
        if self.publication is not None:
            self.rtmp.reject_publish(event.stream_id, "NetStream.Publish.BadName", "already publishing on this connection")
            return
        decision = await server.authorizer.authorize(app=self.app, key=event.name, client=self.peer)
        if self.closed:
            return
        if not decision.allowed:
            server.stats.publish_refused += 1
            # In open mode the key is a public name, safe to log, unless it is a creator's key.
            open_name = server.authorizer.config.mode == "open" and not looks_like_stream_key(event.name)
            shown = event.name if open_name else redact_key(event.name)
            server.refusals.warning(self.host, "%r: publish of %s refused: %s", self, shown, decision.reason)
            self.rtmp.reject_publish(event.stream_id, "NetStream.Publish.BadName", decision.reason)
            self._flush()
            self.close("publish refused", flush=True)
            return
        name = decision.name
        refusal = takeover_refusal(server.hub, mode=server.authorizer.config.mode, name=name, key=event.name,
                                   host=self.host)
        if refusal is not None:
            # Open mode: only the current publisher's own address may take the name over
            # (an encoder reconnecting); the live publisher keeps it (ingest/takeover.py).
            server.stats.publish_refused += 1
            server.stats.takeovers_refused += 1
            server.count_error("takeover_refused")
            server.refusals.warning(self.host, "%r: takeover of live stream %s refused: another address publishes it",
                                    self, name)
            self.rtmp.reject_publish(event.stream_id, "NetStream.Publish.BadName", refusal)
            self._flush()
            self.close("takeover refused", flush=True)
            return
        stream = server.hub.get(name)
        took_over = stream is not None and stream.publisher is not None
        self.publication = server.hub.publish(name, self)
        self.publish_stream_id = event.stream_id
        self.ingest = FlvIngest()
        attributes = self.publication.stream.attributes
        attributes["publisher_address"] = self.peer
        attributes[PUBLISHER_HOST] = self.host
        attributes["ingest_protocol"] = "rtmp"
        attributes["ingest_stats"] = self.ingest.stats  # what the monitor reads, as for WHIP
        server.ingests[name] = self
        server.stats.publishes += 1
        if took_over:
            server.stats.takeovers += 1
        self._cancel_setup_timer()
        self._end_handshake()
        self.rtmp.accept_publish(event.stream_id)
        log.info("%r: publishing stream %s%s", self, name, " (took over)" if took_over else "")

    def _start_decision(self, coro) -> None:
        self._busy = True
        if self.transport is not None:
            self.transport.pause_reading()
        task = self._loop.create_task(coro)
        task.add_done_callback(self._decision_done)

    def _decision_done(self, task: asyncio.Task) -> None:
        self._busy = False
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%r: publish handling failed", self, exc_info=exc)
            self.close("internal error")
            return
        if self.closed:
            return
        if self.transport is not None:
            self.transport.resume_reading()
        backlog, self._backlog = self._backlog, []
        self._handle_events(backlog)
        self._flush()

    def _on_play(self, event: ev.PlayRequest) -> None:
        server = self.server
        # ``NAME?pt=GRANT``: a private stream's player presents its grant in the query.
        stream = server.hub.get(event.name) if STREAM_NAME_RE.fullmatch(event.name) else None
        if stream is not None and not server.may_play(stream, event.query):
            stream = None  # refused exactly as a stream that does not exist
        if stream is None or stream.ended or self.play_task is not None:
            server.stats.play_refused += 1
            self.rtmp.reject_play(event.stream_id, "NetStream.Play.StreamNotFound", "no such live stream")
            self._flush()
            return
        server.stats.plays += 1
        self._cancel_setup_timer()
        self._end_handshake()
        # A player sends nothing while it watches: the idle timeout is for publishers.
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self.rtmp.accept_play(event.stream_id)
        reader = stream.subscribe(max_units=server.config.play_queue_units, name=f"rtmp-play {self!r}")
        self.play_task = self._loop.create_task(self._play(event.stream_id, stream, reader, event.query))
        log.info("%r: playing stream %s", self, stream.name)

    async def _play(self, stream_id: int, stream, reader, query: str = "") -> None:
        """Send ``stream`` to this player until it ends. A private stream's grant (in
        ``query``) is asked again every second of media: one that expired or was revoked
        (a moderator removed) stops the play, as an HLS player's next request is refused."""
        sent_tracks: dict[TrackKind, object] = {}
        recheck_at: int | None = None  # media time (ms) of the next look at the grant
        try:
            if stream.metadata:
                self.rtmp.send_metadata(stream_id, stream.metadata)
            base: int | None = None
            while not self.closed:
                unit = await reader.read()
                if unit is None:
                    break
                if stream.private and (recheck_at is None or unit.dts >= recheck_at):
                    recheck_at = unit.dts + GRANT_RECHECK_MS
                    if not self.server.may_play(stream, query):
                        self.server.stats.play_refused += 1
                        self.rtmp.send_status(stream_id, "status", "NetStream.Play.Stop",
                                              "the playback grant expired or was revoked")
                        self._flush()
                        self.play_task = None  # ending itself: nothing to cancel
                        self.close("playback grant expired or revoked", flush=True)
                        return
                if base is None:
                    base = unit.dts
                timestamp = max(0, unit.dts - base)
                if sent_tracks.get(unit.kind) is not unit.track:
                    sent_tracks[unit.kind] = unit.track
                    if unit.kind is TrackKind.VIDEO:
                        self.rtmp.send_video(stream_id, timestamp, flv.build_video_sequence_header(unit.track))
                    else:
                        self.rtmp.send_audio(stream_id, timestamp, flv.build_audio_sequence_header(unit.track))
                if unit.kind is TrackKind.VIDEO:
                    self.rtmp.send_video(stream_id, timestamp, flv.build_video_frame(unit))
                else:
                    self.rtmp.send_audio(stream_id, timestamp, flv.build_audio_frame(unit))
                self._flush()
                if not self._can_write.is_set():
                    await self._can_write.wait()
            if not self.closed:
                self.rtmp.send_status(stream_id, "status", "NetStream.Play.UnpublishNotify", f"{stream.name} ended")
                self.rtmp.send_status(stream_id, "status", "NetStream.Play.Stop", f"{stream.name} ended")
                self._flush()
        finally:
            reader.close()

    def _stop_play(self) -> None:
        if self.play_task is not None:
            self.play_task.cancel()
            self.play_task = None

    # --- hub's PublisherHandle ----------------------------------------------------------

    def kick(self, reason: str) -> None:
        """Another publisher took our stream (or an operator stopped it): close quietly."""
        log.info("%r: closed: %s", self, reason)
        self.publication = None
        self.ingest = None
        if self.publish_stream_id and not self.closed:
            self.rtmp.send_status(self.publish_stream_id, "error", "NetStream.Publish.BadName", reason)
            self._flush()
        self.close(reason, flush=True)

    # --- lifecycle --------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.rtmp.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, kind: str, exc: Exception) -> None:
        stats = self.server.stats
        if kind == "protocol":
            stats.protocol_errors += 1
        else:
            stats.media_errors += 1
        self.server.count_error(kind)
        log.warning("%r: %s error, closing: %s", self, kind, exc)
        self.close(f"{kind} error")

    def close(self, reason: str, *, flush: bool = False) -> None:
        if self.transport is None or self.closed:
            return
        if flush:
            self.transport.close()  # sends what is buffered first
        else:
            self.transport.abort()
        self._teardown(clean=False)

    def _teardown(self, *, clean: bool) -> None:
        first = not self.closed
        self.closed = True
        self._cancel_setup_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.publication is not None:
            name = self.publication.stream.name
            self.publication.detach(clean=clean)
            if self.server.ingests.get(name) is self:
                del self.server.ingests[name]
            self.publication = None
        self._stop_play()
        self._can_write.set()
        self._end_handshake()
        if first and self in self.server.connections:
            self.server.connections.discard(self)
            self.server.released(self.host)
            self.server.stats.connections_open = len(self.server.connections)

    def _end_handshake(self) -> None:
        if self._handshaking:
            self._handshaking = False
            self.server.handshake_done(self.host)

    def _cancel_setup_timer(self) -> None:
        if self._setup_timer is not None:
            self._setup_timer.cancel()
            self._setup_timer = None

    def _setup_timed_out(self) -> None:
        self._setup_timer = None
        if self.publication is None and self.play_task is None and not self.closed:
            self.server.stats.handshake_timeouts += 1
            self.server.count_error("handshake_timeout")
            log.info("%r: closed: no publish or play within %.1f s", self, self.server.config.handshake_timeout)
            self.close("handshake timeout")

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self.closed:
            return
        idle = self._loop.time() - self._last_rx
        limit = self.server.config.idle_timeout
        if idle >= limit:
            self.server.stats.idle_timeouts += 1
            self.server.count_error("idle_timeout")
            log.info("%r: closed: nothing received for %.1f s", self, idle)
            self.close("idle timeout")
        else:
            self._idle_timer = self._loop.call_later(limit - idle, self._check_idle)


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    """Add ``delta`` to ``counts[key]``, dropping the key at zero (no address is kept
    longer than its connections)."""
    value = counts.get(key, 0) + delta
    if value > 0:
        counts[key] = value
    else:
        counts.pop(key, None)


def _plain_metadata(values: dict) -> dict:
    """Keep the JSON-safe scalar values of onMetaData (numbers, text, booleans)."""
    out = {}
    for key, value in list(values.items())[:64]:
        if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 256):
            out[str(key)[:64]] = value
    return out
