"""Password-check rate limiting: failed logins (and failed ``current_password`` checks of
``PATCH /api/me``), per account and client address, with higher ceilings per address and
per account.

Password guessing is slowed without letting one client lock others out:

- ``(handle, address)``: ``limit`` failures within ``window`` seconds. Someone guessing
  one account's password from one address is stopped there, and only there: the owner
  logging in from their own address is not locked out by it.
- ``address`` alone and ``handle`` alone: ``ceiling`` failures (a higher number). One
  address cannot try many accounts' passwords (but many users behind one proxy or NAT
  can mistype theirs), and many addresses (a botnet) cannot try one account's password
  without end.

Once a key is full, further attempts are refused *before* the password is checked (no
scrypt work, nothing learned) until its oldest failure leaves the window. A success does
not clear the counters: an attacker holding one account must not be able to reset their
address. Memory is bounded (``WindowCounter``).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from mediasrv.community.accounts.windows import WindowCounter


class LoginLimiter:
    """Failed password checks, keyed by account and address, address, and account."""

    def __init__(self, limit: int, window: float, *, ceiling: int | None = None,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.ceiling = max(limit, ceiling if ceiling is not None else limit * 10)
        self.clock = clock
        self._pairs = WindowCounter(limit, window, max_keys=max_keys)
        self._wide = WindowCounter(self.ceiling, window, max_keys=max_keys)
        #: Attempts refused with 429 (read by metrics/tests).
        self.refused = 0

    @staticmethod
    def _keys(address: str, handle: str) -> tuple[str, str, str]:
        handle = handle.lower()
        return f"pair:{handle}@{address}", f"addr:{address}", f"handle:{handle}"

    def retry_after(self, address: str, handle: str) -> int:
        """0 when a password check for ``handle`` from ``address`` may proceed, else whole
        seconds until one may."""
        now = self.clock()
        pair, addr, account = self._keys(address, handle)
        wait = max(self._pairs.wait(pair, now), self._wide.wait(addr, now), self._wide.wait(account, now))
        if wait > 0:
            self.refused += 1
            return max(1, math.ceil(wait))
        return 0

    def failed(self, address: str, handle: str) -> None:
        """Count a failed password check for the pair, the address and the handle."""
        now = self.clock()
        pair, addr, account = self._keys(address, handle)
        self._pairs.add(pair, now)
        self._wide.add(addr, now)
        self._wide.add(account, now)
