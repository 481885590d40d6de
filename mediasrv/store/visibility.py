"""Who may watch, in the store: each creator's default visibility and 18+ flag, the
people a creator invited to their private lives, and each recording's visibility.

``VisibilityMixin`` is mixed into ``SqliteStore`` (its connection and lock); every call is
short and synchronous, async callers wrap it in ``asyncio.to_thread``. The rules (who may
watch what) are in ``mediasrv.community.live.audience``.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

# No ';' inside statements: the migration runner splits on it.
VISIBILITY_MIGRATION = """
    CREATE TABLE IF NOT EXISTS live_visibility (
        user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        visibility TEXT NOT NULL,
        mature INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS live_invites (
        creator_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        PRIMARY KEY (creator_id, user_id)
    ) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class VisibilitySetting:
    """A creator's saved choice ("" visibility: none saved, the site's default applies)."""

    visibility: str = ""
    mature: bool = False


@dataclass(frozen=True, slots=True)
class Invitee:
    user_id: int
    handle: str
    display_name: str
    invited_at: float


class VisibilityMixin:
    """SQLite persistence of who may watch (needs ``self._db`` and ``self._lock``)."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def visibility_setting(self, user_id: int) -> VisibilitySetting:
        with self._lock:
            row = self._db.execute("SELECT visibility, mature FROM live_visibility WHERE user_id = ?",
                                   (user_id,)).fetchone()
        return VisibilitySetting(row[0], bool(row[1])) if row else VisibilitySetting()

    def set_visibility_setting(self, user_id: int, *, visibility: str | None = None,
                               mature: bool | None = None) -> VisibilitySetting:
        """Change the creator's default visibility and/or 18+ flag; the setting after."""
        with self._lock:
            row = self._db.execute("SELECT visibility, mature FROM live_visibility WHERE user_id = ?",
                                   (user_id,)).fetchone()
            old = VisibilitySetting(row[0], bool(row[1])) if row else VisibilitySetting()
            new = VisibilitySetting(old.visibility if visibility is None else visibility,
                                    old.mature if mature is None else bool(mature))
            self._db.execute("INSERT INTO live_visibility (user_id, visibility, mature) VALUES (?, ?, ?) "
                             "ON CONFLICT (user_id) DO UPDATE SET visibility = excluded.visibility, "
                             "mature = excluded.mature", (user_id, new.visibility, int(new.mature)))
        return new

    # --- invitations to private lives ----------------------------------------------------

    def add_invite(self, creator_id: int, user_id: int, now: float) -> bool:
        with self._lock:
            return self._db.execute("INSERT OR IGNORE INTO live_invites (creator_id, user_id, created_at) "
                                    "VALUES (?, ?, ?)", (creator_id, user_id, now)).rowcount > 0

    def remove_invite(self, creator_id: int, user_id: int) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM live_invites WHERE creator_id = ? AND user_id = ?",
                                    (creator_id, user_id)).rowcount > 0

    def is_invited(self, creator_id: int, user_id: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM live_invites WHERE creator_id = ? AND user_id = ?",
                                    (creator_id, user_id)).fetchone() is not None

    def list_invites(self, creator_id: int, limit: int = 500) -> list[Invitee]:
        with self._lock:
            rows = self._db.execute(
                "SELECT u.id, u.handle, u.display_name, i.created_at FROM live_invites i "
                "JOIN users u ON u.id = i.user_id WHERE i.creator_id = ? ORDER BY i.created_at, u.handle LIMIT ?",
                (creator_id, limit)).fetchall()
        return [Invitee(*row) for row in rows]
