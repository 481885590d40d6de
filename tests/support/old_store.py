"""A SQLite database as an older server left it: the first ``version`` migrations of
``mediasrv.store.sqlite`` applied, none after (for tests of an upgrade).

Applied the way the store's runner applies them (statements split on ``;``), so the
result is the schema that version really had, whatever later migrations add; a test
writes its rows with plain SQL of that schema.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mediasrv.store.sqlite import _MIGRATIONS


def database_at(path: Path, version: int) -> sqlite3.Connection:
    """A new database file at ``path`` with migrations 1..``version``; the caller closes it."""
    assert 0 < version < len(_MIGRATIONS), version
    db = sqlite3.connect(path, isolation_level=None)
    for script in _MIGRATIONS[:version]:
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    return db
