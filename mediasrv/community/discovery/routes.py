"""Discovery and alerts over HTTP: ``/api/live`` (every auth mode), the following feed,
thumbnails, the per-user SSE feed, and the outgoing webhooks component.

Ranking (``score``), documented in docs/api.md::

    base  = 1 + viewers + 0.5 × average_viewers + log10(1 + followers)
    score = base × 3   if the logged-in viewer follows the creator
            base       otherwise

``viewers`` are the viewers now, ``average_viewers`` the broadcast's average so far (a
stream that holds its audience ranks above a spike), ``followers`` the creator's follower
count (0 outside ``auth.mode: accounts``). Ties: the newer broadcast first, then the name.

A private broadcast (a creator's backstage) is in none of these: not listed, not live,
no thumbnail, until its creator makes it public; its ``started_at`` is then when it went
public. A followers-only live is listed (``visibility: followers``) to the creator's
signed-in followers who may watch it (the live control's rule: not one the creator
blocked), in ``/api/live`` and the following feed; unlisted and private ones never are.

Other components send webhook events through the ``WebhookSender`` they are given.
"""

from __future__ import annotations

import asyncio
import json
import math

from aiohttp import web

from mediasrv.cluster import node as cluster_node
from mediasrv.community.accounts.http import cover_url, optional_user, require_user
from mediasrv.community.alerts.service import iso
from mediasrv.community.discovery import models as m
from mediasrv.config import STREAM_NAME_RE
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_query, respond
from mediasrv.httpkit.keys import ACCOUNTS, ALERTS, CLUSTER, CONFIG, HUB, LIVE, MONITOR, PLAYBACK, THUMBNAILS
from mediasrv.httpkit.models import STREAM_NAME_PARAM, SseEvent, TokenQuery
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.urls import public_base_url
from mediasrv.httpkit.validate import ApiError
from mediasrv.media.types import TrackKind, orientation
from mediasrv.ports import PLAYBACK_GRANT_PARAM, playback_access











FOLLOW_BOOST = 3.0
SSE_KEEPALIVE = 15.0


def score(viewers: int, average_viewers: float, followers: int, followed: bool) -> float:
    """The discovery ranking score (see the module docstring)."""
    base = 1.0 + viewers + 0.5 * average_viewers + math.log10(1 + max(0, followers))
    return round(base * (FOLLOW_BOOST if followed else 1.0), 4)






def picture(stream) -> dict:
    """The ``width``, ``height`` and ``orientation`` of a live stream's source video (all
    None without one: no video track yet, or a stream another node ingests), so a page
    shapes a portrait stream's player and card before its video loads."""
    track = stream.tracks.get(TrackKind.VIDEO) if stream is not None else None
    if track is None or track.width <= 0 or track.height <= 0:
        return {"width": None, "height": None, "orientation": None}
    return {"width": track.width, "height": track.height, "orientation": orientation(track.width, track.height)}


# --- handlers -----------------------------------------------------------------------------

