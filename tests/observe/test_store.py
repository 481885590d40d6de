"""The SQLite store: a real file, reopened."""

from __future__ import annotations

import sqlite3

from mediasrv.store import BroadcastSummary, SqliteStore
from tests.support.old_store import database_at
from mediasrv.store.sqlite import _MIGRATIONS


def test_broadcasts_persist_across_reopen(tmp_path):
    path = tmp_path / "m.db"
    store = SqliteStore(path)
    first = BroadcastSummary("alice", 100.0, 160.0, 60.0, 3, 1.5, 4, 90.0, 1, 1000, 2000)
    ident = store.add_broadcast(first)
    store.add_broadcast(BroadcastSummary("bob", 200.0, 210.0, 10.0, 0, 0.0, 0, 0.0, 0, 10, 0))
    store.close()
    store = SqliteStore(path)
    rows = store.list_broadcasts()
    assert [r.stream for r in rows] == ["bob", "alice"]
    assert rows[1] == BroadcastSummary(**{**first.to_json(), "id": ident})
    assert [r.stream for r in store.list_broadcasts("alice")] == ["alice"]
    assert len(store.list_broadcasts(limit=1)) == 1
    store.close()


def test_broadcasts_from_before_backstage_stay_public(tmp_path):
    """Migration 7 adds ``private`` (ended without going public): every broadcast saved
    before it was public, and stays listed for everyone."""
    path = tmp_path / "v6.db"
    db = database_at(path, 6)  # as a server before migration 7 left it
    db.execute("INSERT INTO broadcasts (stream, started_at, ended_at, duration_seconds, peak_viewers, average_viewers,"
               " unique_viewers, watch_seconds, reconnects, bytes_in, bytes_out)"
               " VALUES ('alice', 100.0, 160.0, 60.0, 3, 1.5, 4, 90.0, 1, 1000, 2000)")
    db.close()
    store = SqliteStore(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS) >= 7
    rows = store.list_broadcasts(include_private=False)
    assert [(r.stream, r.private) for r in rows] == [("alice", False)]
    store.add_broadcast(BroadcastSummary("bob", 200.0, 210.0, 10.0, 0, 0.0, 0, 0.0, 0, 10, 0, private=True))
    assert [r.stream for r in store.list_broadcasts(include_private=False)] == ["alice"]
    assert [(r.stream, r.private) for r in store.list_broadcasts()] == [("bob", True), ("alice", False)]
    store.close()
