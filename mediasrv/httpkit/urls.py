"""The URLs the API hands out: this server's public base, its RTMP base, the configured base."""

from __future__ import annotations

from aiohttp import web

from mediasrv.config import Config
from mediasrv.httpkit.keys import CONFIG, RTMP_SERVER


def public_base_url(request: web.Request) -> str:
    configured = request.app[CONFIG].http.public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def rtmp_base_url(request: web.Request) -> str:
    config = request.app[CONFIG]
    host = request.url.host or "localhost"
    server = request.app.get(RTMP_SERVER)
    port = server.port if server is not None else config.rtmp.address.port
    return f"rtmp://{host}:{port}/{config.rtmp.app}"


def configured_base_url(config: Config) -> str:
    if config.http.public_url:
        return config.http.public_url.rstrip("/")
    address = config.http.address
    host = "localhost" if address.host in ("0.0.0.0", "::", "") else address.host
    return f"http://{host}:{address.port}"
