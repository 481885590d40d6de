"""Account suspensions: an operator suspends an account until a time or indefinitely,
with a reason shown to the user.

A suspended account cannot sign in (login answers 403 with the reason and the end), its
tokens are revoked at once (and any left would not authenticate), it cannot publish
(``AccountService.check_publish``), chat or send gifts, and its live ends at once
(``on_suspended``, given by the composition root: the live control's end). Suspensions
are kept in memory (loaded at start, changed only here) and end by themselves at their
time, on the clock passed in.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from mediasrv.store import SqliteStore, User
from mediasrv.store.reach import Suspension


class Suspensions:
    """The suspended accounts (``AccountService.suspensions``)."""

    def __init__(self, store: SqliteStore, *, clock: Callable[[], float] = time.time,
                 on_suspended: Callable[[User, Suspension], None] = lambda user, suspension: None) -> None:
        """``on_suspended(user, suspension)``: told once the suspension is stored and the
        user's tokens are revoked (the live control ends their live, the chat drops them)."""
        self.store = store
        self.clock = clock
        self.on_suspended = on_suspended
        self._by_user: dict[int, Suspension] = {}

    async def load(self) -> None:
        for suspension in await asyncio.to_thread(self.store.all_suspensions):
            self._by_user[suspension.user_id] = suspension

    def active(self, user_id: int) -> Suspension | None:
        """The user's suspension if it is in force now, else None (an expired one is
        forgotten here; its row stays as the record until lifted or replaced)."""
        suspension = self._by_user.get(user_id)
        if suspension is None:
            return None
        if not suspension.active(self.clock()):
            return None
        return suspension

    def is_suspended(self, user_id: int) -> bool:
        return self.active(user_id) is not None

    async def suspend(self, user: User, reason: str, until: float | None, by: User) -> Suspension:
        """Suspend ``user`` (replacing any earlier suspension), revoke every token of
        theirs, then tell ``on_suspended``."""
        now = self.clock()
        await asyncio.to_thread(self.store.set_suspension, user.id, reason, until, by.id, now)
        suspension = Suspension(user.id, reason, until, by.handle, now)
        self._by_user[user.id] = suspension
        await asyncio.to_thread(self.store.delete_tokens, user.id)
        self.on_suspended(user, suspension)
        return suspension

    async def lift(self, user: User) -> bool:
        """End ``user``'s suspension now; False when there was none."""
        removed = await asyncio.to_thread(self.store.remove_suspension, user.id)
        return self._by_user.pop(user.id, None) is not None or removed

    def current(self) -> list[Suspension]:
        """The suspensions in force now, newest first."""
        now = self.clock()
        return sorted((s for s in self._by_user.values() if s.active(now)), key=lambda s: -s.created_at)
