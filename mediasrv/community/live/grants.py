"""Signed playback grants: "whoever holds this may play ``/live/NAME/`` until EXPIRES".

A grant is ``EXPIRES.SIGNATURE``: ``EXPIRES`` a Unix time in whole seconds, ``SIGNATURE``
the unpadded base64url HMAC-SHA256, with the node's playback secret, of the path prefix
``/live/NAME/``, a newline, ``EXPIRES``, a newline and a *scope*: what else the grant is
bound to, which the holder does not send but the checker knows (the gate binds every grant
to one broadcast and to a generation it bumps to revoke them, ``gate.py``). It travels as
the ``pt`` query parameter
(``ports.PLAYBACK_GRANT_PARAM``) on playlist, segment and part URLs and on an RTMP play
name. Checking one is a hash and a comparison in constant time: no database, no
session, so every request of a player can be checked (and, given the secret, a cache in
front could check it too: issue 18).

Grants are handed only to those who may play a private live (``LiveControl.may_watch``);
a grant holder is not asked again until it expires (``live.grant_seconds``) or the gate
revokes it (a moderator removed, a role lowered).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Callable

#: ``EXPIRES.SIGNATURE[.VIEWER]``: at most 12 digits, 43 base64url characters (32 bytes),
#: then the viewer's user id when the grant was issued to a signed-in viewer.
_GRANT = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})(?:\.([1-9][0-9]{0,17}))?")


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant for one stream name and when it expires (Unix seconds)."""

    value: str
    expires_at: int
    #: Whole seconds from its issue until it expires (a client whose clock is off goes by it).
    expires_in: int = 0
    #: The signed-in viewer it was issued to (0: anyone, a signed-out viewer).
    viewer: int = 0


def _prefix(name: str) -> str:
    return f"/live/{name}/"


class PlaybackGrants:
    """Issues and checks grants with one secret (``live.playback_secret``, or a random one
    for this process)."""

    def __init__(self, secret: str = "", *, ttl: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode() if secret else secrets.token_bytes(32)
        self.ttl = float(ttl)
        self.clock = clock

    def _signature(self, name: str, expires: int, scope: str, viewer: int = 0) -> str:
        # The viewer is signed in only when there is one: a grant without viewer keeps the
        # message (and so the value) it always had.
        tail = f"\n{viewer}" if viewer else ""
        mac = hmac.new(self._key, f"{_prefix(name)}\n{expires}\n{scope}{tail}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, name: str, *, scope: str = "", viewer: int = 0) -> Grant:
        """A grant to play stream ``name`` for ``ttl`` seconds from now, valid only while
        the checker's ``scope`` for it is still ``scope``; ``viewer``: the signed-in user
        it is for (0: a signed-out viewer), carried and signed in the grant so that the
        gate can refuse it at once if the creator blocks that user."""
        now = self.clock()
        expires = math.ceil(now + self.ttl)
        value = f"{expires}.{self._signature(name, expires, scope, viewer)}" + (f".{viewer}" if viewer else "")
        return Grant(value, expires, math.floor(expires - now), viewer)

    def viewer_of(self, name: str, grant: str, *, scope: str = "") -> int | None:
        """The viewer ``grant`` was issued to (0: signed out) when it lets its holder play
        stream ``name`` now, ``scope`` being what it must have been issued with; else None."""
        match = _GRANT.fullmatch(grant) if len(grant) <= 84 else None
        if match is None:
            return None
        expires = int(match.group(1))
        if expires < self.clock():
            return None
        viewer = int(match.group(3) or 0)
        if not hmac.compare_digest(self._signature(name, expires, scope, viewer), match.group(2)):
            return None
        return viewer

    def valid(self, name: str, grant: str, *, scope: str = "") -> bool:
        """Whether ``grant`` lets its holder play stream ``name`` now, ``scope`` being what
        it must have been issued with."""
        return self.viewer_of(name, grant, scope=scope) is not None
