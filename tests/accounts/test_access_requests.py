"""Live access on request (issue 16, item 3): a creator below the threshold asks, an
operator grants or refuses with a reason, the creator is told; the operator sets the
threshold for the community, kept across a restart."""

from __future__ import annotations

import asyncio

from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import _events


async def test_a_creator_asks_the_operator_grants_and_the_creator_is_told(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=100") as api:
        alice = await api.user("alice", "creator")
        admin = await api.admin()
        feed = await api.http.get("/api/me/events", headers=alice)
        queue: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(_events(feed, queue))
        try:
            assert (await asyncio.wait_for(queue.get(), 10))[0] == "ready"
            response = await api.http.post("/api/me/live-access/requests", json={"message": "I stream chess"},
                                           headers=alice)
            assert response.status == 201, await response.text()
            filed = await response.json()
            assert filed["status"] == "pending" and filed["user"]["handle"] == "alice"
            # One request waits at a time.
            await api.error(await api.http.post("/api/me/live-access/requests", json={"message": "again"},
                                                headers=alice), 409)
            queue_now = await (await api.http.get("/api/live-access/requests", headers=admin)).json()
            assert [r["id"] for r in queue_now["requests"]] == [filed["id"]]
            await api.error(await api.http.get("/api/live-access/requests", headers=alice), 403)

            response = await api.http.post(f"/api/live-access/requests/{filed['id']}/grant", headers=admin)
            assert response.status == 200, await response.text()
            decided = await response.json()
            assert decided["status"] == "granted" and decided["decided_by"] == api.srv.config.accounts.admin_handle
            event, data = await asyncio.wait_for(queue.get(), 10)
            assert event == "live-access.decided" and data == {"id": filed["id"], "status": "granted", "reason": ""}
            access = await (await api.http.get("/api/me/live-access", headers=alice)).json()
            assert access["allowed"] is True and access["override"] == "granted"
            # Decided once: a second decision is a conflict, the queue is empty.
            await api.error(await api.http.post(f"/api/live-access/requests/{filed['id']}/refuse",
                                                json={"reason": "no"}, headers=admin), 409)
            assert (await (await api.http.get("/api/live-access/requests", headers=admin)).json())["requests"] == []
            # Holding live access, there is nothing to ask for.
            await api.error(await api.http.post("/api/me/live-access/requests", json={"message": "more"},
                                                headers=alice), 409)
        finally:
            reader.cancel()


async def test_a_refusal_needs_a_reason_and_the_creator_may_ask_again(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=100") as api:
        bob = await api.user("bob", "creator")
        viewer = await api.user("vic")
        admin = await api.admin()
        await api.error(await api.http.post("/api/me/live-access/requests", json={"message": "hi"},
                                            headers=viewer), 403)
        await api.error(await api.http.post("/api/me/live-access/requests", json={"message": " "},
                                            headers=bob), 400)
        filed = await (await api.http.post("/api/me/live-access/requests", json={"message": "hi"},
                                           headers=bob)).json()
        path = f"/api/live-access/requests/{filed['id']}/refuse"
        assert "reason" in await api.error(await api.http.post(path, json={}, headers=admin), 400)
        assert "reason" in await api.error(await api.http.post(path, json={"reason": " "}, headers=admin), 400)
        refused = await (await api.http.post(path, json={"reason": "grow a bit first"}, headers=admin)).json()
        assert refused["status"] == "refused" and refused["reason"] == "grow a bit first"
        mine = await (await api.http.get("/api/me/live-access/requests", headers=bob)).json()
        assert [(r["status"], r["reason"]) for r in mine["requests"]] == [("refused", "grow a bit first")]
        assert (await (await api.http.get("/api/me/live-access", headers=bob)).json())["allowed"] is False
        again = await api.http.post("/api/me/live-access/requests", json={"message": "now?"}, headers=bob)
        assert again.status == 201
        await api.error(await api.http.post("/api/live-access/requests/999999/grant", headers=admin), 404)
        await api.error(await api.http.post("/api/live-access/requests/x1/grant", headers=admin), 404)


async def test_the_operator_sets_the_threshold_and_it_outlives_a_restart(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=100") as api:
        carol = await api.user("carol", "creator")
        admin = await api.admin()
        settings = await (await api.http.get("/api/admin/settings", headers=admin)).json()
        assert settings == {"live_access_min_followers": 100, "configured_min_followers": 100, "source": "config"}
        response = await api.http.patch("/api/admin/settings", json={"live_access_min_followers": 0}, headers=admin)
        assert (await response.json())["source"] == "admin"
        assert (await (await api.http.get("/api/me/live-access", headers=carol)).json())["allowed"] is True
        await api.error(await api.http.patch("/api/admin/settings", json={"live_access_min_followers": -1},
                                             headers=admin), 400)
        await api.error(await api.http.get("/api/admin/settings", headers=carol), 403)
    async with accounts_server(tmp_path, "live_access.min_followers=100") as api:  # the same data_dir
        carol = await api.login("carol")
        access = await (await api.http.get("/api/me/live-access", headers=carol)).json()
        assert access["min_followers"] == 0 and access["allowed"] is True
        admin = await api.admin()
        response = await api.http.patch("/api/admin/settings", json={"live_access_min_followers": None},
                                         headers=admin)
        assert (await response.json()) == {"live_access_min_followers": 100, "configured_min_followers": 100,
                                           "source": "config"}
