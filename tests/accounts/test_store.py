"""The accounts store (SQLite) and the pure rules: passwords, live access."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from mediasrv.community.accounts.service import evaluate_live_access, hash_password, verify_password
from mediasrv.store import HandleTaken, SqliteStore, User
from mediasrv.store.accounts import AccountsMixin
from tests.support.old_store import database_at
from mediasrv.store.sqlite import _MIGRATIONS


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "m.db")
    yield s
    s.close()


def test_migration_is_appended_and_an_old_database_upgrades(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(_MIGRATIONS[0])
    db.execute("INSERT INTO broadcasts VALUES (1, 'x', 1, 2, 1, 0, 0, 0, 0, 0, 0, 0)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SqliteStore(path)
    version = store._db.execute("PRAGMA user_version").fetchone()[0]
    assert version == len(_MIGRATIONS) >= 2
    assert len(store.list_broadcasts()) == 1  # kept
    assert store.count_users() == 0
    store.close()


def test_a_database_from_before_backstage_keeps_its_settings_with_backstage_off(tmp_path):
    """Migration 6 adds the creators' ``backstage`` setting (off) to existing rows."""
    path = tmp_path / "v5.db"
    db = database_at(path, 5)  # as a server before migration 6 left it
    for handle in ("alice", "bob"):
        db.execute("INSERT INTO users (handle, display_name, password_hash, role, created_at) VALUES (?, ?, 'h', 'creator', 1.0)",
                   (handle, handle.title()))
    db.execute("INSERT INTO creator_settings (user_id, title, save_by_default, updated_at) VALUES (1, 'Hello', 0, 2.0)")
    db.close()
    store = SqliteStore(path)
    alice, bob = store.get_user_by_handle("alice"), store.get_user_by_handle("bob")
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS) >= 6
    settings = store.get_settings(alice.id)
    assert (settings.title, settings.save_by_default, settings.backstage) == ("Hello", False, False)
    assert store.update_settings(bob.id, 3.0, backstage=True).backstage is True
    cards = store.creator_cards(["alice", "bob"])
    assert cards["bob"].settings.backstage and not cards["alice"].settings.backstage
    assert cards["alice"].settings.title == "Hello" and cards["alice"].followers == 0
    assert [c.settings.backstage for c in store.list_creators(10)] == [True, False]  # newest first
    store.close()


def test_users_have_unique_case_insensitive_handles(store):
    alice = store.create_user("alice", "Alice", "h", "creator", 1.0)
    assert store.get_user_by_handle("ALICE") == alice
    with pytest.raises(HandleTaken):
        store.create_user("Alice", "Other", "h", "viewer", 2.0)
    with pytest.raises(ValueError):
        store.create_user("bob", "Bob", "h", "superuser", 2.0)
    assert alice.at_least("viewer") and alice.at_least("creator") and not alice.at_least("moderator")


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("secret-pass"), hash_password("secret-pass")
    assert first != second and first.startswith("scrypt$") and "secret-pass" not in first
    assert verify_password("secret-pass", first) and verify_password("secret-pass", second)
    assert not verify_password("secret-pasS", first)
    assert not verify_password("x", "garbage")


def test_tokens_are_stored_hashed_expire_and_revoke(store):
    user = store.create_user("alice", "Alice", "h", "viewer", 1.0)
    token_hash = hashlib.sha256(b"tok").hexdigest()
    store.add_token(token_hash, user.id, 10.0, 20.0)
    assert store.user_for_token(token_hash, 15.0) == user
    assert store.user_for_token(token_hash, 20.0) is None  # expired
    rows = store._db.execute("SELECT * FROM tokens").fetchall()
    assert all("tok" not in str(value) or value == token_hash for row in rows for value in row)
    assert store.delete_tokens(user.id) == 1
    assert store.user_for_token(token_hash, 15.0) is None


def test_follows_counts_and_lists(store):
    alice = store.create_user("alice", "A", "h", "creator", 1.0)
    fans = [store.create_user(f"fan{i}", "F", "h", "viewer", 1.0) for i in range(5)]
    assert store.follow(fans[0].id, alice.id, 1.0) is True
    assert store.follow(fans[0].id, alice.id, 2.0) is False  # idempotent
    assert store.add_followers(alice.id, [f.id for f in fans] + [alice.id], 3.0) == 4  # not herself
    assert store.follower_count(alice.id) == 5 and store.following_count(fans[1].id) == 1
    assert {u.handle for u in store.list_followers(alice.id, 3, 0)} | {
        u.handle for u in store.list_followers(alice.id, 3, 3)} == {f.handle for f in fans}
    assert store.list_following(fans[2].id, 10, 0) == [alice]
    assert store.followed_among(fans[0].id, [alice.id, fans[1].id]) == {alice.id}
    assert store.followers_among(alice.id, [fans[0].id, fans[4].id, alice.id]) == {fans[0].id, fans[4].id}
    assert store.unfollow(fans[0].id, alice.id) is True and store.unfollow(fans[0].id, alice.id) is False
    assert store.creator_cards(["alice", "nobody"])["alice"].followers == 4


