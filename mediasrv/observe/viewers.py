"""Viewer sessions for HLS, which has no connection to count.

The master playlist hands each player a session token that its variant URLs carry as a
query parameter, so every later request names its session without cookies. A request
without a token (a player that fetched a media playlist directly) is attributed to a
session keyed by client address and user agent. A session with no request for
``idle_timeout`` seconds has left. Time is passed in (``now``), never read here.

A *viewer* is a client (address + user agent, hashed), not a session: a player that
fetches the master playlist again (a reload, the watch page recovering from an error, a
second tab) opens a new session while its old one is still counted until it goes idle,
so counting sessions made one person two concurrent viewers and the peak could exceed the
unique viewers of the same broadcast. Every figure here counts clients, so they agree:
``concurrent <= peak <= unique`` always. Sessions are still kept (a token names what a
player fetched) and counted in ``sessions_total``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

#: Query parameter that carries the session token.
SESSION_PARAM = "s"
#: Most distinct viewers remembered per broadcast for the unique count.
MAX_UNIQUE = 1_000_000


@dataclass(slots=True)
class ViewerSession:
    token: str
    client: str  # hash of address + user agent
    started: float
    last_seen: float
    rendition: str = ""
    bytes_sent: int = 0
    requests: int = 0


@dataclass(slots=True)
class StreamAudience:
    """Counters for one broadcast's viewers (plain numbers, read at scrape time)."""

    sessions: dict[str, ViewerSession] = field(default_factory=dict)
    peak: int = 0
    unique_clients: set[str] = field(default_factory=set)
    unique_overflow: int = 0
    watch_seconds: float = 0.0
    bytes_sent: int = 0
    requests: int = 0
    sessions_total: int = 0
    #: Open sessions per client: a client is watching while it has at least one.
    open_per_client: dict[str, int] = field(default_factory=dict)

    @property
    def concurrent(self) -> int:
        """Viewers watching now: clients with at least one open session."""
        return len(self.open_per_client)

    @property
    def unique(self) -> int:
        return len(self.unique_clients) + self.unique_overflow

    def per_rendition(self) -> dict[str, int]:
        """Viewers (clients) per rendition they are watching now; a client with sessions
        on two renditions counts in both."""
        clients: dict[str, set[str]] = {}
        for session in self.sessions.values():
            if session.rendition:
                clients.setdefault(session.rendition, set()).add(session.client)
        return {rendition: len(members) for rendition, members in clients.items()}


def client_key(address: str, user_agent: str) -> str:
    """A stable, non-reversible key for a client (no address is kept in memory)."""
    return hashlib.blake2b(f"{address}\x00{user_agent}".encode(), digest_size=12).hexdigest()


class ViewerTracker:
    """Sessions of every stream. ``touch`` on each HLS request; ``sweep`` once a second."""

    def __init__(self, idle_timeout: float = 15.0) -> None:
        self.idle_timeout = idle_timeout
        self.streams: dict[str, StreamAudience] = {}

    def audience(self, stream: str) -> StreamAudience:
        audience = self.streams.get(stream)
        if audience is None:
            audience = self.streams[stream] = StreamAudience()
        return audience

    def new_token(self) -> str:
        return secrets.token_urlsafe(12)

    def touch(self, stream: str, token: str | None, *, client: str, now: float,
              rendition: str = "", nbytes: int = 0) -> str:
        """Record one request of ``stream``; return the session token it counts under.

        An unknown or missing token opens a session (an expired token is a returning
        viewer: a new session, the same unique client)."""
        audience = self.audience(stream)
        if not token:
            token = "c-" + client  # no token: the client's key is its session
        session = audience.sessions.get(token)
        if session is not None and now - session.last_seen > self.idle_timeout:
            self._close(audience, token, session)
            session = None
        if session is None:
            session = ViewerSession(token, client, now, now)
            audience.sessions[token] = session
            audience.sessions_total += 1
            if client not in audience.unique_clients:
                if len(audience.unique_clients) < MAX_UNIQUE:
                    audience.unique_clients.add(client)
                else:
                    # Past the bound a client is counted at each new session: unique
                    # may then overcount, never fall below the peak.
                    audience.unique_overflow += 1
            audience.open_per_client[client] = audience.open_per_client.get(client, 0) + 1
            audience.peak = max(audience.peak, audience.concurrent)
        else:
            audience.watch_seconds += now - session.last_seen
            session.last_seen = now
        if rendition:
            session.rendition = rendition
        session.requests += 1
        session.bytes_sent += nbytes
        audience.requests += 1
        audience.bytes_sent += nbytes
        return token

    def add_bytes(self, stream: str, nbytes: int, token: str | None = None) -> None:
        """Count segment bytes sent. Segment URIs carry no token (so caches can share
        them): a segment request is attributed to the stream, and to a session only when
        the player added its token itself. It never opens a session."""
        audience = self.audience(stream)
        audience.bytes_sent += nbytes
        session = audience.sessions.get(token) if token else None
        if session is not None:
            session.bytes_sent += nbytes

    def sweep(self, now: float) -> None:
        """Close the sessions that made no request for ``idle_timeout`` seconds."""
        for audience in self.streams.values():
            stale = [t for t, s in audience.sessions.items() if now - s.last_seen > self.idle_timeout]
            for token in stale:
                self._close(audience, token, audience.sessions[token])

    def _close(self, audience: StreamAudience, token: str, session: ViewerSession) -> None:
        del audience.sessions[token]
        left = audience.open_per_client.get(session.client, 0) - 1
        if left > 0:
            audience.open_per_client[session.client] = left
        else:
            audience.open_per_client.pop(session.client, None)

    def forget(self, stream: str) -> StreamAudience | None:
        """Drop a stream's counters (its broadcast is over and reported)."""
        return self.streams.pop(stream, None)
