"""HTTP routes of HLS: playlists, init segments and media segments, all from memory.

- ``GET /live/{name}/index.m3u8``: master playlist;
- ``GET /live/{name}/{rendition}/index.m3u8``: media playlist;
- ``GET /live/{name}/{rendition}/{file}``: ``init_*.mp4``, ``seg_*.m4s``, ``seg_*.ts`` and
  (Low-Latency HLS) ``part_*.m4s``.

Low-Latency HLS (``hls.low_latency``, fMP4; docs/low-latency.md), on the media playlist:
``_HLS_msn=M[&_HLS_part=N]`` holds the response until segment M (part N of it) or
anything later exists (the rendition's condition, no polling): 400 for ``_HLS_part``
without ``_HLS_msn``, for malformed values and for requests too far ahead (M beyond the
last segment + 2, N beyond the last part by the Advance Part Limit), 503 when it does not
come within 3 target durations; the parameters are ignored once the playlist has
EXT-X-ENDLIST. ``_HLS_skip=YES`` (or ``v2``) answers with a delta update. A request for
the part named by EXT-X-PRELOAD-HINT waits until that part is complete and gets it whole;
any other unknown part is a 404.

HEAD works on all of them, OPTIONS answers CORS preflights. Every name is checked against
a strict pattern (``mediasrv.hls.names``) before any lookup: a name outside the naming
scheme (a dot-dot, a slash smuggled in as ``%2F``, a backslash, NUL, an over-long name, a
file name no muxer writes) names no resource, so it is a 404 like an unknown stream,
rendition or file; 400 is kept for what is malformed in the request itself (the
Low-Latency HLS query parameters above). Lookups only ever go to in-memory dictionaries,
never the file system.

Caching (a CDN or nginx ``proxy_cache`` in front is correct with these): media playlists
``max-age=1``; the master playlist, which hands each viewer a session token,
``private, max-age=1`` (a shared cache must pass it through); init and media segments and parts ``public, max-age=86400, immutable``
(their names carry the broadcast's tag and never mean other bytes; a hinted part is only
answered once complete, so no partial body can be cached); errors ``no-store``.
Blocking-reload answers depend on their query string (caches key on it: nginx's default
``proxy_cache_key`` has ``$request_uri``) and are ``public, max-age=3×TARGETDURATION``:
every part and segment they list stays downloadable at least that long (parts for
3 target durations after they leave the playlist), so a cached answer never points at
a gone file, and concurrent viewers waiting for the same part share one answer.

Fast path (measured by benchmarks/http_serve.py): a plain keep-alive HTTP/1.1 ``GET`` of
a playlist or of a whole file is answered with a :class:`PrebuiltResponse`: playlist bytes
are encoded once per playlist version, their status line and headers once per length
(files: one f-string per request), the ``Date`` line once per second, and ``prepare()``
writes it all to the transport in one call, then waits for it to drain. That skips
aiohttp's per-response header multidict, header merging and serialisation, most of the
CPU of a playlist request. Everything else (HEAD, ``Range``, ``If-None-Match``,
HTTP/1.0, ``Connection: close``, errors) goes through ordinary ``web.Response`` objects.
Below aiohttp, on the plain-HTTP listener, the fast lane (mediasrv/http/fastlane.py)
answers plain GETs of playlists that exist with the same bytes (``playlist_head``,
``date_line``) and counts them the same way (``count_viewer``, ``master_body``) without
aiohttp's per-request pipeline; the handlers here answer everything it hands over.
"""

from __future__ import annotations

import re
import time
from typing import AsyncIterator, Callable

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from multidict import CIMultiDict

from mediasrv.hls import names
from mediasrv.hls.reload import BadReloadQuery, parse_reload_query
from mediasrv.hub import Hub
from mediasrv.delivery.hls_service import CONTENT_TYPES, SOURCE, HlsService
from mediasrv.observe.viewers import SESSION_PARAM, client_key
from mediasrv.observe.routes import HTTP_STATS, VIEWERS, viewer_address
from mediasrv.cluster import routes as cluster_routes
from mediasrv.cluster.routes import EDGE_HEADER

