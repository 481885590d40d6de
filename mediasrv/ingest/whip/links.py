"""ICE servers as RFC 9725 §4.6 ``Link`` headers (``rel="ice-server"``).

A TURN server's password is a secret: it is given only to a request that bears a stream
key the server takes (the ``201`` of a POST; an ``OPTIONS`` with ``Authorization: Bearer
KEY``, checked without publishing), never to an anonymous ``OPTIONS``, which anyone may
send (a browser's CORS preflight carries no Authorization header at all).
"""

from __future__ import annotations

from typing import Iterable

from mediasrv.config import IceServerConfig


def link_values(servers: Iterable[IceServerConfig], *, with_credentials: bool) -> list[str]:
    """One ``Link`` header value per URL. Without ``with_credentials`` the servers that
    need a credential are left out."""
    values = []
    for server in servers:
        if server.has_credentials and not with_credentials:
            continue
        params = ""
        if server.username:
            params += f'; username="{server.username}"'
        if server.credential:
            params += f'; credential="{server.credential}"; credential-type="password"'
        for url in server.urls:
            values.append(f'<{url}>; rel="ice-server"{params}')
    return values
