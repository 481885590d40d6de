"""``create_app(config)``: the composition root of a node.

It builds what routes need from the first request (the hub, the viewer tracker, the HLS
service), adds every feature's routes, and starts the rest in one ``cleanup_ctx``
(``Components``): services in dependency order, the RTMP listeners last, everything
stopped in reverse. aiohttp state goes through the keys of ``mediasrv.httpkit.keys``.
The HTTP listener itself is started by the caller (``mediasrv serve``) once the
application has started: it is the last listener of all.
"""

from __future__ import annotations

import time
from typing import AsyncIterator, Callable

from aiohttp import web

from mediasrv.app.components import Clocks, Components
from mediasrv.community.accounts import access_routes
from mediasrv.community.accounts import reach_routes
from mediasrv.community.accounts import routes as accounts_routes
from mediasrv.community.accounts.http import optional_user
from mediasrv.community.accounts.relations import Relations
from mediasrv.community.chat import routes as chat_routes
from mediasrv.community.discovery import routes as discovery_routes
from mediasrv.community.gifts import routes as gifts_routes
from mediasrv.community.live import routes as live_routes
from mediasrv.community.live.gate import GrantGate
from mediasrv.community.live.grants import PlaybackGrants
from mediasrv.community.moderation import routes as moderation_routes
from mediasrv.community.moderation import user_reports
from mediasrv.community.moderation.insight import analytics_view
from mediasrv.config import Config
from mediasrv.delivery import media_seen
from mediasrv.delivery import routes as hls_routes
from mediasrv.delivery import streams_routes
from mediasrv.delivery.hls_service import HlsService
from mediasrv.httpkit.url_signing import UrlSigner, load_or_create_secret
from mediasrv.httpkit import openapi
from mediasrv.httpkit.forwarded import parse_networks
from mediasrv.httpkit.keys import (
    ALERTS,
    ANALYTICS_ACCESS,
    BLOCKS,
    CHAT,
    CHAT_SOCKETS,
    CONFIG,
    HLS_SERVICE,
    HTTP_STATS,
    HUB,
    PLAYBACK,
    PROFILE_PARTS,
    REQUESTER,
    STARTED_AT,
    TRUSTED_PROXIES,
    URL_SIGNER,
    VIEWERS,
)
from mediasrv.hub import Hub
from mediasrv.ingest.whip import routes as whip_routes
from mediasrv.observe import routes as stats_routes
from mediasrv.httpkit.stats import HttpStats
from mediasrv.observe.viewers import ViewerTracker
from mediasrv.pages import routes as web_routes
from mediasrv.recording import links as recording_links
from mediasrv.recording import routes as vod_routes

#: The composition root's components: only the root and tests read it (features read the
#: keys of ``httpkit.keys``). Kept here so that ``httpkit.keys`` names no type of ``app``.
COMPONENTS = web.AppKey("components", Components)


def create_app(config: Config, *, rtmp_port: int | None = None, clock: Callable[[], float] = time.time,
               monotonic: Callable[[], float] = time.monotonic) -> web.Application:
    """Build the application. ``rtmp_port`` overrides the configured port (0 = ephemeral);
    ``clock`` and ``monotonic`` are the clocks every component reads."""
    app = web.Application(client_max_size=config.http.max_body_bytes)
    hub = Hub(
        reconnect_grace=config.hls.reconnect_grace,
        reader_queue_units=config.hub.reader_queue_units,
        gop_cache_bytes=config.hub.gop_cache_mb * 1024 * 1024,
    )
    viewers = ViewerTracker(idle_timeout=config.viewers.idle_timeout, max_per_address=config.viewers.max_per_address)
    hls = HlsService(config.hls, hub, clock=clock)
    # Who blocked whom (ports.BlockList): made here so that the playback gate can hold it
    # from the first request; loaded from the store when the components start.
    relations = Relations(clock=clock, on_blocked=lambda owner, other: components.user_blocked(owner, other))
    playback = GrantGate(PlaybackGrants(config.live.playback_secret, ttl=config.live.grant_seconds, clock=clock),
                         blocks=relations)  # a blocked viewer may not watch the blocker's lives
    components = Components(config, Clocks(wall=clock, monotonic=monotonic), hub, viewers, hls, playback,
                            relations=relations, rtmp_port=rtmp_port)
    app[CONFIG] = config
    app[STARTED_AT] = clock()
    app[HUB] = hub
    app[VIEWERS] = viewers
    app[HLS_SERVICE] = hls
    app[PLAYBACK] = playback
    app[BLOCKS] = relations
    app[REQUESTER] = optional_user
    app[ANALYTICS_ACCESS] = analytics_view
    app[HTTP_STATS] = HttpStats()
    app[TRUSTED_PROXIES] = parse_networks(config.http.trusted_proxies)
    app[PROFILE_PARTS] = []
    app[CHAT_SOCKETS] = set()
    app[COMPONENTS] = components

    stats_routes.setup(app)
    # The secret is read (or generated into the data directory) at the first signed URI.
    signer = UrlSigner(lambda: load_or_create_secret(config.hls.url_signing_secret, config.data_path),
                       ttl=config.hls.url_signing_seconds, clock=clock)
    app[URL_SIGNER] = signer
    hls_routes.setup(app, hls, signer)
    media_seen.setup(app)  # issue 18: a cache in front tells of its viewers' media requests
    accounts_routes.setup(app)
    access_routes.setup(app)
    reach_routes.setup(app)
    discovery_routes.setup(app)
    vod_routes.setup(app)
    recording_links.setup(app, config)
    chat_routes.setup(app, config)
    moderation_routes.setup(app, config)
    user_reports.setup(app, config)
    gifts_routes.setup(app, config)
    live_routes.setup(app)
    streams_routes.setup(app)
    whip_routes.setup(app)
    openapi.setup(app)
    web_routes.setup(app, config)

    app.cleanup_ctx.append(_run_components)
    app.on_shutdown.append(_end_streams)
    return app


async def _run_components(app: web.Application) -> AsyncIterator[None]:
    components = app[COMPONENTS]
    started = await components.start()
    for key, component in started.items():
        app[key] = component
    try:
        yield
    finally:
        await components.stop()


async def _end_streams(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits (up to its shutdown_timeout) for the requests
    # in flight: ending every stream now answers held blocking reloads and hinted-part
    # requests with the final playlist (EXT-X-ENDLIST), so players stop cleanly rather
    # than meet a closed port; the open chats and go-live feeds end too. The components'
    # stop ends anything published since.
    app[HUB].close()
    chat = app.get(CHAT)
    if chat is not None:
        chat.close_all()
    alerts = app.get(ALERTS)
    if alerts is not None:
        alerts.close()
