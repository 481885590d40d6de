"""HTTP routes of HLS: playlists, init segments and media segments, all from memory.

- ``GET /live/{name}/index.m3u8``: master playlist;
- ``GET /live/{name}/{rendition}/index.m3u8``: media playlist;
- ``GET /live/{name}/{rendition}/{file}``: ``init_*.mp4``, ``seg_*.m4s``, ``seg_*.ts``.

HEAD works on all of them, OPTIONS answers CORS preflights. Every name is checked against
a strict pattern (``mediasrv.hls.names``) before any lookup: a dot-dot, a slash smuggled in
as ``%2F``, a backslash, NUL or an over-long name is a 400, an unknown stream, rendition or
file a 404 — and lookups only ever go to in-memory dictionaries, never the file system.

Caching (a CDN or nginx ``proxy_cache`` in front is correct with these): playlists
``max-age=1``; init and media segments ``public, max-age=86400, immutable`` (their names
carry the broadcast's tag and never mean other bytes); errors ``no-store``.
"""

from __future__ import annotations

import re
import time
from typing import AsyncIterator

from aiohttp import web

from mediasrv.hls import names
from mediasrv.hub import Hub
from mediasrv.server.hls import CONTENT_TYPES, SOURCE, HlsService
from mediasrv.server.viewers import SESSION_PARAM, client_key
from mediasrv.http.stats_routes import VIEWERS

HLS_SERVICE = web.AppKey("HLS_SERVICE", HlsService)

PLAYLIST_CACHE = "max-age=1"
SEGMENT_CACHE = "public, max-age=86400, immutable"
ERROR_CACHE = "no-store"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, Age, Date",
}
_HEADER_LIST = re.compile(r"[A-Za-z0-9\-, ]{0,512}")
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
            return _error(400)
        text = service.master_playlist(name)
        if text is None and await service.wait_ready(name, SOURCE, timeout=wait):
            text = service.master_playlist(name)
        if text is None:
            return _error(404)
        viewers = request.app.get(VIEWERS)
        if viewers is not None:
            # Each player gets a session token on its variant URLs; segment URIs stay
            # token-free so caches share them (docs/observability.md).
            token = viewers.new_token()
            viewers.touch(name, token, client=_client(request), now=time.time())
            text = service.master_playlist(name, uri_suffix=f"?{SESSION_PARAM}={token}") or text
        return _playlist(text)

    async def media(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        rendition = request.match_info["rendition"]
        if not names.is_stream_name(name) or not names.is_rendition_name(rendition):
            return _error(400)
        text = service.media_playlist(name, rendition)
        if text is None and await service.wait_ready(name, rendition, timeout=wait):
            text = service.media_playlist(name, rendition)
        if text is None:
            return _error(404)
        _count_viewer(request, name, rendition, len(text))
        return _playlist(text)

    async def file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        rendition = request.match_info["rendition"]
        file_name = request.match_info["file"]
        if not (names.is_stream_name(name) and names.is_rendition_name(rendition) and names.is_file_name(file_name)):
            return _error(400)
        data = service.get_file(name, rendition, file_name)
        if data is None:
            return _error(404)
        _count_viewer(request, name, rendition, len(data))
        return _bytes(request, data, CONTENT_TYPES[file_name.rsplit(".", 1)[1]], f'"{file_name}"')

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
    for path, handler in (
        ("/live/{name}/index.m3u8", master),
        ("/live/{name}/{rendition}/index.m3u8", media),
        ("/live/{name}/{rendition}/{file}", file),
    ):
        app.router.add_get(path, handler)
        app.router.add_route("OPTIONS", path, preflight)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    return service


def _client(request: web.Request) -> str:
    return client_key(request.remote or "", request.headers.get("User-Agent", ""))


def _count_viewer(request: web.Request, name: str, rendition: str, nbytes: int) -> None:
    """Attribute a request to its viewer session (token in the query, else address+agent)."""
    viewers = request.app.get(VIEWERS)
    if viewers is not None:
        token = request.query.get(SESSION_PARAM) or None
        if token is not None and len(token) > 64:
            token = None
        viewers.touch(name, token, client=_client(request), now=time.time(), rendition=rendition, nbytes=nbytes)


def _playlist(text: str) -> web.Response:
    return web.Response(body=text.encode(), headers={
        **CORS, "Content-Type": CONTENT_TYPES["m3u8"], "Cache-Control": PLAYLIST_CACHE,
    })


def _error(status: int) -> web.Response:
    reason = {400: "bad request", 404: "not found", 416: "range not satisfiable"}[status]
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
