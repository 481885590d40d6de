"""A creator's privacy settings that other features ask synchronously: whether they hide
their viewer count from the public (``hide_viewer_count`` in ``PATCH /api/me/settings``).

Kept in memory by handle (stream names are handles in ``auth.mode: accounts``), loaded at
start and changed only here, so the chat's viewer counts and discovery ask no database."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from mediasrv.store import SqliteStore, User


class ViewerCountPrivacy:
    """Which creators hide their viewer count (``AccountService.privacy``)."""

    def __init__(self, store: SqliteStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._hidden: set[str] = set()

    async def load(self) -> None:
        self._hidden = {handle.lower() for handle in await asyncio.to_thread(self.store.hidden_viewer_counts)}

    def hidden(self, name: str) -> bool:
        """Whether the live named ``name`` (a creator's handle) hides its viewer count."""
        return name.lower() in self._hidden

    async def set_hidden(self, user: User, hide: bool) -> None:
        await asyncio.to_thread(self.store.set_hide_viewer_count, user.id, hide, self.clock())
        if hide:
            self._hidden.add(user.handle.lower())
        else:
            self._hidden.discard(user.handle.lower())
