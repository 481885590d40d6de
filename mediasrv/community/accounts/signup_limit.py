"""Registration rate limiting: accounts registered per client address and in total.

Issue 18: one address registered 1,000 accounts in 70 s and had them follow a creator,
who then passed the live-access threshold. Each client address may register
``per_address`` accounts within ``address_window`` seconds, and all clients together
``per_minute`` accounts a minute; beyond either, ``POST /api/users`` answers 429 with
``Retry-After`` (an admin creating accounts is not limited). Every attempt that reaches
the account's creation counts, taken handles included (each costs a password hash).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from mediasrv.community.accounts.windows import WindowCounter

_ALL = "all"


class RegistrationLimiter:
    """Registrations per address within a window, and per minute for everyone."""

    def __init__(self, per_address: int, address_window: float, per_minute: int, *,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.clock = clock
        self._by_address = WindowCounter(per_address, address_window, max_keys=max_keys)
        self._everyone = WindowCounter(per_minute, 60.0, max_keys=1)
        #: Registrations refused with 429 (read by tests).
        self.refused = 0

    def retry_after(self, address: str) -> int:
        """0 when ``address`` may register an account now, else whole seconds to wait."""
        now = self.clock()
        wait = max(self._by_address.wait(address, now), self._everyone.wait(_ALL, now))
        if wait > 0:
            self.refused += 1
            return max(1, math.ceil(wait))
        return 0

    def registered(self, address: str) -> None:
        """Count one registration (attempt) from ``address``."""
        now = self.clock()
        self._by_address.add(address, now)
        self._everyone.add(_ALL, now)


class MailLimiter:
    """Verification mails one account may ask for (``PUT /api/me/email``): each goes to
    an address the asker chose, so the server must not become a way to flood someone's
    inbox. ``per_hour`` per account."""

    def __init__(self, per_hour: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.clock = clock
        self._by_account = WindowCounter(per_hour, 3600.0, max_keys=max_keys)

    def retry_after(self, user_id: int) -> int:
        """0 when the account may ask for a mail now, else whole seconds to wait."""
        wait = self._by_account.wait(str(user_id), self.clock())
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def asked(self, user_id: int) -> None:
        """Count one mail asked for by the account."""
        self._by_account.add(str(user_id), self.clock())
