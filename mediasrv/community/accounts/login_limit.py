"""Login rate limiting: failed logins per client address and per handle.

Password guessing is slowed two ways: one address cannot try many passwords (against any
handles), and one handle cannot be tried many times (from any number of addresses, the
botnet case). Each key may have ``limit`` failures within ``window`` seconds; once it has,
further attempts are refused *before* the password is checked (no scrypt work, nothing
learned) until its oldest failure leaves the window. A success does not clear the
counters: an attacker holding one account must not be able to reset their address.

Memory is bounded: at most ``max_keys`` keys are tracked; beyond that the key whose last
failure is oldest is forgotten first.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Callable


class LoginLimiter:
    """Sliding-window counters of failed logins, keyed ``addr:…`` and ``handle:…``."""

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        # key -> failure times (oldest first); insertion order = least recently failed first.
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        #: Attempts refused with 429 (read by metrics/tests).
        self.refused = 0

    def _keys(self, address: str, handle: str) -> tuple[str, str]:
        return f"addr:{address}", f"handle:{handle.lower()}"

    def _recent(self, key: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, address: str, handle: str) -> int:
        """0 when a login attempt may proceed, else whole seconds until one may."""
        now = self.clock()
        wait = 0.0
        for key in self._keys(address, handle):
            times = self._recent(key, now)
            if times is not None and len(times) >= self.limit:
                wait = max(wait, times[len(times) - self.limit] + self.window - now)
        if wait > 0:
            self.refused += 1
            return max(1, math.ceil(wait))
        return 0

    def failed(self, address: str, handle: str) -> None:
        """Count a failed login for both the address and the handle."""
        now = self.clock()
        for key in self._keys(address, handle):
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = collections.deque(maxlen=self.limit)
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
