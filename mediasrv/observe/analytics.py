"""The creator's live analytics: one ``BroadcastCounters`` per live broadcast.

Fed by the chat (a ``ChatService.message_listeners`` entry) and the gift service; read
by the stream monitor, which adds ``snapshot(stream)`` to the live SSE feed and
``await final(stream)`` to the broadcast summary. New followers are counted in the store
(follows made since the broadcast started that still stand), refreshed at most every
``analytics.followers_refresh`` seconds in a thread, and once more at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from mediasrv.config import AnalyticsConfig
from mediasrv.hub import Hub
from mediasrv.hub.stream import Stream
from mediasrv.observe.analytics_rules import BroadcastCounters

log = logging.getLogger("mediasrv.analytics")


@dataclass(slots=True)
class _Live:
    counters: BroadcastCounters
    followers_checked: float = float("-inf")
    refresh: asyncio.Task | None = None


class LiveAnalytics:
    """Counters per live stream name, replaced when a new broadcast of the name starts."""

    def __init__(self, config: AnalyticsConfig, hub: Hub, store, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.hub = hub
        #: Needs ``get_user_by_handle`` and ``new_followers_since`` (``SqliteStore``).
        self.store = store
        self.clock = clock
        self._live: dict[str, _Live] = {}

    def _entry(self, stream: Stream) -> _Live:
        entry = self._live.get(stream.name)
        if entry is None or entry.counters.started_at != stream.started_at:
            if entry is not None and entry.refresh is not None:
                entry.refresh.cancel()
            entry = self._live[stream.name] = _Live(BroadcastCounters(stream.started_at, self.config.active_window))
        return entry

    def counters(self, name: str) -> BroadcastCounters | None:
        """The counters of the live broadcast ``name``; None when it is not live."""
        stream = self.hub.get(name)
        return self._entry(stream).counters if stream is not None else None

    # --- feeding -------------------------------------------------------------------------

    def on_chat_message(self, room, message) -> None:
        """A ``ChatService.message_listeners`` entry."""
        counters = self.counters(room.name)
        if counters is not None:
            counters.message(message.user_id, self.clock())

    def on_gift(self, stream_name: str, coins: int, creator_coins: int | None = None) -> None:
        """A gift of ``coins`` (its price), of which ``creator_coins`` are the creator's."""
        counters = self.counters(stream_name)
        if counters is not None:
            counters.gift(coins, creator_coins)

    # --- reading -------------------------------------------------------------------------

    def snapshot(self, stream: Stream) -> dict:
        """The live figures for the SSE feed (starts a follower refresh when due)."""
        entry = self._entry(stream)
        now = self.clock()
        if now - entry.followers_checked >= self.config.followers_refresh and entry.refresh is None:
            entry.followers_checked = now
            entry.refresh = asyncio.get_running_loop().create_task(self._refresh(stream, entry))
        return entry.counters.snapshot(now)

    async def final(self, stream: Stream) -> dict:
        """Summary fields of the ended broadcast ``stream`` (its new followers counted now)."""
        entry = self._live.get(stream.name)
        if entry is None or entry.counters.started_at != stream.started_at:
            entry = _Live(BroadcastCounters(stream.started_at, self.config.active_window))
        elif self._live.get(stream.name) is entry:
            del self._live[stream.name]
        if entry.refresh is not None:
            entry.refresh.cancel()
        entry.counters.new_followers = await asyncio.to_thread(self._new_followers, stream.name, stream.started_at)
        return entry.counters.summary()

    async def _refresh(self, stream: Stream, entry: _Live) -> None:
        try:
            entry.counters.new_followers = await asyncio.to_thread(self._new_followers, stream.name,
                                                                   stream.started_at)
        except Exception:
            log.exception("stream %s: counting new followers failed", stream.name)
        finally:
            entry.refresh = None

    def _new_followers(self, name: str, since: float) -> int:
        # The stream's creator is the user whose handle is the stream name (auth.mode
        # accounts always; other modes when such a user exists).
        user = self.store.get_user_by_handle(name.lower())
        return self.store.new_followers_since(user.id, since) if user is not None else 0

    async def stop(self) -> None:
        tasks = [entry.refresh for entry in self._live.values() if entry.refresh is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
