"""Layer 2: persistent state behind a small interface (SQLite is the embedded default)."""

from mediasrv.store.accounts import AccountStore, CreatorCard, CreatorSettings, HandleTaken, ROLES, User
from mediasrv.store.sqlite import BroadcastSummary, SqliteStore, Store

__all__ = [
    "AccountStore", "BroadcastSummary", "CreatorCard", "CreatorSettings", "HandleTaken", "ROLES",
    "SqliteStore", "Store", "User",
]
