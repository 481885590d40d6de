"""Counters of one live broadcast for its creator: chat activity and gifts (sans-IO).

Time is passed in (seconds, any monotonic-enough clock); nothing here reads a clock or
does I/O. Memory is bounded: messages are counted in one-second buckets over the last
minute, and chatters are kept only while they are within the active window.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

#: The "messages per minute" window, seconds.
MINUTE = 60


@dataclass(slots=True)
class BroadcastCounters:
    """What the creator's live feed shows about one broadcast."""

    started_at: float
    #: A chatter is active while their last message is younger than this (seconds).
    active_window: float = 300.0
    messages: int = 0
    gifts: int = 0
    gift_coins: int = 0
    #: The creator's part of ``gift_coins`` (the platform's share taken off each gift).
    gift_creator_coins: int = 0
    peak_messages_per_minute: int = 0
    new_followers: int = 0
    _buckets: deque = field(default_factory=deque)  # (whole second, messages in it)
    _in_window: int = 0
    _last_seen: OrderedDict = field(default_factory=OrderedDict)  # user id -> last message time
    _ever: set = field(default_factory=set)

    def message(self, user_id: int, now: float) -> None:
        """Count one chat message by ``user_id``."""
        self.messages += 1
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])
        self._in_window += 1
        self._last_seen[user_id] = now
        self._last_seen.move_to_end(user_id)
        self._ever.add(user_id)
        self._expire(now)
        self.peak_messages_per_minute = max(self.peak_messages_per_minute, self._in_window)

    def gift(self, coins: int, creator_coins: int | None = None) -> None:
        """Count one gift worth ``coins`` (its price), ``creator_coins`` of them the
        creator's (the rest is the platform's share; None: all of them)."""
        self.gifts += 1
        self.gift_coins += coins
        self.gift_creator_coins += coins if creator_coins is None else creator_coins

    def _expire(self, now: float) -> None:
        oldest = int(now) - MINUTE + 1  # the buckets of the last 60 whole seconds, this one included
        while self._buckets and self._buckets[0][0] < oldest:
            self._in_window -= self._buckets.popleft()[1]
        while self._last_seen:
            user, seen = next(iter(self._last_seen.items()))
            if now - seen < self.active_window:
                break
            del self._last_seen[user]

    def messages_per_minute(self, now: float) -> int:
        """Chat messages in the last minute."""
        self._expire(now)
        return self._in_window

    def active_chatters(self, now: float) -> int:
        """Distinct users who wrote within the active window."""
        self._expire(now)
        return len(self._last_seen)

    @property
    def unique_chatters(self) -> int:
        return len(self._ever)

    def snapshot(self, now: float) -> dict:
        """The live figures (JSON)."""
        return {
            "chat_messages_per_minute": self.messages_per_minute(now),
            "active_chatters": self.active_chatters(now),
            "chat_messages": self.messages,
            "unique_chatters": self.unique_chatters,
            "gifts": self.gifts,
            "gift_coins": self.gift_coins,
            "gift_creator_coins": self.gift_creator_coins,
            "new_followers": self.new_followers,
        }

    def summary(self) -> dict:
        """What is kept in the broadcast's summary (fields of ``BroadcastSummary``)."""
        return {
            "chat_messages": self.messages,
            "peak_messages_per_minute": self.peak_messages_per_minute,
            "unique_chatters": self.unique_chatters,
            "gifts": self.gifts,
            "gift_coins": self.gift_coins,
            "new_followers": self.new_followers,
        }
