"""Discovery and alerts over HTTP: ``/api/live`` (every auth mode), the following feed,
thumbnails, the per-user SSE feed, and the outgoing webhooks component.

Ranking (``score``), documented in docs/api.md::

    base  = 1 + viewers + 0.5 × average_viewers + log10(1 + followers)
    score = base × 3   if the logged-in viewer follows the creator
            base       otherwise

``viewers`` are the viewers now, ``average_viewers`` the broadcast's average so far (a
stream that holds its audience ranks above a spike), ``followers`` the creator's follower
count (0 outside ``auth.mode: accounts``). Ties: the newer broadcast first, then the name.

Other modules send webhook events with ``send_webhook(app, "broadcast.saved", data)``.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import AsyncIterator

from aiohttp import web

from mediasrv.config import STREAM_NAME_RE, Config
from mediasrv.httpkit import validate
from mediasrv.community.accounts.routes import ACCOUNTS, cover_url, optional_user, require_user
from mediasrv.delivery.streams_routes import public_base_url
from mediasrv.app.root import CLIENT_SESSION
from mediasrv.community.chat.routes import TokenQuery
from mediasrv.community.discovery import models as m
from mediasrv.httpkit.body import read_query, respond
from mediasrv.httpkit.models import STREAM_NAME_PARAM, SseEvent
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError
from mediasrv.hub import Hub
from mediasrv.community.alerts.service import AlertHub, GoLiveNotifier, iso
from mediasrv.community.discovery.thumbnails import ThumbnailService
from mediasrv.community.alerts.webhooks import WebhookSender

THUMBNAILS = web.AppKey("thumbnails", ThumbnailService)
ALERTS = web.AppKey("alerts", AlertHub)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)
NOTIFIER = web.AppKey("golive_notifier", GoLiveNotifier)

FOLLOW_BOOST = 3.0
SSE_KEEPALIVE = 15.0


def score(viewers: int, average_viewers: float, followers: int, followed: bool) -> float:
    """The discovery ranking score (see the module docstring)."""
    base = 1.0 + viewers + 0.5 * average_viewers + math.log10(1 + max(0, followers))
    return round(base * (FOLLOW_BOOST if followed else 1.0), 4)


def send_webhook(app: web.Application, event: str, data: dict) -> str | None:
    """Queue a signed webhook ``event`` (e.g. ``broadcast.saved``) to every configured URL.
    Never blocks or raises; returns the delivery id, None when webhooks are off."""
    sender = app.get(WEBHOOKS)
    return sender.send(event, data) if sender is not None else None


def configured_base_url(config: Config) -> str:
    if config.http.public_url:
        return config.http.public_url.rstrip("/")
    address = config.http.address
    host = "localhost" if address.host in ("0.0.0.0", "::", "") else address.host
    return f"http://{host}:{address.port}"


# --- handlers -----------------------------------------------------------------------------

async def _items(request: web.Request, *, following_only: bool) -> list[dict]:
    from mediasrv.cluster import routes as cluster_routes
    from mediasrv.app.root import CONFIG, HUB
    from mediasrv.observe.routes import MONITOR

    app = request.app
    limit = read_query(request, m.LiveQuery).limit
    user = await (require_user(request) if following_only else optional_user(request))
    accounts_mode = app[CONFIG].auth.mode == "accounts"
    streams = [s for s in app[HUB].streams() if "/" not in s.name]
    # In a cluster, the streams other nodes ingest are listed too (served here as well).
    bus = app.get(cluster_routes.CLUSTER)
    remote = [e for e in bus.remote_streams() if app[HUB].get(e.name) is None] if bus is not None else []
    service = app.get(ACCOUNTS)
    cards = {}
    if accounts_mode and service is not None and (streams or remote):
        cards = await asyncio.to_thread(service.store.creator_cards, [s.name for s in streams] + [e.name for e in remote])
    followed: set[int] = set()
    if user is not None and cards:
        followed = await asyncio.to_thread(service.store.followed_among, user.id, [c.user.id for c in cards.values()])
    monitor = app.get(MONITOR)
    thumbnails = app.get(THUMBNAILS)
    base = public_base_url(request)
    items = []
    for stream in [*map(_Listed.local, streams), *map(_Listed.other_node, remote)]:
        card = cards.get(stream.name)
        is_followed = card is not None and card.user.id in followed
        if following_only and not is_followed:
            continue
        health = monitor.streams.get(stream.name) if monitor is not None and not stream.remote else None
        if health is not None and health.stream is not stream.stream:
            health = None
        viewers = health.audience.concurrent if health is not None else 0
        if stream.remote:
            viewers = cluster_routes.local_viewers(app, stream.name)
        viewers = cluster_routes.viewers_total(app, stream.name, viewers)
        average = health.average_viewers if health is not None else 0.0
        thumb = thumbnails.get(stream.name) if thumbnails is not None else None
        thumbnail_url = f"{base}/api/live/{stream.name}/thumbnail?n={thumb.number}" if thumb else None
        cover = None
        creator = None
        title = stream.name
        if card is not None:
            cover = cover_url(card.user, card.settings)
            cover = f"{base}{cover}" if cover else None
            creator = {"handle": card.user.handle, "display_name": card.user.display_name,
                       "followers": card.followers, "profile_url": f"{base}/api/users/{card.user.handle}"}
            title = card.settings.title or card.user.display_name
        items.append({
            "name": stream.name,
            "title": title,
            "creator": creator,
            "viewers": viewers,
            "started_at": iso(stream.started_at),
            "cover_url": cover,
            "thumbnail_url": thumbnail_url,
            "image_url": cover or thumbnail_url,
            "playback_url": f"{base}/live/{stream.name}/index.m3u8",
            "followed": is_followed,
            "score": score(viewers, average, card.followers if card else 0, is_followed),
            "_started": stream.started_at,
        })
    items.sort(key=lambda item: (-item["score"], -item["_started"], item["name"]))
    for item in items:
        del item["_started"]
    return items[:limit]


class _Listed:
    """A stream in the listing: live here (``stream``), or ingested by another node."""

    __slots__ = ("name", "started_at", "stream", "remote")

    def __init__(self, name: str, started_at: float, stream, remote: bool) -> None:
        self.name, self.started_at, self.stream, self.remote = name, started_at, stream, remote

    @classmethod
    def local(cls, stream) -> "_Listed":
        return cls(stream.name, stream.started_at, stream, False)

    @classmethod
    def other_node(cls, entry) -> "_Listed":
        return cls(entry.name, entry.started_at, None, True)


async def live(request: web.Request) -> web.Response:
    items = await _items(request, following_only=False)
    return respond(m.LiveListing, {"streams": items}, headers={"Cache-Control": "no-store"})


async def live_following(request: web.Request) -> web.Response:
    items = await _items(request, following_only=True)
    return respond(m.LiveListing, {"streams": items}, headers={"Cache-Control": "no-store"})


async def thumbnail(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid stream name")
    thumbnails = request.app.get(THUMBNAILS)
    thumb = thumbnails.get(name) if thumbnails is not None else None
    if thumb is None:
        raise ApiError(404, "no thumbnail (yet) for this stream")
    etag = f'"{int(thumb.taken_at)}-{thumb.number}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=thumb.jpeg, content_type="image/jpeg", headers={
        "Cache-Control": "public, max-age=5", "ETag": etag, "X-Content-Type-Options": "nosniff"})


async def my_events(request: web.Request) -> web.StreamResponse:
    """SSE: ``ready`` once, then ``stream.started`` when someone the user follows goes live,
    and ``recording.pending`` / ``.saved`` / ``.failed`` of the user's own recordings."""
    user = await require_user(request, query_token=True)
    alerts = request.app.get(ALERTS)
    if alerts is None:
        raise ApiError(503, "alerts are not available yet")
    queue = alerts.subscribe(user.id)
    try:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(f"event: ready\ndata: {json.dumps({'handle': user.handle})}\n\n".encode())
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if item is None:
                break
            event, data = item
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        alerts.unsubscribe(user.id, queue)
    return response


