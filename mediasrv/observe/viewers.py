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

What counts as a viewer (issue 18: viewer counts and discovery's ranking were inflated
by playlist requests with made-up tokens):

- **Media, not playlists.** A client with an open session counts once it fetches media
  (a segment or a part: ``media``), and stops counting when it has fetched none for
  ``idle_timeout`` seconds or its sessions close. A playlist is cheap to ask for; a
  client that only polls playlists is not watching. (Behind the nginx cache, which
  answers most media requests itself, the cache tells mediasrv of each one: a mirrored
  request to ``/hls-seen/...``, deploy/nginx-cache.conf.)
- **Tokens are the server's.** ``new_token`` signs a random nonce with a key of this
  process (HMAC-SHA256, truncated): a token that does not verify (made up, or another
  node's) opens no session of its own; the request counts under its client's key, as a
  request without a token does.
- **Per-address cap.** At most ``max_per_address`` clients (distinct user agents) of one
  address count toward the viewer figures (and so discovery's ranking); more players
  from it are served and their sessions kept, not counted. When a counted one leaves,
  a waiting one of that address takes its place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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
    #: Open sessions per client: a client may count while it has at least one.
    open_per_client: dict[str, int] = field(default_factory=dict)
    #: The address (hashed) of each client with an open session, and its clients.
    address_of: dict[str, str] = field(default_factory=dict)
    clients_at: dict[str, set[str]] = field(default_factory=dict)
    #: When each client with an open session last fetched media (a segment or a part).
    media_at: dict[str, float] = field(default_factory=dict)
    #: The clients counted now (at most the cap per address), by address.
    counted_at: dict[str, set[str]] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set)
    #: Unique clients counted per address (at most the cap per address).
    unique_at: dict[str, int] = field(default_factory=dict)
    #: Media requests of clients left uncounted because their address had the cap's worth
    #: of clients counted already.
    over_cap: int = 0

    @property
    def concurrent(self) -> int:
        """Viewers watching now: clients with an open session that fetched media within
        the idle timeout, at most the cap per address."""
        return len(self.counted)

    @property
    def unique(self) -> int:
        return len(self.unique_clients) + self.unique_overflow

    def per_rendition(self) -> dict[str, int]:
        """Viewers (counted clients) per rendition they are watching now; a client with
        sessions on two renditions counts in both."""
        clients: dict[str, set[str]] = {}
        for session in self.sessions.values():
            if session.rendition and session.client in self.counted:
                clients.setdefault(session.rendition, set()).add(session.client)
        return {rendition: len(members) for rendition, members in clients.items()}


def client_key(address: str, user_agent: str) -> str:
    """A stable, non-reversible key for a client (no address is kept in memory)."""
    return hashlib.blake2b(f"{address}\x00{user_agent}".encode(), digest_size=12).hexdigest()


def address_key(address: str) -> str:
    """A stable, non-reversible key for a client's address (for the per-address cap)."""
    return hashlib.blake2b(f"addr\x00{address}".encode(), digest_size=12).hexdigest()


#: Bytes of a token's nonce and of its signature (base64url: 12 and 16 characters).
_NONCE_BYTES = 9
_MAC_BYTES = 12


class ViewerTracker:
    """Sessions of every stream. ``touch`` on each playlist request, ``media`` on each
    segment or part; ``sweep`` once a second."""

    def __init__(self, idle_timeout: float = 15.0, *, max_per_address: int = 8,
                 secret: bytes | None = None) -> None:
        """``max_per_address``: most clients of one address counted (``viewers.max_per_address``);
        ``secret``: the key tokens are signed with (a random one per process by default)."""
        self.idle_timeout = idle_timeout
        self.max_per_address = max_per_address
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.streams: dict[str, StreamAudience] = {}

    def audience(self, stream: str) -> StreamAudience:
        audience = self.streams.get(stream)
        if audience is None:
            audience = self.streams[stream] = StreamAudience()
        return audience

    # --- tokens ---------------------------------------------------------------------------

    def new_token(self) -> str:
        """A session token: a random nonce and its signature, ``NONCE.MAC`` (base64url)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return f"{_b64(nonce)}.{_b64(self._mac(nonce))}"

    def is_token(self, token: str) -> bool:
        """Whether ``token`` is one ``new_token`` of this tracker made."""
        nonce_text, dot, mac_text = token.partition(".")
        if not dot or len(nonce_text) != 12 or len(mac_text) != 16:
            return False
        try:
            nonce, mac = base64.urlsafe_b64decode(nonce_text), base64.urlsafe_b64decode(mac_text)
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(mac, self._mac(nonce))

    def _mac(self, nonce: bytes) -> bytes:
        return hmac.new(self._secret, b"viewer-session\x00" + nonce, hashlib.sha256).digest()[:_MAC_BYTES]

    # --- requests -------------------------------------------------------------------------

    def touch(self, stream: str, token: str | None, *, client: str, now: float,
              rendition: str = "", nbytes: int = 0, address: str | None = None) -> str:
        """Record one playlist request of ``stream``; return the session token it counts under.

        A missing token, or one this tracker did not sign, counts under the client's own
        session. An unknown signed token opens a session (an expired one is a returning
        viewer: a new session, the same unique client). ``address``: the client's
        address, for the per-address cap (None: the client is its own address)."""
        audience = self.audience(stream)
        if not token or not self.is_token(token):
            token = "c-" + client  # no token of ours: the client's key is its session
        session = audience.sessions.get(token)
        if session is not None and now - session.last_seen > self.idle_timeout:
            self._close(audience, token, session)
            session = None
        if session is None:
            session = ViewerSession(token, client, now, now)
            audience.sessions[token] = session
            audience.sessions_total += 1
            if client not in audience.open_per_client:
                where = address_key(address) if address is not None else client
                audience.address_of[client] = where
                audience.clients_at.setdefault(where, set()).add(client)
            audience.open_per_client[client] = audience.open_per_client.get(client, 0) + 1
            self._consider(audience, client, now)
        else:
            if session.client in audience.counted:
                audience.watch_seconds += now - session.last_seen
            session.last_seen = now
        if address is not None:
            self._locate(audience, client, address_key(address), now)
        if rendition:
            session.rendition = rendition
        session.requests += 1
        session.bytes_sent += nbytes
        audience.requests += 1
        audience.bytes_sent += nbytes
        return token

    def media(self, stream: str, *, client: str, now: float, nbytes: int = 0, token: str | None = None) -> None:
        """Record one media request (a segment or a part) of ``stream`` by ``client``: the
        client counts as a viewer while it has an open session. A client without one
        (no playlist asked for) is not remembered; a stream nobody asked a playlist of
        is not created."""
        self.add_bytes(stream, nbytes, token)
        audience = self.streams.get(stream)
        if audience is not None and client in audience.open_per_client:
            audience.media_at[client] = now
            self._consider(audience, client, now)

    def add_bytes(self, stream: str, nbytes: int, token: str | None = None) -> None:
        """Count bytes sent that are not media (an init segment). Segment URIs carry no
        token (so caches can share them): a request is attributed to the stream, and to
        a session only when the player added its token itself. It never opens a session."""
        audience = self.streams.get(stream)
        if audience is None:
            return
        audience.bytes_sent += nbytes
        session = audience.sessions.get(token) if token else None
        if session is not None:
            session.bytes_sent += nbytes

    def sweep(self, now: float) -> None:
        """Close the sessions that made no request for ``idle_timeout`` seconds, and stop
        counting the clients that fetched no media for that long."""
        for audience in self.streams.values():
            stale = [t for t, s in audience.sessions.items() if now - s.last_seen > self.idle_timeout]
            for token in stale:
                self._close(audience, token, audience.sessions[token])
            for client in [c for c in audience.counted if now - audience.media_at.get(c, now) > self.idle_timeout]:
                self._uncount(audience, client, now)

    # --- counting -------------------------------------------------------------------------

    def _consider(self, audience: StreamAudience, client: str, now: float) -> bool:
        """Count ``client`` if it may be: an open session, media within the idle timeout,
        and room under its address's cap. True when it counts (now or already)."""
        if client in audience.counted:
            return True
        fetched = audience.media_at.get(client)
        if fetched is None or now - fetched > self.idle_timeout or client not in audience.open_per_client:
            return False
        where = audience.address_of[client]
        at = audience.counted_at.setdefault(where, set())
        if len(at) >= self.max_per_address:
            audience.over_cap += 1
            return False
        at.add(client)
        audience.counted.add(client)
        if client not in audience.unique_clients and audience.unique_at.get(where, 0) < self.max_per_address:
            audience.unique_at[where] = audience.unique_at.get(where, 0) + 1
            if len(audience.unique_clients) < MAX_UNIQUE:
                audience.unique_clients.add(client)
            else:
                # Past the bound a client is counted at each new count: unique may then
                # overcount, never fall below the peak.
                audience.unique_overflow += 1
        audience.peak = max(audience.peak, audience.concurrent)
        return True

    def _locate(self, audience: StreamAudience, client: str, where: str, now: float) -> None:
        """Put ``client`` at the address ``where`` when its first request did not say (a
        master playlist answered without the address): the cap then applies to it."""
        if client not in audience.open_per_client or audience.address_of.get(client) == where:
            return
        self._uncount(audience, client, now)
        old = audience.address_of[client]
        members = audience.clients_at.get(old)
        if members is not None:
            members.discard(client)
            if not members:
                del audience.clients_at[old]
        audience.address_of[client] = where
        audience.clients_at.setdefault(where, set()).add(client)
        self._consider(audience, client, now)

    def _uncount(self, audience: StreamAudience, client: str, now: float) -> None:
        """``client`` stops counting; a waiting client of its address may take its place."""
        if client not in audience.counted:
            return
        audience.counted.discard(client)
        where = audience.address_of.get(client)
        at = audience.counted_at.get(where) if where is not None else None
        if at is None:
            return
        at.discard(client)
        if not at:
            del audience.counted_at[where]
        for other in sorted(audience.clients_at.get(where, ())):
            if other != client and other not in audience.counted and len(at) < self.max_per_address:
                self._consider(audience, other, now)

    def _close(self, audience: StreamAudience, token: str, session: ViewerSession) -> None:
        del audience.sessions[token]
        client = session.client
        left = audience.open_per_client.get(client, 0) - 1
        if left > 0:
            audience.open_per_client[client] = left
            return
        audience.open_per_client.pop(client, None)
        audience.media_at.pop(client, None)
        self._uncount(audience, client, session.last_seen)
        where = audience.address_of.pop(client, None)
        members = audience.clients_at.get(where) if where is not None else None
        if members is not None:
            members.discard(client)
            if not members:
                del audience.clients_at[where]

    def forget(self, stream: str) -> StreamAudience | None:
        """Drop a stream's counters (its broadcast is over and reported)."""
        return self.streams.pop(stream, None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
