"""Coins in the store: wallets, credits, the gift ledger, creator earnings, the platform's
share — and the broadcast analytics columns (one migration, appended to ``_MIGRATIONS``).

Every amount is a whole number of coins (SQLite INTEGER); no float ever touches money.
The books balance at all times::

    coins credited == wallet balances + creator earnings + platform share

because each change is one transaction that moves coins from one column to others:

- a **credit** (``credit``) inserts a row keyed by its idempotency key and adds the coins
  to a wallet;
- a **gift** (``send_gift``) debits the sender's wallet, adds the creator's part to their
  earnings and the rest to the platform, and appends a ledger row keyed by (sender,
  client request id).

Both run under ``BEGIN IMMEDIATE``: SQLite takes the write lock before the balance is
read, so the check and the debit see the same balance even with several processes on one
file; the Python lock serialises this process's threads on the shared connection. A
``CHECK (balance >= 0)`` is the last line of defence. A retried request (same key / same
request id) finds its row and returns the original result without moving coins again.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass
from typing import Protocol

# No ';' inside statements: the migration runner splits on it.
GIFTS_MIGRATION = """
    CREATE TABLE wallets (
        user_id INTEGER PRIMARY KEY REFERENCES users (id),
        balance INTEGER NOT NULL CHECK (balance >= 0),
        updated_at REAL NOT NULL
    );
    CREATE TABLE coin_credits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users (id),
        coins INTEGER NOT NULL CHECK (coins > 0),
        by_user_id INTEGER,
        created_at REAL NOT NULL
    );
    CREATE TABLE gift_ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender_id INTEGER NOT NULL REFERENCES users (id),
        request_id TEXT NOT NULL,
        creator_id INTEGER NOT NULL REFERENCES users (id),
        stream TEXT NOT NULL,
        broadcast_started_at REAL,
        gift_id TEXT NOT NULL,
        price INTEGER NOT NULL CHECK (price > 0),
        creator_coins INTEGER NOT NULL CHECK (creator_coins >= 0),
        platform_coins INTEGER NOT NULL CHECK (platform_coins >= 0),
        created_at REAL NOT NULL,
        CHECK (creator_coins + platform_coins = price),
        UNIQUE (sender_id, request_id)
    );
    CREATE INDEX gift_ledger_creator ON gift_ledger (creator_id, broadcast_started_at);
    CREATE TABLE creator_earnings (
        user_id INTEGER PRIMARY KEY REFERENCES users (id),
        coins INTEGER NOT NULL CHECK (coins >= 0),
        gifts INTEGER NOT NULL CHECK (gifts >= 0)
    );
    CREATE TABLE platform_account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        coins INTEGER NOT NULL CHECK (coins >= 0)
    );
    INSERT INTO platform_account (id, coins) VALUES (1, 0);
    ALTER TABLE broadcasts ADD COLUMN chat_messages INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE broadcasts ADD COLUMN peak_messages_per_minute INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE broadcasts ADD COLUMN unique_chatters INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE broadcasts ADD COLUMN gifts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE broadcasts ADD COLUMN gift_coins INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE broadcasts ADD COLUMN new_followers INTEGER NOT NULL DEFAULT 0
"""


class InsufficientCoins(Exception):
    """The wallet holds fewer coins than the gift costs; nothing was charged."""

    def __init__(self, balance: int, price: int) -> None:
        super().__init__(f"the gift costs {price} coins and the wallet holds {balance}")
        self.balance, self.price = balance, price


class IdempotencyConflict(Exception):
    """A key or request id was used before for a different operation."""


@dataclass(frozen=True, slots=True)
class GiftRecord:
    """One row of the gift ledger, with the sender's balance after the request."""

    id: int
    sender_id: int
    request_id: str
    creator_id: int
    stream: str
    broadcast_started_at: float | None
    gift_id: str
    price: int
    creator_coins: int
    platform_coins: int
    created_at: float
    #: The sender's balance when this answer was made (after the debit, or now on a replay).
    balance: int = 0
    #: True when the request id had been used already: nothing was charged this time.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CreditRecord:
    id: int
    idempotency_key: str
    user_id: int
    coins: int
    balance: int
    created_at: float
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    handle: str
    display_name: str
    coins: int
    gifts: int


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    """The books. ``balanced`` is the invariant the tests check after every change."""

    credited: int
    credits: int
    balances: int
    creator_earnings: int
    platform: int
    gifts: int
    gifts_coins: int
    gifts_creator_coins: int
    gifts_platform_coins: int

    @property
    def balanced(self) -> bool:
        return (self.credited == self.balances + self.creator_earnings + self.platform
                and self.gifts_coins == self.credited - self.balances
                and self.gifts_creator_coins == self.creator_earnings
                and self.gifts_platform_coins == self.platform)

    def to_json(self) -> dict:
        return {**asdict(self), "balanced": self.balanced}


