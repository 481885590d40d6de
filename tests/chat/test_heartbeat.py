"""Chat heartbeats detect dead peers (issue 8, deliverable 2: "heartbeats detect dead peers").

The server pings every chat connection every ``chat.heartbeat`` seconds and closes one
that has not answered within half of that (aiohttp's ``WebSocketResponse(heartbeat=)``).
A real aiohttp client that reads its frames but never answers a ping (``autoping=False``:
a peer whose application hung, or whose network went away without a FIN) is disconnected
within a bounded time; a normal client, which answers, stays in the room and can talk.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.accounts.support import accounts_server
from tests.chat.support import chat_service, join

HEARTBEAT = 1.0  # the smallest chat.heartbeat the configuration accepts


async def _until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> tuple[float, int, aiohttp.WSMessage]:
    """Read ``ws`` (answering nothing) until the server closes it; return the seconds it
    took, the pings received meanwhile and the last message."""
    start = time.monotonic()
    pings = 0
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout - (time.monotonic() - start))
        if msg.type is aiohttp.WSMsgType.PING:
            pings += 1  # autoping=False: delivered to us, and we do not answer it
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                          aiohttp.WSMsgType.ERROR):
            return time.monotonic() - start, pings, msg


async def test_a_peer_that_never_answers_pings_is_disconnected_and_a_live_one_stays(tmp_path):
    async with accounts_server(tmp_path, f"chat.heartbeat={HEARTBEAT:g}") as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        service = chat_service(api)
        live, _ = await join(api, "alice", bob)
        # Reading in the background is what keeps a normal client alive: aiohttp answers
        # each ping inside receive(). It waits for the message bob sends at the end.
        echo = asyncio.create_task(live.recv("message", timeout=60))

        dead = await api.http.ws_connect("/live/alice/chat", autoping=False, heartbeat=None)
        state = json.loads((await dead.receive()).data)
        assert state["type"] == "state"
        assert len(service.rooms["alice"].members) == 2

        # A ping after HEARTBEAT s, closed HEARTBEAT/2 s later without a pong; the bound is
        # generous for a busy machine but far below "never".
        took, pings, last = await _until_closed(dead, timeout=10 * HEARTBEAT)
        assert pings >= 1, "the server never pinged"
        assert HEARTBEAT * 0.9 <= took <= 8 * HEARTBEAT, (took, last)
        assert dead.closed
        deadline = time.monotonic() + 5
        while len(service.rooms["alice"].members) != 1:
            assert time.monotonic() < deadline, "the dead peer is still a member of the room"
            await asyncio.sleep(0.05)

        # The normal client lived through the same heartbeats and three more rounds: still
        # connected, still a member, and its messages go through.
        start = time.monotonic()
        while time.monotonic() - start < 3 * HEARTBEAT:  # watching for a wrong close, not syncing
            assert not live.ws.closed and not echo.done(), echo
            await asyncio.sleep(0.1)
        assert len(service.rooms["alice"].members) == 1
        await live.send("message", text="still here")
        assert (await asyncio.wait_for(echo, 10))["text"] == "still here"
        assert not live.ws.closed
        await live.close()
