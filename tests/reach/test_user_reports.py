"""Reporting a user (``POST /api/users/{handle}/report``): it lands in the operators' report
queue like any other report, under the same quota."""

from __future__ import annotations

from tests.accounts.support import accounts_server


async def test_a_user_report_appears_in_the_operators_queue(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        mod = await api.user("mod1", "moderator")
        response = await api.http.post("/api/users/Alice/report", json={"reason": "  impersonates   a friend "},
                                       headers=bob)
        assert response.status == 201, await response.text()
        report = await response.json()
        assert report["kind"] == "user" and report["target"] == "alice" and report["reporter"] == "bob"
        assert report["reason"] == "impersonates a friend" and report["status"] == "open"

        queue = await (await api.http.get("/api/reports", headers=mod)).json()
        assert [(r["id"], r["kind"], r["target"]) for r in queue["reports"]] == [(report["id"], "user", "alice")]
        await api.error(await api.http.get("/api/reports", headers=bob), 403)


async def test_bad_user_reports_are_clear_4xx(tmp_path):
    async with accounts_server(tmp_path, "moderation.reports_per_hour=2") as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        assert (await api.http.post("/api/users/alice/report", json={"reason": "x"})).status == 401
        await api.error(await api.http.post("/api/users/bob/report", json={"reason": "me"}, headers=bob), 422)
        await api.error(await api.http.post("/api/users/nobody1/report", json={"reason": "x"}, headers=bob), 404)
        await api.error(await api.http.post("/api/users/alice/report", json={}, headers=bob), 400)
        await api.error(await api.http.post("/api/users/alice/report", json={"reason": ""}, headers=bob), 400)
        for _ in range(2):
            assert (await api.http.post("/api/users/alice/report", json={"reason": "x"}, headers=bob)).status == 201
        await api.error(await api.http.post("/api/users/alice/report", json={"reason": "x"}, headers=bob), 429)
