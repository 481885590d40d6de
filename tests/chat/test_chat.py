"""Chat over WebSocket: two (or more) real aiohttp clients against the whole server."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp

from tests.accounts.support import accounts_server
from tests.chat.support import Publisher, chat_service, join


async def test_messages_reach_everyone_and_history_is_sent_on_join(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        creator, state = await join(api, "alice", alice)
        assert state["you"]["badges"] == ["creator"] and state["you"]["can_pin"]
        assert state["history"] == [] and state["pinned"] is None and state["viewers"] == 0
        viewer, state = await join(api, "alice", {"Authorization": bob["Authorization"]})
        assert state["you"] == {"user": "bob", "display_name": "bob", "badges": [], "can_write": True,
                                "can_pin": False, "can_moderate": False}

        await viewer.send("message", text="hello   there\n")
        seen = [await creator.recv("message"), await viewer.recv("message")]
        assert seen[0] == seen[1]
        assert seen[0]["user"] == "bob" and seen[0]["text"] == "hello there" and seen[0]["badges"] == []
        assert isinstance(seen[0]["id"], str) and seen[0]["sent_at"] > 0
        reply = await creator.say("hi bob")
        assert reply["badges"] == ["creator"]
        assert (await viewer.recv("message"))["id"] == reply["id"]

        # An anonymous reader gets the history too, and cannot write.
        reader, state = await join(api, "alice")
        assert state["you"] is None
        assert [m["text"] for m in state["history"]] == ["hello there", "hi bob"]
        await reader.send("message", text="let me in")
        error = await reader.recv()
        assert error["type"] == "error" and error["code"] == "not_logged_in"
        # The token may also come as ?access_token= (browsers cannot set WebSocket headers).
        token = bob["Authorization"].split()[1]
        ws = await api.http.ws_connect(f"/live/alice/chat?access_token={token}")
        assert json.loads((await ws.receive()).data)["you"]["user"] == "bob"
        await ws.close()
        for client in (creator, viewer, reader):
            await client.close()


async def test_refusals_before_the_upgrade(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.user("alice", "creator")
        response = await api.http.get("/live/alice/chat", headers={"Authorization": "Bearer nope"})
        assert "bearer token" in await api.error(response, 401)
        await api.error(await api.http.get("/live/nobody/chat"), 404)
        await api.error(await api.http.get("/live/alice/chat"), 400)  # not an upgrade
        doc = await (await api.http.get("/api/openapi.json")).json()
        assert "101" in doc["paths"]["/live/{name}/chat"]["get"]["responses"]


async def test_pin_and_delete_are_seen_by_everyone(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        mod = await api.user("mod", "moderator")
        creator, _ = await join(api, "alice", alice)
        viewer, _ = await join(api, "alice", bob)
        first = await viewer.say("first")
        second = await viewer.say("second")
        await creator.recv("message")
        await creator.recv("message")

        await viewer.send("pin", id=first["id"])
        assert (await viewer.recv("error"))["code"] == "forbidden"
        await viewer.send("delete", id=first["id"])
        assert (await viewer.recv("error"))["code"] == "forbidden"
        await creator.send("pin", id="no-such-id")
        assert (await creator.recv("error"))["code"] == "not_found"

        await creator.send("pin", id=first["id"])
        for client in (creator, viewer):
            pinned = await client.recv("pinned")
            assert pinned["message"]["id"] == first["id"] and pinned["by"] == "alice"
        late, state = await join(api, "alice")
        assert state["pinned"]["text"] == "first"

        # The creator deletes the pinned message: gone for everyone, unpinned, not in history.
        await creator.send("delete", id=first["id"])
        for client in (creator, viewer, late):
            assert await client.recv("deleted") == {"type": "deleted", "id": first["id"], "by": "alice"}
            assert (await client.recv("pinned"))["message"] is None
        # A moderator may delete in anyone's chat and carries the badge.
        moderator, state = await join(api, "alice", mod)
        assert state["you"]["badges"] == ["moderator"] and state["you"]["can_moderate"]
        assert (await moderator.say("be nice"))["badges"] == ["moderator"]
        await moderator.send("delete", id=second["id"])
        for client in (creator, viewer, moderator):
            assert (await client.recv("deleted"))["id"] == second["id"]
        _, state = await join(api, "alice")
        assert [m["text"] for m in state["history"]] == ["be nice"] and state["pinned"] is None

        await creator.send("pin", id=state["history"][0]["id"])
        assert (await viewer.recv("pinned"))["message"]["text"] == "be nice"
        await creator.send("unpin")
        assert (await viewer.recv("pinned"))["message"] is None


async def test_rate_limit_size_limit_and_bad_requests(tmp_path):
    async with accounts_server(tmp_path, "chat.history=3") as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        carol = await api.user("carol")
        viewer, _ = await join(api, "alice", bob)
        for i in range(3):
            assert (await viewer.say(f"message {i}"))["type"] == "message"
        refused = await viewer.say("one too many")
        assert refused["code"] == "rate_limited" and 0 < refused["retry_after"] <= 2.0
        await asyncio.sleep(refused["retry_after"] + 0.05)
        assert (await viewer.say("after waiting"))["type"] == "message"

        other, state = await join(api, "alice", carol)
        assert [m["text"] for m in state["history"]] == ["message 1", "message 2", "after waiting"]  # chat.history
        assert (await other.say("x" * 501))["code"] == "too_long"
        assert (await other.say("x" * 500))["type"] == "message"
        assert (await other.say(" \u200b "))["code"] == "empty"
        await other.ws.send_str("not json")
        assert (await other.recv("error"))["code"] == "bad_request"
        await other.send("shout", text="hey")
        assert (await other.recv("error"))["code"] == "unknown_type"
        # A frame far over any message's size closes the connection (1009).
        await other.ws.send_str(json.dumps({"type": "message", "text": "y" * 100_000}))
        msg = await asyncio.wait_for(other.ws.receive(), 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert other.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(document.cookie)">',
    '"><svg/onload=alert(1)>',
    "javascript:alert(1)",
    "&lt;b&gt;already escaped&lt;/b&gt; &amp;",
    "</textarea><iframe src=//evil.example>",
    "{{constructor.constructor('alert(1)')()}}",
    "\\u003cscript\\u003e",
]


async def test_markup_round_trips_as_plain_text(tmp_path):
    async with accounts_server(tmp_path, "chat.burst=50", "chat.banned_words=spam,free coins") as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        creator, _ = await join(api, "alice", alice)
        viewer, _ = await join(api, "alice", bob)
        for payload in XSS:
            echo = await viewer.say(payload)
            assert echo["type"] == "message" and echo["text"] == payload  # exactly, not escaped into entities
            assert (await creator.recv("message"))["text"] == payload
        # No frame the server sent holds a markup character: <, > and & travel as \u escapes.
        frames = [f for f in creator.raw + viewer.raw]
        assert frames and not any(c in frame for frame in frames for c in "<>&")
        _, state = await join(api, "alice")
        assert [m["text"] for m in state["history"]] == XSS
        assert (await viewer.say("get FREE   Coins here"))["code"] == "banned_word"  # chat.banned_words
        assert (await viewer.say("spammy is fine"))["type"] == "message"


async def _raw_reader_that_never_reads(port: int, path: str) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that stops reading after the handshake."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await asyncio.wait_for(loop.sock_recv(sock, 1), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_slow_consumer_is_dropped_while_the_room_goes_on(tmp_path):
    async with accounts_server(tmp_path, "chat.send_buffer=16", "chat.max_chars=8000", "chat.rate=1000",
                               "chat.per=1", "chat.burst=1000") as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        service = chat_service(api)
        sender, _ = await join(api, "alice", bob)
        reader, _ = await join(api, "alice")
        slow = await _raw_reader_that_never_reads(api.srv.http_port, "/live/alice/chat")
        while len(service.rooms["alice"].members) < 3:
            await asyncio.sleep(0.01)

        count = 120
        got: dict[str, list[str]] = {"sender": [], "reader": []}

        async def drain(name, client):
            while len(got[name]) < count:
                got[name].append((await client.recv("message", timeout=20))["text"])

        readers = [asyncio.create_task(drain("sender", sender)), asyncio.create_task(drain("reader", reader))]
        texts = [f"{i:04d}" + "x" * 7990 for i in range(count)]
        for text in texts:
            await sender.send("message", text=text)
        await asyncio.wait_for(asyncio.gather(*readers), 30)
        assert got["sender"] == texts and got["reader"] == texts  # nobody else lost a message
        assert service.members_dropped_slow == 1
        assert len(service.rooms["alice"].members) == 2

        # The slow client finds its connection closed once it reads again.
        loop = asyncio.get_running_loop()
        received = 0
        try:
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(slow, 65536), 10)
                if not chunk:
                    break
                received += len(chunk)
        except ConnectionResetError:
            pass
        finally:
            slow.close()
        assert received < count * 8000 // 4  # it was cut off long before the end
        # And the room still works.
        assert (await sender.say("still here"))["type"] == "message"
        assert (await reader.recv("message"))["text"] == "still here"


async def test_stream_started_and_ended_reach_the_room(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        creator, state = await join(api, "alice", alice)
        reader, _ = await join(api, "alice")
        assert state["live"] is False
        publication = api.srv.hub.publish("alice", Publisher())
        for client in (creator, reader):
            system = await client.recv("system")
            assert system["event"] == "stream-started" and isinstance(system["text"], str)
        _, state = await join(api, "alice")
        assert state["live"] is True
        publication.detach(clean=True)
        for client in (creator, reader):
            assert await client.recv("stream-ended") == {"type": "stream-ended", "stream": "alice"}
        # The room keeps working after the end (the creator can still thank everyone).
        assert (await creator.say("thanks for watching"))["type"] == "message"
        assert (await reader.recv("message"))["text"] == "thanks for watching"


async def test_a_backstage_live_is_announced_when_it_goes_public_and_not_before(tmp_path):
    """A private broadcast (backstage) is not live for the room: no ``stream-started``,
    ``live: false``; made public, the room hears of it then. One that ends private leaves
    no ``stream-ended`` either."""
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        reader, _ = await join(api, "alice")
        writer, _ = await join(api, "alice", alice)
        hub = api.srv.hub
        hub.set_backstage("alice", True)
        hub.publish("alice", Publisher())
        _, state = await join(api, "alice")
        assert state["live"] is False
        # Frames reach the room in order: up to this message, no start was announced.
        assert (await writer.say("anyone here?"))["type"] == "message"
        assert (await reader.recv("message"))["text"] == "anyone here?"
        assert "system" not in [json.loads(raw)["type"] for raw in reader.raw]
        hub.make_public("alice")
        system = await reader.recv("system")
        assert system["event"] == "stream-started"
        _, state = await join(api, "alice")
        assert state["live"] is True
        hub.stop("alice")
        assert (await reader.recv("stream-ended"))["stream"] == "alice"

        hub.publish("alice", Publisher())  # private again, then ended private
        hub.stop("alice")
        hub.set_backstage("alice", False)
        hub.publish("alice", Publisher())
        # The next frame of those types is the public start: the private one said nothing.
        frame = await reader.recv()
        while frame["type"] not in ("system", "stream-ended"):
            frame = await reader.recv()
        assert frame["type"] == "system" and frame["event"] == "stream-started", frame
