"""Accounts in the store: users, login tokens, follows, stream keys, go-live settings and
live-access overrides (migration 2 of ``sqlite.py``).

``AccountStore`` is the interface the rest of the server uses; ``AccountsMixin`` is the
SQLite implementation, mixed into ``SqliteStore`` (it uses its connection and lock). Every
call is short and synchronous: async callers wrap it in ``asyncio.to_thread``.

Secrets are never stored in the clear where a hash will do: tokens are kept as their
SHA-256, passwords as scrypt hashes (made by the caller). A stream key is kept (its owner
may read it back) next to its SHA-256, by which publishes look it up.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

ROLES = ("viewer", "creator", "moderator", "admin")

# No ';' inside statements: the migration runner splits on it.
ACCOUNTS_MIGRATION = """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        handle TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'creator', 'moderator', 'admin')),
        created_at REAL NOT NULL
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX tokens_user ON tokens (user_id);
    CREATE TABLE follows (
        follower_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        followee_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        PRIMARY KEY (follower_id, followee_id)
    ) WITHOUT ROWID;
    CREATE INDEX follows_followee ON follows (followee_id, follower_id);
    CREATE TABLE stream_keys (
        user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        stream_key TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE creator_settings (
        user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        title TEXT NOT NULL DEFAULT '',
        cover TEXT NOT NULL DEFAULT '',
        chat TEXT NOT NULL DEFAULT '{}',
        save_by_default INTEGER NOT NULL DEFAULT 1,
        updated_at REAL NOT NULL
    );
    CREATE TABLE live_access (
        user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        access TEXT NOT NULL CHECK (access IN ('granted', 'revoked')),
        by_user_id INTEGER,
        updated_at REAL NOT NULL
    )
"""


#: Migration 5: creators' requests for live access, decided by an operator, and the
#: operator's site settings (the live-access threshold set in /admin).
ACCESS_REQUESTS_MIGRATION = """
    CREATE TABLE live_access_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        message TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'refused')),
        reason TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        decided_at REAL,
        decided_by INTEGER REFERENCES users (id) ON DELETE SET NULL
    );
    CREATE UNIQUE INDEX live_access_requests_one_pending ON live_access_requests (user_id) WHERE status = 'pending';
    CREATE INDEX live_access_requests_status ON live_access_requests (status, id);
    CREATE TABLE site_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    )
"""


#: Migration 6: a creator's backstage setting (a new broadcast starts private until they
#: make it public; issue 17).
BACKSTAGE_MIGRATION = """
    ALTER TABLE creator_settings ADD COLUMN backstage INTEGER NOT NULL DEFAULT 0
"""


class HandleTaken(Exception):
    """A user with that handle exists already."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    handle: str
    display_name: str
    role: str
    created_at: float

    def at_least(self, role: str) -> bool:
        """Roles are ordered viewer < creator < moderator < admin."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def to_json(self) -> dict:
        return {"handle": self.handle, "display_name": self.display_name, "role": self.role,
                "created_at": self.created_at}


def default_chat_settings() -> dict:
    return {"enabled": True, "slow_mode_seconds": 0, "followers_only": False}


class RequestPending(Exception):
    """The creator already has a live-access request waiting for a decision."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A creator's request for live access and, once decided, the operator's answer."""

    id: int
    user: User
    message: str
    status: str
    reason: str
    created_at: float
    decided_at: float | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class CreatorSettings:
    """Go-live settings of a creator, applied to the next broadcast (and while live)."""

    title: str = ""
    #: File name of the re-encoded cover under ``data_dir/covers`` ('' = none).
    cover: str = ""
    chat: dict = field(default_factory=default_chat_settings)
    save_by_default: bool = True
    updated_at: float = 0.0
    #: A new broadcast starts private (backstage) until the creator makes it public.
    backstage: bool = False


@dataclass(frozen=True, slots=True)
class CreatorCard:
    """What discovery needs of a creator, in one query."""

    user: User
    settings: CreatorSettings
    followers: int


