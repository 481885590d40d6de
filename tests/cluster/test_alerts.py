"""Go-live alerts across nodes: a creator goes live on node A; a follower whose alert feed
(SSE) is open on node B gets ``stream.started`` through Redis, a non-follower does not."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.accounts.support import ADMIN_PASSWORD, Api
from tests.accounts.test_discovery import _events, go_live
from tests.cluster.support import running_node, running_redis

ACCOUNTS = ("auth.mode=accounts", f"accounts.admin_password={ADMIN_PASSWORD}", "live_access.min_followers=0")


async def test_a_follower_connected_to_another_node_gets_the_go_live_alert(tmp_path):
    async with running_redis(tmp_path) as redis, \
            running_node(tmp_path, redis, "a", *ACCOUNTS) as a, \
            running_node(tmp_path, redis, "b", *ACCOUNTS, ingest=False) as b, \
            aiohttp.ClientSession(base_url=a.http_url) as http_a, \
            aiohttp.ClientSession(base_url=b.http_url) as http_b:
        api_a, api_b = Api(a, http_a), Api(b, http_b)
        creator = await api_a.user("alice", "creator")
        response = await http_a.patch("/api/me/settings", headers=creator, json={"title": "Live from A"})
        assert response.status == 200, await response.text()
        # Each node has its own accounts: on B, the creator's handle and who follows it.
        await api_b.register("alice", "creator")
        fan = await api_b.user("fan")
        other = await api_b.user("other")
        response = await http_b.put("/api/me/following/alice", headers=fan)
        assert response.status in (200, 201, 204), await response.text()

        queues, tasks, responses = {}, [], []
        try:
            for name, headers in (("fan", fan), ("other", other)):
                response = await http_b.get("/api/me/events", headers=headers)
                assert response.status == 200
                queues[name] = asyncio.Queue()
                responses.append(response)
                tasks.append(asyncio.create_task(_events(response, queues[name])))
                assert await asyncio.wait_for(queues[name].get(), 5) == ("ready", {"handle": name})

            publication = go_live(a, "alice")  # on A
            event, data = await asyncio.wait_for(queues["fan"].get(), 5)
            assert event == "stream.started"
            assert data["stream"] == "alice" and data["title"] == "Live from A"
            assert data["creator"]["handle"] == "alice"
            # The non-follower's feed stays quiet (it only ever gets keepalive comments);
            # a second alert to the fan shows everything before it was delivered.
            publication.detach(clean=True)
            publication = go_live(a, "alice")
            assert (await asyncio.wait_for(queues["fan"].get(), 5))[0] == "stream.started"
            assert queues["other"].empty()
            publication.detach(clean=True)
        finally:
            for task in tasks:
                task.cancel()
            for response in responses:
                response.close()