HLS_SERVICE = web.AppKey("HLS_SERVICE", HlsService)

PLAYLIST_CACHE = "max-age=1"
#: A master playlist that carries a viewer's session token: no shared cache may keep it
#: (RFC 9111 §5.2.2.7), or every viewer behind the cache would share one session.
MASTER_WITH_TOKEN_CACHE = "private, max-age=1"
SEGMENT_CACHE = "public, max-age=86400, immutable"
ERROR_CACHE = "no-store"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, Age, Date",
}
_HEADER_LIST = re.compile(r"[A-Za-z0-9\-, ]{0,512}")
#: Requests for the hinted part (and blocking reloads) wait at most this many target durations.
BLOCK_TARGETS = 3
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def setup(app: web.Application, config, hub: Hub) -> HlsService:
    """Add the HLS routes and the service (started and stopped in ``cleanup_ctx``)."""
    service = HlsService(config, hub)
    app[HLS_SERVICE] = service
    hls = getattr(config, "hls", config)
    # How long a playlist request for a stream that has no segment yet may wait for one.
    wait = min(15.0, max(2.0, 3 * float(getattr(hls, "segment_duration", 2.0))))

    async def master(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not names.is_stream_name(name):
            return _error(404)
        origin = cluster_routes.origin_of(request.app, name)
        if origin is not None:  # another node ingests it (docs/cluster.md)
            return await cluster_routes.edge_master(request, origin, name)
        data = service.master_playlist_bytes(name)
        if data is None and await service.wait_ready(name, SOURCE, timeout=wait):
            data = service.master_playlist_bytes(name)
        if data is None:
            return _error(404)
        viewers = request.app.get(VIEWERS) if EDGE_HEADER not in request.headers else None
        return _playlist(request, *master_body(service, viewers, name, data, lambda: _client(request)))

    async def media(request: web.Request) -> web.StreamResponse:
        match_info = request.match_info
        name = match_info["name"]
        rendition = match_info["rendition"]
        if not names.is_stream_name(name) or not names.is_rendition_name(rendition):
            return _error(404)
        origin = cluster_routes.origin_of(request.app, name)
        if origin is not None:
            return await cluster_routes.edge_media(request, origin, name, rendition)
        delta = False
        msn = part = None
        if service.low_latency and request.query_string:
            try:
                directives = parse_reload_query(request.query)
            except BadReloadQuery:
                return _error(400)
            delta, msn, part = directives.skip, directives.msn, directives.part
        if msn is not None:
            return await blocking(request, name, rendition, msn, part, delta)
        data = service.media_playlist_bytes(name, rendition, delta=delta)
        if data is None and await service.wait_ready(name, rendition, timeout=wait):
            data = service.media_playlist_bytes(name, rendition, delta=delta)
        if data is None:
            return _error(404)
        _count_viewer(request, name, rendition, len(data))
        return _playlist(request, data)

    async def blocking(request: web.Request, name: str, rendition: str, msn: int, part: int | None,
                       delta: bool) -> web.StreamResponse:
        """A blocking playlist reload (§6.2.5.2)."""
        r = service.rendition(name, rendition)
        if r is None and await service.wait_ready(name, rendition, timeout=wait):
            r = service.rendition(name, rendition)
        if r is None:
            return _error(404)
        segmenter = r.segmenter
        target = segmenter.target_duration
        if not segmenter.ended:
            if _too_far(segmenter, msn, part):
                return _error(400)
            if not segmenter.has_reached(msn, part):
                started = time.monotonic()
                reached = await service.wait_playlist(name, rendition, msn, part, timeout=BLOCK_TARGETS * target)
                stats = request.app.get(HTTP_STATS)
                if stats is not None:
                    stats.blocking_waits += 1
                    stats.blocking_wait_seconds += time.monotonic() - started
                if not reached:
                    return _error(503)
        data = service.media_playlist_bytes(name, rendition, delta=delta, require_segment=False)
        if data is None:
            return _error(404)
        _count_viewer(request, name, rendition, len(data))
        return _playlist(request, data, f"public, max-age={BLOCK_TARGETS * segmenter.target_duration}")

    async def part_file(request: web.Request) -> web.StreamResponse:
        """A part: served from memory, or (the preload hint) once it is complete."""
        name = request.match_info["name"]
        rendition = request.match_info["rendition"]
        file_name = "part_" + request.match_info["rest"]
        if not (names.is_stream_name(name) and names.is_rendition_name(rendition) and names.is_part_name(file_name)):
            return _error(404)  # not in the naming scheme: no such resource (HTTP semantics), not a bad request
        origin = cluster_routes.origin_of(request.app, name)
        if origin is not None:
            return await cluster_routes.edge_file(request, origin, name, rendition, file_name)
        data = service.get_file(name, rendition, file_name)
        if data is None:
            r = service.rendition(name, rendition)
            timeout = BLOCK_TARGETS * (r.segmenter.target_duration if r is not None else 1)
            data = await service.wait_part(name, rendition, file_name, timeout=timeout)
        if data is None:
            return _error(404)
        return _file_response(request, name, file_name, data)

    async def file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        rendition = request.match_info["rendition"]
        file_name = request.match_info["file"]
        if not (names.is_stream_name(name) and names.is_rendition_name(rendition) and names.is_file_name(file_name)):
            return _error(404)  # not in the naming scheme: no such resource (HTTP semantics), not a bad request
        origin = cluster_routes.origin_of(request.app, name)
        if origin is not None:
            return await cluster_routes.edge_file(request, origin, name, rendition, file_name)
        data = service.get_file(name, rendition, file_name)
        if data is None:
            if names.is_part_name(file_name):  # the part route takes these; kept for safety
                return await part_file_named(request, name, rendition, file_name)
            return _error(404)
        return _file_response(request, name, file_name, data)

    async def part_file_named(request: web.Request, name: str, rendition: str, file_name: str) -> web.StreamResponse:
        r = service.rendition(name, rendition)
        timeout = BLOCK_TARGETS * (r.segmenter.target_duration if r is not None else 1)
        data = await service.wait_part(name, rendition, file_name, timeout=timeout)
        if data is None:
            return _error(404)
        return _file_response(request, name, file_name, data)

    async def preflight(request: web.Request) -> web.StreamResponse:
        asked = request.headers.get("Access-Control-Request-Headers", "")
        allow = asked if asked and _HEADER_LIST.fullmatch(asked) else "Range"
        return web.Response(status=204, headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": allow,
            "Access-Control-Max-Age": "86400",
        })

    # No catch-all: a path of any other shape matches no route and gets the router's 404.
    # Most requested first (the router tries the /live resources in this order); the
    # media playlist must come before {file}, which would match index.m3u8 too.
    for path, handler in (
        ("/live/{name}/{rendition}/index.m3u8", media),
        ("/live/{name}/{rendition}/part_{rest}", part_file),
        ("/live/{name}/{rendition}/{file}", file),
        ("/live/{name}/index.m3u8", master),
    ):
        app.router.add_get(path, handler)
        app.router.add_route("OPTIONS", path, preflight)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    return service