def test_stream_key_lookup_by_hash_and_rotation(store):
    alice = store.create_user("alice", "A", "h", "creator", 1.0)
    store.set_stream_key(alice.id, "k1", "hash1", 1.0)
    assert store.user_for_key_hash("hash1") == alice and store.get_stream_key(alice.id) == "k1"
    store.set_stream_key(alice.id, "k2", "hash2", 2.0)
    assert store.user_for_key_hash("hash1") is None
    assert store.user_for_key_hash("hash2") == alice


def test_settings_and_live_access_overrides(store):
    alice = store.create_user("alice", "A", "h", "creator", 1.0)
    assert store.get_settings(alice.id).title == "" and store.get_settings(alice.id).save_by_default is True
    settings = store.update_settings(alice.id, 5.0, title="Hi", chat={"followers_only": True}, save_by_default=False)
    assert settings.title == "Hi" and settings.chat["followers_only"] and settings.chat["enabled"]
    assert settings.save_by_default is False and store.get_settings(alice.id) == settings
    store.set_live_access(alice.id, "granted", None, 1.0)
    assert store.get_live_access(alice.id) == "granted"
    store.set_live_access(alice.id, "revoked", None, 2.0)
    assert store.get_live_access(alice.id) == "revoked"
    store.set_live_access(alice.id, None, None, 3.0)
    assert store.get_live_access(alice.id) is None


def test_store_implements_the_protocol():
    from mediasrv.store.accounts import AccountStore

    protocol_methods = {n for n in vars(AccountStore) if not n.startswith("_")}
    assert protocol_methods <= set(dir(AccountsMixin))


@pytest.mark.parametrize("followers, override, role, allowed, reason", [
    (12, None, "creator", False, "live access requires 1000 followers, you have 12"),
    (999, None, "creator", False, "live access requires 1000 followers, you have 999"),
    (1000, None, "creator", True, ""),
    (5, "granted", "creator", True, "granted"),
    (5000, "revoked", "creator", False, "revoked"),
    (5000, None, "viewer", False, "only creators can go live"),
    (0, None, "admin", False, "requires 1000"),
])
def test_live_access_rule(followers, override, role, allowed, reason):
    user = User(1, "alice", "A", role, 0.0)
    access = evaluate_live_access(user, followers, override, 1000)
    assert access.allowed is allowed
    assert reason in access.reason


def test_live_access_rule_disabled_with_zero():
    assert evaluate_live_access(User(1, "a", "A", "creator", 0.0), 0, None, 0).allowed


def test_an_email_link_verifies_only_the_address_it_was_sent_to(store):
    """Issue 18 (migration 10): a link is valid once, until it expires, and only while the
    user still has the address it was sent to."""
    user = store.create_user("fan", "Fan", "h", "viewer", 1.0)
    store.add_email_verification(user.id, "a@example.org", "link-a", 10.0, 100.0)
    store.add_email_verification(user.id, "b@example.org", "link-b", 20.0, 100.0)  # changed the address
    assert store.verify_email("link-a", 30.0) is None  # a is no longer the user's address
    assert store.email_status(user.id) == ("b@example.org", None)
    assert store.verify_email("link-b", 200.0) is None  # expired
    store.add_email_verification(user.id, "b@example.org", "link-c", 300.0, 400.0)
    assert store.verify_email("link-c", 310.0) == user.id
    assert store.verify_email("link-c", 311.0) is None  # used
    assert store.email_status(user.id) == ("b@example.org", 310.0)
    # Followers that count: older than the cut-off, verified when asked.
    creator = store.create_user("star", "Star", "h", "creator", 1.0)
    other = store.create_user("new", "New", "h", "viewer", 500.0)
    store.follow(user.id, creator.id, 501.0)
    store.follow(other.id, creator.id, 501.0)
    assert store.counted_follower_count(creator.id, 1000.0, False) == 2
    assert store.counted_follower_count(creator.id, 400.0, False) == 1  # "new" is too young
    assert store.counted_follower_count(creator.id, 1000.0, True) == 1  # only "fan" is verified
