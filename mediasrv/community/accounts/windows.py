"""Sliding-window counters by key, the building block of the accounts' rate limits
(failed password checks, registrations).

Each key may have ``limit`` events within ``window`` seconds; ``wait(key)`` says how long
until one more is allowed. Time is passed in (``now``), so the limiters using this are
driven by the clock the composition root gives them. Memory is bounded: at most
``max_keys`` keys are kept; beyond that the key whose last event is oldest is forgotten.
"""

from __future__ import annotations

import collections


class WindowCounter:
    """``limit`` events per ``window`` seconds for each key."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        # key -> event times (oldest first); insertion order = least recently used first.
        self._events: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def _recent(self, key: str, now: float) -> collections.deque[float] | None:
        times = self._events.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._events[key]
            return None
        return times

    def wait(self, key: str, now: float) -> float:
        """0.0 when one more event of ``key`` is allowed, else the seconds until it is."""
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[len(times) - self.limit] + self.window - now)

    def add(self, key: str, now: float) -> None:
        """Count one event of ``key``."""
        times = self._recent(key, now)
        if times is None:
            times = self._events[key] = collections.deque(maxlen=self.limit)
        times.append(now)
        self._events.move_to_end(key)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def __len__(self) -> int:
        return len(self._events)
