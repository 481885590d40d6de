"""Chat across nodes through Redis: WebSocket clients on node A and on node B of one
cluster see each other's messages in order, with deletions, pins and gift frames."""

from __future__ import annotations

import aiohttp

from tests.accounts.support import ADMIN_PASSWORD, Api
from tests.chat.support import join
from tests.cluster.support import running_node, running_redis
from tests.gifts.support import credit, send

ROOM = "hostess"
MESSAGES = 20
CHAT_LIMITS = ("chat.rate=100", "chat.burst=100", f"accounts.admin_password={ADMIN_PASSWORD}")


async def test_messages_moderation_and_gifts_reach_the_room_on_the_other_node_in_order(tmp_path):
    async with running_redis(tmp_path) as redis, \
            running_node(tmp_path, redis, "a", *CHAT_LIMITS) as a, \
            running_node(tmp_path, redis, "b", *CHAT_LIMITS, ingest=False) as b, \
            aiohttp.ClientSession(base_url=a.http_url) as http_a, \
            aiohttp.ClientSession(base_url=b.http_url) as http_b:
        api_a, api_b = Api(a, http_a), Api(b, http_b)
        # Each node has its own accounts (docs/cluster.md): the writers log in where they are.
        hostess = await api_a.user(ROOM, "creator")
        alice = await api_a.user("alice")
        bob = await api_b.user("bob")
        writer, _ = await join(api_a, ROOM, alice)
        creator, _ = await join(api_a, ROOM, hostess)
        reader_b, state = await join(api_b, ROOM)
        assert state["history"] == []
        writer_b, _ = await join(api_b, ROOM, bob)

        sent = []
        for i in range(MESSAGES):
            echo = await writer.say(f"message {i} from A")
            assert echo["type"] == "message", echo
            sent.append(echo)
        received = [await reader_b.recv("message") for _ in range(MESSAGES)]
        assert [m["text"] for m in received] == [f"message {i} from A" for i in range(MESSAGES)]
        assert [m["id"] for m in received] == [m["id"] for m in sent]
        assert received[0]["user"] == "alice"

        # The other way: bob on B, read on A.
        await writer_b.say("hello from B")
        from_b = await writer.recv("message")
        assert from_b["text"] == "hello from B" and from_b["user"] == "bob"

        # Moderation on A: a deletion and a pin reach B and change B's room state.
        await creator.send("delete", id=sent[5]["id"])
        deleted = await reader_b.recv("deleted")
        assert deleted["id"] == sent[5]["id"] and deleted["by"] == ROOM
        await creator.send("pin", id=sent[6]["id"])
        pinned = await reader_b.recv("pinned")
        assert pinned["message"]["id"] == sent[6]["id"]

        # A gift sent on A: its frame reaches the room on B.
        await credit(api_a, "alice", 50, "credit-1")
        response = await send(api_a, alice, ROOM, "rose", "gift-1")
        assert response.status == 201, await response.text()
        gift = await reader_b.recv("gift")
        assert gift["user"] == "alice" and gift["gift"]["id"] == "rose" and gift["coins"] == 10

        # Someone joining on B now gets the room's history as B followed it.
        late, state = await join(api_b, ROOM)
        texts = [m["text"] for m in state["history"]]
        assert "message 5 from A" not in texts
        assert texts[:2] == ["message 0 from A", "message 1 from A"] and texts[-1] == "hello from B"
        assert state["pinned"]["id"] == sent[6]["id"]
        for client in (writer, creator, reader_b, writer_b, late):
            await client.close()
