"""A creator's analytics are theirs (issue 18): the live stats, their SSE feed and the
broadcast summaries are readable in full by the creator, the moderators they appointed and
operators only; anyone else gets what the watch page shows, the viewer count, which the
creator can hide (``hide_viewer_count``: then null in the stats, the chat and discovery)."""

from __future__ import annotations

import asyncio
import json

from tests.accounts.support import accounts_server
from tests.chat.support import join
from tests.security.support import eventually


class Publisher:
    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        pass


PUBLIC_KEYS = {"stream", "live", "viewers"}


async def _stats(api, headers) -> tuple[int, dict]:
    async with api.http.get("/api/streams/alice/stats", headers=headers) as response:
        return response.status, await response.json()


async def _first_event(api, url: str, headers: dict) -> dict:
    async with api.http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        while True:
            line = (await asyncio.wait_for(response.content.readline(), 10)).decode()
            if line.startswith("data:"):
                return json.loads(line[5:])


async def test_stats_feed_and_summaries_are_the_creators_moderators_and_operators(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        people = {"anonymous": {}, "stranger": await api.user("stranger"),
                  "other creator": await api.user("dave", "creator"),
                  "appointed": await api.user("helper"), "operator": await api.user("op1", "moderator"),
                  "admin": await api.admin(), "creator": alice}
        response = await api.http.put("/api/users/alice/chat/moderators/helper", headers=alice)
        assert response.status == 200, await response.text()
        publication = api.srv.hub.publish("alice", Publisher())
        await eventually(lambda: _ok(api, alice), what="alice's stats")

        for who in ("anonymous", "stranger", "other creator"):
            status, body = await _stats(api, people[who])
            assert status == 200 and set(body) <= PUBLIC_KEYS | {"viewers_here"}, (who, body)
            assert body["viewers"] == 0 and "analytics" not in body and "warnings" not in body, who
            event = await _first_event(api, "/api/streams/alice/events", people[who])
            assert set(event) == PUBLIC_KEYS, (who, event)
        for who in ("creator", "appointed", "operator", "admin"):
            status, body = await _stats(api, people[who])
            assert status == 200 and "analytics" in body and "warnings" in body, (who, body)
        # The feed takes the token in the query (an EventSource sends no header).
        token = alice["Authorization"].split()[1]
        event = await _first_event(api, f"/api/streams/alice/events?access_token={token}", {})
        assert "analytics" in event and "warnings" in event
        # A token that no longer works is told so, not answered as anonymous.
        assert (await api.http.get("/api/streams/alice/stats",
                                    headers={"Authorization": "Bearer nope"})).status == 401

        publication.detach(clean=True)
        await eventually(lambda: _summaries(api, alice), what="alice's summary")
        for who, expected in (("anonymous", 0), ("stranger", 0), ("other creator", 0), ("creator", 1),
                              ("appointed", 1), ("operator", 1), ("admin", 1)):
            async with api.http.get("/api/broadcasts?stream=alice", headers=people[who]) as response:
                assert len((await response.json())["broadcasts"]) == expected, who


async def test_a_hidden_viewer_count_is_nobodys_but_the_creators_and_operators(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        fan = await api.user("fan")
        operator = await api.user("op1", "moderator")
        response = await api.http.patch("/api/me/settings", json={"hide_viewer_count": True}, headers=alice)
        assert response.status == 200 and (await response.json())["hide_viewer_count"] is True
        publication = api.srv.hub.publish("alice", Publisher())
        await eventually(lambda: _ok(api, alice), what="alice's stats")

        for headers in ({}, fan):
            status, body = await _stats(api, headers)
            assert status == 200 and body["viewers"] is None, body
            listing = await (await api.http.get("/api/live", headers=headers)).json()
            [card] = listing["streams"]
            assert card["viewers"] is None and card["score"] is None
        for headers in (alice, operator):
            status, body = await _stats(api, headers)
            assert body["viewers"] == 0
            [card] = (await (await api.http.get("/api/live", headers=headers)).json())["streams"]
            assert card["viewers"] == 0 and card["score"] > 0
        # The chat shows no count either.
        client, state = await join(api, "alice", fan)
        assert state["viewers"] is None
        await client.close()

        response = await api.http.patch("/api/me/settings", json={"hide_viewer_count": False}, headers=alice)
        assert (await response.json())["hide_viewer_count"] is False
        assert (await _stats(api, fan))[1]["viewers"] == 0
        assert (await (await api.http.get("/api/me/settings", headers=alice)).json())["hide_viewer_count"] is False
        publication.detach(clean=True)


async def test_a_stream_no_account_owns_keeps_its_figures_public(tmp_path):
    async with accounts_server(tmp_path) as api:
        publication = api.srv.hub.publish("studio-feed", Publisher())
        async def ready():
            async with api.http.get("/api/streams/studio-feed/stats") as response:
                return response.status == 200 and "warnings" in await response.json()
        await eventually(ready, what="the stats of a stream no account owns")
        publication.detach(clean=True)


async def _ok(api, headers) -> bool:
    status, body = await _stats(api, headers)
    return status == 200


async def _summaries(api, headers) -> bool:
    async with api.http.get("/api/broadcasts?stream=alice", headers=headers) as response:
        return bool((await response.json())["broadcasts"])


async def test_the_top_gifters_are_the_creators_moderators_and_operators(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        stranger = await api.user("stranger")
        helper = await api.user("helper")
        operator = await api.user("op1", "moderator")
        assert (await api.http.put("/api/users/alice/chat/moderators/helper", headers=alice)).status == 200
        assert (await api.http.get("/api/streams/alice/leaderboard")).status == 401
        await api.error(await api.http.get("/api/streams/alice/leaderboard", headers=stranger), 403)
        for headers in (alice, helper, operator, await api.admin()):
            response = await api.http.get("/api/streams/alice/leaderboard", headers=headers)
            assert response.status == 200 and (await response.json())["gifters"] == []