def _too_far(segmenter, msn: int, part: int | None) -> bool:
    """§6.2.5.2: ``_HLS_msn`` beyond the last segment + 2, or ``_HLS_part`` beyond the last
    part by more than the Advance Part Limit (3 / PART-TARGET below 1 s, else 3)."""
    if msn > segmenter.last_msn + 2:
        return True
    if part is None or segmenter.part_target_ms is None:
        return False
    part_target = segmenter.part_target_ms / 1000
    limit = 3 / part_target if part_target < 1 else 3
    last = segmenter.last_part()
    last_msn, last_index = last if last is not None else (segmenter.last_msn, -1)
    if msn == last_msn:
        return part - last_index > limit
    if msn > last_msn:
        return part + 1 > limit  # at least parts 0..part of msn lie ahead
    return False


def _file_response(request: web.Request, name: str, file_name: str, data: bytes) -> web.StreamResponse:
    viewers = request.app.get(VIEWERS)
    if viewers is not None:
        viewers.add_bytes(name, len(data), request.query.get(SESSION_PARAM))
    content_type = CONTENT_TYPES[file_name.rsplit(".", 1)[1]]
    etag = f'"{file_name}"'
    headers = request.headers  # case-insensitive lookups (a proxy may send "range")
    if _plain_get(request) and "Range" not in headers and "If-None-Match" not in headers:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
            f"Cache-Control: {SEGMENT_CACHE}\r\nAccept-Ranges: bytes\r\nETag: {etag}\r\n{_COMMON_LINES}"
        ).encode()
        return PrebuiltResponse(head, data)
    return _bytes(request, data, content_type, etag)


