"""The answers of the media routes: playlists, files and plain-text errors, with their
caching and CORS headers, and the viewer-session counting every media request does.

Shared by the live routes (``delivery.routes``) and the edge that serves another node's
streams (``delivery.edge``). Caching rules: see the ``delivery.routes`` docstring.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from aiohttp import web

from mediasrv.cluster.edge import EDGE_HEADER
from mediasrv.delivery.hls_service import CONTENT_TYPES, HlsService
from mediasrv.httpkit.cause import with_cause
from mediasrv.httpkit.clients import viewer_address
from mediasrv.httpkit.keys import VIEWERS
from mediasrv.hls import names
from mediasrv.observe.viewers import SESSION_PARAM, client_key


PLAYLIST_CACHE = "max-age=1"


#: A master playlist that carries a viewer's session token: no shared cache may keep it
#: (RFC 9111 §5.2.2.7), or every viewer behind the cache would share one session.
MASTER_WITH_TOKEN_CACHE = "private, max-age=1"


SEGMENT_CACHE = "public, max-age=86400, immutable"


#: Every answer about a private stream (backstage): one viewer's, kept by nobody.
RESTRICTED_CACHE = "private, no-store"


ERROR_CACHE = "no-store"


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, Age, Date",
}


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def file_response(request: web.Request, name: str, file_name: str, data: bytes, *,
                  cache: str = SEGMENT_CACHE, counted: bool = True) -> web.StreamResponse:
    """A segment, part or init segment; its bytes are counted for the stream's audience
    unless not ``counted`` (a private stream's), and a segment or part makes its client
    a viewer (``ViewerTracker.media``: a playlist alone does not)."""
    viewers = request.app.get(VIEWERS) if counted else None
    if viewers is not None:
        count_media(request, viewers, name, file_name, len(data))
    content_type = CONTENT_TYPES[file_name.rsplit(".", 1)[1]]
    etag = f'"{file_name}"'
    return bytes_response(request, data, content_type, etag, cache=cache)


def client_of(request: web.Request) -> str:
    return client_key(viewer_address(request), request.headers.get("User-Agent", ""))


def count_media(request: web.Request, viewers, name: str, file_name: str, nbytes: int) -> None:
    """Count a media answer of ``name``: bytes for the stream; a segment or a part (not an
    init segment) also makes its client a viewer. A request from an edge is its bytes
    only (the edge counts its own viewers)."""
    token = request.query.get(SESSION_PARAM)
    token = token if token and len(token) <= 64 else None
    if EDGE_HEADER in request.headers or not is_media_file(file_name):
        viewers.add_bytes(name, nbytes, token)
        return
    viewers.media(name, client=client_of(request), now=time.time(), nbytes=nbytes, token=token)


def is_media_file(file_name: str) -> bool:
    """Whether ``file_name`` is a media segment or a part (what makes a viewer), not an
    init segment."""
    return names.is_part_name(file_name) or (names.is_file_name(file_name) and not file_name.endswith(".mp4"))


def count_request(request: web.Request, name: str, rendition: str, nbytes: int) -> None:
    """Attribute a request to its viewer session (token in the query, else address+agent)."""
    viewers = request.app.get(VIEWERS)
    if viewers is not None and EDGE_HEADER not in request.headers:  # an edge counts its own viewers
        address = viewer_address(request)
        count_viewer(viewers, name, rendition, nbytes, request.query.get(SESSION_PARAM),
                     client_key(address, request.headers.get("User-Agent", "")), address)


def count_viewer(viewers, name: str, rendition: str, nbytes: int, token: str | None, client: str,
                 address: str | None = None) -> None:
    """Record one media playlist request of ``name`` under the session ``token`` (its
    ``?s=`` parameter: none, empty, longer than 64 characters or not one the tracker
    signed counts under ``client``). ``address``: the client's, for the per-address cap.
    """
    if not token or len(token) > 64:
        token = None
    viewers.touch(name, token, client=client, now=time.time(), rendition=rendition, nbytes=nbytes,
                  address=address)


def master_body(service: HlsService, viewers, name: str, data: bytes,
                client: Callable[[], str], *, carry: str = "",
                address: Callable[[], str] | None = None) -> tuple[bytes, str]:
    """Body and Cache-Control of the master playlist ``data`` of ``name`` for one viewer.

    With a viewer tracker (``viewers``; None on a request from an edge, which counts its
    own viewers) each player gets a session token on its variant URLs, and the playlist is
    ``private``; segment URIs stay token-free so caches share them
    (docs/observability.md). ``client()`` gives the viewer's client key, only when needed.
    ``carry``: query parameters every variant URL must carry too (a private stream's
    grant, ``pt=...``); such a playlist is kept by nobody. ``address()``: the viewer's
    address, for the per-address cap.
    """
    if viewers is not None:
        token = viewers.new_token()
        viewers.touch(name, token, client=client(), now=time.time(),
                      address=address() if address is not None else None)
        suffix = f"?{SESSION_PARAM}={token}" + (f"&{carry}" if carry else "")
        text = service.master_playlist(name, uri_suffix=suffix)
        if text is not None:
            return text.encode(), RESTRICTED_CACHE if carry else MASTER_WITH_TOKEN_CACHE
    if carry:
        text = service.master_playlist(name, uri_suffix=f"?{carry}")
        if text is not None:
            return text.encode(), RESTRICTED_CACHE
    return data, PLAYLIST_CACHE


def playlist_response(request: web.Request, data: bytes, cache: str = PLAYLIST_CACHE) -> web.StreamResponse:
    return web.Response(body=data, headers={
        **CORS, "Content-Type": CONTENT_TYPES["m3u8"], "Cache-Control": cache,
    })


def plain_error(status: int, *, cause: str = "", retry_after: int | None = None) -> web.Response:
    """A plain-text error. ``cause``: why (a 5xx is logged with it, httpkit.cause);
    ``retry_after``: seconds, for a 503 that a player should ask again after (and a page's
    script may read: the header is exposed to CORS)."""
    reason = {400: "bad request", 404: "not found", 416: "range not satisfiable", 503: "not available yet"}[status]
    headers = {**CORS, "Cache-Control": ERROR_CACHE}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
        headers["Access-Control-Expose-Headers"] = CORS["Access-Control-Expose-Headers"] + ", Retry-After"
    response = web.Response(status=status, text=reason + "\n", headers=headers)
    if cause:
        with_cause(response, cause)
    return response


def bytes_response(request: web.Request, data: bytes, content_type: str, etag: str, *,
                   cache: str = SEGMENT_CACHE) -> web.Response:
    size = len(data)
    headers = {
        **CORS,
        "Content-Type": content_type,
        "Cache-Control": cache,
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
