"""Reports: users file them (REST and the chat WebSocket), operators work through the queue."""

from __future__ import annotations

from tests.accounts.support import accounts_server
from tests.chat.support import join


async def test_report_queue(tmp_path):
    async with accounts_server(tmp_path, "moderation.reports_per_hour=4") as api:
        alice = await api.user("alice", "creator")
        carol = await api.user("carol")
        dave = await api.user("dave")
        operator = await api.user("opal", "moderator")
        creator, _ = await join(api, "alice", alice)
        viewer, _ = await join(api, "alice", dave)
        rude = await viewer.say("you are all idiots")
        await creator.recv("message")

        # Filing: any logged-in user, with a reason; targets must exist.
        body = {"kind": "message", "stream": "alice", "message_id": rude["id"], "reason": "insults"}
        await api.error(await api.http.post("/api/reports", json=body), 401)
        await api.error(await api.http.post("/api/reports", json={**body, "kind": "vibe"}, headers=carol), 400)
        await api.error(await api.http.post("/api/reports", json={**body, "reason": "  "}, headers=carol), 400)
        await api.error(await api.http.post("/api/reports", json={**body, "extra": 1}, headers=carol), 400)
        await api.error(await api.http.post("/api/reports", json={**body, "message_id": "nope"}, headers=carol), 404)
        await api.error(await api.http.post("/api/reports", json={**body, "stream": "a/b"}, headers=carol), 400)
        await api.error(await api.http.post("/api/reports", json={"kind": "user", "user": "ghost", "reason": "x"},
                                            headers=carol), 404)
        await api.error(await api.http.post("/api/reports", json={"kind": "user", "user": "carol", "reason": "x"},
                                            headers=carol), 422)
        await api.error(await api.http.post("/api/reports", json={"kind": "stream", "stream": "ghost",
                                                                   "reason": "x"}, headers=carol), 404)
        response = await api.http.post("/api/reports", json=body, headers=carol)
        assert response.status == 201, await response.text()
        first = await response.json()
        assert (first["kind"], first["target"], first["target_user"], first["stream"], first["excerpt"],
                first["reporter"], first["status"]) == ("message", rude["id"], "dave", "alice",
                                                        "you are all idiots", "carol", "open")
        # The evidence outlives the message.
        await creator.send("delete", id=rude["id"])
        await viewer.recv("deleted")
        user_report = await (await api.http.post("/api/reports", json={"kind": "user", "user": "DAVE",
                                                                       "reason": "insults everyone"},
                                                 headers=carol)).json()
        assert user_report["target"] == "dave" and user_report["target_user"] == "dave"
        stream_report = await (await api.http.post("/api/reports", json={"kind": "stream", "stream": "alice",
                                                                         "reason": "not safe"},
                                                   headers=dave)).json()
        assert stream_report["target"] == "alice" and stream_report["stream"] == "alice"
        # Over the chat: a message of this room, answered with a `reported` frame.
        said = await creator.say("rude reply")
        await viewer.ws.send_json({"type": "report", "kind": "message", "id": said["id"], "reason": "creator is rude"})
        reported = await viewer.recv("reported")
        await viewer.ws.send_json({"type": "report", "kind": "message", "id": "gone", "reason": "x"})
        assert (await viewer.recv("error"))["code"] == "not_found"

        # The per-user quota (moderation.reports_per_hour=4): carol filed 2, 2 more, then 429.
        for reason in ("again", "and again"):
            assert (await api.http.post("/api/reports", json={"kind": "stream", "stream": "alice",
                                                              "reason": reason}, headers=carol)).status == 201
        limited = await api.http.post("/api/reports", json={"kind": "stream", "stream": "alice",
                                                            "reason": "once more"}, headers=carol)
        assert "too many reports" in await api.error(limited, 429)
        assert 3500 < (await limited.json())["retry_after"] <= 3600

        # The queue: operators only, open ones oldest first.
        await api.error(await api.http.get("/api/reports"), 401)
        await api.error(await api.http.get("/api/reports", headers=carol), 403)
        await api.error(await api.http.get("/api/reports", headers=alice), 403)  # creators are not operators
        await api.error(await api.http.get("/api/reports?status=weird", headers=operator), 400)
        queue = await (await api.http.get("/api/reports", headers=operator)).json()
        assert queue["total"] == 6
        assert [r["id"] for r in queue["reports"]] == sorted(r["id"] for r in queue["reports"])
        assert queue["reports"][0] == first
        assert queue["reports"][3]["id"] == reported["report"] and queue["reports"][3]["target_user"] == "alice"
        page = await (await api.http.get("/api/reports?limit=2&offset=1", headers=operator)).json()
        assert [r["id"] for r in page["reports"]] == [r["id"] for r in queue["reports"][1:3]]

        # Resolving: once, with a resolution.
        url = f"/api/reports/{first['id']}/resolve"
        await api.error(await api.http.post(url, json={"status": "resolved", "resolution": "ok"}, headers=carol), 403)
        await api.error(await api.http.post(url, json={"status": "open", "resolution": "ok"}, headers=operator), 400)
        await api.error(await api.http.post(url, json={"status": "resolved"}, headers=operator), 400)
        await api.error(await api.http.post("/api/reports/999999/resolve", json={"status": "resolved",
                                                                                 "resolution": "x"},
                                            headers=operator), 404)
        done = await (await api.http.post(url, json={"status": "resolved", "resolution": "dave timed out"},
                                          headers=operator)).json()
        assert (done["status"], done["resolved_by"], done["resolution"]) == ("resolved", "opal", "dave timed out")
        assert done["resolved_at"] >= done["created_at"]
        await api.error(await api.http.post(url, json={"status": "dismissed", "resolution": "x"},
                                            headers=operator), 409)
        admin = await api.admin()
        dismissed = await (await api.http.post(f"/api/reports/{stream_report['id']}/resolve",
                                               json={"status": "dismissed", "resolution": "fine"},
                                               headers=admin)).json()
        assert dismissed["status"] == "dismissed" and dismissed["resolved_by"] == "admin"
        queue = await (await api.http.get("/api/reports?status=open", headers=operator)).json()
        assert queue["total"] == 4 and first["id"] not in [r["id"] for r in queue["reports"]]
        closed = await (await api.http.get("/api/reports?status=resolved", headers=operator)).json()
        assert [r["id"] for r in closed["reports"]] == [first["id"]]
        everything = await (await api.http.get("/api/reports?status=all", headers=admin)).json()
        assert everything["total"] == 6
        one = await (await api.http.get(f"/api/reports/{first['id']}", headers=operator)).json()
        assert one == done
        await api.error(await api.http.get("/api/reports/999999", headers=operator), 404)
        await api.error(await api.http.get(f"/api/reports/{first['id']}", headers=carol), 403)
        await creator.close()
        await viewer.close()