def _client(request: web.Request) -> str:
    return client_key(viewer_address(request), request.headers.get("User-Agent", ""))


def _count_viewer(request: web.Request, name: str, rendition: str, nbytes: int) -> None:
    """Attribute a request to its viewer session (token in the query, else address+agent)."""
    viewers = request.app.get(VIEWERS)
    if viewers is not None and EDGE_HEADER not in request.headers:  # an edge counts its own viewers
        count_viewer(viewers, name, rendition, nbytes, request.query.get(SESSION_PARAM), _client(request))


def count_viewer(viewers, name: str, rendition: str, nbytes: int, token: str | None, client: str) -> None:
    """Record one media playlist request of ``name`` under the session ``token`` (its
    ``?s=`` parameter: none, empty or longer than 64 characters counts under ``client``).
    The aiohttp handlers and the fast lane (mediasrv/http/fastlane.py) both count here."""
    if not token or len(token) > 64:
        token = None
    viewers.touch(name, token, client=client, now=time.time(), rendition=rendition, nbytes=nbytes)


def master_body(service: HlsService, viewers, name: str, data: bytes,
                client: Callable[[], str]) -> tuple[bytes, str]:
    """Body and Cache-Control of the master playlist ``data`` of ``name`` for one viewer.

    With a viewer tracker (``viewers``; None on a request from an edge, which counts its
    own viewers) each player gets a session token on its variant URLs, and the playlist is
    ``private``; segment URIs stay token-free so caches share them
    (docs/observability.md). ``client()`` gives the viewer's client key, only when needed.
    """
    if viewers is not None:
        token = viewers.new_token()
        viewers.touch(name, token, client=client(), now=time.time())
        text = service.master_playlist(name, uri_suffix=f"?{SESSION_PARAM}={token}")
        if text is not None:
            return text.encode(), MASTER_WITH_TOKEN_CACHE
    return data, PLAYLIST_CACHE


def _playlist(request: web.Request, data: bytes, cache: str = PLAYLIST_CACHE) -> web.StreamResponse:
    if _plain_get(request):
        return PrebuiltResponse(playlist_head(len(data), cache), data)
    return web.Response(body=data, headers={
        **CORS, "Content-Type": CONTENT_TYPES["m3u8"], "Cache-Control": cache,
    })


#: Header lines every prebuilt response carries (what aiohttp would add: Server).
_COMMON_LINES = "".join(f"{k}: {v}\r\n" for k, v in CORS.items()) + f"Server: {SERVER_SOFTWARE}\r\n"
#: Playlist status line + headers (all but Date) by (body length, Cache-Control) (a
#: playlist's length takes few values); cleared when it grows past 1024 entries.
_playlist_heads: dict[tuple[int, str], bytes] = {}
_date: list = [0, b""]


def playlist_head(size: int, cache: str) -> bytes:
    """Status line and headers (all but ``Date``) of a 200 playlist response to a plain
    keep-alive HTTP/1.1 GET, for a body of ``size`` bytes; built once per (size, cache)."""
    head = _playlist_heads.get((size, cache))
    if head is None:
        if len(_playlist_heads) >= 1024:
            _playlist_heads.clear()
        head = _playlist_heads[(size, cache)] = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPES['m3u8']}\r\nContent-Length: {size}\r\n"
            f"Cache-Control: {cache}\r\n{_COMMON_LINES}"
        ).encode()
    return head


def _plain_get(request: web.BaseRequest) -> bool:
    """A GET on a keep-alive HTTP/1.1 connection: what a prebuilt response answers."""
    return request.method == "GET" and request.version == HttpVersion11 and request.keep_alive


