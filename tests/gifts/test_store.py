"""The coin ledger in a real SQLite file: exact sums, idempotency, no overspending."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from mediasrv.community.gifts.rules import split_gift
from mediasrv.store import SqliteStore
from mediasrv.store.gifts import IdempotencyConflict, InsufficientCoins
from tests.gifts.support import assert_balanced


@pytest.fixture
def store(tmp_path):
    store = SqliteStore(tmp_path / "mediasrv.db")
    yield store
    assert_balanced(store.ledger_summary())
    store.close()


def _users(store: SqliteStore, *handles: str):
    return [store.create_user(h, h, "x", "creator", time.time()) for h in handles]


def _send(store, sender, creator, request_id, price=10, share="0.5"):
    split = split_gift(price, share)
    return store.send_gift(sender.id, request_id, creator.id, creator.handle, None, "rose", price, split.creator,
                           split.platform, time.time())


def test_credit_is_once_per_key_and_a_reused_key_conflicts(store):
    (bob,) = _users(store, "bob")
    first = store.credit(bob.id, 100, "pay-1", None, time.time())
    assert (first.balance, first.replayed) == (100, False)
    again = store.credit(bob.id, 100, "pay-1", None, time.time())
    assert (again.id, again.balance, again.replayed) == (first.id, 100, True)
    with pytest.raises(IdempotencyConflict):
        store.credit(bob.id, 50, "pay-1", None, time.time())
    assert store.credit(bob.id, 7, "pay-2", None, time.time()).balance == 107
    summary = store.ledger_summary()
    assert (summary.credited, summary.credits, summary.balances) == (107, 2, 107)
    for coins in (0, -5, 1.5, True):
        with pytest.raises(ValueError):
            store.credit(bob.id, coins, f"bad-{coins}", None, time.time())


def test_send_splits_exactly_and_a_retry_charges_once(store):
    bob, alice = _users(store, "bob", "alice")
    store.credit(bob.id, 1000, "pay", None, time.time())
    record = _send(store, bob, alice, "r1", price=101)
    assert (record.price, record.creator_coins, record.platform_coins, record.balance) == (101, 50, 51, 899)
    retry = _send(store, bob, alice, "r1", price=101)
    assert retry.replayed and retry.id == record.id and retry.balance == 899
    assert store.wallet_balance(bob.id) == 899
    assert store.earnings(alice.id) == (50, 1)
    # The same request id for another gift is refused, not silently replayed.
    split = split_gift(10, "0.5")
    with pytest.raises(IdempotencyConflict):
        store.send_gift(bob.id, "r1", alice.id, "alice", None, "heart", 10, split.creator, split.platform, time.time())
    summary = store.ledger_summary()
    assert (summary.gifts, summary.gifts_coins, summary.platform) == (1, 101, 51)


def test_too_few_coins_changes_nothing(store):
    bob, alice = _users(store, "bob", "alice")
    store.credit(bob.id, 15, "pay", None, time.time())
    _send(store, bob, alice, "a")
    with pytest.raises(InsufficientCoins) as refused:
        _send(store, bob, alice, "b")
    assert (refused.value.balance, refused.value.price) == (5, 10)
    assert store.find_gift(bob.id, "b") is None
    assert store.wallet_balance(bob.id) == 5
    # No wallet at all is a balance of zero.
    with pytest.raises(InsufficientCoins):
        _send(store, alice, bob, "c")


def test_the_database_refuses_a_negative_balance_whatever_the_code_does(store):
    (bob,) = _users(store, "bob")
    store.credit(bob.id, 5, "pay", None, time.time())
    with pytest.raises(sqlite3.IntegrityError):
        store._db.execute("UPDATE wallets SET balance = balance - 6 WHERE user_id = ?", (bob.id,))
    assert store.wallet_balance(bob.id) == 5


def test_concurrent_sends_from_one_wallet_never_overspend(tmp_path, store):
    """20 senders at once (threads on two connections to the same file) on a wallet with
    coins for exactly 10 gifts: exactly 10 succeed."""
    bob, alice = _users(store, "bob", "alice")
    store.credit(bob.id, 100, "pay", None, time.time())
    other = SqliteStore(tmp_path / "mediasrv.db")  # a second connection: SQLite's own locking
    barrier = threading.Barrier(20)
    results: list[str] = []

    def sender(index: int) -> None:
        target = store if index % 2 else other
        barrier.wait()
        try:
            _send(target, bob, alice, f"req-{index}")
            results.append("ok")
        except InsufficientCoins:
            results.append("refused")
        except sqlite3.OperationalError as exc:  # would be a lock timeout: must not happen
            results.append(f"error: {exc}")

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    assert sorted(results) == ["ok"] * 10 + ["refused"] * 10, results
    assert store.wallet_balance(bob.id) == 0
    assert store.earnings(alice.id) == (50, 10)


def test_leaderboard_orders_by_coins_then_by_who_gave_first(store):
    alice, bob, carol, dave = _users(store, "alice", "bob", "carol", "dave")
    for user in (bob, carol, dave):
        store.credit(user.id, 100, f"pay-{user.handle}", None, time.time())
    _send(store, carol, alice, "1", price=10)
    _send(store, bob, alice, "1", price=10)
    _send(store, dave, alice, "1", price=30)
    split = split_gift(5, "0.5")
    store.send_gift(bob.id, "2", alice.id, "alice", 123.0, "x", 5, split.creator, split.platform, time.time())
    rows = store.leaderboard(alice.id, None, 10)
    assert [(r.handle, r.coins, r.gifts) for r in rows] == [("dave", 30, 1), ("bob", 15, 2), ("carol", 10, 1)]
    assert [r.handle for r in store.leaderboard(alice.id, None, 2)] == ["dave", "bob"]
    assert [(r.handle, r.coins) for r in store.leaderboard(alice.id, 123.0, 10)] == [("bob", 5)]
