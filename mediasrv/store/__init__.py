"""Layer 2: persistent state behind a small interface (SQLite is the embedded default)."""

from mediasrv.store.sqlite import BroadcastSummary, SqliteStore, Store

__all__ = ["BroadcastSummary", "SqliteStore", "Store"]