class AccountStore(Protocol):
    """Persistence of accounts; ``SqliteStore`` implements it, another database may."""

    def create_user(self, handle: str, display_name: str, password_hash: str, role: str, now: float) -> User: ...
    def get_user(self, user_id: int) -> User | None: ...
    def get_user_by_handle(self, handle: str) -> User | None: ...
    def get_password_hash(self, user_id: int) -> str | None: ...
    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...
    def change_password(self, user_id: int, password_hash: str, keep_token_hash: str | None) -> int: ...
    def set_role(self, user_id: int, role: str) -> None: ...
    def set_display_name(self, user_id: int, display_name: str) -> None: ...
    def count_users(self) -> int: ...

    def add_token(self, token_hash: str, user_id: int, now: float, expires_at: float) -> None: ...
    def user_for_token(self, token_hash: str, now: float) -> User | None: ...
    def delete_token(self, token_hash: str) -> bool: ...
    def delete_tokens(self, user_id: int) -> int: ...
    def purge_expired_tokens(self, now: float) -> int: ...

    def follow(self, follower_id: int, followee_id: int, now: float) -> bool: ...
    def add_followers(self, followee_id: int, follower_ids: Iterable[int], now: float) -> int: ...
    def unfollow(self, follower_id: int, followee_id: int) -> bool: ...
    def is_following(self, follower_id: int, followee_id: int) -> bool: ...
    def follower_count(self, user_id: int) -> int: ...
    def following_count(self, user_id: int) -> int: ...
    def list_followers(self, user_id: int, limit: int, offset: int) -> list[User]: ...
    def list_following(self, user_id: int, limit: int, offset: int) -> list[User]: ...
    def followed_among(self, follower_id: int, user_ids: Sequence[int]) -> set[int]: ...
    def followers_among(self, followee_id: int, user_ids: Sequence[int]) -> set[int]: ...

    def get_stream_key(self, user_id: int) -> str | None: ...
    def set_stream_key(self, user_id: int, key: str, key_hash: str, now: float) -> None: ...
    def user_for_key_hash(self, key_hash: str) -> User | None: ...

    def get_settings(self, user_id: int) -> CreatorSettings: ...
    def update_settings(self, user_id: int, now: float, **values) -> CreatorSettings: ...

    def get_live_access(self, user_id: int) -> str | None: ...
    def set_live_access(self, user_id: int, access: str | None, by_user_id: int | None, now: float) -> None: ...

    def creator_cards(self, handles: Sequence[str]) -> dict[str, CreatorCard]: ...
    def list_creators(self, limit: int) -> list[CreatorCard]: ...
    def search_users(self, prefix: str, waiting_only: bool, limit: int,
                     offset: int) -> tuple[list[tuple[User, int, bool]], int]: ...


_USER_COLUMNS = "u.id, u.handle, u.display_name, u.role, u.created_at"
_SETTINGS_COLUMNS = ("title", "cover", "chat", "save_by_default", "updated_at", "backstage")
#: Where the settings' columns end in a row that starts with ``_USER_COLUMNS``.
_SETTINGS_END = 5 + len(_SETTINGS_COLUMNS)


def _user(row) -> User | None:
    return User(*row) if row is not None else None


def _settings(row) -> CreatorSettings:
    if row is None:
        return CreatorSettings()
    title, cover, chat, save, updated, backstage = row
    return CreatorSettings(title, cover, {**default_chat_settings(), **json.loads(chat)}, bool(save), updated,
                           bool(backstage))


