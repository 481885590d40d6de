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

#: ``EXPIRES.SIGNATURE``: at most 12 digits, then 43 base64url characters (32 bytes).
_GRANT = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant for one stream name and when it expires (Unix seconds)."""

    value: str
    expires_at: int
    #: Whole seconds from its issue until it expires (a client whose clock is off goes by it).
    expires_in: int = 0


def _prefix(name: str) -> str:
    return f"/live/{name}/"


class PlaybackGrants:
    """Issues and checks grants with one secret (``live.playback_secret``, or a random one
    for this process)."""

    def __init__(self, secret: str = "", *, ttl: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode() if secret else secrets.token_bytes(32)
        self.ttl = float(ttl)
        self.clock = clock

    def _signature(self, name: str, expires: int, scope: str) -> str:
        mac = hmac.new(self._key, f"{_prefix(name)}\n{expires}\n{scope}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, name: str, *, scope: str = "") -> Grant:
        """A grant to play stream ``name`` for ``ttl`` seconds from now, valid only while
        the checker's ``scope`` for it is still ``scope``."""
        now = self.clock()
        expires = math.ceil(now + self.ttl)
        return Grant(f"{expires}.{self._signature(name, expires, scope)}", expires, math.floor(expires - now))

    def valid(self, name: str, grant: str, *, scope: str = "") -> bool:
        """Whether ``grant`` lets its holder play stream ``name`` now, ``scope`` being what
        it must have been issued with."""
        match = _GRANT.fullmatch(grant) if len(grant) <= 64 else None
        if match is None:
            return False
        expires = int(match.group(1))
        if expires < self.clock():
            return False
        return hmac.compare_digest(self._signature(name, expires, scope), match.group(2))
