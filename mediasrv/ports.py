"""Typed interfaces between features (ports): what one feature offers another, declared
here so that neither imports the other. The composition root (``mediasrv.app``) passes
the implementation in.

- ``StreamKeyChecker``: what RTMP ingest asks of accounts about a creator's stream key, in
  ``auth.mode: accounts`` and ``open`` (implemented by
  ``community.accounts.service.AccountService``);
- ``STREAM_KEY_PREFIX`` / ``looks_like_stream_key``: how an account's secret key looks,
  so that ingest never takes one for a public stream name (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Protocol


#: Every account's stream key starts with this; no public stream name may.
STREAM_KEY_PREFIX = "sk_"


def looks_like_stream_key(name: str) -> bool:
    """Whether ``name`` has the form of an account's secret stream key (case-insensitive:
    ``SK_…`` is refused as a public name too)."""
    return name[:len(STREAM_KEY_PREFIX)].lower().startswith(STREAM_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class PublishDecision:
    allowed: bool
    #: Public stream name (what viewers use); empty when refused.
    name: str = ""
    #: Why it was refused, safe to show the publisher and to log (never contains the key).
    reason: str = ""


class StreamKeyChecker(Protocol):
    """The decision for a creator's stream key: the creator's handle as the public name,
    or a refusal (unknown key, no live access)."""

    def check_publish(self, key: str) -> Awaitable["PublishDecision"]: ...
