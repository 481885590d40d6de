"""The cluster in the HTTP app (``cluster.redis_url``; docs/cluster.md).

``setup`` starts the node's ``ClusterBus`` (Redis) and ``OriginFetcher`` and connects them
to the rest: hub events go into the stream directory, chat rooms and go-live alerts relay
through Redis to the other nodes and take theirs in. Without ``cluster.redis_url`` it adds
nothing: a single node behaves exactly as before.

The ``edge_*`` functions answer ``/live/NAME/...`` for a stream whose origin is another
node (called by ``hls_routes`` when the stream is not live here): the playlists and files
come from the origin through the fetcher (once for many viewers); the viewer sessions are
counted here, so each node reports the viewers it serves and the cluster sums them.
"""

from __future__ import annotations

import os
import socket
import time
from typing import AsyncIterator

from aiohttp import web

from mediasrv.cluster import ClusterBus, DirectoryEntry, OriginFetcher
from mediasrv.cluster.edge import EDGE_HEADER, OriginError
from mediasrv.config import Config
from mediasrv.hls.reload import BadReloadQuery, parse_reload_query
from mediasrv.hub import StreamEnded, StreamStarted
from mediasrv.hub.stream import StreamState
from mediasrv.observe.viewers import SESSION_PARAM

CLUSTER = web.AppKey("cluster", ClusterBus)
EDGE = web.AppKey("edge_fetcher", OriginFetcher)

__all__ = ["CLUSTER", "EDGE", "EDGE_HEADER", "setup", "origin_of", "viewers_total"]


def node_id(config: Config) -> str:
    return config.cluster.node_id or f"{socket.gethostname()}-{os.getpid()}"


def advertise_url(config: Config) -> str:
    """``cluster.advertise_url``, else ``http.public_url``, else this host and the HTTP port."""
    if config.cluster.advertise_url:
        return config.cluster.advertise_url.rstrip("/")
    if config.http.public_url:
        return config.http.public_url.rstrip("/")
    address = config.http.address
    host = socket.gethostname() if address.host in ("0.0.0.0", "::", "") else address.host
    return f"http://{host}:{address.port}"


def setup(app: web.Application, config: Config) -> None:
    """After every other component (it hooks into chat, alerts, the hub and the viewers)."""
    if not config.cluster.redis_url:
        return
    from mediasrv.app.root import HUB
    from mediasrv.community.chat.routes import CHAT
    from mediasrv.community.discovery.routes import NOTIFIER
    from mediasrv.observe.routes import VIEWERS

    hub = app[HUB]
    me = node_id(config)

    def local_streams() -> list[tuple[str, float]]:
        return [(s.name, s.started_at) for s in hub.streams() if "/" not in s.name and s.state is not StreamState.ENDED]

    def local_viewers() -> dict[str, int]:
        tracker = app[VIEWERS]
        _forget_served(app, tracker)
        return {name: audience.concurrent for name, audience in list(tracker.streams.items())}

    def on_hub_event(event) -> None:
        name = event.stream.name
        if "/" in name:  # a transcoded rung, part of its broadcast
            return
        if isinstance(event, StreamStarted):
            bus.stream_started(name, event.stream.started_at)
        elif isinstance(event, StreamEnded) and hub.get(name) is None:
            bus.stream_ended(name)

    bus = ClusterBus(config.cluster, node_id=me, advertise_url=advertise_url(config),
                     local_streams=local_streams, local_viewers=local_viewers)
    fetcher = OriginFetcher(me, cache_bytes=config.cluster.edge_cache_mb * 1024 * 1024)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[CLUSTER], app[EDGE] = bus, fetcher
        await fetcher.start()
        chat = app.get(CHAT)
        if chat is not None:
            chat.relay = bus.publish_chat
            bus.on_chat = chat.deliver_remote
        notifier = app.get(NOTIFIER)
        if notifier is not None:
            notifier.relay = bus.publish_alert
            bus.on_alert = notifier.deliver_remote
        hub.add_listener(on_hub_event)
        await bus.start()
        yield
        hub.remove_listener(on_hub_event)
        if chat is not None:
            chat.relay = None
        if notifier is not None:
            notifier.relay = None
        await bus.stop()
        await fetcher.stop()

    app.cleanup_ctx.append(lifecycle)


