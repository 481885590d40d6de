"""The SQLite store: a real file, reopened."""

from __future__ import annotations

from mediasrv.store import BroadcastSummary, SqliteStore


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
