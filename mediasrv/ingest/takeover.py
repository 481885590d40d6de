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

RTMP and WHIP both ask ``takeover_refusal`` before ``Hub.publish``. WHIP asks twice: when
the offer is POSTed (a clear 409) and again when the session joins the hub at its first
decoded frame (``join_refusal``), since ICE and DTLS take a moment in between during which
another address may have started publishing the name.
"""

from __future__ import annotations

import ipaddress

from mediasrv.hub import Hub
from mediasrv.ports import looks_like_stream_key

#: What a refused publisher is told (RTMP: with ``NetStream.Publish.BadName``).
REFUSAL = "this stream name is live from another address; choose another name"


#: The stream attribute both ingests set: the current publisher's host (no port).
PUBLISHER_HOST = "publisher_host"


def host_key(address: str) -> str:
    """``address`` as compared: an IPv4-mapped IPv6 address (a dual-stack listener's
    ``::ffff:1.2.3.4``) is its IPv4 address, so RTMP and WHIP agree."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def takeover_refusal(hub: Hub, *, mode: str, name: str, key: str, host: str) -> str | None:
    """Why a publish of ``name`` (asked with ``key``) from ``host`` (an IP address, no
    port) may not take over the broadcast of that name; None when it may (no such
    broadcast, another mode, a creator's key, or the current publisher's own host)."""
    return join_refusal(hub, mode=mode, name=name, proves_owner=looks_like_stream_key(key), host=host)


def join_refusal(hub: Hub, *, mode: str, name: str, proves_owner: bool, host: str) -> str | None:
    """``takeover_refusal`` for a publisher whose key is no longer at hand: ``proves_owner``
    says whether it was a creator's key (a WHIP session joining the hub)."""
    if mode != "open" or proves_owner:
        return None
    stream = hub.get(name)
    if stream is None or stream.ended:
        return None
    current = stream.attributes.get(PUBLISHER_HOST)
    if not isinstance(current, str) or not current or host_key(current) == host_key(host):
        return None
    return REFUSAL
