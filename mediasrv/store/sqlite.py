"""SQLite store under ``data_dir``. One connection, WAL journal, a lock around it.

Calls are short (one row); async callers run them with ``asyncio.to_thread`` so the event
loop never waits on the disk.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

from mediasrv.store.accounts import ACCESS_REQUESTS_MIGRATION, ACCOUNTS_MIGRATION, BACKSTAGE_MIGRATION, AccountsMixin
from mediasrv.store.gifts import GIFTS_MIGRATION, GiftsMixin
from mediasrv.store.moderation import MODERATION_MIGRATION, ModerationMixin
from mediasrv.store.signup import SIGNUP_MIGRATION, SignupMixin
from mediasrv.store.reach import REACH_MIGRATION, ReachMixin
from mediasrv.store.visibility import VISIBILITY_MIGRATION, VisibilityMixin


@dataclass(frozen=True, slots=True)
class BroadcastSummary:
    """What is kept of a broadcast once it ended."""

    stream: str
    started_at: float
    ended_at: float
    duration_seconds: float
    peak_viewers: int
    average_viewers: float
    unique_viewers: int
    watch_seconds: float
    reconnects: int
    bytes_in: int
    bytes_out: int
    # The creator's analytics (docs/observability.md): chat, gifts, follows.
    chat_messages: int = 0
    peak_messages_per_minute: int = 0
    unique_chatters: int = 0
    gifts: int = 0
    gift_coins: int = 0
    new_followers: int = 0
    #: Ended without ever going public (a backstage that was never made public): only
    #: its creator and operators may see it (``GET /api/broadcasts``).
    private: bool = False
    id: int = 0

    def to_json(self) -> dict:
        return asdict(self)


class Store(Protocol):
    """What the rest of the server needs from persistence."""

    def add_broadcast(self, summary: BroadcastSummary) -> int: ...
    def list_broadcasts(self, stream: str | None = None, limit: int = 100, *,
                        include_private: bool | str = True) -> list[BroadcastSummary]: ...
    def close(self) -> None: ...


_MIGRATIONS = [
    """
    CREATE TABLE broadcasts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stream TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        duration_seconds REAL NOT NULL,
        peak_viewers INTEGER NOT NULL,
        average_viewers REAL NOT NULL,
        unique_viewers INTEGER NOT NULL,
        watch_seconds REAL NOT NULL,
        reconnects INTEGER NOT NULL,
        bytes_in INTEGER NOT NULL,
        bytes_out INTEGER NOT NULL
    );
    CREATE INDEX broadcasts_stream ON broadcasts (stream, started_at);
    """,
    ACCOUNTS_MIGRATION,  # 2: users, tokens, follows, stream keys, go-live settings, live access
    MODERATION_MIGRATION,  # 3: chat moderators, bans, timeouts, banned words, moderation log, reports
    GIFTS_MIGRATION,  # 4: wallets, credits, gift ledger, earnings; broadcast analytics columns
    ACCESS_REQUESTS_MIGRATION,  # 5: live-access requests, the operator's site settings
    BACKSTAGE_MIGRATION,  # 6: creators' backstage setting
    # 7: broadcasts that ended without going public (those before were all public)
    "ALTER TABLE broadcasts ADD COLUMN private INTEGER NOT NULL DEFAULT 0",
    # Issue 18 is built by three branches at once; each owns one slot (an empty script
    # only bumps the version) so that their numbers never collide:
    VISIBILITY_MIGRATION,  # 8: who may watch (visibility, invites, the 18+ flag)

    REACH_MIGRATION,  # 9: who may reach whom (blocks, mutes, user reports, suspensions)

    SIGNUP_MIGRATION,  # 10: registration limits and email verification
]


class SqliteStore(AccountsMixin, ModerationMixin, GiftsMixin, VisibilityMixin, ReachMixin, SignupMixin):
    """The embedded store: a SQLite file (``:memory:`` for a throwaway one)."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for index, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, script.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {index}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def add_broadcast(self, summary: BroadcastSummary) -> int:
        values = asdict(summary)
        values.pop("id")
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._lock:
            cursor = self._db.execute(f"INSERT INTO broadcasts ({columns}) VALUES ({marks})", tuple(values.values()))
            return int(cursor.lastrowid)

    def list_broadcasts(self, stream: str | None = None, limit: int = 100, *,
                        include_private: bool | str = True) -> list[BroadcastSummary]:
        """The newest ``limit`` broadcasts (of ``stream``). ``include_private``: True, every
        one; False, only those that were public; a stream name, those that were public and
        that stream's private ones (what its creator sees)."""
        names = [f.name for f in fields(BroadcastSummary)]
        query = f"SELECT {', '.join(names)} FROM broadcasts"
        where: list[str] = []
        args: list = []
        if stream is not None:
            where.append("stream = ?")
            args.append(stream)
        if include_private is False:
            where.append("private = 0")
        elif include_private is not True:
            where.append("(private = 0 OR stream = ?)")
            args.append(include_private)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, int(limit))).fetchall()
        out = []
        for row in rows:
            values = dict(zip(names, row))
            values["private"] = bool(values["private"])
            out.append(BroadcastSummary(**values))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