def _forget_served(app: web.Application, tracker) -> None:
    """Drop the audiences of other nodes' streams that left the directory and have no
    viewer left (the monitor forgets those of this node's broadcasts)."""
    from mediasrv.app.root import HUB
    from mediasrv.observe.routes import MONITOR

    monitor = app.get(MONITOR)
    for name, audience in list(tracker.streams.items()):
        if (audience.concurrent == 0 and app[HUB].get(name) is None and app[CLUSTER].origin(name) is None
                and (monitor is None or name not in monitor.streams)):
            tracker.forget(name)


def origin_of(app: web.Application, name: str) -> DirectoryEntry | None:
    """The directory entry of ``name`` when another node ingests it and it is not live here."""
    bus = app.get(CLUSTER)
    if bus is None:
        return None
    from mediasrv.app.root import HUB

    if app[HUB].get(name) is not None:
        return None
    return bus.origin(name)


def viewers_total(app: web.Application, name: str, local: int) -> int:
    """Viewers of ``name`` on every node (``local`` without a cluster)."""
    bus = app.get(CLUSTER)
    return local if bus is None else bus.total_viewers(name, local)


def local_viewers(app: web.Application, name: str) -> int:
    from mediasrv.observe.routes import VIEWERS

    audience = app[VIEWERS].streams.get(name)
    return audience.concurrent if audience is not None else 0


# --- serving other nodes' streams ------------------------------------------------------------

def _bad_gateway() -> web.Response:
    from mediasrv.delivery.routes import CORS, ERROR_CACHE

    return web.Response(status=502, text="the stream's origin node did not answer\n",
                        headers={**CORS, "Cache-Control": ERROR_CACHE})


def _passed_error(fetched) -> web.Response:
    from mediasrv.delivery.routes import CORS, ERROR_CACHE

    return web.Response(status=fetched.status, body=fetched.body,
                        headers={**CORS, "Cache-Control": ERROR_CACHE, "Content-Type": "text/plain; charset=utf-8"})


async def edge_master(request: web.Request, origin: DirectoryEntry, name: str) -> web.StreamResponse:
    """The master playlist of another node's stream, with this node's session token."""
    from mediasrv.delivery.routes import MASTER_WITH_TOKEN_CACHE, _client, _playlist
    from mediasrv.observe.routes import VIEWERS

    try:
        fetched = await request.app[EDGE].playlist(origin.url, f"/live/{name}/index.m3u8", {}, blocking=False)
    except OriginError:
        return _bad_gateway()
    if fetched.status != 200:
        return _passed_error(fetched)
    viewers = request.app.get(VIEWERS)
    if viewers is None or EDGE_HEADER in request.headers:
        return _playlist(request, fetched.body)
    token = viewers.new_token()
    viewers.touch(name, token, client=_client(request), now=time.time())
    # Variant URIs are the lines that are not tags (RFC 8216 §4.3.4.2): each gets the token.
    lines = fetched.body.decode().split("\n")
    text = "\n".join(line if not line or line.startswith("#") else f"{line}?{SESSION_PARAM}={token}"
                     for line in lines)
    return _playlist(request, text.encode(), MASTER_WITH_TOKEN_CACHE)


async def edge_media(request: web.Request, origin: DirectoryEntry, name: str, rendition: str) -> web.StreamResponse:
    """A media playlist of another node's stream; blocking reloads (§6.2.5.2) are passed to
    the origin with their parameters and shared by every viewer asking the same."""
    from mediasrv.delivery.routes import PLAYLIST_CACHE, _count_viewer, _error, _playlist

    try:
        reload = parse_reload_query(request.query)
    except BadReloadQuery:
        return _error(400)
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
        return _bad_gateway()
    if fetched.status != 200:
        return _passed_error(fetched)
    _count_viewer(request, name, rendition, len(fetched.body))
    return _playlist(request, fetched.body, fetched.cache_control or PLAYLIST_CACHE)


async def edge_file(request: web.Request, origin: DirectoryEntry, name: str, rendition: str,
                    file_name: str) -> web.StreamResponse:
    """An init segment, segment or part of another node's stream (cached: immutable)."""
    from mediasrv.delivery.routes import _file_response

    try:
        fetched = await request.app[EDGE].file(origin.url, f"/live/{name}/{rendition}/{file_name}")
    except OriginError:
        return _bad_gateway()
    if fetched.status != 200:
        return _passed_error(fetched)
    return _file_response(request, name, file_name, fetched.body)
