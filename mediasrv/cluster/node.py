"""This node in its cluster (``cluster.redis_url``; docs/cluster.md): its id and URL,
and what the HTTP features ask of the cluster: is a stream another node's, how many
viewers it has on every node.

The composition root (``mediasrv.app``) builds the ``ClusterBus`` and ``OriginFetcher``
and connects them to the chat, the alerts and the hub; without ``cluster.redis_url``
there is no bus and these answer as a single node would.
"""

from __future__ import annotations

import os
import socket

from aiohttp import web

from mediasrv.cluster.bus import DirectoryEntry
from mediasrv.config import Config
from mediasrv.httpkit.keys import CLUSTER, HUB, VIEWERS


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




def origin_of(app: web.Application, name: str) -> DirectoryEntry | None:
    """The directory entry of ``name`` when another node ingests it and it is not live here."""
    bus = app.get(CLUSTER)
    if bus is None:
        return None
    if app[HUB].get(name) is not None:
        return None
    return bus.origin(name)


def viewers_total(app: web.Application, name: str, local: int) -> int:
    """Viewers of ``name`` on every node (``local`` without a cluster)."""
    bus = app.get(CLUSTER)
    return local if bus is None else bus.total_viewers(name, local)


def local_viewers(app: web.Application, name: str) -> int:
    audience = app[VIEWERS].streams.get(name)
    return audience.concurrent if audience is not None else 0
