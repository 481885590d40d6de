"""Observability over HTTP: /metrics, per-stream stats and their live SSE feed, broadcasts.

The stats and the feed of a private stream (a creator's backstage: the studio shows its
health warnings) need the stream's grant (``?pt=``, the playback gate); without it they
are the 404 of a stream that does not exist.

A creator's figures are theirs (issue 18): ``app[ANALYTICS_ACCESS]`` says what the asker
may read. The creator, their moderators and operators get every figure; anyone else only
``stream``, ``live`` and ``viewers`` (null when the creator hides the count), and no
broadcast summaries of that creator."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediasrv.cluster.node import local_viewers, origin_of, viewers_total
from mediasrv.config import STREAM_NAME_RE
from mediasrv.httpkit.body import read_query, respond
from mediasrv.httpkit.cause import cause_of
from mediasrv.httpkit.keys import (
    ANALYTICS_ACCESS,
    CLUSTER,
    EDGE,
    HLS_SERVICE,
    HTTP_STATS,
    MONITOR,
    PLAYBACK,
    REQUESTER,
    RTMP_SERVER,
    STORE,
    TRANSCODE_SERVICE,
    WHIP_SERVER,
)
from mediasrv.httpkit.models import GRANT_QUERY, STREAM_NAME_PARAM, SseEvent
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.observe import models as m
from mediasrv.observe.metrics import Sources, make_registry
from mediasrv.ports import FULL_ANALYTICS, PLAYBACK_GRANT_PARAM, AnalyticsView, playback_access







#: Every 5xx answer, once (docs/operations.md, "Server errors").
error_log = logging.getLogger("mediasrv.http")

#: How often the SSE feed sends a comment line to keep proxies from closing it.
SSE_KEEPALIVE = 15.0


def setup(app: web.Application) -> None:
    """The request counter middleware, /metrics (read from the components at scrape time)
    and the stats routes."""
    app.middlewares.append(_count_requests)
    app.on_response_prepare.append(_note_prepared)
    registry = make_registry(Sources(
        monitor=lambda: app.get(MONITOR),
        rtmp=lambda: app.get(RTMP_SERVER),
        whip=lambda: app.get(WHIP_SERVER),
        hls=lambda: app.get(HLS_SERVICE),
        http=lambda: app.get(HTTP_STATS),
        transcode=lambda: _transcode_service(app),
        cluster=lambda: _cluster_parts(app),
    ))

    async def metrics(request: web.Request) -> web.Response:
        # Collected on the event loop's thread, as a scrape-time read of the components'
        # own counters: they are not thread-safe (the monitor's snapshot can even start a
        # task on the loop), and one scrape of a few hundred series takes milliseconds.
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})

    name = path_param("name", "public stream name", STREAM_NAME_PARAM)
    add_route(app, "GET", "/metrics", metrics, op(
        "Prometheus metrics", tag="meta", ok_content={"text/plain": {"schema": {"type": "string"}}}))
    add_route(app, "GET", "/api/streams/{name}/stats", stream_stats, op(
        "Live statistics of a stream", tag="streams", params=[name, GRANT_QUERY], ok_schema=m.StreamStats,
        errors=[401, 404],
        description="Every figure for the creator (the stream named after their handle), the moderators they "
                    "appointed and operators (token as `Authorization: Bearer` or `?access_token=`); anyone "
                    "else gets `stream`, `live` and `viewers` only (`viewers` null when the creator hides "
                    "it: `hide_viewer_count`). A stream no account owns shows every figure to everyone."))
    add_route(app, "GET", "/api/streams/{name}/events", stream_events, op(
        "Server-Sent Events: `stats` once a second (data: StreamStats), `ended` at the end", tag="streams",
        description="`ended`'s data is `{\"reason\": null}` after an end by the publisher, or the operator's "
                    "(or the creator's) reason when one stopped the stream (`POST /api/streams/NAME/stop`, "
                    "`POST /api/me/live/end`). Each `stats` event carries what `GET /api/streams/NAME/stats` "
                    "gives the same asker (`?access_token=`: an EventSource sends no header).",
        params=[name, GRANT_QUERY], ok_content={"text/event-stream": {"schema": SseEvent}}, errors=[404]))
    add_route(app, "GET", "/api/broadcasts", broadcasts, op(
        "Summaries of ended broadcasts", tag="streams", auth="optional", query=m.BroadcastQuery,
        ok_schema=m.Broadcasts,
        description="A broadcast that ended without ever going public (the creator's backstage, never made "
                    "public: `private: true`) is listed only for its creator (the stream named after their "
                    "handle) and for moderators and admins. The summaries of a creator's broadcasts (their "
                    "analytics) are listed only for that creator, the moderators they appointed and "
                    "operators; those of a stream no account owns, for everyone."))




def _cluster_parts(app: web.Application):
    """``(ClusterBus, OriginFetcher)`` when the node is in a cluster, else None."""
    bus, edge = app.get(CLUSTER), app.get(EDGE)
    return (bus, edge) if bus is not None and edge is not None else None


def _transcode_service(app: web.Application):
    """The transcoding service, when the app has one (it is optional)."""
    return app.get(TRANSCODE_SERVICE)


def _health(request: web.Request):
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name):
        return None
    monitor = request.app.get(MONITOR)
    health = monitor.streams.get(name) if monitor is not None else None
    if health is not None and not _may_see(request, health.stream):
        return None  # a private stream, without its grant: as if there were none
    return health


def _may_see(request: web.Request, stream) -> bool:
    """The playback gate's answer for this request's grant (``?pt=``)."""
    return playback_access(request.app.get(PLAYBACK), stream, request.query.get(PLAYBACK_GRANT_PARAM, "")).allowed


async def _view(request: web.Request, name: str) -> AnalyticsView:
    """What the asker may read of ``name``'s figures (everything without accounts)."""
    access = request.app.get(ANALYTICS_ACCESS)
    return await access(request, name) if access is not None else FULL_ANALYTICS


