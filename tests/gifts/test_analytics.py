"""The creator's live analytics: the counters, the live feed and the broadcast summary."""

from __future__ import annotations

import asyncio
import json
import time

from mediasrv.observe.analytics_rules import BroadcastCounters
from tests.chat.support import Publisher, join
from tests.gifts.support import credit, gifts_server, send


def test_messages_per_minute_slide_and_chatters_expire():
    counters = BroadcastCounters(started_at=1000.0, active_window=300)
    for second in range(30):  # one message a second, users 0-2 in turn
        counters.message(second % 3, 100.0 + second)
    assert counters.messages_per_minute(129.5) == 30
    assert counters.messages_per_minute(159.9) == 30  # the first is 59.9 s old
    assert counters.messages_per_minute(160.0) == 29
    assert counters.messages_per_minute(189.0) == 0
    assert counters.peak_messages_per_minute == 30
    assert counters.active_chatters(200.0) == 3
    counters.message(7, 250.0)
    assert counters.active_chatters(450.0) == 1  # users 0-2 last wrote more than 300 s ago
    assert counters.active_chatters(550.0) == 0
    assert counters.unique_chatters == 4 and counters.messages == 31
    counters.gift(10)
    counters.gift(1000)
    assert counters.summary() == {"chat_messages": 31, "peak_messages_per_minute": 30, "unique_chatters": 4,
                                  "gifts": 2, "gift_coins": 1010, "new_followers": 0}


def test_a_busy_minute_keeps_its_peak():
    counters = BroadcastCounters(started_at=0.0)
    for index in range(500):
        counters.message(index % 50, 10.0 + index / 100)  # 500 messages in 5 s
    for index in range(10):
        counters.message(1, 200.0 + index)
    assert counters.messages_per_minute(210.0) == 10
    assert counters.peak_messages_per_minute == 500
    assert counters.snapshot(210.0)["active_chatters"] == 50


async def _poll(api, path: str, predicate, timeout: float = 10.0, headers: dict | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = await api.http.get(path, headers=headers or {})
        body = await response.json() if response.status == 200 else None
        if body is not None and predicate(body):
            return body
        assert time.monotonic() < deadline, f"{path}: condition not reached; last answer {body}"
        await asyncio.sleep(0.1)


async def test_live_feed_and_summary_count_chat_gifts_and_new_followers(tmp_path):
    async with gifts_server(tmp_path, "analytics.followers_refresh=0.5") as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        carol = await api.user("carol")
        dave = await api.user("dave")
        assert (await api.http.put("/api/me/following/alice", headers=carol)).status == 200  # before: not new
        await credit(api, "bob", 100, "pay")
        chat_bob, _ = await join(api, "alice", bob)
        chat_carol, _ = await join(api, "alice", carol)
        assert (await chat_bob.say("before the broadcast"))["type"] == "message"  # offline: not counted

        publication = api.srv.hub.publish("alice", Publisher())
        # The figures are the creator's (issue 18): alice reads them with her token.
        events = await api.http.get("/api/streams/alice/events", headers=alice)
        assert events.status == 200
        for text in ("hello", "hi"):
            assert (await chat_bob.say(text))["type"] == "message"
        assert (await chat_carol.say("hey"))["type"] == "message"
        assert (await send(api, bob, "alice", "rose", "1")).status == 201
        assert (await send(api, bob, "alice", "heart", "2")).status == 201
        assert (await send(api, bob, "alice", "heart", "2")).status == 200  # a replay counts once
        assert (await api.http.put("/api/me/following/alice", headers=dave)).status == 200

        stats = await _poll(api, "/api/streams/alice/stats", lambda s: s["analytics"]["new_followers"] == 1,
                            headers=alice)
        assert stats["analytics"] == {"chat_messages_per_minute": 3, "active_chatters": 2, "chat_messages": 3,
                                      "unique_chatters": 2, "gifts": 2, "gift_coins": 11,
                                      # rose 1 coin (0 for alice at a 50 % share), heart 10 (5)
                                      "gift_creator_coins": 5, "new_followers": 1}
        # The live SSE feed carries the same figures.
        while True:
            line = (await asyncio.wait_for(events.content.readline(), 10)).decode()
            if line.startswith("data:"):
                snapshot = json.loads(line[5:])
                if snapshot["analytics"]["gift_coins"] == 11:
                    break
        assert snapshot["analytics"]["chat_messages"] == 3 and snapshot["analytics"]["active_chatters"] == 2
        events.close()

        publication.detach(clean=True)
        body = await _poll(api, "/api/broadcasts?stream=alice", lambda b: len(b["broadcasts"]) == 1, headers=alice)
        summary = body["broadcasts"][0]
        assert {k: summary[k] for k in ("chat_messages", "peak_messages_per_minute", "unique_chatters", "gifts",
                                        "gift_coins", "new_followers")} == {
            "chat_messages": 3, "peak_messages_per_minute": 3, "unique_chatters": 2, "gifts": 2, "gift_coins": 11,
            "new_followers": 1}

        # The next broadcast starts from zero.
        publication = api.srv.hub.publish("alice", Publisher())
        stats = await (await api.http.get("/api/streams/alice/stats", headers=alice)).json()
        assert stats["analytics"]["chat_messages"] == 0 and stats["analytics"]["gifts"] == 0
        publication.detach(clean=True)
        for client in (chat_bob, chat_carol):
            await client.close()
        del alice
