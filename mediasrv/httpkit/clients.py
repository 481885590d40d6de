"""Who a request comes from: the peer, or behind a trusted reverse proxy the client that
proxy names (``http.trusted_proxies``)."""

from __future__ import annotations

from aiohttp import web

from mediasrv.httpkit.forwarded import client_address, is_trusted
from mediasrv.httpkit.keys import TRUSTED_PROXIES


def viewer_address(request: web.Request) -> str:
    """The viewer's address: the peer, or behind a trusted proxy the client it names."""
    peer = request.remote or ""
    trusted = request.app.get(TRUSTED_PROXIES)
    if not trusted:
        return peer
    return client_address(peer, request.headers.get("X-Forwarded-For"), trusted)


def from_trusted_proxy(request: web.Request) -> bool:
    """Whether the peer of ``request`` is a trusted proxy (``http.trusted_proxies``)."""
    trusted = request.app.get(TRUSTED_PROXIES)
    return bool(trusted) and is_trusted(request.remote or "", trusted)
