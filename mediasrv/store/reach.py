"""Who may reach whom, in the store: blocks and mutes between users, account suspensions
and the creator's privacy settings (migration 9 of ``sqlite.py``).

``ReachMixin`` is mixed into ``SqliteStore`` (it uses its connection and lock); every call
is short and synchronous, async callers wrap it in ``asyncio.to_thread``. Times are Unix
seconds. The decisions are made in memory by ``mediasrv.community.accounts.reach``, loaded
from here at start and changed only through it.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

from mediasrv.store.accounts import User

#: The two relations a user keeps about another: ``block`` (they cannot reach me, I do
#: not see them) and ``mute`` (I do not see them).
RELATION_KINDS = ("block", "mute")

# No ';' inside statements: the migration runner splits on it. IF NOT EXISTS: a database
# rewound to an earlier version by hand (the store tests do) keeps these tables.
REACH_MIGRATION = """
    CREATE TABLE IF NOT EXISTS user_relations (
        owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        other_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('block', 'mute')),
        created_at REAL NOT NULL,
        PRIMARY KEY (owner_id, kind, other_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS suspensions (
        user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        reason TEXT NOT NULL,
        until REAL,
        by_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS privacy_settings (
        user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        hide_viewer_count INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    )
"""


@dataclass(frozen=True, slots=True)
class Suspension:
    """An operator's suspension of an account: until ``until`` (Unix time) or, when None,
    until an operator lifts it."""

    user_id: int
    reason: str
    until: float | None
    by: str | None
    created_at: float

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def to_json(self) -> dict:
        return {"reason": self.reason, "until": self.until, "by": self.by, "created_at": self.created_at}


class ReachMixin:
    """SQLite implementation of the reach tables (needs ``self._db`` and ``self._lock``)."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    # --- blocks and mutes ------------------------------------------------------------------

    def add_relation(self, owner_id: int, other_id: int, kind: str, now: float) -> bool:
        """Add ``owner_id``'s ``kind`` of ``other_id``; a block also removes ``other_id``'s
        follow of ``owner_id`` (in the same transaction). True when it was new."""
        if kind not in RELATION_KINDS:
            raise ValueError(f"unknown relation {kind!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                added = self._db.execute(
                    "INSERT OR IGNORE INTO user_relations (owner_id, other_id, kind, created_at) VALUES (?, ?, ?, ?)",
                    (owner_id, other_id, kind, now)).rowcount > 0
                if kind == "block":
                    self._db.execute("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?",
                                     (other_id, owner_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def remove_relation(self, owner_id: int, other_id: int, kind: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM user_relations WHERE owner_id = ? AND other_id = ? AND kind = ?",
                                    (owner_id, other_id, kind)).rowcount > 0

    def list_relations(self, owner_id: int, kind: str) -> list[tuple[User, float]]:
        """Whom ``owner_id`` blocked (or muted), newest first, with when."""
        with self._lock:
            rows = self._db.execute(
                "SELECT u.id, u.handle, u.display_name, u.role, u.created_at, r.created_at FROM user_relations r "
                "JOIN users u ON u.id = r.other_id WHERE r.owner_id = ? AND r.kind = ? "
                "ORDER BY r.created_at DESC, u.id DESC", (owner_id, kind)).fetchall()
        return [(User(*row[:5]), row[5]) for row in rows]

    def all_relations(self) -> list[tuple[int, int, str]]:
        """Every ``(owner_id, other_id, kind)``: what the in-memory lists are loaded from."""
        with self._lock:
            return [tuple(row) for row in self._db.execute("SELECT owner_id, other_id, kind FROM user_relations")]

    # --- suspensions -----------------------------------------------------------------------

    def set_suspension(self, user_id: int, reason: str, until: float | None, by_user_id: int | None,
                       now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO suspensions (user_id, reason, until, by_user_id, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, until = excluded.until, "
                "by_user_id = excluded.by_user_id, created_at = excluded.created_at",
                (user_id, reason, until, by_user_id, now))

    def remove_suspension(self, user_id: int) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM suspensions WHERE user_id = ?", (user_id,)).rowcount > 0

    def all_suspensions(self) -> list[Suspension]:
        with self._lock:
            rows = self._db.execute(
                "SELECT s.user_id, s.reason, s.until, b.handle, s.created_at FROM suspensions s "
                "LEFT JOIN users b ON b.id = s.by_user_id").fetchall()
        return [Suspension(*row) for row in rows]

    # --- privacy settings ------------------------------------------------------------------

    def set_hide_viewer_count(self, user_id: int, hide: bool, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO privacy_settings (user_id, hide_viewer_count, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET hide_viewer_count = excluded.hide_viewer_count, "
                "updated_at = excluded.updated_at", (user_id, int(hide), now))

    def hidden_viewer_counts(self) -> list[str]:
        """The handles of the creators who hide their viewer count."""
        with self._lock:
            rows = self._db.execute("SELECT u.handle FROM privacy_settings p JOIN users u ON u.id = p.user_id "
                                    "WHERE p.hide_viewer_count = 1").fetchall()
        return [row[0] for row in rows]
