"""Warnings that a flood cannot multiply: at most one per key (a client address) per interval.

Every refused RTMP connection (the per-address caps, a takeover, a bad key) and every
refused WHIP offer is worth a warning, but a client that retries in a tight loop would
otherwise write one line per attempt: a few hundred bytes each, thousands a second, until
the disk or the log shipper gives up. ``RefusalLog`` writes the first refusal of a key,
counts the ones that follow within ``interval`` seconds, and writes the next one after the
interval with that count ("… (17 more refusals from 10.0.0.9 in the last 60 s)").

The clock is passed in (a fake one in tests); the table of keys is bounded, so a flood
from many addresses (IPv6 ones are cheap) costs at most ``max_keys`` entries: past that,
new keys share one entry ("other addresses").
"""

from __future__ import annotations

import logging
import time
from typing import Callable

#: The key new addresses share once the table is full.
OVERFLOW = "other addresses"


class RefusalLog:
    """Rate-limited warnings per key (see the module docstring)."""

    def __init__(self, logger: logging.Logger, *, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 4096) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        #: key → [when its last warning was written, refusals suppressed since].
        self._seen: dict[str, list] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Warn ``message % args`` for ``key`` unless it was warned within the interval
        (then only count it). True when the line was written."""
        now = self.clock()
        key = self._slot(key, now)
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        suppressed = entry[1] if entry is not None else 0
        self._seen[key] = [now, 0]
        if suppressed:
            self.logger.warning(message + " (%d more refusals from %s in the last %d s)", *args, suppressed,
                                key, round(self.interval))
        else:
            self.logger.warning(message, *args)
        return True

    def suppressed(self, key: str) -> int:
        """Refusals of ``key`` counted but not written yet."""
        entry = self._seen.get(key)
        return entry[1] if entry is not None else 0

    def _slot(self, key: str, now: float) -> str:
        """``key``, or ``OVERFLOW`` when the table is full of keys still in their interval."""
        if key in self._seen or len(self._seen) < self.max_keys:
            return key
        # Full: forget the keys whose interval is over with nothing pending (their next
        # refusal would be written at once anyway, so nothing is lost).
        for old in [k for k, (at, count) in self._seen.items() if not count and now - at >= self.interval]:
            del self._seen[old]
        return key if len(self._seen) < self.max_keys else OVERFLOW
