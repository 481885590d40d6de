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


async def test_chat_off_refuses_everyone_but_the_creator_and_is_read_back_from_the_store(tmp_path):
    """``chat.enabled: false`` in the creator's settings: every message but the creator's is
    refused with ``chat_off``; on again, the same connections write again; a fresh service
    on the same file (a restart) applies the stored setting to a new room."""
    path = tmp_path / "mediasrv.db"
    store = SqliteStore(path)
    alice = store.create_user("alice", "Alice", "x", "creator", 0.0)
    bob = store.create_user("bob", "Bob", "x", "viewer", 0.0)
    carol = store.create_user("carol", "Carol", "x", "viewer", 0.0)
    root = store.create_user("root", "Root", "x", "admin", 0.0)
    config = Config()
    chat, service = moderated_chat(store, config, clock=lambda: 1_000_000.0)
    await service.set_moderator(alice.id, alice, bob, True)
    room = chat.room("alice", owner_id=alice.id)
    members = {}
    for user in (alice, bob, carol, root, None):
        await chat.admit(room, user)
        members[user.handle if user else None] = chat.join(room, user)
    assert json.loads(members["carol"]._frames[0])["enabled"] is True
    for member in members.values():
        frames(member)

    async def turn(on: bool) -> None:
        # What PATCH /api/me/settings does: store the merged settings, then apply them.
        saved = store.update_settings(alice.id, 1_000_000.0, chat={**store.get_settings(alice.id).chat, "enabled": on})
        await service.settings_changed(alice.id, alice, saved.chat)

    async def say(handle: str, text: str) -> dict:
        member = members[handle]
        await chat.handle(room, member, json.dumps({"type": "message", "text": text}))
        return frames(member)[-1]

    await turn(False)
    for member in members.values():
        assert frames(member) == [{"type": "moderation", "action": "chat_enabled", "on": False, "by": "alice"}]
    for handle in ("carol", "bob", "root"):  # a viewer, an appointed moderator, an admin
        assert await say(handle, "hello?") == {"type": "error", "code": "chat_off",
                                               "reason": "the creator has turned the chat off", "retry_after": 0}
    assert [m.text for m in room.history] == []
    echoed = await say("alice", "back in five")
    assert echoed["type"] == "message" and echoed["badges"] == ["creator"]
    assert chat.state(room, carol)["enabled"] is False and chat.state(room, carol)["you"]["can_write"] is False
    assert chat.state(room, alice)["you"]["can_write"] is True and chat.state(room, None)["enabled"] is False
    assert [frames(members[h])[-1]["text"] for h in ("bob", "carol", "root", None)] == ["back in five"] * 4
    await turn(False)  # no change: nothing sent, nothing logged
    assert all(frames(member) == [] for member in members.values())

    await turn(True)
    assert frames(members["carol"]) == [{"type": "moderation", "action": "chat_enabled", "on": True, "by": "alice"}]
    assert (await say("carol", "finally"))["type"] == "message"  # the same connection, no reconnect
    assert chat.state(room, carol)["you"]["can_write"] is True
    await turn(False)
    assert [e.action for e in store.list_moderation_log(alice.id, 10)][:3] == ["chat_enabled"] * 3
    store.close()

    # A restart: the stored setting reaches a new room before anyone writes.
    store = SqliteStore(path)
    chat, _ = moderated_chat(store, config, clock=lambda: 1_000_000.0)
    room = chat.room("alice", owner_id=alice.id)
    await chat.admit(room, carol)
    member = chat.join(room, carol)
    state = frames(member)[0]
    assert state["enabled"] is False and state["you"]["can_write"] is False
    await chat.handle(room, member, json.dumps({"type": "message", "text": "anyone?"}))
    assert frames(member)[0]["code"] == "chat_off"
    store.close()
