"""Blocks and mutes against the whole server (issue 18, "who may reach whom"): a blocked
user cannot chat in the blocker's rooms, follow them (their follow is removed) or gift
them, and the blocker no longer sees their messages, live or in the history; a mute only
hides the muted user's messages from the muter."""

from __future__ import annotations

import asyncio

import aiohttp

from mediasrv.httpkit.keys import BLOCKS
from tests.chat.support import join
from tests.gifts.support import credit, gifts_server, send


async def _block(api, headers, handle, kind="blocks", method="POST"):
    response = await api.http.request(method, f"/api/me/{kind}/{handle}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_block_refuses_chat_follow_and_gifts_and_hides_messages_everywhere(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        carol = await api.user("carol", "creator")
        troll = await api.user("troll")
        friend = await api.user("friend")
        await credit(api, "troll", 100, "c1")
        # The troll follows alice and chats in carol's room before anything is blocked.
        assert (await api.http.put("/api/me/following/alice", headers=troll)).status == 200
        troll_in_carol, _ = await join(api, "carol", troll)
        assert (await troll_in_carol.say("before the block"))["type"] == "message"

        answer = await _block(api, alice, "troll")
        assert answer == {"handle": "troll", "blocked": True, "changed": True}
        assert (await _block(api, alice, "troll"))["changed"] is False  # idempotent
        assert api.srv.app[BLOCKS].blocks(api.store.get_user_by_handle("alice").id,
                                          api.store.get_user_by_handle("troll").id)
        listing = await (await api.http.get("/api/me/blocks", headers=alice)).json()
        assert [row["user"]["handle"] for row in listing["users"]] == ["troll"]

        # The follow was removed, and a new one is refused.
        assert not api.store.is_following(api.store.get_user_by_handle("troll").id,
                                          api.store.get_user_by_handle("alice").id)
        assert "blocked you" in await api.error(await api.http.put("/api/me/following/alice", headers=troll), 403)
        # No gift either, and nothing is charged.
        assert (await send(api, troll, "alice", "rose", "g1")).status == 403
        assert (await (await api.http.get("/api/me/wallet", headers=troll)).json())["balance"] == 100
        # Nor chat in alice's rooms: refused before the upgrade.
        refused = await api.http.get("/live/alice/chat", headers=troll)
        assert refused.status == 403 and (await refused.json())["code"] == "blocked"

        # Alice no longer sees the troll anywhere: carol's room, live and in its history.
        alice_in_carol, state = await join(api, "carol", alice)
        assert [m["text"] for m in state["history"]] == []
        friend_in_carol, state = await join(api, "carol", friend)
        assert [m["text"] for m in state["history"]] == ["before the block"]
        assert (await troll_in_carol.say("after the block"))["type"] == "message"
        assert (await friend_in_carol.recv("message"))["text"] == "after the block"
        assert (await friend_in_carol.say("hello from a friend"))["type"] == "message"
        # The first message alice gets is the friend's: the troll's was never sent to her.
        assert (await alice_in_carol.recv("message"))["text"] == "hello from a friend"
        assert all("after the block" not in raw for raw in alice_in_carol.raw)

        # Unblocked: the troll may follow again.
        assert (await _block(api, alice, "troll", method="DELETE"))["blocked"] is False
        assert (await api.http.put("/api/me/following/alice", headers=troll)).status == 200
        for client in (troll_in_carol, alice_in_carol, friend_in_carol):
            await client.close()


async def test_blocking_closes_the_blocked_users_connection_to_the_blockers_chat(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        troll = await api.user("troll")
        client, _ = await join(api, "alice", troll)
        await _block(api, alice, "troll")
        error = await client.recv("error")
        assert error["code"] == "blocked"
        closed = await asyncio.wait_for(client.ws.receive(), 5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_mute_only_hides_the_muted_users_messages_from_the_muter(tmp_path):
    async with gifts_server(tmp_path) as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        chatty = await api.user("chatty")
        friend = await api.user("friend")
        await credit(api, "chatty", 100, "c1")
        chatty_client, _ = await join(api, "alice", chatty)
        assert (await chatty_client.say("first")).get("text") == "first"

        answer = await _block(api, bob, "chatty", kind="mutes")
        assert answer == {"handle": "chatty", "muted": True, "changed": True}
        bob_client, state = await join(api, "alice", bob)
        assert state["history"] == []
        friend_client, state = await join(api, "alice", friend)
        assert [m["text"] for m in state["history"]] == ["first"]

        # A mute is not a block: chatty still chats, follows and gifts.
        assert (await chatty_client.say("second")).get("text") == "second"
        assert (await api.http.put("/api/me/following/bob", headers=chatty)).status == 200
        assert (await send(api, chatty, "alice", "rose", "g1")).status == 201
        assert (await friend_client.recv("message"))["text"] == "second"
        assert (await friend_client.say("from friend")).get("text") == "from friend"
        assert (await bob_client.recv("message"))["text"] == "from friend"
        assert all('"second"' not in raw for raw in bob_client.raw)
        # Nor their gift (the friend saw it).
        assert any('"type":"gift"' in raw for raw in friend_client.raw)
        assert all('"type":"gift"' not in raw for raw in bob_client.raw)

        listing = await (await api.http.get("/api/me/mutes", headers=bob)).json()
        assert [row["user"]["handle"] for row in listing["users"]] == ["chatty"]
        assert (await api.http.get("/api/me/blocks", headers=bob)).status == 200
        assert (await _block(api, bob, "chatty", kind="mutes", method="DELETE"))["changed"] is True
        for client in (chatty_client, bob_client, friend_client):
            await client.close()


async def test_bad_block_requests_are_clear_4xx(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        assert (await api.http.post("/api/me/blocks/alice")).status == 401
        await api.error(await api.http.post("/api/me/blocks/alice", headers=alice), 422)
        await api.error(await api.http.post("/api/me/mutes/nobody-here", headers=alice), 404)
        await api.error(await api.http.post("/api/me/blocks/%00bad", headers=alice), 400)


async def test_blocks_survive_a_restart(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        await api.user("troll")
        await _block(api, alice, "troll")
    async with gifts_server(tmp_path) as api:
        store = api.store
        assert api.srv.app[BLOCKS].blocks(store.get_user_by_handle("alice").id, store.get_user_by_handle("troll").id)
