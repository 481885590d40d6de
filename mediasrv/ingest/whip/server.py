"""WHIP ingest: the sessions of a node, their limits and counters.

``WhipServer`` decides on a publish exactly as the RTMP listener does (the same
``PublishAuthorizer``, with the RTMP application name, under every ``auth.mode``),
answers acceptable offers with a ``WhipSession`` each, and keeps plain counters the
metrics collector reads at scrape time. The HTTP side is ``routes.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from mediasrv.config import WebrtcConfig
from mediasrv.hub import Hub
from mediasrv.ingest.publish_auth import PublishAuthorizer, redact_key
from mediasrv.ingest.refusal_log import RefusalLog
from mediasrv.ingest.takeover import join_refusal, takeover_refusal
from mediasrv.ingest.whip.answer import negotiated_codec, with_public_candidates
from mediasrv.ingest.whip.links import link_values
from mediasrv.ingest.whip.offer import check_offer
from mediasrv.ingest.whip.peer import close_peer, negotiate, peer_connection
from mediasrv.ingest.whip.port_range import port_range_warning, read_port_range
from mediasrv.ingest.whip.session import EncodeSettings, WhipSession
from mediasrv.ports import PublishDecision, looks_like_stream_key

log = logging.getLogger("mediasrv.whip")


class ServerFull(Exception):
    """``webrtc.max_sessions`` sessions are open (or the server is stopping)."""


class AddressFull(Exception):
    """``webrtc.max_sessions_per_address`` sessions from this address are open."""


class TakeoverRefused(Exception):
    """Open mode: the name is live from another address (``ingest.takeover``)."""


@dataclass(slots=True)
class WhipStats:
    """Plain counters, read by the metrics collector at scrape time."""

    #: Sessions answered (201), and those open now (setting up or live).
    sessions_total: int = 0
    sessions_open: int = 0
    #: Sessions that attached to the hub (media flowed), and those live now.
    publishes: int = 0
    sessions_live: int = 0
    takeovers: int = 0
    #: Refused requests by reason: auth, content_type, offer, capacity, takeover, address.
    refused: dict[str, int] = field(default_factory=dict)
    #: Sessions reaped without media within webrtc.setup_timeout.
    reaped: int = 0
    #: Live sessions closed after webrtc.idle_timeout without a media frame (their
    #: streams orphaned for the reconnect grace).
    idle_timeouts: int = 0
    #: Sessions that failed before their media flowed (ICE or DTLS never completed), and
    #: encoder failures.
    failures: int = 0
    #: Live sessions whose client went without a DELETE (connection failed or closed: ICE
    #: consent lapsed, DTLS closed): their streams were orphaned for the reconnect grace.
    lost: int = 0
    #: Sessions ended by the client's DELETE, and closed by a takeover or a stop.
    deleted: int = 0
    kicked: int = 0

    def refuse(self, kind: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1


class WhipServer:
    """The WHIP sessions of this node."""

    def __init__(self, config: WebrtcConfig, hub: Hub, authorizer: PublishAuthorizer, *, app: str,
                 keyframe_interval: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        """``app``: the RTMP application name, given to the authorizer as for RTMP;
        ``keyframe_interval``: seconds between forced keyframes (the HLS segment duration)."""
        self.config = config
        self.hub = hub
        self.authorizer = authorizer
        self.app = app
        self.monotonic = monotonic
        self.encode_settings = EncodeSettings(config.video_bitrate, config.audio_bitrate, config.preset,
                                              keyframe_interval)
        self.idle_timeout = config.idle_timeout
        self.stats = WhipStats()
        self.sessions: dict[str, WhipSession] = {}
        self._negotiating = 0
        #: Offers being negotiated per client address (with ``sessions``: the per-address cap).
        self._negotiating_by: dict[str, int] = {}
        self._stopping = False
        #: Set when the kernel's port range differs from webrtc.udp_ports (also logged).
        self.port_warning: str | None = None
        #: Refused offers are warned once per address a minute (a retry loop cannot flood the log).
        self.refusals = RefusalLog(log, clock=monotonic)

    async def start(self) -> None:
        """Check that WebRTC will bind the ports the operator opened (warn if not)."""
        self.port_warning = port_range_warning(self.config.port_range, read_port_range())
        if self.port_warning:
            log.warning("%s", self.port_warning)

    async def stop(self) -> None:
        """End every session (their streams are orphaned, then ended with the hub) and wait
        for their connections and encoder threads."""
        self._stopping = True
        sessions = list(self.sessions.values())
        for session in sessions:
            session.shutdown("server shutting down")
        await asyncio.gather(*(session.wait_closed() for session in sessions))

    # --- what the routes ask --------------------------------------------------------------

    async def authorize(self, key: str, client: str) -> PublishDecision:
        """The publish decision for a bearer token, as RTMP's for a stream key."""
        decision = await self.authorizer.authorize(app=self.app, key=key, client=client)
        if not decision.allowed:
            self.stats.refuse("auth")
            open_name = self.authorizer.config.mode == "open" and not looks_like_stream_key(key)
            self.refusals.warning(client, "whip %s: publish of %s refused: %s", client, key[:64] if open_name else redact_key(key),
                        decision.reason)
        return decision

    def link_values(self, *, with_credentials: bool) -> list[str]:
        """The ``Link`` header values of the configured ICE servers."""
        return link_values(self.config.ice_servers, with_credentials=with_credentials)

    async def key_would_publish(self, key: str | None) -> bool:
        """Whether a POST bearing ``key`` (None: no key) would pass the key check, for an
        ``OPTIONS`` request: ``PublishAuthorizer.check_only``, so nothing is published,
        counted or logged."""
        return key is not None and (await self.authorizer.check_only(key)).allowed

    async def open_session(self, offer: bytes, *, name: str, key: str, client: str) -> tuple[WhipSession, str]:
        """Answer ``offer`` for stream ``name``: the new session and the SDP answer.
        Raises ``OfferRefused`` (a 400), ``TakeoverRefused`` (a 409), ``AddressFull`` (a
        429), ``ServerFull`` (a 503) or ``peer.NoCandidates``."""
        if self._stopping or len(self.sessions) + self._negotiating >= self.config.max_sessions:
            self.stats.refuse("capacity")
            self.refusals.warning(client, "whip %s: offer refused: %d sessions are open (webrtc.max_sessions)",
                                  client, self.config.max_sessions)
            raise ServerFull(f"{self.config.max_sessions} WHIP sessions are open; try again later")
        refusal = takeover_refusal(self.hub, mode=self.authorizer.config.mode, name=name, key=key, host=client)
        if refusal is not None:
            self.stats.refuse("takeover")
            self.refusals.warning(client, "whip %s: takeover of live stream %s refused: another address publishes it",
                                  client, name)
            raise TakeoverRefused(refusal)
        cap = self.config.max_sessions_per_address
        from_client = sum(1 for s in self.sessions.values() if s.client == client)
        if from_client + self._negotiating_by.get(client, 0) >= cap:
            self.stats.refuse("address")
            self.refusals.warning(client, "whip %s: offer refused: %d sessions from this address are open "
                                  "(webrtc.max_sessions_per_address)", client, cap)
            raise AddressFull(f"{cap} WHIP sessions from your address are open; end one first")
        try:
            summary = check_offer(offer)
        except ValueError:
            self.stats.refuse("offer")
            raise
        created = self.monotonic()
        pc = peer_connection(self.config.ice_servers)
        self._negotiating += 1
        self._negotiating_by[client] = self._negotiating_by.get(client, 0) + 1
        try:
            answer = await negotiate(pc, offer.decode("utf-8"), summary)
        except BaseException as exc:
            if isinstance(exc, ValueError):
                self.stats.refuse("offer")
            await close_peer(pc)
            raise
        finally:
            self._negotiating -= 1
            left = self._negotiating_by.pop(client) - 1
            if left:
                self._negotiating_by[client] = left
        if self._stopping:
            await close_peer(pc)
            raise ServerFull("the server is stopping")
        session_id = secrets.token_urlsafe(18)
        session = WhipSession(self, session_id, name=name, client=client,
                              key_digest=hashlib.sha256(key.encode()).digest(), pc=pc,
                              proves_owner=looks_like_stream_key(key),
                              has_audio=summary.audio is not None, created_at=created, monotonic=self.monotonic,
                              codecs=(negotiated_codec(answer, "video"), negotiated_codec(answer, "audio")))
        self.sessions[session_id] = session
        self.stats.sessions_total += 1
        self.stats.sessions_open = len(self.sessions)
        session.watch(self.config.setup_timeout)
        log.info("%r: answered for stream %s (video %s%s)", session, name, session.codecs[0],
                 f", audio {session.codecs[1]}" if session.codecs[1] else ", no audio")
        return session, with_public_candidates(answer, self.config.public_address)

    def find(self, session_id: str) -> WhipSession | None:
        return self.sessions.get(session_id)

    def delete(self, session: WhipSession) -> None:
        """The client's DELETE of its session."""
        self.stats.deleted += 1
        session.delete()

    # --- what sessions tell ---------------------------------------------------------------

    def join_refusal(self, session: WhipSession) -> str | None:
        """The open mode's takeover rule again, as ``session`` joins the hub (its first
        decoded frame): the offer passed it, but ICE and DTLS ran since, and a publisher
        from another address may have taken the name meanwhile. Refused: counted, warned."""
        refusal = join_refusal(self.hub, mode=self.authorizer.config.mode, name=session.name,
                               proves_owner=session.proves_owner, host=session.client)
        if refusal is not None:
            self.stats.refuse("takeover")
            self.refusals.warning(session.client, "%r: takeover of live stream %s refused as it joined: another "
                                  "address publishes it", session, session.name)
        return refusal

    def session_live(self, session: WhipSession, *, took_over: bool) -> None:
        self.stats.publishes += 1
        self.stats.takeovers += took_over
        self.stats.sessions_live = sum(1 for s in self.sessions.values() if s.live)

    def session_closed(self, session: WhipSession) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        self.stats.sessions_open = len(self.sessions)
        self.stats.sessions_live = sum(1 for s in self.sessions.values() if s.live)