class GiftStore(Protocol):
    """Persistence of coins and gifts; ``SqliteStore`` implements it."""

    def wallet_balance(self, user_id: int) -> int: ...
    def credit(self, user_id: int, coins: int, idempotency_key: str, by_user_id: int | None,
               now: float) -> CreditRecord: ...
    def send_gift(self, sender_id: int, request_id: str, creator_id: int, stream: str,
                  broadcast_started_at: float | None, gift_id: str, price: int, creator_coins: int,
                  platform_coins: int, now: float) -> GiftRecord: ...
    def find_gift(self, sender_id: int, request_id: str) -> GiftRecord | None: ...
    def earnings(self, user_id: int) -> tuple[int, int]: ...
    def gift_totals(self, creator_id: int) -> tuple[int, int, int]: ...
    def leaderboard(self, creator_id: int, broadcast_started_at: float | None, limit: int) -> list[LeaderboardRow]: ...
    def ledger_summary(self) -> LedgerSummary: ...
    def new_followers_since(self, user_id: int, since: float) -> int: ...


_GIFT_COLUMNS = ("id, sender_id, request_id, creator_id, stream, broadcast_started_at, gift_id, price, "
                 "creator_coins, platform_coins, created_at")


class GiftsMixin:
    """SQLite implementation of ``GiftStore`` (needs ``self._db`` and ``self._lock``)."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def _transaction(self, work):
        """Run ``work()`` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back if it raises)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def _balance(self, user_id: int) -> int:
        row = self._db.execute("SELECT balance FROM wallets WHERE user_id = ?", (user_id,)).fetchone()
        return row[0] if row else 0

    def wallet_balance(self, user_id: int) -> int:
        with self._lock:
            return self._balance(user_id)

    def credit(self, user_id: int, coins: int, idempotency_key: str, by_user_id: int | None,
               now: float) -> CreditRecord:
        """Add ``coins`` to a wallet once per ``idempotency_key`` (a payment's id)."""
        if not isinstance(coins, int) or isinstance(coins, bool) or coins <= 0:
            raise ValueError("coins: a positive whole number")

        def work() -> CreditRecord:
            row = self._db.execute("SELECT id, user_id, coins, created_at FROM coin_credits WHERE idempotency_key = ?",
                                   (idempotency_key,)).fetchone()
            if row is not None:
                ident, owner, amount, created = row
                if (owner, amount) != (user_id, coins):
                    raise IdempotencyConflict(
                        f"idempotency key {idempotency_key!r} was used for another credit ({amount} coins)")
                return CreditRecord(ident, idempotency_key, owner, amount, self._balance(owner), created, True)
            cursor = self._db.execute(
                "INSERT INTO coin_credits (idempotency_key, user_id, coins, by_user_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (idempotency_key, user_id, coins, by_user_id, now))
            self._db.execute(
                "INSERT INTO wallets (user_id, balance, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET balance = balance + excluded.balance, updated_at = excluded.updated_at",
                (user_id, coins, now))
            return CreditRecord(int(cursor.lastrowid), idempotency_key, user_id, coins, self._balance(user_id), now)

        return self._transaction(work)

    def _gift_row(self, sender_id: int, request_id: str) -> GiftRecord | None:
        row = self._db.execute(f"SELECT {_GIFT_COLUMNS} FROM gift_ledger WHERE sender_id = ? AND request_id = ?",
                               (sender_id, request_id)).fetchone()
        return GiftRecord(*row) if row else None

    def find_gift(self, sender_id: int, request_id: str) -> GiftRecord | None:
        with self._lock:
            return self._gift_row(sender_id, request_id)

    def send_gift(self, sender_id: int, request_id: str, creator_id: int, stream: str,
                  broadcast_started_at: float | None, gift_id: str, price: int, creator_coins: int,
                  platform_coins: int, now: float) -> GiftRecord:
        """Debit the sender, credit creator and platform, append to the ledger: one transaction.

        Raises ``InsufficientCoins`` (nothing changed) or ``IdempotencyConflict`` (the request
        id was used for another gift or creator). A repeated request returns the original
        row with ``replayed=True``."""
        if creator_coins + platform_coins != price or min(creator_coins, platform_coins) < 0 or price <= 0:
            raise ValueError("a gift's split must be two non-negative parts summing to its price")

        def work() -> GiftRecord:
            existing = self._gift_row(sender_id, request_id)
            if existing is not None:
                if (existing.creator_id, existing.gift_id) != (creator_id, gift_id):
                    raise IdempotencyConflict(f"request_id {request_id!r} was used for another gift")
                return _replace(existing, balance=self._balance(sender_id), replayed=True)
            balance = self._balance(sender_id)
            if balance < price:
                raise InsufficientCoins(balance, price)
            self._db.execute("UPDATE wallets SET balance = balance - ?, updated_at = ? WHERE user_id = ?",
                             (price, now, sender_id))
            self._db.execute(
                "INSERT INTO creator_earnings (user_id, coins, gifts) VALUES (?, ?, 1) "
                "ON CONFLICT (user_id) DO UPDATE SET coins = coins + excluded.coins, gifts = gifts + 1",
                (creator_id, creator_coins))
            self._db.execute("UPDATE platform_account SET coins = coins + ? WHERE id = 1", (platform_coins,))
            cursor = self._db.execute(
                f"INSERT INTO gift_ledger ({_GIFT_COLUMNS.split(', ', 1)[1]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sender_id, request_id, creator_id, stream, broadcast_started_at, gift_id, price, creator_coins,
                 platform_coins, now))
            return GiftRecord(int(cursor.lastrowid), sender_id, request_id, creator_id, stream, broadcast_started_at,
                              gift_id, price, creator_coins, platform_coins, now, balance - price)

        return self._transaction(work)

    def earnings(self, user_id: int) -> tuple[int, int]:
        """(coins earned, gifts received) of a creator."""
        with self._lock:
            row = self._db.execute("SELECT coins, gifts FROM creator_earnings WHERE user_id = ?", (user_id,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def gift_totals(self, creator_id: int) -> tuple[int, int, int]:
        """(coins sent, creator's part, platform's part) of every gift to a creator, from
        the ledger: the gross a viewer-facing "gift coins" figure shows and how it split."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(price), 0), COALESCE(SUM(creator_coins), 0), COALESCE(SUM(platform_coins), 0) "
                "FROM gift_ledger WHERE creator_id = ?", (creator_id,)).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def leaderboard(self, creator_id: int, broadcast_started_at: float | None, limit: int) -> list[LeaderboardRow]:
        """Top senders to a creator by coins (all time, or one broadcast); ties: who gave first."""
        query = ("SELECT u.handle, u.display_name, SUM(g.price), COUNT(*) FROM gift_ledger g "
                 "JOIN users u ON u.id = g.sender_id WHERE g.creator_id = ?")
        args: tuple = (creator_id,)
        if broadcast_started_at is not None:
            query += " AND g.broadcast_started_at = ?"
            args += (broadcast_started_at,)
        query += " GROUP BY g.sender_id ORDER BY SUM(g.price) DESC, MIN(g.id) ASC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, int(limit))).fetchall()
        return [LeaderboardRow(*row) for row in rows]

    def ledger_summary(self) -> LedgerSummary:
        # One read transaction: the sums are a consistent snapshot.
        def work() -> LedgerSummary:
            one = lambda q: self._db.execute(q).fetchone()  # noqa: E731
            credited, credits = one("SELECT COALESCE(SUM(coins), 0), COUNT(*) FROM coin_credits")
            balances = one("SELECT COALESCE(SUM(balance), 0) FROM wallets")[0]
            earned = one("SELECT COALESCE(SUM(coins), 0) FROM creator_earnings")[0]
            platform = one("SELECT coins FROM platform_account WHERE id = 1")[0]
            gifts, price, creator, share = one(
                "SELECT COUNT(*), COALESCE(SUM(price), 0), COALESCE(SUM(creator_coins), 0), "
                "COALESCE(SUM(platform_coins), 0) FROM gift_ledger")
            return LedgerSummary(credited, credits, balances, earned, platform, gifts, price, creator, share)

        with self._lock:
            self._db.execute("BEGIN")
            try:
                return work()
            finally:
                self._db.execute("COMMIT")

    def new_followers_since(self, user_id: int, since: float) -> int:
        """Follows of ``user_id`` made at or after ``since`` that still stand."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM follows WHERE followee_id = ? AND created_at >= ?",
                                    (user_id, since)).fetchone()[0]


def _replace(record: GiftRecord, **changes) -> GiftRecord:
    return GiftRecord(**{**asdict(record), **changes})