async def _items(request: web.Request, *, following_only: bool) -> list[dict]:

    app = request.app
    limit = read_query(request, m.LiveQuery).limit
    user = await (require_user(request) if following_only else optional_user(request))
    accounts_mode = app[CONFIG].auth.mode == "accounts"
    streams = [s for s in app[HUB].public_streams() if "/" not in s.name]
    # A followers-only live is listed to the creator's signed-in followers (who may watch
    # it: a follower the creator blocked may not), never to anyone else (issue 18).
    followers_only = ([s for s in app[HUB].streams() if "/" not in s.name and _followers_only(s)]
                      if user is not None and accounts_mode else [])
    streams += followers_only
    for_followers = {s.name for s in followers_only}
    # In a cluster, the streams other nodes ingest are listed too (served here as well).
    bus = app.get(CLUSTER)
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
        if stream.name in for_followers and not (
                is_followed and await _may_watch(app, stream.name, user)):
            continue
        if user is None and stream.stream is not None and stream.stream.mature:
            continue  # an 18+ live is listed only for signed-in viewers (issue 18)
        health = monitor.streams.get(stream.name) if monitor is not None and not stream.remote else None
        if health is not None and health.stream is not stream.stream:
            health = None
        viewers = health.audience.concurrent if health is not None else 0
        if stream.remote:
            viewers = cluster_node.local_viewers(app, stream.name)
        viewers = cluster_node.viewers_total(app, stream.name, viewers)
        average = health.average_viewers if health is not None else 0.0
        # (A followers-only live's thumbnail needs a grant: its card shows the cover.)
        thumb = thumbnails.get(stream.name) if thumbnails is not None and stream.name not in for_followers else None
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
        # A creator who hides their viewer count: null for everyone but them and operators
        # (the score, which would tell it, too; the ranking still uses it).
        hidden = (card is not None and service is not None and service.privacy.hidden(stream.name)
                  and not (user is not None and (user.id == card.user.id or user.at_least("moderator"))))
        ranking = score(viewers, average, card.followers if card else 0, is_followed)
        items.append({
            "name": stream.name,
            "visibility": "followers" if stream.name in for_followers else "public",
            "title": title,
            "creator": creator,
            "viewers": None if hidden else viewers,
            "started_at": iso(stream.started_at),
            "cover_url": cover,
            "thumbnail_url": thumbnail_url,
            "image_url": cover or thumbnail_url,
            "playback_url": f"{base}/live/{stream.name}/index.m3u8",
            "followed": is_followed,
            "score": None if hidden else ranking,
            **picture(stream.stream),
            "_started": stream.started_at,
            "_score": ranking,
        })
    items.sort(key=lambda item: (-item["_score"], -item["_started"], item["name"]))
    for item in items:
        del item["_started"], item["_score"]
    return items[:limit]


def _followers_only(stream) -> bool:
    """A live (not a backstage) whose visibility is ``followers``."""
    return not stream.private and stream.visibility == "followers"


async def _may_watch(app: web.Application, name: str, user) -> bool:
    """The live control's rule for ``user`` and the live of ``name`` (no live control: no)."""
    live_control = app.get(LIVE)
    return live_control is not None and await live_control.may_watch(name, user)


class _Listed:
    """A stream in the listing: live here (``stream``), or ingested by another node."""

    __slots__ = ("name", "started_at", "stream", "remote")

    def __init__(self, name: str, started_at: float, stream, remote: bool) -> None:
        self.name, self.started_at, self.stream, self.remote = name, started_at, stream, remote

    @classmethod
    def local(cls, stream) -> "_Listed":
        return cls(stream.name, stream.public_at if stream.public_at is not None else stream.started_at, stream, False)

    @classmethod
    def other_node(cls, entry) -> "_Listed":
        return cls(entry.name, entry.started_at, None, True)


async def live(request: web.Request) -> web.Response:
    items = await _items(request, following_only=False)
    return respond(m.LiveListing, {"streams": items}, headers={"Cache-Control": "no-store"})


async def live_following(request: web.Request) -> web.Response:
    items = await _items(request, following_only=True)
    return respond(m.LiveListing, {"streams": items}, headers={"Cache-Control": "no-store"})


async def channels(request: web.Request) -> web.Response:
    """The creators' channels (most followed first): what the discovery page shows besides
    the lives, so a visitor has somewhere to go when nobody is live."""
    limit = read_query(request, m.ChannelQuery).limit
    service = request.app.get(ACCOUNTS)
    cards = [] if service is None else await asyncio.to_thread(service.store.list_creators, limit)
    hub = request.app[HUB]
    base = public_base_url(request)
    items = []
    for card in cards:
        cover = cover_url(card.user, card.settings)
        items.append({"handle": card.user.handle, "display_name": card.user.display_name,
                      "title": card.settings.title, "followers": card.followers,
                      "live": hub.get_public(card.user.handle) is not None,
                      "cover_url": f"{base}{cover}" if cover else None})
    return respond(m.ChannelListing, {"channels": items}, headers={"Cache-Control": "no-store"})


