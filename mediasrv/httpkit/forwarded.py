"""The client's address behind trusted reverse proxies (``http.trusted_proxies``).

Behind nginx or a CDN every request comes from the proxy; the proxy names the client in
``X-Forwarded-For`` (each hop appends the address it received the request from). That
header is only believed when the peer is a trusted proxy, and it is read from the right:
hops that are themselves trusted are skipped, and the first untrusted address is the
client (the left part of the header is whatever the client chose to send, so it is never
taken on trust; RFC 7239 §7.4 makes the same point for ``Forwarded``).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str], key: str = "http.trusted_proxies") -> tuple[Network, ...]:
    """CIDRs (``10.0.0.0/8``) or single addresses → networks; ValueError names the bad one."""
    networks = []
    for index, value in enumerate(values):
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{key}[{index}]: {value!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _address(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _trusted(address, networks: Sequence[Network]) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    """Whether ``peer`` (an address, maybe with a port) is in one of ``trusted``."""
    return _trusted(_address(peer), trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` itself unless it is a trusted proxy, else the
    right-most address of ``X-Forwarded-For`` that is not a trusted proxy (or the
    left-most when every hop is trusted). A malformed entry stops the walk there: the
    hop that wrote it is taken as the client rather than anything further left."""
    if not trusted or not forwarded_for or not _trusted(_address(peer), trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer
        if not _trusted(address, trusted):
            return str(address)
        peer = str(address)
    return peer


