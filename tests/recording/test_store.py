"""The ``recordings`` table: a file made before a column existed gets it on open."""

from __future__ import annotations

import sqlite3

from mediasrv.store.recordings import Recording, RecordingState, RecordingStore

#: The table as the first release of the recorder made it (no ``title``).
OLD_TABLE = """CREATE TABLE recordings (
    id TEXT PRIMARY KEY, stream TEXT NOT NULL, state TEXT NOT NULL, started_at REAL NOT NULL,
    ended_at REAL, duration REAL NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,
    segments INTEGER NOT NULL DEFAULT 0, video_frames INTEGER NOT NULL DEFAULT 0, error TEXT,
    decided_at REAL, decided_by TEXT)"""


def test_an_older_file_gets_the_title_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "mediasrv.db"
    db = sqlite3.connect(path)
    db.execute(OLD_TABLE)
    db.execute("INSERT INTO recordings (id, stream, state, started_at, duration) "
               "VALUES ('aaaaaaaaaaaaaaaa', 'alice', 'saved', 100.0, 12.5)")
    db.commit()
    db.close()
    for opening in range(2):  # opening twice is fine (idempotent)
        store = RecordingStore(path)
        try:
            old = store.get("aaaaaaaaaaaaaaaa")
            assert (old.stream, old.state, old.duration, old.title) == ("alice", RecordingState.SAVED, 12.5, "")
            if opening == 0:
                store.insert(Recording("bbbbbbbbbbbbbbbb", "alice", RecordingState.RECORDING, 200.0, title="Hi"))
            assert store.get("bbbbbbbbbbbbbbbb").title == "Hi"
            assert [r.id for r in store.list(stream="alice")] == ["bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa"]
        finally:
            store.close()
