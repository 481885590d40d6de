"""Typed interfaces between features (ports): what one feature offers another, declared
here so that neither imports the other. The composition root (``mediasrv.app``) passes
the implementation in.

- ``StreamKeyChecker``: what RTMP ingest asks of accounts in ``auth.mode: accounts``
  (implemented by ``community.accounts.service.AccountService``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Protocol


@dataclass(frozen=True, slots=True)
class PublishDecision:
    allowed: bool
    #: Public stream name (what viewers use); empty when refused.
    name: str = ""
    #: Why it was refused, safe to show the publisher and to log (never contains the key).
    reason: str = ""


class StreamKeyChecker(Protocol):
    """What ``accounts`` mode needs: the decision for a creator's stream key."""

    def check_publish(self, key: str) -> Awaitable["PublishDecision"]: ...
