"""Recordings of broadcasts (save or discard): rows in the ``recordings`` table.

The table lives in the same SQLite file as the rest of the store (``data_dir/mediasrv.db``)
but is owned by this module: it is created here, idempotently (``CREATE TABLE IF NOT
EXISTS``), through this module's own connection, and is not part of ``SqliteStore``'s
numbered migrations. Why a separate connection: the recorder's writes (one row update per
segment, from worker threads) then never queue behind the accounts store's lock, and
neither side depends on the other's migration numbering. WAL lets both connections read
at once; writes are short and serialised by SQLite itself (``timeout`` = busy wait).

The files of a recording (segments and manifest) are on disk under ``recording.dir``;
the row is the index and the state machine's state (``mediasrv.recording.recorder``).
"""

from __future__ import annotations

import enum
import sqlite3
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path


class RecordingState(enum.StrEnum):
    RECORDING = "recording"  # the stream is live and being written
    PENDING = "pending_decision"  # ended; waiting for the creator (or recording.decide_within)
    SAVED = "saved"  # kept: served as a VOD under /vod/ID/
    DISCARDED = "discarded"  # files deleted; only this row is left
    FAILED = "failed"  # writing stopped (disk full, I/O error); what was written is kept


@dataclass(slots=True)
class Recording:
    id: str
    stream: str
    state: RecordingState
    started_at: float
    ended_at: float | None = None
    #: Seconds of media on disk (sum of the segments' durations).
    duration: float = 0.0
    #: Bytes on disk (init segments + media segments).
    size: int = 0
    segments: int = 0
    video_frames: int = 0
    #: Why the recording failed (or was dropped), for the creator.
    error: str | None = None
    decided_at: float | None = None
    #: Who decided: "creator" (the API) or "default" (recording.decide_within ran out).
    decided_by: str | None = None
    #: The broadcast's title when it started ("" when it had none, or without accounts).
    title: str = ""
    #: Who may watch it (issue 18): the live's visibility when it ended, which the creator
    #: may change on the recording; and whether it is 18+.
    visibility: str = "public"
    mature: bool = False

    def to_json(self) -> dict:
        data = asdict(self)
        data["state"] = self.state.value
        return data


_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    duration REAL NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    segments INTEGER NOT NULL DEFAULT 0,
    video_frames INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    decided_at REAL,
    decided_by TEXT,
    title TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS recordings_stream ON recordings (stream, started_at);
CREATE INDEX IF NOT EXISTS recordings_state ON recordings (state)
"""

#: (column, definition) of columns newer than the table: added to an older file on open.
_ADDED_COLUMNS = (("title", "TEXT NOT NULL DEFAULT ''"), ("visibility", "TEXT NOT NULL DEFAULT 'public'"),
                  ("mature", "INTEGER NOT NULL DEFAULT 0"))

_COLUMNS = [f.name for f in fields(Recording)]


class RecordingStore:
    """The ``recordings`` table. Thread-safe (one connection behind a lock); callers on the
    event loop use ``asyncio.to_thread``."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            # Columns added after the table was first made (idempotent, like the table).
            have = {row[1] for row in self._db.execute("PRAGMA table_info(recordings)")}
            for column, definition in _ADDED_COLUMNS:
                if column not in have:
                    self._db.execute(f"ALTER TABLE recordings ADD COLUMN {column} {definition}")

    def insert(self, recording: Recording) -> None:
        values = recording.to_json()
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            self._db.execute(
                f"INSERT INTO recordings ({', '.join(_COLUMNS)}) VALUES ({marks})",
                tuple(values[c] for c in _COLUMNS),
            )

    def update(self, recording: Recording) -> None:
        """Write every field of ``recording`` to its row."""
        values = recording.to_json()
        columns = [c for c in _COLUMNS if c != "id"]
        with self._lock:
            self._db.execute(
                f"UPDATE recordings SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                (*(values[c] for c in columns), recording.id),
            )

    def get(self, recording_id: str) -> Recording | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM recordings WHERE id = ?", (recording_id,)
            ).fetchone()
        return None if row is None else _row(row)

    def list(
        self,
        *,
        stream: str | None = None,
        states: tuple[RecordingState, ...] | None = None,
        limit: int = 100,
    ) -> list[Recording]:
        """Newest first."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM recordings"
        where, args = [], []
        if stream is not None:
            where.append("stream = ?")
            args.append(stream)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args += [s.value for s in states]
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY started_at DESC, id LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, int(limit))).fetchall()
        return [_row(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(row: tuple) -> Recording:
    values = dict(zip(_COLUMNS, row))
    values["state"] = RecordingState(values["state"])
    values["mature"] = bool(values["mature"])
    return Recording(**values)