# --- wiring -------------------------------------------------------------------------------

def setup(app: web.Application, config: Config, hub: Hub) -> None:
    """After ``accounts_routes.setup``."""
    from mediasrv.observe.routes import STORE

    validate.install(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        thumbnails = ThumbnailService(hub, interval=config.thumbnails.interval, width=config.thumbnails.width)
        webhooks = WebhookSender(config.webhooks, lambda: app.get(CLIENT_SESSION))
        alerts = AlertHub()
        notifier = GoLiveNotifier(hub, app[STORE], alerts, webhooks, accounts_mode=config.auth.mode == "accounts",
                                  public_url=lambda: configured_base_url(config))
        app[THUMBNAILS], app[WEBHOOKS], app[ALERTS], app[NOTIFIER] = thumbnails, webhooks, alerts, notifier
        await thumbnails.start()
        await webhooks.start()
        await notifier.start()
        yield
        alerts.close()
        await notifier.stop()
        await webhooks.stop()
        await thumbnails.stop()

    async def end_feeds(app: web.Application) -> None:
        # on_shutdown runs before the server waits for open requests: end the SSE feeds
        # now so shutdown does not wait for them.
        alerts = app.get(ALERTS)
        if alerts is not None:
            alerts.close()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(end_feeds)
    _routes(app)


def _routes(app: web.Application) -> None:
    ranking = ("Ranked by score = (1 + viewers + 0.5 × average_viewers + log10(1 + followers)) × "
               "(3 if you follow the creator else 1); ties: newest first.")
    add_route(app, "GET", "/api/live", live, op(
        "Live streams, ranked", tag="discovery", auth="optional", query=m.LiveQuery, ok_schema=m.LiveListing,
        description=ranking, errors=[400]))
    add_route(app, "GET", "/api/live/following", live_following, op(
        "Live streams of the creators you follow, ranked", tag="discovery", auth="required", query=m.LiveQuery,
        ok_schema=m.LiveListing, description=ranking, errors=[400]))
    add_route(app, "GET", "/api/live/{name}/thumbnail", thumbnail, op(
        "The latest thumbnail of a live stream (JPEG)", tag="discovery",
        params=[path_param("name", "public stream name", STREAM_NAME_PARAM)],
        ok_content={"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}, errors=[400, 404]))
    add_route(app, "GET", "/api/me/events", my_events, op(
        "Server-Sent Events: `stream.started` when someone you follow goes live", tag="discovery",
        auth="required",
        description="Browsers' EventSource cannot send headers: the token may be given as ?access_token=. "
                    "The first event is `ready`; a comment line keeps the connection open every 15 s.",
        query=TokenQuery, ok_content={"text/event-stream": {"schema": SseEvent}}))
