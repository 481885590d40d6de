"""A fast lane below aiohttp on the HTTP listener, for the hottest and simplest request:
a plain keep-alive HTTP/1.1 ``GET`` of a live playlist.

Every player reloads its media playlist every target duration, so playlists are most of
the requests; aiohttp spends tens of µs of CPU on each (a task, a request object, the
router, the middlewares) to send a few kB that are already built (benchmarks/RESULTS.md,
HTTP serving). Each connection of the listener starts with :class:`FastLaneProtocol`: it reads
complete request heads and, when a head is a ``GET`` of ``/live/{name}/index.m3u8`` or
``/live/{name}/{rendition}/index.m3u8`` (optionally ``?s=TOKEN``) on a keep-alive
HTTP/1.1 connection with only headers that cannot change the answer, and the playlist
exists now, it writes the response itself: the same bytes aiohttp's handler sends
(``hls_routes.playlist_head`` + ``date_line`` + the playlist), with the same side effects
(viewer session counted through ``hls_routes.count_viewer``/``master_body``, the request
counted in ``HttpStats`` as the stats middleware does).

Anything else — another method, path or version, ``Connection: close``, a body, an
``Upgrade``, a head it finds malformed or larger than :data:`MAX_HEAD`, a playlist that
does not exist yet (the handler waits for it), a blocking reload, a stream of another
cluster node — switches the connection to aiohttp's own protocol for good, with the bytes
not answered yet, so aiohttp sees exactly the byte stream it would have seen from the
start and answers it (errors included) as it always does. The lane never writes an error.

:func:`parse_head` is the parser, without I/O. :class:`FastLaneSite` is the
``web.TCPSite`` that installs the lane (plain HTTP only: a TLS listener is aiohttp's
alone); it turns the lane off for an app whose middlewares or response signals it does
not know, since those could change a response it would build without them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.tcp_helpers import tcp_keepalive
from aiohttp.web_protocol import RequestHandler

from mediasrv.httpkit.forwarded import client_address
from mediasrv.hls import names
from mediasrv.cluster import routes as cluster_routes
from mediasrv.delivery import routes as hls_routes
from mediasrv.observe import routes as stats_routes
from mediasrv.httpkit import validate
from mediasrv.observe.viewers import SESSION_PARAM, client_key

log = logging.getLogger("mediasrv.http.fastlane")

#: Largest request head (request line + header fields + blank line) the lane reads. A
#: longer one goes to aiohttp, whose own limits (8190 bytes a line or field) answer it.
MAX_HEAD = 4096
#: Most header fields the lane reads (aiohttp allows 128).
MAX_FIELDS = 64
#: Most parsed heads a lane remembers (forgotten all at once when full).
HEADS_REMEMBERED = 256

INCOMPLETE: Literal["incomplete"] = "incomplete"
FOREIGN: Literal["foreign"] = "foreign"

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single spaces,
# the method case-sensitive (RFC 9110 §9.1), the version "HTTP/1.1" exactly (§2.3);
# request-target in origin-form (§3.2.1) and of one of the playlist shapes. Without "%"
# (aiohttp would percent-decode it) a raw segment is what aiohttp's router would match.
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, no whitespace before the
# colon (§5.1), field-name a token (RFC 9110 §5.6.2), the value visible ASCII, SP or HTAB
# (obs-text, obs-fold (§5.2), bare CR or LF (§2.2) and NUL are left to aiohttp).
_HEAD = re.compile(
    rb"GET (/live/([^/?%\x00-\x20\x7f-\xff]+)/(?:([^/?%\x00-\x20\x7f-\xff]+)/)?index\.m3u8)"
    rb"(?:\?" + re.escape(SESSION_PARAM.encode()) + rb"=([A-Za-z0-9_-]{1,64}))? HTTP/1\.1"
    rb"(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*)*"
)
_PREFIX = b"GET /live/"
_EDGE_FIELD = b"\r\n" + cluster_routes.EDGE_HEADER.lower().encode() + b":"
#: Fields whose presence makes the request something else than a plain GET: a body
#: (RFC 9112 §6), a protocol switch (RFC 9110 §7.8), an expectation (RFC 9110 §10.1.1),
#: a request from an edge node (docs/cluster.md).
_FOREIGN_FIELDS = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:", b"\r\nupgrade:", b"\r\nexpect:", _EDGE_FIELD)
#: Fields that may appear once only (RFC 9110 §5.3: not list-based); aiohttp answers 400
#: to a repeated one, so the lane leaves such heads to it.
_SINGLETONS = tuple(b"\r\n" + name + b":" for name in (
    b"user-agent", b"content-location", b"content-range", b"content-type", b"etag", b"max-forwards", b"server"))


@dataclass(frozen=True, slots=True)
class PlaylistRequest:
    """A request head the lane may answer: a GET of a playlist (valid stream and rendition
    names, ``mediasrv.hls.names``), keep-alive HTTP/1.1."""

    name: str
    #: None for the master playlist.
    rendition: str | None
    #: The ``s`` (session) query parameter, when there is one.
    token: str | None
    #: The first User-Agent and X-Forwarded-For values ("" and None when absent), as
    #: ``request.headers.get`` gives them to the handler.
    user_agent: str
    forwarded_for: str | None
    #: Offset just past the head's blank line (where the next request starts).
    end: int


def parse_head(data: bytes, start: int = 0) -> PlaylistRequest | Literal["incomplete", "foreign"]:
    """Read the request head at ``data[start:]``.

    Returns a :class:`PlaylistRequest`; :data:`INCOMPLETE` when the bytes so far can still
    become one (no blank line yet, fewer than :data:`MAX_HEAD` bytes, the start matches
    ``GET /live/``); or :data:`FOREIGN` for anything the lane leaves to aiohttp. It never
    raises and never reads past ``start + MAX_HEAD``.
    """
    end = data.find(b"\r\n\r\n", start, start + MAX_HEAD)
    if end < 0:
        size = len(data) - start
        if size >= MAX_HEAD - 3 or not _PREFIX.startswith(data[start:start + len(_PREFIX)]):
            return FOREIGN
        return INCOMPLETE
    head = data[start:end]
    match = _HEAD.fullmatch(head)
    if match is None or head.count(b"\r\n") > MAX_FIELDS:
        return FOREIGN
    fields = head[match.end(1):].lower()  # field names are case-insensitive (RFC 9110 §5.1)
    # RFC 9112 §3.2: exactly one Host field (a server answers 400 otherwise; aiohttp's call).
    if fields.count(b"\r\nhost:") != 1:
        return FOREIGN
    for name in _FOREIGN_FIELDS:
        if name in fields:
            return FOREIGN
    for name in _SINGLETONS:
        if fields.count(name) > 1:
            return FOREIGN
    # HTTP/1.1 is persistent unless "close" is among the Connection options (RFC 9112
    # §9.3); only a lone "keep-alive" is read here, any other option is aiohttp's.
    connection = _value(head, fields, b"\r\nconnection:")
    if connection is not None and (connection.lower() != "keep-alive" or fields.count(b"\r\nconnection:") > 1):
        return FOREIGN
    name = match.group(2).decode("ascii")
    rendition = match.group(3)
    if rendition is not None:
        rendition = rendition.decode("ascii")
        if not names.is_rendition_name(rendition):
            return FOREIGN  # the handler's 400
    if not names.is_stream_name(name):
        return FOREIGN
    token = match.group(4)
    return PlaylistRequest(
        name,
        rendition,
        token.decode("ascii") if token is not None else None,
        _value(head, fields, b"\r\nuser-agent:") or "",
        _value(head, fields, b"\r\nx-forwarded-for:"),
        end + 4,
    )


def _value(head: bytes, fields: bytes, name: bytes) -> str | None:
    """The value of the first field called ``name`` (lowercase, with its CRLF and colon),
    without the optional whitespace around it (RFC 9112 §5.1); None when absent. (The
    first, as ``request.headers.get`` gives the handler.)"""
    at = fields.find(name)
    if at < 0:
        return None
    first = len(head) - len(fields) + at + len(name)
    last = head.find(b"\r\n", first)
    return head[first:last if last >= 0 else len(head)].strip(b" \t").decode("ascii")


class FastLane:
    """What every connection of one listener shares: the app's state and aiohttp's
    protocol factory (``runner.server``) to hand connections over to."""

    def __init__(self, app: web.Application, server, keepalive_timeout: float) -> None:
        self.app = app
        self.server = server
        self.keepalive_timeout = keepalive_timeout
        self.loop = asyncio.get_running_loop()
        self.service = app[hls_routes.HLS_SERVICE]
        self.viewers = app.get(stats_routes.VIEWERS)
        self.stats = app.get(stats_routes.HTTP_STATS)
        self.trusted = app.get(stats_routes.TRUSTED_PROXIES)
        self.clustered = app.get(cluster_routes.CLUSTER) is not None
        #: Whole heads already parsed, by their bytes (see :meth:`parse`).
        self.heads: dict[bytes, PlaylistRequest] = {}
        #: Connections still in the lane (handed-over ones are aiohttp's to close).
        self.connections: set[FastLaneProtocol] = set()

    def __call__(self) -> asyncio.Protocol:
        return FastLaneProtocol(self)

    def answer(self, request: PlaylistRequest, connection: FastLaneProtocol) -> bytes | None:
        """The whole response (head, Date, body) to ``request`` on ``connection``, with its
        side effects done; or None (nothing done) for aiohttp to answer.

        The same decisions as ``hls_routes`` ``media``/``master`` in their no-wait case."""
        name, rendition = request.name, request.rendition
        if self.clustered and cluster_routes.origin_of(self.app, name) is not None:
            return None  # an edge fetch from the origin node
        service = self.service
        if rendition is None:
            data = service.master_playlist_bytes(name)
            if data is None:
                return None  # the handler waits for the stream
            body, cache = hls_routes.master_body(service, self.viewers, name, data,
                                                 lambda: connection.client(request))
            kind = "master"
        else:
            # The session parameter is the only query the lane takes, and it is no
            # Low-Latency directive: a plain (not delta) playlist, as the handler serves.
            body = service.media_playlist_bytes(name, rendition, delta=False)
            if body is None:
                return None
            if self.viewers is not None:
                hls_routes.count_viewer(self.viewers, name, rendition, len(body), request.token,
                                        connection.client(request))
            cache = hls_routes.PLAYLIST_CACHE
            kind = "playlist"
        if self.stats is not None:
            self.stats.count(kind, 200)  # what stats_routes' middleware records
        return b"".join((hls_routes.playlist_head(len(body), cache), hls_routes.date_line(), body))

    def parse(self, data: bytes, start: int) -> PlaylistRequest | Literal["incomplete", "foreign"]:
        """:func:`parse_head`, remembering the heads that arrive whole in one read: a
        player reloading a playlist sends the same bytes every time (so does wrk)."""
        if start == 0:
            request = self.heads.get(data)
            if request is not None:
                return request
        request = parse_head(data, start)
        if start == 0 and type(request) is PlaylistRequest and request.end == len(data):
            if len(self.heads) >= HEADS_REMEMBERED:
                self.heads.clear()
            self.heads[data] = request
        return request


class FastLaneProtocol(asyncio.Protocol):
    """One connection: answers what :func:`parse_head` and :meth:`FastLane.answer` accept,
    and hands the connection to aiohttp's ``RequestHandler`` at the first request they do
    not (or when the client stops reading its answers: aiohttp has the flow control)."""

    __slots__ = ("lane", "transport", "peer", "buffer", "handler", "paused", "idle_since", "timer",
                 "client_of", "client_key")

    def __init__(self, lane: FastLane) -> None:
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buffer = b""
        self.handler: RequestHandler | None = None
        self.paused = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.client_of: PlaylistRequest | None = None
        self.client_key = ""

    def client(self, request: PlaylistRequest) -> str:
        """``hls_routes._client``: the viewer's address (the peer, or behind a trusted proxy
        the client it names) and User-Agent, hashed; kept while the head stays the same."""
        if request is not self.client_of:
            trusted = self.lane.trusted
            address = client_address(self.peer, request.forwarded_for, trusted) if trusted else self.peer
            self.client_key = client_key(address, request.user_agent)
            self.client_of = request
        return self.client_key

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        tcp_keepalive(transport)  # as aiohttp's RequestHandler does
        peer = transport.get_extra_info("peername")
        # aiohttp's BaseRequest.remote: the address of an (address, port, ...) peer name.
        self.peer = str(peer[0]) if isinstance(peer, (list, tuple)) else str(peer)
        self.lane.connections.add(self)
        loop = self.lane.loop
        self.idle_since = loop.time()
        if self.lane.keepalive_timeout > 0:
            self.timer = loop.call_at(self.idle_since + self.lane.keepalive_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:  # a transport that called us before set_protocol took
            self.handler.data_received(data)
            return
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        start = 0
        size = len(data)
        out = []
        while start < size:
            request = self.lane.parse(data, start)
            if request is INCOMPLETE:
                self.buffer = data[start:]
                break
            response = None if request is FOREIGN else self.lane.answer(request, self)  # type: ignore[arg-type]
            if response is None:
                if out:
                    self.transport.write(b"".join(out))  # type: ignore[union-attr]
                if self.handler is None:
                    self._hand_over(data[start:])
                else:  # that write went over the high-water mark and handed over already
                    self.handler.data_received(data[start:])
                return
            out.append(response)
            start = request.end  # type: ignore[union-attr]
        if out:
            # Pipelined answers in one write, in order. This may call pause_writing, which
            # hands the connection over (with self.buffer, the rest of a head, if any).
            self.idle_since = self.lane.loop.time()
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        if self.handler is not None:
            return self.handler.eof_received()
        return None  # the transport closes, as with aiohttp's handler (it returns None too)

    def pause_writing(self) -> None:
        self.paused = True
        if self.handler is not None:
            self.handler.pause_writing()
        else:
            # The client does not read its answers fast enough: aiohttp waits for the
            # buffer to drain before it answers more, the lane would not.
            self._hand_over(self.buffer)

    def resume_writing(self) -> None:
        self.paused = False
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._forget()
        if self.handler is not None:
            self.handler.connection_lost(exc)
        self.transport = None

    def close(self) -> None:
        """Close a connection still in the lane (its answers are flushed first)."""
        if self.handler is None and self.transport is not None:
            self.transport.close()

    def _check_idle(self) -> None:
        """aiohttp's keep-alive timeout: close a connection that has sent no complete
        request for ``keepalive_timeout`` seconds since its last answer."""
        self.timer = None
        if self.handler is not None or self.transport is None:
            return
        loop = self.lane.loop
        due = self.idle_since + self.lane.keepalive_timeout
        if loop.time() < due:
            self.timer = loop.call_at(due, self._check_idle)
        else:
            self.transport.close()

    def _forget(self) -> None:
        self.lane.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _hand_over(self, pending: bytes) -> None:
        """Make aiohttp's protocol this connection's, fed ``pending`` (the bytes from the
        first request not answered here): from then on the lane is out of the way."""
        self._forget()
        self.buffer = b""
        transport = self.transport
        handler = self.handler = self.lane.server()
        transport.set_protocol(handler)  # type: ignore[union-attr]
        handler.connection_made(transport)  # type: ignore[arg-type]
        if self.paused:
            handler.pause_writing()
        if pending:
            handler.data_received(pending)


#: The middlewares the lane knows not to change a playlist answer: the request counter
#: (the lane counts itself) and the JSON API errors (only /api/ paths and errors).
_KNOWN_MIDDLEWARES = frozenset({stats_routes._count_requests, validate._api_errors})


def lane_for(app: web.Application, server) -> FastLane | None:
    """The fast lane for ``app`` served by aiohttp's ``server`` (``runner.server``), or None
    when it must not apply: no HLS routes, an unknown middleware, response signals, or an
    access log."""
    if hls_routes.HLS_SERVICE not in app:
        return None
    unknown = [m for m in app.middlewares if m not in _KNOWN_MIDDLEWARES]
    if unknown or len(app.on_response_prepare):
        log.warning("HTTP fast lane off: the app has middlewares or response signals it does not know (%s)",
                    ", ".join(getattr(m, "__qualname__", repr(m)) for m in unknown) or "on_response_prepare")
        return None
    # A handler made the way aiohttp makes one per connection (constructing it has no side
    # effect: it registers with the server on connection) tells the runner's settings.
    probe = server()
    if probe.access_logger is not None:
        return None  # an access log wants every request: the lane would not write it
    return FastLane(app, server, probe.keepalive_timeout)


class FastLaneSite(web.TCPSite):
    """``web.TCPSite`` whose plain-HTTP connections start in the fast lane; with an
    ``ssl_context`` (or an app the lane does not apply to) it is a plain ``TCPSite``."""

    __slots__ = ("lane",)

    async def start(self) -> None:  # the body of TCPSite.start with another protocol factory
        server = self._runner.server
        assert server is not None and isinstance(self._runner, web.AppRunner)
        self.lane = None if self._ssl_context is not None else lane_for(self._runner.app, server)
        if self.lane is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with the runner
        self._server = await self.lane.loop.create_server(
            self.lane, self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port

    async def stop(self) -> None:
        """Stop listening and close the connections still in the lane (aiohttp's
        ``pre_shutdown`` does the same to its idle keep-alive connections)."""
        await super().stop()
        lane = getattr(self, "lane", None)
        if lane is not None:
            for protocol in list(lane.connections):
                protocol.close()