def _public(snapshot: dict, view: AnalyticsView) -> dict:
    """``snapshot`` cut to what ``view`` allows: the watch page's figures only."""
    if view.full:
        return snapshot
    return {"stream": snapshot["stream"], "live": snapshot["live"],
            "viewers": snapshot.get("viewers") if view.viewers else None}


async def stream_stats(request: web.Request) -> web.Response:
    health = _health(request)
    name = request.match_info["name"]
    origin = origin_of(request.app, name) if STREAM_NAME_RE.fullmatch(name) else None
    if origin is not None:
        # Another node ingests it: what this node knows (the viewers of every node).
        here = local_viewers(request.app, name)
        view = await _view(request, name)
        return respond(m.StreamStats, {
            "stream": name, "live": True, "origin": origin.node,
            "viewers": viewers_total(request.app, name, here) if view.viewers else None,
            "viewers_here": here if view.full else None,
        }, headers={"Cache-Control": "no-store"})
    if health is None:
        return web.json_response({"error": "no such stream"}, status=404)
    view = await _view(request, name)
    snapshot = request.app[MONITOR].snapshot(health)
    if health.ended_at is None and CLUSTER in request.app:
        snapshot["viewers_here"] = snapshot["viewers"]
        snapshot["viewers"] = viewers_total(request.app, name, snapshot["viewers"])
    snapshot["started_at"] = health.stream.started_at
    snapshot["average_viewers"] = round(health.average_viewers, 3)
    return respond(m.StreamStats, _public(snapshot, view), headers={"Cache-Control": "no-store"})


