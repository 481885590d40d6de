"""Who counts as a follower toward live access, and email verification (migration 10 of
``sqlite.py``, issue 18).

A follow counts toward a creator's live access only from an account older than
``accounts.follower_min_age`` and, when ``email.enabled``, with a verified email: fake
accounts made in a burst do not pass the threshold. A verification link carries a random
token; the store keeps its SHA-256 with the address it verifies and when it expires.

``SignupMixin`` is mixed into ``SqliteStore`` (it uses its connection and lock); calls are
short and synchronous (async callers use ``asyncio.to_thread``).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Protocol

# No ';' inside statements: the migration runner splits on it.
SIGNUP_MIGRATION = """
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_verified_at REAL;
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX email_verifications_user ON email_verifications (user_id)
"""


class SignupStore(Protocol):
    """What the accounts need of the store for verification and counting followers."""

    def add_email_verification(self, user_id: int, email: str, token_hash: str, now: float,
                               expires_at: float) -> None: ...
    def verify_email(self, token_hash: str, now: float) -> int | None: ...
    def email_status(self, user_id: int) -> tuple[str, float | None]: ...
    def counted_follower_count(self, user_id: int, created_before: float, verified_only: bool) -> int: ...


class SignupMixin:
    """SQLite implementation of ``SignupStore`` (needs ``self._db`` and ``self._lock``)."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def add_email_verification(self, user_id: int, email: str, token_hash: str, now: float,
                               expires_at: float) -> None:
        """Record the address a user gave (unverified) and a link's token for it."""
        with self._lock:
            self._db.execute("UPDATE users SET email = ?, email_verified_at = NULL WHERE id = ?", (email, user_id))
            self._db.execute("INSERT INTO email_verifications (token_hash, user_id, email, created_at, expires_at) "
                             "VALUES (?, ?, ?, ?, ?)", (token_hash, user_id, email, now, expires_at))

    def verify_email(self, token_hash: str, now: float) -> int | None:
        """Mark the address of an unexpired link verified (the link is used up); the
        user's id, or None for an unknown, used or expired link."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT user_id, email FROM email_verifications "
                                       "WHERE token_hash = ? AND expires_at > ?", (token_hash, now)).fetchone()
                changed = 0
                if row is not None:
                    self._db.execute("DELETE FROM email_verifications WHERE token_hash = ?", (token_hash,))
                    # Only the address the link was sent to: a link to an address the user
                    # has since replaced verifies nothing.
                    changed = self._db.execute("UPDATE users SET email_verified_at = ? WHERE id = ? AND email = ?",
                                               (now, row[0], row[1])).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(row[0]) if changed else None

    def email_status(self, user_id: int) -> tuple[str, float | None]:
        """The user's email (empty: none) and when it was verified (None: not)."""
        with self._lock:
            row = self._db.execute("SELECT email, email_verified_at FROM users WHERE id = ?", (user_id,)).fetchone()
        return (row[0], row[1]) if row is not None else ("", None)

    def counted_follower_count(self, user_id: int, created_before: float, verified_only: bool) -> int:
        """Followers of ``user_id`` whose account was created before ``created_before``
        (and whose email is verified, with ``verified_only``)."""
        query = ("SELECT COUNT(*) FROM follows f JOIN users u ON u.id = f.follower_id "
                 "WHERE f.followee_id = ? AND u.created_at <= ?")
        if verified_only:
            query += " AND u.email_verified_at IS NOT NULL"
        with self._lock:
            return int(self._db.execute(query, (user_id, created_before)).fetchone()[0])
