"""Signed HLS URLs that a cache in front can check without asking mediasrv (issue 18).

For a live that not everyone may watch, every URI of its media playlists carries
``hs=EXPIRES.SIGNATURE`` (``SIGNED_URL_PARAM``): ``EXPIRES`` a Unix time in whole
seconds, ``SIGNATURE`` the unpadded base64url HMAC-SHA256, keyed with the secret shared
with the cache (``hls.url_signing_secret``), of the stream's path prefix ``/live/NAME/``,
a newline, and ``EXPIRES``. Nothing else is bound in (unlike a playback grant's scope):
whoever knows the secret (mediasrv, the nginx cache's njs check,
``deploy/nginx-hls-sign.js``) can check it from the URL alone.

A signature is short-lived (``hls.url_signing_seconds``): playlists are re-signed at
every reload, so a player renews its signatures as it reloads, while a viewer whose
access was withdrawn (the playlists still go through the playback gate at every reload)
loses the media within that time.

The signer reads no clock of its own (it is passed in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
from pathlib import Path
from typing import Callable

#: The query parameter of a signed media URI.
SIGNED_URL_PARAM = "hs"
#: ``EXPIRES.SIGNATURE``: at most 12 digits, then 43 base64url characters (32 bytes).
_SIGNED = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
#: Where a generated secret is kept under the data directory (read by the cache's operator).
SECRET_FILE = "hls_url_signing_secret"


def stream_prefix(name: str) -> str:
    """The path prefix a signature covers: every playlist, init segment, segment and part
    of stream ``name``."""
    return f"/live/{name}/"


class UrlSigner:
    """Signs and checks the media URIs of one node's non-public lives."""

    def __init__(self, secret: str | Callable[[], str], *, ttl: float, clock: Callable[[], float]) -> None:
        """``secret``: the key, or what returns it at the first use (a node that never
        serves a non-public live never creates one in its data directory)."""
        self._secret = secret
        self._key: bytes | None = None
        self.ttl = float(ttl)
        self.clock = clock

    def _signature(self, prefix: str, expires: int) -> str:
        if self._key is None:
            secret = self._secret() if callable(self._secret) else self._secret
            if not secret:
                raise ValueError("a URL signing secret is required")
            self._key = secret.encode()
        mac = hmac.new(self._key, f"{prefix}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def sign(self, name: str) -> str:
        """``EXPIRES.SIGNATURE`` for stream ``name``, valid ``ttl`` seconds from now."""
        return self.sign_prefix(stream_prefix(name))

    def sign_prefix(self, prefix: str, ttl: float | None = None) -> str:
        """``EXPIRES.SIGNATURE`` for every path under ``prefix`` (a recording's
        ``/vod/ID/``), valid ``ttl`` (default: the signer's) seconds from now."""
        expires = math.ceil(self.clock() + (self.ttl if ttl is None else ttl))
        return f"{expires}.{self._signature(prefix, expires)}"

    def query(self, name: str) -> str:
        """The query parameter a URI of stream ``name`` carries: ``hs=...``."""
        return f"{SIGNED_URL_PARAM}={self.sign(name)}"

    def valid(self, name: str, value: str) -> bool:
        """Whether ``value`` (the ``hs`` parameter) signs stream ``name`` and has not expired."""
        return self.valid_prefix(stream_prefix(name), value)

    def valid_prefix(self, prefix: str, value: str) -> bool:
        """Whether ``value`` signs the paths under ``prefix`` and has not expired."""
        match = _SIGNED.fullmatch(value) if len(value) <= 64 else None
        if match is None:
            return False
        expires = int(match.group(1))
        if expires < self.clock():
            return False
        return hmac.compare_digest(self._signature(prefix, expires), match.group(2))


def load_or_create_secret(configured: str, data_dir: Path) -> str:
    """``configured`` when set; otherwise the secret kept in ``data_dir`` (created, readable
    by its owner only, at the first start), so that the cache in front can be given it and
    signatures survive a restart."""
    if configured:
        return configured
    path = data_dir / SECRET_FILE
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    # Created 0600 in one step: the secret is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret

