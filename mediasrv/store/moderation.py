"""Chat moderation and reports in the store: appointed moderators, bans, timeouts, each
creator's banned words, the moderation log and the report queue.

``ModerationMixin`` is mixed into ``SqliteStore`` (it uses its connection and lock); every
call is short and synchronous, async callers wrap it in ``asyncio.to_thread``. Times are
Unix seconds. The rules (who may do what) are in ``mediasrv.community.moderation.rules``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field

from mediasrv.store.accounts import User

# No ';' inside statements: the migration runner splits on it.
MODERATION_MIGRATION = """
    CREATE TABLE chat_moderators (
        creator_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        by_user_id INTEGER,
        created_at REAL NOT NULL,
        PRIMARY KEY (creator_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE chat_bans (
        creator_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        by_user_id INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL,
        PRIMARY KEY (creator_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE chat_timeouts (
        creator_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        by_user_id INTEGER,
        until REAL NOT NULL,
        PRIMARY KEY (creator_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE chat_banned_words (
        creator_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        words TEXT NOT NULL DEFAULT '[]',
        updated_at REAL NOT NULL
    );
    CREATE TABLE moderation_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        creator_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        actor_id INTEGER,
        action TEXT NOT NULL,
        target_user_id INTEGER,
        message_id TEXT,
        detail TEXT NOT NULL DEFAULT '{}',
        at REAL NOT NULL
    );
    CREATE INDEX moderation_log_creator ON moderation_log (creator_id, id);
    CREATE TABLE reports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        reporter_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('message', 'user', 'stream')),
        target TEXT NOT NULL,
        target_user_id INTEGER,
        stream TEXT NOT NULL DEFAULT '',
        excerpt TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
        resolved_by INTEGER,
        resolution TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        resolved_at REAL
    );
    CREATE INDEX reports_status ON reports (status, id);
    CREATE INDEX reports_reporter ON reports (reporter_id, created_at)
"""

_USER_COLUMNS = "u.id, u.handle, u.display_name, u.role, u.created_at"


@dataclass(frozen=True, slots=True)
class ChatBan:
    user: User
    by: str | None  # handle of who banned
    reason: str
    at: float

    def to_json(self) -> dict:
        return {"user": self.user.handle, "display_name": self.user.display_name, "by": self.by,
                "reason": self.reason, "at": self.at}


@dataclass(frozen=True, slots=True)
class ChatTimeout:
    user: User
    by: str | None
    until: float

    def to_json(self) -> dict:
        return {"user": self.user.handle, "display_name": self.user.display_name, "by": self.by,
                "until": self.until}


@dataclass(frozen=True, slots=True)
class CreatorModeration:
    """Everything a chat room needs of its creator's moderation state, in one read."""

    moderator_ids: frozenset[int] = frozenset()
    banned_ids: frozenset[int] = frozenset()
    #: user id -> Unix time the timeout ends (only those still running when read).
    timeouts: dict[int, float] = field(default_factory=dict)
    banned_words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    action: str
    actor: str | None
    target: str | None
    message_id: str | None
    detail: dict
    at: float

    def to_json(self) -> dict:
        return {"id": self.id, "action": self.action, "by": self.actor, "target": self.target,
                "message_id": self.message_id, "detail": self.detail, "at": self.at}


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    reporter: str
    kind: str
    target: str
    target_user: str | None
    stream: str
    excerpt: str
    reason: str
    status: str
    resolved_by: str | None
    resolution: str
    created_at: float
    resolved_at: float | None

    def to_json(self) -> dict:
        return {"id": self.id, "reporter": self.reporter, "kind": self.kind, "target": self.target,
                "target_user": self.target_user, "stream": self.stream, "excerpt": self.excerpt,
                "reason": self.reason, "status": self.status, "resolved_by": self.resolved_by,
                "resolution": self.resolution, "created_at": self.created_at, "resolved_at": self.resolved_at}


_REPORT_SELECT = (
    "SELECT r.id, rep.handle, r.kind, r.target, tu.handle, r.stream, r.excerpt, r.reason, r.status, "
    "rb.handle, r.resolution, r.created_at, r.resolved_at FROM reports r "
    "JOIN users rep ON rep.id = r.reporter_id LEFT JOIN users tu ON tu.id = r.target_user_id "
    "LEFT JOIN users rb ON rb.id = r.resolved_by")


class ModerationMixin:
    """SQLite persistence of moderation (needs ``self._db`` and ``self._lock``)."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def _mod_all(self, query: str, args: tuple = ()) -> list:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def _mod_change(self, query: str, args: tuple = ()) -> int:
        with self._lock:
            return self._db.execute(query, args).rowcount

    # --- the state a room needs ----------------------------------------------------------

    def creator_moderation(self, creator_id: int, now: float) -> CreatorModeration:
        with self._lock:
            mods = self._db.execute("SELECT user_id FROM chat_moderators WHERE creator_id = ?", (creator_id,))
            moderator_ids = frozenset(row[0] for row in mods.fetchall())
            bans = self._db.execute("SELECT user_id FROM chat_bans WHERE creator_id = ?", (creator_id,))
            banned_ids = frozenset(row[0] for row in bans.fetchall())
            timeouts = dict(self._db.execute(
                "SELECT user_id, until FROM chat_timeouts WHERE creator_id = ? AND until > ?",
                (creator_id, now)).fetchall())
            row = self._db.execute("SELECT words FROM chat_banned_words WHERE creator_id = ?",
                                   (creator_id,)).fetchone()
        words = tuple(json.loads(row[0])) if row else ()
        return CreatorModeration(moderator_ids, banned_ids, timeouts, words)

    # --- appointed moderators ------------------------------------------------------------

    def add_chat_moderator(self, creator_id: int, user_id: int, by_user_id: int | None, now: float) -> bool:
        return self._mod_change(
            "INSERT OR IGNORE INTO chat_moderators (creator_id, user_id, by_user_id, created_at) VALUES (?, ?, ?, ?)",
            (creator_id, user_id, by_user_id, now)) > 0

    def remove_chat_moderator(self, creator_id: int, user_id: int) -> bool:
        return self._mod_change("DELETE FROM chat_moderators WHERE creator_id = ? AND user_id = ?",
                                (creator_id, user_id)) > 0

    def list_chat_moderators(self, creator_id: int) -> list[User]:
        rows = self._mod_all(
            f"SELECT {_USER_COLUMNS} FROM chat_moderators m JOIN users u ON u.id = m.user_id "
            "WHERE m.creator_id = ? ORDER BY u.handle", (creator_id,))
        return [User(*row) for row in rows]

    # --- bans and timeouts ---------------------------------------------------------------

    def add_chat_ban(self, creator_id: int, user_id: int, by_user_id: int | None, reason: str, now: float) -> bool:
        """Ban (a ban already there keeps its first date and reason); also ends a timeout."""
        with self._lock:
            added = self._db.execute(
                "INSERT OR IGNORE INTO chat_bans (creator_id, user_id, by_user_id, reason, at) VALUES (?, ?, ?, ?, ?)",
                (creator_id, user_id, by_user_id, reason, now)).rowcount > 0
            self._db.execute("DELETE FROM chat_timeouts WHERE creator_id = ? AND user_id = ?", (creator_id, user_id))
        return added

    def remove_chat_ban(self, creator_id: int, user_id: int) -> bool:
        return self._mod_change("DELETE FROM chat_bans WHERE creator_id = ? AND user_id = ?",
                                (creator_id, user_id)) > 0

    def is_chat_banned(self, creator_id: int, user_id: int) -> bool:
        return bool(self._mod_all("SELECT 1 FROM chat_bans WHERE creator_id = ? AND user_id = ?",
                                  (creator_id, user_id)))

    def list_chat_bans(self, creator_id: int) -> list[ChatBan]:
        rows = self._mod_all(
            f"SELECT {_USER_COLUMNS}, bu.handle, b.reason, b.at FROM chat_bans b JOIN users u ON u.id = b.user_id "
            "LEFT JOIN users bu ON bu.id = b.by_user_id WHERE b.creator_id = ? ORDER BY b.at DESC, u.id DESC",
            (creator_id,))
        return [ChatBan(User(*row[:5]), row[5], row[6], row[7]) for row in rows]

    def set_chat_timeout(self, creator_id: int, user_id: int, by_user_id: int | None, until: float) -> None:
        self._mod_change(
            "INSERT INTO chat_timeouts (creator_id, user_id, by_user_id, until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (creator_id, user_id) DO UPDATE SET by_user_id = excluded.by_user_id, until = excluded.until",
            (creator_id, user_id, by_user_id, until))

    def clear_chat_timeout(self, creator_id: int, user_id: int, now: float) -> bool:
        """End a timeout; True if one was still running."""
        with self._lock:
            running = self._db.execute(
                "SELECT 1 FROM chat_timeouts WHERE creator_id = ? AND user_id = ? AND until > ?",
                (creator_id, user_id, now)).fetchone() is not None
            self._db.execute("DELETE FROM chat_timeouts WHERE creator_id = ? AND user_id = ?", (creator_id, user_id))
        return running

    def list_chat_timeouts(self, creator_id: int, now: float) -> list[ChatTimeout]:
        """Running timeouts (expired rows are purged on the way)."""
        with self._lock:
            self._db.execute("DELETE FROM chat_timeouts WHERE until <= ?", (now,))
            rows = self._db.execute(
                f"SELECT {_USER_COLUMNS}, bu.handle, t.until FROM chat_timeouts t JOIN users u ON u.id = t.user_id "
                "LEFT JOIN users bu ON bu.id = t.by_user_id WHERE t.creator_id = ? ORDER BY t.until",
                (creator_id,)).fetchall()
        return [ChatTimeout(User(*row[:5]), row[5], row[6]) for row in rows]

    # --- banned words --------------------------------------------------------------------

    def set_chat_banned_words(self, creator_id: int, words: tuple[str, ...], now: float) -> None:
        self._mod_change(
            "INSERT INTO chat_banned_words (creator_id, words, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (creator_id) DO UPDATE SET words = excluded.words, updated_at = excluded.updated_at",
            (creator_id, json.dumps(list(words)), now))

    # --- the moderation log --------------------------------------------------------------

    def add_moderation_log(self, creator_id: int, actor_id: int | None, action: str, target_user_id: int | None,
                           message_id: str | None, detail: dict, now: float) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO moderation_log (creator_id, actor_id, action, target_user_id, message_id, detail, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (creator_id, actor_id, action, target_user_id, message_id, json.dumps(detail, sort_keys=True), now))
            return int(cursor.lastrowid)

    def list_moderation_log(self, creator_id: int, limit: int, before_id: int | None = None) -> list[LogEntry]:
        """Newest first; ``before_id`` pages back."""
        rows = self._mod_all(
            "SELECT l.id, l.action, a.handle, t.handle, l.message_id, l.detail, l.at FROM moderation_log l "
            "LEFT JOIN users a ON a.id = l.actor_id LEFT JOIN users t ON t.id = l.target_user_id "
            "WHERE l.creator_id = ? AND l.id < ? ORDER BY l.id DESC LIMIT ?",
            (creator_id, before_id if before_id is not None else 1 << 62, limit))
        return [LogEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    # --- reports -------------------------------------------------------------------------

    def add_report(self, reporter_id: int, kind: str, target: str, target_user_id: int | None, stream: str,
                   excerpt: str, reason: str, now: float) -> Report:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO reports (reporter_id, kind, target, target_user_id, stream, excerpt, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (reporter_id, kind, target, target_user_id, stream, excerpt, reason, now))
            report_id = int(cursor.lastrowid)
        report = self.get_report(report_id)
        assert report is not None
        return report

    def get_report(self, report_id: int) -> Report | None:
        rows = self._mod_all(_REPORT_SELECT + " WHERE r.id = ?", (report_id,))
        return Report(*rows[0]) if rows else None

    def list_reports(self, status: str | None, limit: int, offset: int) -> tuple[list[Report], int]:
        """Open reports oldest first (a queue); closed ones newest first. And the total."""
        where, args = ("WHERE r.status = ?", (status,)) if status else ("", ())
        order = "r.id ASC" if status == "open" else "r.id DESC"
        rows = self._mod_all(f"{_REPORT_SELECT} {where} ORDER BY {order} LIMIT ? OFFSET ?", (*args, limit, offset))
        total = self._mod_all(f"SELECT COUNT(*) FROM reports r {where}", args)[0][0]
        return [Report(*row) for row in rows], total

    def report_times(self, reporter_id: int, since: float) -> list[float]:
        """When ``reporter_id`` made reports after ``since`` (for the per-user quota)."""
        rows = self._mod_all("SELECT created_at FROM reports WHERE reporter_id = ? AND created_at > ?",
                             (reporter_id, since))
        return [row[0] for row in rows]

    def resolve_report(self, report_id: int, status: str, by_user_id: int, resolution: str, now: float) -> bool:
        """Close an open report; False if it was not open (closed meanwhile)."""
        return self._mod_change(
            "UPDATE reports SET status = ?, resolved_by = ?, resolution = ?, resolved_at = ? "
            "WHERE id = ? AND status = 'open'", (status, by_user_id, resolution, now, report_id)) > 0
