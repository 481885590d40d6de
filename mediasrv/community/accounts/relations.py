"""Blocks and mutes between users, decided in memory (``ports.BlockList``).

A user **blocks** another: the blocked user cannot watch the blocker's lives (the playback
gate asks ``blocks``), chat in them, follow or gift them (an existing follow of the blocker
is removed), and the blocker no longer sees the blocked user's chat messages anywhere. A
**mute** only hides the muted user's messages from the muter (``hides``).

Every list is loaded from the store once at start (``load``) and changed only through
this class, so a decision (asked on every chat frame fanned out) costs no database read.
The composition root makes it with the application (the playback gate holds it from the
first request) and gives it the store when that opens (``load(store)``); until then
nobody has blocked anybody.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from mediasrv.store import SqliteStore, User

#: Most users one account may block (or mute): the lists are kept in memory.
MAX_PER_USER = 5000


class TooMany(Exception):
    """The user's list is full (``MAX_PER_USER``)."""


class Relations:
    """Who blocked or muted whom (``AccountService.relations``; implements ``ports.BlockList``)."""

    def __init__(self, store: SqliteStore | None = None, *, clock: Callable[[], float] = time.time,
                 on_blocked: Callable[[User, User], None] = lambda owner, other: None) -> None:
        """``on_blocked(owner, other)``: told after ``owner`` blocked ``other`` (the chat
        drops ``other`` from ``owner``'s rooms, the playback gate revokes their grants)."""
        self.store = store
        self.clock = clock
        self.on_blocked = on_blocked
        self._lists: dict[str, dict[int, set[int]]] = {"block": {}, "mute": {}}

    async def load(self, store: SqliteStore | None = None) -> None:
        """Read every block and mute from the store (``store``: the one opened at start,
        when none was given to the constructor)."""
        if store is not None:
            self.store = store
        assert self.store is not None, "Relations.load needs a store"
        rows = await asyncio.to_thread(self.store.all_relations)
        for owner_id, other_id, kind in rows:
            self._lists[kind].setdefault(owner_id, set()).add(other_id)

    # --- decisions (synchronous, in memory) -------------------------------------------------

    def blocks(self, owner_id: int, other_id: int) -> bool:
        """``ports.BlockList``: whether ``owner_id`` blocked ``other_id``."""
        return other_id in self._lists["block"].get(owner_id, ())

    def mutes(self, owner_id: int, other_id: int) -> bool:
        return other_id in self._lists["mute"].get(owner_id, ())

    def hides(self, viewer_id: int, author_id: int) -> bool:
        """Whether ``viewer_id`` should not see what ``author_id`` writes (blocked or muted)."""
        return self.blocks(viewer_id, author_id) or self.mutes(viewer_id, author_id)

    def hiding(self, viewer_id: int) -> frozenset[int]:
        """Everyone whose messages ``viewer_id`` does not see."""
        return frozenset(self._lists["block"].get(viewer_id, ())) | frozenset(self._lists["mute"].get(viewer_id, ()))

    # --- changes (the store first, then memory) -----------------------------------------

    async def add(self, owner: User, other: User, kind: str) -> bool:
        """``owner`` blocks (``kind="block"``) or mutes ``other``; True when it was new.
        Raises ``TooMany``. The caller refuses a user acting on themselves."""
        ids = self._lists[kind].setdefault(owner.id, set())
        if other.id not in ids and len(ids) >= MAX_PER_USER:
            raise TooMany(f"you can {kind} at most {MAX_PER_USER} users")
        added = await asyncio.to_thread(self.store.add_relation, owner.id, other.id, kind, self.clock())
        ids.add(other.id)
        if kind == "block":
            self.on_blocked(owner, other)
        return added

    async def remove(self, owner: User, other: User, kind: str) -> bool:
        removed = await asyncio.to_thread(self.store.remove_relation, owner.id, other.id, kind)
        self._lists[kind].get(owner.id, set()).discard(other.id)
        return removed

    async def listing(self, owner: User, kind: str) -> list[tuple[User, float]]:
        return await asyncio.to_thread(self.store.list_relations, owner.id, kind)