async def stream_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``stats`` event a second; ``ended`` when the broadcast ends.

    A private live's feed asks the playback gate again before every event, as RTMP play
    does: a grant voided while the feed is open (a moderator removed) or expired closes
    it, and the client's reconnection with that grant is refused (404)."""
    name = request.match_info["name"]
    monitor = request.app.get(MONITOR)
    # The broadcast this feed follows: its end_reason says why an operator stopped it.
    health = _health(request)
    if health is None:
        return web.json_response({"error": "no such stream"}, status=404)
    # Who asks is fixed for the feed's life (a hidden viewer count applies from the next feed).
    view = await _view(request, name)
    queue = monitor.subscribe(name)
    if queue is None:
        return web.json_response({"error": "no such stream"}, status=404)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
        "Access-Control-Allow-Origin": "*",
    })
    await response.prepare(request)
    try:
        while True:
            try:
                snapshot = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if snapshot is None:
                reason = health.stream.end_reason if health is not None else None
                await response.write(f"event: ended\ndata: {json.dumps({'reason': reason})}\n\n".encode())
                break
            if not _may_see(request, health.stream):
                break  # the grant was voided or expired: the feed ends here
            await response.write(f"event: stats\ndata: {json.dumps(_public(snapshot, view))}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        monitor.unsubscribe(name, queue)
    return response


async def broadcasts(request: web.Request) -> web.Response:
    query = read_query(request, m.BroadcastQuery)
    requester = request.app.get(REQUESTER)
    user = await requester(request) if requester is not None else None
    # A broadcast that never went public is its creator's business (and operators').
    include: bool | str = False
    if user is not None:
        include = True if user.at_least("moderator") else user.handle
    operator = user is not None and user.at_least("moderator")
    # Another creator's summaries are not the asker's: read more rows, keep those they may see.
    fetch = query.limit if operator else max(query.limit, 1000)
    rows = await asyncio.to_thread(request.app[STORE].list_broadcasts, query.stream, fetch,
                                   include_private=include)
    if not operator:
        views: dict[str, AnalyticsView] = {}
        kept = []
        for row in rows:
            if row.stream not in views:
                views[row.stream] = await _view(request, row.stream)
            if views[row.stream].full:
                kept.append(row)
        rows = kept[:query.limit]
    return respond(m.Broadcasts, {"broadcasts": [row.to_json() for row in rows]})


def kind_of_path(path: str) -> str:
    """The request kind used as a metrics label (a small fixed set)."""
    if path.startswith("/hls-seen/"):
        return "media_seen"  # a cache in front telling of a viewer's media request
    if path.startswith("/live/"):
        if path.endswith("/chat"):
            return "chat"
        if path.endswith(".m3u8"):
            return "master" if path.count("/") == 3 else "playlist"
        last = path.rsplit("/", 1)[-1]
        if last.endswith(".mp4"):
            return "init"
        if "part" in last:
            return "part"
        return "segment"
    if path.startswith("/vod/"):
        return "vod"
    if path == "/metrics":
        return "metrics"
    if path.startswith("/api/"):
        return "api"
    if path == "/whip" or path.startswith("/whip/"):
        return "whip"
    return "other"


# Kind per route resource, computed once from its canonical path (e.g.
# "/live/{name}/index.m3u8"): the per-request cost is one dict lookup.
_KIND_BY_RESOURCE: dict[object, str] = {}


def _kind(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return "other"
    kind = _KIND_BY_RESOURCE.get(resource)
    if kind is None:
        kind = _KIND_BY_RESOURCE[resource] = kind_of_path(resource.canonical)
    if kind == "segment":  # the generic file route: init, part or segment by its name
        kind = kind_of_path(request.path)
    return kind


#: Set on a request once its response's headers are being sent.
_PREPARED = web.RequestKey("mediasrv_prepared", bool)


async def _note_prepared(request: web.Request, response: web.StreamResponse) -> None:
    request[_PREPARED] = True


def _log_server_error(request: web.Request, status: int, cause: str, exc: BaseException | None = None) -> None:
    """The one log line of a 5xx: method, path (never the query string: it may carry a
    session or access token), status and cause; with the traceback of an exception."""
    log = error_log.error if exc is not None else error_log.warning
    log("%s %s answered %d: %s", request.method, request.path, status, cause, exc_info=exc)


@web.middleware
async def _count_requests(request: web.Request, handler):
    """Count every request by kind and status, and log every 5xx once (with its cause)."""
    stats = request.app[HTTP_STATS]
    kind = _kind(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        stats.count(kind, exc.status)
        if exc.status >= 500:
            _log_server_error(request, exc.status, cause_of(exc))
        raise
    except ConnectionResetError:
        # The client went away mid-answer: not a server error, and no answer can be sent.
        stats.count(kind, 500)
        raise
    except Exception as exc:
        if request.get(_PREPARED):
            # Failed after its answer had started: no 5xx can be sent any more (aiohttp
            # logs the exception and closes the connection).
            stats.count(kind, 500)
            raise
        # aiohttp would answer 500 (504 for a TimeoutError) and log the exception without
        # the request's path; logged here with it, and answered as aiohttp would, so the
        # exception is logged once (aiohttp does not log an HTTPException).
        status = 504 if isinstance(exc, asyncio.TimeoutError) else 500
        stats.count(kind, status)
        _log_server_error(request, status, f"{type(exc).__name__}: {exc}", exc)
        raise (web.HTTPGatewayTimeout() if status == 504 else web.HTTPInternalServerError()) from exc
    stats.count(kind, response.status)
    if response.status >= 500:
        _log_server_error(request, response.status, cause_of(response))
    return response

