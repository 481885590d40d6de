"""The WebRTC side of a WHIP session: aiortc's public API, and nothing else of it.

``negotiate`` makes an ``RTCPeerConnection`` answer an offer: receive-only transceivers
for the offered kinds (audio limited to Opus with ``setCodecPreferences``; video keeps
the client's order of VP8/H.264), ``setRemoteDescription`` / ``createAnswer`` /
``setLocalDescription`` (which gathers every candidate: no trickle ICE). What aiortc
refuses in an offer that ``offer.check_offer`` let through is an ``OfferRefused`` too.

aiortc binds each host candidate's UDP socket with ``create_datagram_endpoint(local_addr=
(address, 0))`` (aioice's ``get_component_candidates``) and has no port option: the
kernel picks the port from ``net.ipv4.ip_local_port_range`` (docs/whip.md, "Ports").
"""

from __future__ import annotations

import logging
from typing import Iterable

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)

from mediasrv.config import IceServerConfig
from mediasrv.ingest.whip.offer import OfferRefused, OfferSummary

log = logging.getLogger("mediasrv.whip")


class NoCandidates(Exception):
    """The answer has no ICE candidate: this machine has no address aiortc gathers
    (aioice leaves out 127.0.0.1)."""


def peer_connection(servers: Iterable[IceServerConfig]) -> RTCPeerConnection:
    """A peer connection that gathers through the ICE servers marked ``gather`` (an empty
    list, not None: aiortc's default is a public Google STUN server)."""
    ice = [RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
           for s in servers if s.gather]
    return RTCPeerConnection(RTCConfiguration(iceServers=ice))


async def negotiate(pc: RTCPeerConnection, offer_sdp: str, summary: OfferSummary) -> str:
    """Answer ``offer_sdp`` on ``pc``; the local answer's SDP, candidates included."""
    if summary.audio is not None:
        audio = pc.addTransceiver("audio", direction="recvonly")
        audio.setCodecPreferences([codec for codec in RTCRtpReceiver.getCapabilities("audio").codecs
                                   if codec.mimeType.lower() == "audio/opus"])
    pc.addTransceiver("video", direction="recvonly")
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # noqa: BLE001 - whatever aiortc refuses in an offer is the client's
        raise OfferRefused(f"the offer could not be negotiated: {_reason(exc)}") from None
    sdp = pc.localDescription.sdp
    if "a=candidate:" not in sdp:
        raise NoCandidates("no ICE candidate: the server has no network address besides 127.0.0.1")
    return sdp


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close ``pc`` whatever state a failed negotiation left it in (aiortc's ``close``
    can raise on a half-applied offer; the connection is unusable either way)."""
    try:
        await pc.close()
    except Exception:  # noqa: BLE001
        log.debug("closing a peer connection failed", exc_info=True)