def date_line() -> bytes:
    """``Date: …`` (RFC 9110 §6.6.1, IMF-fixdate) and the blank line, once per second."""
    now = int(time.time())
    if _date[0] != now:
        _date[0] = now
        _date[1] = ("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)) + "\r\n\r\n").encode()
    return _date[1]


class PrebuiltResponse(web.StreamResponse):
    """A 200 response to a plain keep-alive HTTP/1.1 GET, its status line and headers
    (all but ``Date``) serialised in advance as ``head``.

    ``prepare()`` runs the ``on_response_prepare`` signals (when an app has any), writes
    head, Date and body to the transport at once and awaits the writer's drain (flow
    control: a slow client holds back its own connection, not the server's memory).
    ``headers`` is parsed back from ``head`` only when someone asks for it.
    """

    def __init__(self, head: bytes, body: bytes) -> None:
        # Not StreamResponse.__init__: it builds a header multidict nobody reads here.
        self._state = {}
        self._status = 200
        self._reason = "OK"
        self._head = head
        self._data = body
        self._keep_alive = True

    @property
    def headers(self) -> CIMultiDict:  # type: ignore[override]
        headers = self.__dict__.get("_headers")
        if headers is None:
            headers = CIMultiDict()
            for line in self._head.decode("latin-1").split("\r\n")[1:]:
                if line:
                    key, _, value = line.partition(": ")
                    headers.add(key, value)
            self._headers = headers
        return headers

    @property
    def content_length(self) -> int:  # type: ignore[override]
        return len(self._data)

    @property
    def body(self) -> bytes:
        return self._data

    async def prepare(self, request: web.BaseRequest):  # type: ignore[override]
        if self._eof_sent or self._payload_writer is not None:
            return self._payload_writer
        self._req = request
        writer = self._payload_writer = request.writer
        match_info = getattr(request, "match_info", None)
        if match_info is not None:
            for app in match_info.apps:
                if app.on_response_prepare:
                    await request._prepare_hook(self)  # type: ignore[attr-defined]
                    break
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        data = self._data
        if len(data) < 16384:
            transport.write(b"".join((self._head, date_line(), data)))
        else:
            transport.writelines((self._head, date_line(), data))
        self._body_length = len(data)
        if transport.get_write_buffer_size():
            await writer.drain()  # waits only while the transport is over its high-water mark
        return writer

    async def write(self, data) -> None:  # type: ignore[override]
        raise RuntimeError("a prebuilt response carries its whole body already")

    async def write_eof(self, data: bytes = b"") -> None:  # type: ignore[override]
        self._eof_sent = True
        self._req = None
        self._payload_writer = None


def _error(status: int) -> web.Response:
    reason = {400: "bad request", 404: "not found", 416: "range not satisfiable", 503: "not available yet"}[status]
    return web.Response(status=status, text=reason + "\n", headers={**CORS, "Cache-Control": ERROR_CACHE})


def _bytes(request: web.Request, data: bytes, content_type: str, etag: str) -> web.Response:
    size = len(data)
    headers = {
        **CORS,
        "Content-Type": content_type,
        "Cache-Control": SEGMENT_CACHE,
        "Accept-Ranges": "bytes",
        "ETag": etag,
    }
    if etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header is not None and (if_range is None or if_range.strip() == etag):
        span = parse_range(range_header, size)
        if span == "unsatisfiable":
            return web.Response(status=416, headers={**CORS, "Content-Range": f"bytes */{size}", "Cache-Control": ERROR_CACHE})
        if span is not None:
            start, end = span
            return web.Response(
                status=206,
                body=data[start:end + 1],
                headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"},
            )
    return web.Response(body=data, headers=headers)


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range (RFC 9110 §14.1.2) → (first, last) inclusive; ``"unsatisfiable"``;
    or None to answer with the whole body (malformed, several ranges, other units)."""
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid: ignore the header
    if start >= size:
        return "unsatisfiable"
    end = size - 1 if last == "" else int(last)
    return start, min(end, size - 1)
