"""Observability over HTTP: /metrics, per-stream stats and their live SSE feed, broadcasts."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediasrv.cluster.node import local_viewers, origin_of, viewers_total
from mediasrv.config import STREAM_NAME_RE
from mediasrv.httpkit.body import read_query, respond
from mediasrv.httpkit.keys import (
    CLUSTER,
    EDGE,
    HLS_SERVICE,
    HTTP_STATS,
    MONITOR,
    RTMP_SERVER,
    STORE,
    TRANSCODE_SERVICE,
)
from mediasrv.httpkit.models import STREAM_NAME_PARAM, SseEvent
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.observe import models as m
from mediasrv.observe.metrics import Sources, make_registry







#: How often the SSE feed sends a comment line to keep proxies from closing it.
SSE_KEEPALIVE = 15.0


def setup(app: web.Application) -> None:
    """The request counter middleware, /metrics (read from the components at scrape time)
    and the stats routes."""
    app.middlewares.append(_count_requests)
    registry = make_registry(Sources(
        monitor=lambda: app.get(MONITOR),
        rtmp=lambda: app.get(RTMP_SERVER),
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
        "Live statistics of a stream", tag="streams", params=[name], ok_schema=m.StreamStats, errors=[404]))
    add_route(app, "GET", "/api/streams/{name}/events", stream_events, op(
        "Server-Sent Events: `stats` once a second (data: StreamStats), `ended` at the end", tag="streams",
        params=[name], ok_content={"text/event-stream": {"schema": SseEvent}}, errors=[404]))
    add_route(app, "GET", "/api/broadcasts", broadcasts, op(
        "Summaries of ended broadcasts", tag="streams", query=m.BroadcastQuery, ok_schema=m.Broadcasts))




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
    return monitor.streams.get(name) if monitor is not None else None


async def stream_stats(request: web.Request) -> web.Response:
    health = _health(request)
    name = request.match_info["name"]
    origin = origin_of(request.app, name) if STREAM_NAME_RE.fullmatch(name) else None
    if origin is not None:
        # Another node ingests it: what this node knows (the viewers of every node).
        here = local_viewers(request.app, name)
        return respond(m.StreamStats, {
            "stream": name, "live": True, "origin": origin.node,
            "viewers": viewers_total(request.app, name, here), "viewers_here": here,
        }, headers={"Cache-Control": "no-store"})
    if health is None:
        return web.json_response({"error": "no such stream"}, status=404)
    snapshot = request.app[MONITOR].snapshot(health)
    if health.ended_at is None and CLUSTER in request.app:
        snapshot["viewers_here"] = snapshot["viewers"]
        snapshot["viewers"] = viewers_total(request.app, name, snapshot["viewers"])
    snapshot["started_at"] = health.stream.started_at
    snapshot["average_viewers"] = round(health.average_viewers, 3)
    return respond(m.StreamStats, snapshot, headers={"Cache-Control": "no-store"})


async def stream_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``stats`` event a second; ``ended`` when the broadcast ends."""
    name = request.match_info["name"]
    monitor = request.app.get(MONITOR)
    queue = monitor.subscribe(name) if monitor is not None and STREAM_NAME_RE.fullmatch(name) else None
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
                await response.write(b"event: ended\ndata: {}\n\n")
                break
            await response.write(f"event: stats\ndata: {json.dumps(snapshot)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        monitor.unsubscribe(name, queue)
    return response


async def broadcasts(request: web.Request) -> web.Response:
    query = read_query(request, m.BroadcastQuery)
    rows = await asyncio.to_thread(request.app[STORE].list_broadcasts, query.stream, query.limit)
    return respond(m.Broadcasts, {"broadcasts": [row.to_json() for row in rows]})


def kind_of_path(path: str) -> str:
    """The request kind used as a metrics label (a small fixed set)."""
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


@web.middleware
async def _count_requests(request: web.Request, handler):
    stats = request.app[HTTP_STATS]
    kind = _kind(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        stats.count(kind, exc.status)
        raise
    except Exception:
        stats.count(kind, 500)
        raise
    stats.count(kind, response.status)
    return response