class AccountsMixin:
    """SQLite implementation of ``AccountStore`` (needs ``self._db`` and ``self._lock``)."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def _one(self, query: str, args: tuple = ()):
        with self._lock:
            return self._db.execute(query, args).fetchone()

    def _all(self, query: str, args: tuple = ()) -> list:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def _change(self, query: str, args: tuple = ()) -> int:
        with self._lock:
            return self._db.execute(query, args).rowcount

    # --- users ---------------------------------------------------------------------------

    def create_user(self, handle: str, display_name: str, password_hash: str, role: str, now: float) -> User:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        try:
            with self._lock:
                cursor = self._db.execute(
                    "INSERT INTO users (handle, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)",
                    (handle, display_name, password_hash, role, now),
                )
        except sqlite3.IntegrityError:
            raise HandleTaken(handle) from None
        return User(int(cursor.lastrowid), handle, display_name, role, now)

    def get_user(self, user_id: int) -> User | None:
        return _user(self._one(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,)))

    def get_user_by_handle(self, handle: str) -> User | None:
        return _user(self._one(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.handle = ?", (handle,)))

    def get_password_hash(self, user_id: int) -> str | None:
        row = self._one("SELECT password_hash FROM users WHERE id = ?", (user_id,))
        return row[0] if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._change("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def change_password(self, user_id: int, password_hash: str, keep_token_hash: str | None) -> int:
        """Set the password and delete every login token of the user but ``keep_token_hash``
        (the session that changed it), in one transaction: no other session outlives the
        old password, even by a moment. Returns how many tokens were deleted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
                ended = self._db.execute("DELETE FROM tokens WHERE user_id = ? AND token_hash IS NOT ?",
                                         (user_id, keep_token_hash)).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ended

    def set_role(self, user_id: int, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self._change("UPDATE users SET role = ? WHERE id = ?", (role, user_id))

    def set_display_name(self, user_id: int, display_name: str) -> None:
        self._change("UPDATE users SET display_name = ? WHERE id = ?", (display_name, user_id))

    def count_users(self) -> int:
        return self._one("SELECT COUNT(*) FROM users")[0]

    # --- tokens --------------------------------------------------------------------------

    def add_token(self, token_hash: str, user_id: int, now: float, expires_at: float) -> None:
        self._change("INSERT INTO tokens (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                     (token_hash, user_id, now, expires_at))

    def user_for_token(self, token_hash: str, now: float) -> User | None:
        return _user(self._one(
            f"SELECT {_USER_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = ? AND t.expires_at > ?", (token_hash, now)))

    def delete_token(self, token_hash: str) -> bool:
        return self._change("DELETE FROM tokens WHERE token_hash = ?", (token_hash,)) > 0

    def delete_tokens(self, user_id: int) -> int:
        return self._change("DELETE FROM tokens WHERE user_id = ?", (user_id,))

    def purge_expired_tokens(self, now: float) -> int:
        return self._change("DELETE FROM tokens WHERE expires_at <= ?", (now,))

    # --- follows -------------------------------------------------------------------------

    def follow(self, follower_id: int, followee_id: int, now: float) -> bool:
        return self._change("INSERT OR IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)",
                            (follower_id, followee_id, now)) > 0

    def add_followers(self, followee_id: int, follower_ids: Iterable[int], now: float) -> int:
        """Many follows of one user in one transaction (imports, tests)."""
        rows = [(f, followee_id, now) for f in follower_ids if f != followee_id]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)", rows)
                added = self._db.total_changes - before
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def unfollow(self, follower_id: int, followee_id: int) -> bool:
        return self._change("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?",
                            (follower_id, followee_id)) > 0

    def is_following(self, follower_id: int, followee_id: int) -> bool:
        return self._one("SELECT 1 FROM follows WHERE follower_id = ? AND followee_id = ?",
                         (follower_id, followee_id)) is not None

    def follower_count(self, user_id: int) -> int:
        return self._one("SELECT COUNT(*) FROM follows WHERE followee_id = ?", (user_id,))[0]

    def following_count(self, user_id: int) -> int:
        return self._one("SELECT COUNT(*) FROM follows WHERE follower_id = ?", (user_id,))[0]

    def list_followers(self, user_id: int, limit: int, offset: int) -> list[User]:
        rows = self._all(
            f"SELECT {_USER_COLUMNS} FROM follows f JOIN users u ON u.id = f.follower_id "
            "WHERE f.followee_id = ? ORDER BY f.created_at DESC, u.id DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset))
        return [User(*row) for row in rows]

    def list_following(self, user_id: int, limit: int, offset: int) -> list[User]:
        rows = self._all(
            f"SELECT {_USER_COLUMNS} FROM follows f JOIN users u ON u.id = f.followee_id "
            "WHERE f.follower_id = ? ORDER BY f.created_at DESC, u.id DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset))
        return [User(*row) for row in rows]

    def followed_among(self, follower_id: int, user_ids: Sequence[int]) -> set[int]:
        """Which of ``user_ids`` ``follower_id`` follows."""
        out: set[int] = set()
        for chunk in _chunks(list(user_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(f"SELECT followee_id FROM follows WHERE follower_id = ? AND followee_id IN ({marks})",
                             (follower_id, *chunk))
            out.update(row[0] for row in rows)
        return out

    def followers_among(self, followee_id: int, user_ids: Sequence[int]) -> set[int]:
        """Which of ``user_ids`` follow ``followee_id``."""
        out: set[int] = set()
        for chunk in _chunks(list(user_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(f"SELECT follower_id FROM follows WHERE followee_id = ? AND follower_id IN ({marks})",
                             (followee_id, *chunk))
            out.update(row[0] for row in rows)
        return out

    # --- stream keys ---------------------------------------------------------------------

    def get_stream_key(self, user_id: int) -> str | None:
        row = self._one("SELECT stream_key FROM stream_keys WHERE user_id = ?", (user_id,))
        return row[0] if row else None

    def set_stream_key(self, user_id: int, key: str, key_hash: str, now: float) -> None:
        """Set (or replace: the old key stops working at once) the user's stream key."""
        self._change(
            "INSERT INTO stream_keys (user_id, stream_key, key_hash, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET stream_key = excluded.stream_key, "
            "key_hash = excluded.key_hash, created_at = excluded.created_at",
            (user_id, key, key_hash, now))

    def user_for_key_hash(self, key_hash: str) -> User | None:
        return _user(self._one(
            f"SELECT {_USER_COLUMNS} FROM stream_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
            (key_hash,)))

    # --- go-live settings ----------------------------------------------------------------

    def get_settings(self, user_id: int) -> CreatorSettings:
        return _settings(self._one(
            f"SELECT {', '.join(_SETTINGS_COLUMNS)} FROM creator_settings WHERE user_id = ?", (user_id,)))

    def update_settings(self, user_id: int, now: float, **values) -> CreatorSettings:
        """Change some of title, cover, chat (a dict), save_by_default, backstage; return the
        result."""
        unknown = set(values) - {"title", "cover", "chat", "save_by_default", "backstage"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        if "chat" in values:
            values["chat"] = json.dumps(values["chat"], sort_keys=True)
        for flag in ("save_by_default", "backstage"):
            if flag in values:
                values[flag] = int(bool(values[flag]))
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO creator_settings (user_id, updated_at) VALUES (?, ?)",
                             (user_id, now))
            if values:
                assignments = ", ".join(f"{name} = ?" for name in values)
                self._db.execute(f"UPDATE creator_settings SET {assignments}, updated_at = ? WHERE user_id = ?",
                                 (*values.values(), now, user_id))
            row = self._db.execute(
                f"SELECT {', '.join(_SETTINGS_COLUMNS)} FROM creator_settings WHERE user_id = ?", (user_id,)
            ).fetchone()
        return _settings(row)

    # --- live access ---------------------------------------------------------------------

    def get_live_access(self, user_id: int) -> str | None:
        row = self._one("SELECT access FROM live_access WHERE user_id = ?", (user_id,))
        return row[0] if row else None

    def set_live_access(self, user_id: int, access: str | None, by_user_id: int | None, now: float) -> None:
        """``granted``/``revoked`` override the rule; None returns the user to the rule."""
        if access is None:
            self._change("DELETE FROM live_access WHERE user_id = ?", (user_id,))
            return
        if access not in ("granted", "revoked"):
            raise ValueError(f"unknown live access {access!r}")
        self._change(
            "INSERT INTO live_access (user_id, access, by_user_id, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET access = excluded.access, by_user_id = excluded.by_user_id, "
            "updated_at = excluded.updated_at",
            (user_id, access, by_user_id, now))

    # --- live-access requests --------------------------------------------------------------

    def add_access_request(self, user_id: int, message: str, now: float) -> AccessRequest:
        """File a request; ``RequestPending`` if one is already waiting (one at a time)."""
        try:
            with self._lock:
                cursor = self._db.execute(
                    "INSERT INTO live_access_requests (user_id, message, status, created_at) "
                    "VALUES (?, ?, 'pending', ?)", (user_id, message, now))
        except sqlite3.IntegrityError:
            raise RequestPending() from None
        return self.get_access_request(int(cursor.lastrowid))

    def get_access_request(self, request_id: int) -> AccessRequest | None:
        rows = self._access_requests("r.id = ?", (request_id,), 1)
        return rows[0] if rows else None

    def list_access_requests(self, *, status: str | None = None, user_id: int | None = None,
                             limit: int = 100) -> list[AccessRequest]:
        """Newest first, optionally of one status or one creator."""
        where, args = [], []
        if status is not None:
            where.append("r.status = ?")
            args.append(status)
        if user_id is not None:
            where.append("r.user_id = ?")
            args.append(user_id)
        return self._access_requests(" AND ".join(where) or "1", tuple(args), limit)

    def decide_access_request(self, request_id: int, status: str, reason: str, by_user_id: int,
                              now: float) -> AccessRequest | None:
        """Grant or refuse a pending request (a grant is also a live-access override, in the
        same transaction); None when there is no such pending request."""
        if status not in ("granted", "refused"):
            raise ValueError(f"unknown decision {status!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT user_id FROM live_access_requests WHERE id = ? AND status = 'pending'",
                                       (request_id,)).fetchone()
                if row is None:
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute(
                    "UPDATE live_access_requests SET status = ?, reason = ?, decided_at = ?, decided_by = ? "
                    "WHERE id = ?", (status, reason, now, by_user_id, request_id))
                if status == "granted":
                    self._db.execute(
                        "INSERT INTO live_access (user_id, access, by_user_id, updated_at) VALUES (?, 'granted', ?, ?) "
                        "ON CONFLICT (user_id) DO UPDATE SET access = excluded.access, "
                        "by_user_id = excluded.by_user_id, updated_at = excluded.updated_at",
                        (row[0], by_user_id, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get_access_request(request_id)

    def _access_requests(self, where: str, args: tuple, limit: int) -> list[AccessRequest]:
        rows = self._all(
            f"SELECT r.id, {_USER_COLUMNS}, r.message, r.status, r.reason, r.created_at, r.decided_at, d.handle "
            "FROM live_access_requests r JOIN users u ON u.id = r.user_id LEFT JOIN users d ON d.id = r.decided_by "
            f"WHERE {where} ORDER BY r.id DESC LIMIT ?", (*args, int(limit)))
        return [AccessRequest(row[0], User(*row[1:6]), *row[6:]) for row in rows]

    # --- site settings ---------------------------------------------------------------------

    def get_site_setting(self, name: str) -> str | None:
        row = self._one("SELECT value FROM site_settings WHERE name = ?", (name,))
        return row[0] if row else None

    def set_site_setting(self, name: str, value: str | None, now: float) -> None:
        """Set an operator setting; None removes it (the configuration's value applies)."""
        if value is None:
            self._change("DELETE FROM site_settings WHERE name = ?", (name,))
            return
        self._change("INSERT INTO site_settings (name, value, updated_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                     (name, value, now))

    # --- discovery -----------------------------------------------------------------------

    def creator_cards(self, handles: Sequence[str]) -> dict[str, CreatorCard]:
        """Users, settings and follower counts of ``handles`` (those that exist), by handle."""
        out: dict[str, CreatorCard] = {}
        for chunk in _chunks(list(handles)):
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(
                f"SELECT {_USER_COLUMNS}, "
                + ", ".join(f"s.{c}" for c in _SETTINGS_COLUMNS)
                + ", (SELECT COUNT(*) FROM follows f WHERE f.followee_id = u.id) "
                f"FROM users u LEFT JOIN creator_settings s ON s.user_id = u.id WHERE u.handle IN ({marks})",
                tuple(chunk))
            for row in rows:
                user = User(*row[:5])
                settings = _settings(row[5:_SETTINGS_END]) if row[5] is not None else CreatorSettings()
                out[user.handle] = CreatorCard(user, settings, row[_SETTINGS_END])
        return out

    def list_creators(self, limit: int) -> list[CreatorCard]:
        """Accounts with the creator role (the channels), most followed first, then the
        newest. Moderators and admins stream too, but their accounts are the site's, not
        channels a visitor browses."""
        rows = self._all(
            f"SELECT {_USER_COLUMNS}, "
            + ", ".join(f"s.{c}" for c in _SETTINGS_COLUMNS)
            + ", (SELECT COUNT(*) FROM follows f WHERE f.followee_id = u.id) AS followers "
            "FROM users u LEFT JOIN creator_settings s ON s.user_id = u.id WHERE u.role = 'creator' "
            "ORDER BY followers DESC, u.created_at DESC, u.id DESC LIMIT ?", (limit,))
        return [CreatorCard(User(*row[:5]), _settings(row[5:_SETTINGS_END]) if row[5] is not None else CreatorSettings(),
                            row[_SETTINGS_END])
                for row in rows]


    def search_users(self, prefix: str, waiting_only: bool, limit: int,
                     offset: int) -> tuple[list[tuple[User, int, bool]], int]:
        """Users whose handle starts with ``prefix`` (any case), by handle, as (user,
        followers, has a pending live-access request), and how many match in all.
        ``waiting_only``: only those with a pending request (the operators' queue)."""
        # LIKE with an escape: '_' is a handle character, not "any one character".
        pattern = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = "u.handle LIKE ? ESCAPE '\\'"
        pending = "EXISTS (SELECT 1 FROM live_access_requests r WHERE r.user_id = u.id AND r.status = 'pending')"
        if waiting_only:
            where += f" AND {pending}"
        rows = self._all(
            f"SELECT {_USER_COLUMNS}, (SELECT COUNT(*) FROM follows f WHERE f.followee_id = u.id), {pending} "
            f"FROM users u WHERE {where} ORDER BY u.handle LIMIT ? OFFSET ?", (pattern, limit, offset))
        total = self._one(f"SELECT COUNT(*) FROM users u WHERE {where}", (pattern,))[0]
        return [(User(*row[:5]), row[5], bool(row[6])) for row in rows], total


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start:start + size]
