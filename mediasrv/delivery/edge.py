"""Serving another node's streams (docs/cluster.md).

The ``edge_*`` functions answer ``/live/NAME/...`` for a stream whose origin is another
node (``delivery.routes`` calls them when the stream is not live here): the playlists
and files come from the origin through the ``OriginFetcher`` (once for many viewers);
the viewer sessions are counted here, so each node reports the viewers it serves and the
cluster sums them.
"""

from __future__ import annotations

import time

from aiohttp import web

from mediasrv.cluster import DirectoryEntry
from mediasrv.cluster.edge import EDGE_HEADER, OriginError
from mediasrv.delivery.responses import (
    CORS,
    ERROR_CACHE,
    MASTER_WITH_TOKEN_CACHE,
    PLAYLIST_CACHE,
    client_of,
    count_request,
    file_response,
    plain_error,
    playlist_response,
)
from mediasrv.hls.reload import BadReloadQuery, parse_reload_query
from mediasrv.httpkit.cause import with_cause
from mediasrv.httpkit.clients import viewer_address
from mediasrv.httpkit.keys import EDGE, VIEWERS
from mediasrv.observe.viewers import SESSION_PARAM


def _bad_gateway(origin: DirectoryEntry) -> web.Response:
    return with_cause(web.Response(status=502, text="the stream's origin node did not answer\n",
                                   headers={**CORS, "Cache-Control": ERROR_CACHE}),
                      f"the origin node {origin.node} did not answer")


def _passed_error(fetched, origin: DirectoryEntry) -> web.Response:
    return with_cause(web.Response(status=fetched.status, body=fetched.body, headers={
        **CORS, "Cache-Control": ERROR_CACHE, "Content-Type": "text/plain; charset=utf-8"}),
        f"the origin node {origin.node} answered {fetched.status}")


async def edge_master(request: web.Request, origin: DirectoryEntry, name: str) -> web.StreamResponse:
    """The master playlist of another node's stream, with this node's session token."""
    try:
        fetched = await request.app[EDGE].playlist(origin.url, f"/live/{name}/index.m3u8", {}, blocking=False)
    except OriginError:
        return _bad_gateway(origin)
    if fetched.status != 200:
        return _passed_error(fetched, origin)
    viewers = request.app.get(VIEWERS)
    if viewers is None or EDGE_HEADER in request.headers:
        return playlist_response(request, fetched.body)
    token = viewers.new_token()
    viewers.touch(name, token, client=client_of(request), now=time.time(), address=viewer_address(request))
    # Variant URIs are the lines that are not tags (RFC 8216 §4.3.4.2): each gets the token.
    lines = fetched.body.decode().split("\n")
    text = "\n".join(line if not line or line.startswith("#") else f"{line}?{SESSION_PARAM}={token}"
                     for line in lines)
    return playlist_response(request, text.encode(), MASTER_WITH_TOKEN_CACHE)


async def edge_media(request: web.Request, origin: DirectoryEntry, name: str, rendition: str) -> web.StreamResponse:
    """A media playlist of another node's stream; blocking reloads (§6.2.5.2) are passed to
    the origin with their parameters and shared by every viewer asking the same."""
    try:
        reload = parse_reload_query(request.query)
    except BadReloadQuery:
        return plain_error(400)
    params: dict[str, str] = {}
    if reload.msn is not None:
        params["_HLS_msn"] = str(reload.msn)
        if reload.part is not None:
            params["_HLS_part"] = str(reload.part)
    if reload.skip:
        params["_HLS_skip"] = request.query["_HLS_skip"]
    try:
        fetched = await request.app[EDGE].playlist(origin.url, f"/live/{name}/{rendition}/index.m3u8", params,
                                                   blocking=reload.msn is not None)
    except OriginError:
        return _bad_gateway(origin)
    if fetched.status != 200:
        return _passed_error(fetched, origin)
    count_request(request, name, rendition, len(fetched.body))
    return playlist_response(request, fetched.body, fetched.cache_control or PLAYLIST_CACHE)


async def edge_file(request: web.Request, origin: DirectoryEntry, name: str, rendition: str,
                    file_name: str) -> web.StreamResponse:
    """An init segment, segment or part of another node's stream (cached: immutable)."""
    try:
        fetched = await request.app[EDGE].file(origin.url, f"/live/{name}/{rendition}/{file_name}")
    except OriginError:
        return _bad_gateway(origin)
    if fetched.status != 200:
        return _passed_error(fetched, origin)
    return file_response(request, name, file_name, fetched.body)
