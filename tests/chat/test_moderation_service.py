"""The moderation service on a SQLite file with a clock the test moves: timeouts expire,
and the state is read back from the file by a fresh service (a restart)."""

from __future__ import annotations

import json

from mediasrv.config import Config

from mediasrv.community.moderation.service import moderated_chat
from mediasrv.store import SqliteStore


def frames(member) -> list[dict]:
    out = [json.loads(f) for f in member._frames]
    member._frames.clear()
    return out


async def test_a_timeout_expires_and_state_survives_a_new_service(tmp_path):
    path = tmp_path / "mediasrv.db"
    store = SqliteStore(path)
    alice = store.create_user("alice", "Alice", "x", "creator", 0.0)
    bob = store.create_user("bob", "Bob", "x", "viewer", 0.0)
    carol = store.create_user("carol", "Carol", "x", "viewer", 0.0)
    now = [1_000_000.0]
    config = Config()
    chat, service = moderated_chat(store, config, clock=lambda: now[0])
    room = chat.room("alice", owner_id=alice.id)
    await chat.admit(room, bob)
    member = chat.join(room, bob)
    frames(member)

    until = await service.timeout(alice.id, alice, bob, 2)
    assert until == now[0] + 120
    assert frames(member)[0]["action"] == "timeout"
    await chat.handle(room, member, json.dumps({"type": "message", "text": "hi"}))
    refused = frames(member)[0]
    assert refused["code"] == "timed_out" and 119 < refused["retry_after"] <= 120
    assert chat.state(room, bob)["you"]["can_write"] is False

    now[0] += 121  # the timeout is over
    assert chat.state(room, bob)["you"]["can_write"] is True
    await chat.handle(room, member, json.dumps({"type": "message", "text": "hi"}))
    assert frames(member)[0]["type"] == "message"

    await service.ban(alice.id, alice, carol, "spam")
    await service.timeout(alice.id, alice, bob, 10)
    store.close()

    # A new store and service on the same file: the ban and the running timeout are there.
    store = SqliteStore(path)
    chat, service = moderated_chat(store, config, clock=lambda: now[0])
    assert await service.is_banned(alice.id, carol.id) is True
    assert await service.is_banned(alice.id, bob.id) is False
    assert await service.timed_out_until(alice.id, bob.id) == now[0] + 600
    now[0] += 601
    assert await service.timed_out_until(alice.id, bob.id) is None
    assert [e.action for e in store.list_moderation_log(alice.id, 10)] == ["timeout", "ban", "timeout"]
    store.close()
