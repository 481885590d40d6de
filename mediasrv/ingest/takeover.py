"""Who may take over a live stream name in ``auth.mode: open``.

A publish of a name that is live (or orphaned within the reconnect grace) continues that
broadcast: that is how an encoder reconnecting after a network drop keeps its stream
(the hub kicks the stale connection). In open mode the name is the only credential, so
without a check anyone could cut a streamer off by publishing the same name. The rule:
in open mode a publish by *name* may take over only from the address the current
publisher came from (the same encoder, reconnecting). A creator's secret key (``sk_…``)
proves ownership and takes over from anywhere, as in ``accounts`` mode; the other modes
(``keys``, ``webhook``, ``accounts``) authenticate the publisher, so they keep the plain
takeover.

RTMP and WHIP both ask ``takeover_refusal`` before ``Hub.publish``.
"""

from __future__ import annotations

from mediasrv.hub import Hub
from mediasrv.ports import looks_like_stream_key

#: What a refused publisher is told (RTMP: with ``NetStream.Publish.BadName``).
REFUSAL = "this stream name is live from another address; choose another name"


#: The stream attribute both ingests set: the current publisher's host (no port).
PUBLISHER_HOST = "publisher_host"


def takeover_refusal(hub: Hub, *, mode: str, name: str, key: str, host: str) -> str | None:
    """Why a publish of ``name`` (asked with ``key``) from ``host`` (an IP address, no
    port) may not take over the broadcast of that name; None when it may (no such
    broadcast, another mode, a creator's key, or the current publisher's own host)."""
    if mode != "open" or looks_like_stream_key(key):
        return None
    stream = hub.get(name)
    if stream is None or stream.ended:
        return None
    current = stream.attributes.get(PUBLISHER_HOST)
    if not isinstance(current, str) or not current or current == host:
        return None
    return REFUSAL
