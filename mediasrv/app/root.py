"""``create_app(config)``: every long-lived component starts and stops here, in order.

Components live under ``web.AppKey``s (no globals) and start in ``cleanup_ctx`` in
dependency order: hub → RTMP listener → HLS service, and stop in reverse.
"""

from __future__ import annotations

import logging
import time
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from mediasrv.config import Config
from mediasrv.hub import Hub
from mediasrv.ingest.publish_auth import PublishAuthorizer
from mediasrv.ingest.rtmp_server import RtmpServer
from mediasrv.transcode import service as transcode

log = logging.getLogger("mediasrv.http")

CONFIG = web.AppKey("config", Config)
HUB = web.AppKey("hub", Hub)
RTMP_SERVER = web.AppKey("rtmp_server", RtmpServer)
CLIENT_SESSION = web.AppKey("client_session", aiohttp.ClientSession)
STARTED_AT = web.AppKey("started_at", float)


def create_app(config: Config, *, rtmp_port: int | None = None) -> web.Application:
    """Build the application. ``rtmp_port`` overrides the configured port (0 = ephemeral)."""
    app = web.Application(client_max_size=config.http.max_body_bytes)
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    hub = Hub(
        reconnect_grace=config.hls.reconnect_grace,
        reader_queue_units=config.hub.reader_queue_units,
        gop_cache_bytes=config.hub.gop_cache_mb * 1024 * 1024,
    )
    app[HUB] = hub
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_rtmp_listener(rtmp_port))

    from mediasrv.cluster import routes as cluster_routes
    from mediasrv.community.accounts import routes as accounts_routes
    from mediasrv.community.chat import routes as chat_routes
    from mediasrv.community.discovery import routes as discovery_routes
    from mediasrv.community.gifts import routes as gifts_routes
    from mediasrv.community.moderation import routes as moderation_routes
    from mediasrv.delivery import routes as hls_routes
    from mediasrv.delivery import streams_routes as api
    from mediasrv.httpkit import openapi
    from mediasrv.observe import routes as stats_routes
    from mediasrv.pages import routes as web_routes
    from mediasrv.recording import links as recording_links
    from mediasrv.recording import routes as vod_routes

    stats_routes.setup_viewers(app, config)
    hls_routes.setup(app, config, hub)
    transcode.setup(app, config, hub)
    stats_routes.setup(app, config, hub)
    accounts_routes.setup(app, config)
    discovery_routes.setup(app, config, hub)
    vod_routes.setup(app, config, hub)
    recording_links.setup(app, config)
    chat_routes.setup(app, config)
    moderation_routes.setup(app, config)
    gifts_routes.setup(app, config)
    cluster_routes.setup(app, config)  # after chat and alerts: it relays them (docs/cluster.md)
    api.setup(app)
    openapi.setup(app)
    web_routes.setup(app, config)
    app.cleanup_ctx.append(_hub_shutdown)
    app.on_shutdown.append(_end_streams)
    return app


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[CLIENT_SESSION] = session
        yield


def _rtmp_listener(port_override: int | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        if not config.cluster.ingest:
            # A pure edge (docs/cluster.md): it serves the cluster's streams, takes no publishers.
            yield
            return
        from mediasrv.community.accounts.routes import ACCOUNTS

        # auth.mode accounts: the accounts component starts later (it needs the store).
        authorizer = PublishAuthorizer(config.auth, app[CLIENT_SESSION], accounts=lambda: app.get(ACCOUNTS))
        server = RtmpServer(config.rtmp, app[HUB], authorizer)
        address = config.rtmp.address
        await server.start(address.host, address.port if port_override is None else port_override)
        tls_address = config.rtmp.tls_address
        if tls_address is not None:
            from mediasrv.tls import rtmp_context

            try:
                await server.start_tls(tls_address.host, tls_address.port, rtmp_context(config))
            except BaseException:
                await server.stop()
                raise
        app[RTMP_SERVER] = server
        yield
        await server.stop()

    return ctx


async def _end_streams(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits (up to its shutdown_timeout) for the requests
    # in flight: ending every stream now answers held blocking reloads and hinted-part
    # requests with the final playlist (EXT-X-ENDLIST), so players stop cleanly rather
    # than meet a closed port. The cleanup below ends anything published since.
    app[HUB].close()


async def _hub_shutdown(app: web.Application) -> AsyncIterator[None]:
    yield
    # First on the way down (cleanup runs in reverse): end every stream so playlists get
    # EXT-X-ENDLIST and readers finish before their services stop.
    app[HUB].close()