async def live_status(request: web.Request) -> web.Response:
    """Is NAME live? 200 ``{live: false}`` when not: the studio and the offline channel page
    ask this while they wait, quietly."""
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid stream name")
    stream = request.app[HUB].get_public(name)
    bus = request.app.get(CLUSTER)
    live = stream is not None or (bus is not None and bus.origin(name) is not None)
    service = request.app.get(ACCOUNTS)
    user = await service.get_user(name.lower()) if service is not None else None
    return respond(m.LiveStatus, {
        "name": name, "live": live,
        "started_at": iso(stream.public_at or stream.started_at) if stream is not None else None,
        "creator": user.handle if user is not None else None,
        **await _restricted_for_asker(request, name),
        **picture(stream),
    }, headers={"Cache-Control": "no-store"})


async def _restricted_for_asker(request: web.Request, name: str) -> dict:
    """What the asker may know of a live of ``name`` that is not public (the live control's
    rule): ``backstage`` and ``may_watch`` when they may watch it (then they ask
    ``GET /api/live/NAME/playback``); ``visibility`` when they may watch it, or it is
    followers-only (so the page says "follow to watch") or unlisted (they have its link).
    A private or backstage live they may not watch is not revealed. An invalid token
    counts as nobody here (this answer is anyone's, it is not where a client learns its
    token expired)."""
    out = {"backstage": False, "may_watch": False, "visibility": None, "mature": False}
    stream = request.app[HUB].get(name)
    live_control = request.app.get(LIVE)
    if stream is not None and not stream.private:
        out["mature"] = stream.mature  # a public 18+ live: the page asks the viewer's age first
    if stream is None or not stream.restricted or live_control is None:
        return out
    try:
        asker = await optional_user(request)
    except ApiError:
        asker = None
    may_watch = await live_control.may_watch(name, asker)
    if may_watch or (not stream.private and stream.visibility in ("followers", "unlisted")):
        # (A backstage of a public live: no visibility to tell, ``backstage`` says it.)
        out.update(visibility=None if stream.visibility == "public" else stream.visibility,
                   mature=stream.mature, may_watch=may_watch,
                   backstage=stream.private and may_watch)
    return out


async def thumbnail(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid stream name")
    thumbnails = request.app.get(THUMBNAILS)
    live = request.app[HUB].get(name)
    private = live is not None and live.private  # never the picture of a backstage
    if live is not None and live.restricted and not private:
        # A live that is not public: its picture for who may watch it (a grant, ``?pt=``, as
        # for its stats), the 404 of no thumbnail for anyone else.
        gate = request.app.get(PLAYBACK)
        private = not playback_access(gate, live, request.query.get(PLAYBACK_GRANT_PARAM, "")).allowed
    thumb = thumbnails.get(name) if thumbnails is not None and not private else None
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

def setup(app: web.Application) -> None:
    """The discovery and go-live feed routes; thumbnails, alerts and webhooks are the
    composition root's."""
    validate.install(app)
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
    add_route(app, "GET", "/api/channels", channels, op(
        "Creators' channels, most followed first", tag="discovery", query=m.ChannelQuery,
        ok_schema=m.ChannelListing, errors=[400],
        description="Accounts with the creator role (empty without accounts), then the newest; `live` says "
                    "whether the channel is live on this node. Their saved broadcasts: "
                    "`GET /api/recordings?state=saved` or the profile's `vods`."))
    add_route(app, "GET", "/api/live/{name}/status", live_status, op(
        "Whether a stream is live (200 either way)", tag="discovery", auth="optional",
        params=[path_param("name", "public stream name", STREAM_NAME_PARAM)], ok_schema=m.LiveStatus,
        errors=[400],
        description="For pages that wait for a stream to start: `live: false` rather than the 404 of "
                    "`GET /api/streams/NAME`. `creator`: the account whose channel this name is, if any. "
                    "With a login token, `backstage: true` tells the creator, their moderators and operators "
                    "that the name is live privately (the watch page then plays it with a grant)."))
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
