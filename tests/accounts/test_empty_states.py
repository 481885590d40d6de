"""Empty states and feedback over HTTP (issue 16, item 9): the channel page of a name that
is no channel is a 404; a quiet "is it live?" for pages that wait; an operator's stop
carries a reason to the creator's stats feed; operators look users up by the start of
their handle and list the creators waiting for live access."""

from __future__ import annotations

import asyncio

from tests.accounts.support import accounts_server, bulk_users
from tests.accounts.test_discovery import _events, go_live
from tests.support.server import running_server

import aiohttp


async def test_watch_page_of_no_channel_is_a_404_page_and_a_creators_offline_channel_is_not(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.user("alice", "creator")
        response = await api.http.get("/watch/nobody")
        assert response.status == 404
        assert response.content_type == "text/html"
        body = await response.text()
        assert "No such channel" in body and "/web/js/notfound.js" in body
        assert "nobody" not in body  # the name is put in by the page's script, as text
        assert response.headers["Cache-Control"] == "no-cache"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        for path in ("/watch/alice", "/watch/ALICE", "/watch/nobody?vod=r1"):
            response = await api.http.get(path)
            assert response.status == 200, path
            assert "/web/js/watch.js" in await response.text()
        # A live stream is a channel while it is live, account or not.
        publication = go_live(api.srv, "guest")
        assert (await api.http.get("/watch/guest")).status == 200
        publication.detach(clean=True)
        assert (await api.http.get("/watch/guest")).status == 404


async def test_in_open_mode_any_name_may_go_live_so_its_page_waits(tmp_path):
    async with running_server(tmp_path, "recording.enabled=false") as srv, aiohttp.ClientSession(srv.http_url) as http:
        assert (await http.get("/watch/nobody")).status == 200


async def test_live_status_is_200_either_way(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.user("alice", "creator")
        response = await api.http.get("/api/live/alice/status")
        assert response.status == 200
        # Offline: no picture to give the size of (issue 17, item 3: a page shapes its player by it).
        picture = {"width": None, "height": None, "orientation": None}
        assert await response.json() == {"name": "alice", "live": False, "started_at": None, "creator": "alice",
                                          "backstage": False, "may_watch": False, "visibility": None,
                                          "mature": False, **picture}
        assert await (await api.http.get("/api/live/nobody/status")).json() == {
            "name": "nobody", "live": False, "started_at": None, "creator": None, "backstage": False,
            "may_watch": False, "visibility": None, "mature": False, **picture}
        publication = go_live(api.srv, "alice")
        status = await (await api.http.get("/api/live/alice/status")).json()
        assert status["live"] is True and status["started_at"].endswith("Z") and status["creator"] == "alice"
        assert (status["width"], status["height"], status["orientation"]) == (320, 240, "landscape")
        publication.detach(clean=True)
        assert (await (await api.http.get("/api/live/alice/status")).json())["live"] is False
        assert (await api.http.get("/api/live/bad%20name/status")).status == 400


async def test_a_stop_gives_its_reason_to_the_creators_stats_feed(tmp_path):
    async with accounts_server(tmp_path) as api:
        admin = await api.admin()
        for reason, expected in (("Copyrighted music", "Copyrighted music"), (None, "An operator stopped this stream.")):
            go_live(api.srv, "alice")
            feed = await api.http.get("/api/streams/alice/events")
            assert feed.status == 200
            queue: asyncio.Queue = asyncio.Queue()
            reader = asyncio.create_task(_events(feed, queue))
            try:
                assert (await asyncio.wait_for(queue.get(), 10))[0] == "stats"
                body = {"json": {"reason": reason}} if reason else {}
                response = await api.http.post("/api/streams/alice/stop", headers=admin, **body)
                assert response.status == 200, await response.text()
                assert await response.json() == {"stream": "alice", "stopped": True, "reason": expected}
                while (item := await asyncio.wait_for(queue.get(), 10))[0] != "ended":
                    pass
                assert item == ("ended", {"reason": expected})
            finally:
                reader.cancel()
                feed.close()
        # An end by the publisher has no reason.
        publication = go_live(api.srv, "bob")
        feed = await api.http.get("/api/streams/bob/events")
        queue = asyncio.Queue()
        reader = asyncio.create_task(_events(feed, queue))
        try:
            assert (await asyncio.wait_for(queue.get(), 10))[0] == "stats"
            publication.detach(clean=True)
            while (item := await asyncio.wait_for(queue.get(), 10))[0] != "ended":
                pass
            assert item == ("ended", {"reason": None})
        finally:
            reader.cancel()
            feed.close()
        # A reason is text of at most 200 characters.
        go_live(api.srv, "carol")
        await api.error(await api.http.post("/api/streams/carol/stop", headers=admin, json={"reason": "x" * 201}), 400)


async def test_operators_look_users_up_by_handle_prefix_and_list_those_waiting(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=100") as api:
        bulk_users(api.store, "al", 25)  # al0 … al24
        await api.register("bob")
        alfie = await api.user("alfie", "creator")
        moderator = await api.user("moe", "moderator")
        viewer = await api.login("bob")
        await api.error(await api.http.get("/api/users?prefix=al"), 401)
        await api.error(await api.http.get("/api/users?prefix=al", headers=viewer), 403)

        first = await (await api.http.get("/api/users?prefix=AL&limit=20", headers=moderator)).json()
        assert first["total"] == 26 and len(first["users"]) == 20 and first["next_offset"] == 20
        handles = [u["handle"] for u in first["users"]]
        assert handles == sorted(handles) and all(h.startswith("al") for h in handles)
        rest = await (await api.http.get("/api/users?prefix=al&limit=20&offset=20", headers=moderator)).json()
        assert len(rest["users"]) == 6 and rest["next_offset"] is None
        assert not set(handles) & {u["handle"] for u in rest["users"]}
        # '_' is a handle character, not a wildcard.
        assert (await (await api.http.get("/api/users?prefix=a_", headers=moderator)).json())["total"] == 0
        await api.error(await api.http.get("/api/users?prefix=a%25", headers=moderator), 400)

        assert (await (await api.http.get("/api/users?only=waiting", headers=moderator)).json())["users"] == []
        response = await api.http.post("/api/me/live-access/requests", json={"message": "please"}, headers=alfie)
        assert response.status == 201, await response.text()
        waiting = await (await api.http.get("/api/users?only=waiting", headers=moderator)).json()
        assert [(u["handle"], u["waiting_for_access"], u["role"]) for u in waiting["users"]] == [
            ("alfie", True, "creator")]
        alfie_row = next(u for u in (await (await api.http.get("/api/users?prefix=alf", headers=moderator)).json())["users"])
        assert alfie_row == {"handle": "alfie", "display_name": "alfie", "role": "creator",
                             "created_at": alfie_row["created_at"], "followers": 0, "waiting_for_access": True}
