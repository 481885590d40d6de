"""Load: 500 chat clients in one room (the bounded version of ``benchmarks/chat.py``,
which measured 5,000: benchmarks/RESULTS.md, "Load (issue 10)").

500 anonymous WebSocket readers join a creator's room; the creator sends 40 messages at
20 a second, each carrying its send time. Every reader must get every message, in order,
none may be disconnected (the server drops a member whose ``chat.send_buffer`` fills),
and the delivery p99 must stay under 2 s (~100 ms on an idle machine; the bound leaves
room for the load other test runs put on these 2 shared cores).
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.accounts.support import accounts_server
from tests.chat.support import join

pytestmark = pytest.mark.load

CLIENTS = 500
MESSAGES = 40
RATE = 20.0


async def reader(ws: aiohttp.ClientWebSocketResponse, latencies: list[float], order: list[int]) -> None:
    """Read until the last message; note each message's delivery latency."""
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"a reader was disconnected: {msg}")
        data = json.loads(msg.data)
        if data["type"] != "message":
            continue
        index, sent = data["text"].split(" ")
        latencies.append(time.monotonic() - float(sent))
        order.append(int(index))
        if int(index) == MESSAGES - 1:
            return


async def test_500_chat_clients_get_every_message_quickly(tmp_path):
    async with accounts_server(tmp_path, "chat.rate=1000", "chat.per=1", "chat.burst=1000") as api:
        alice = await api.user("alice", "creator")
        creator, _ = await join(api, "alice", alice)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(api.srv.http_url, connector=connector) as http:
            started = time.monotonic()
            sockets = await asyncio.gather(*(http.ws_connect("/live/alice/chat") for _ in range(CLIENTS)))
            for ws in sockets:  # the state frame, sent on joining
                assert json.loads((await asyncio.wait_for(ws.receive(), 30)).data)["type"] == "state"
            joined = time.monotonic() - started
            latencies: list[list[float]] = [[] for _ in sockets]
            orders: list[list[int]] = [[] for _ in sockets]
            readers = [asyncio.ensure_future(reader(ws, lat, order)) for ws, lat, order in zip(sockets, latencies, orders)]
            start = time.monotonic()
            for index in range(MESSAGES):
                delay = start + index / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the sender, not synchronisation
                await creator.send("message", text=f"{index} {time.monotonic():.6f}")
            await asyncio.wait_for(asyncio.gather(*readers), 30)
            for ws in sockets:
                await ws.close()
        await creator.close()
    assert all(order == list(range(MESSAGES)) for order in orders)
    everything = sorted(x for lat in latencies for x in lat)
    p50, p99 = everything[len(everything) // 2], everything[int(0.99 * (len(everything) - 1))]
    print(f"\n{CLIENTS} clients joined in {joined:.1f} s; {len(everything)} deliveries, "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    assert len(everything) == CLIENTS * MESSAGES
    assert p99 < 2.0, p99
