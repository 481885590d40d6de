"""Suspending an account against the whole server (issue 18): a real FFmpeg RTMP push is
cut at once and a new one refused, login answers 403 with the reason and the end, every
token is revoked, the chat and gifts refuse the account, and the suspension ends by
itself at its time on the clock passed in. Demoting a live creator to viewer ends the
live too."""

from __future__ import annotations

import asyncio
import time

from mediasrv.community.gifts.service import GiftRefused
from mediasrv.httpkit.keys import ACCOUNTS, GIFTS
from tests.accounts.support import PASSWORD, accounts_server
from tests.chat.support import join
from tests.security.support import eventually
from tests.support.clients import start_ffmpeg_push

LIVE = ("live_access.min_followers=0",)


class Clock:
    """The server's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _go_live(api, headers) -> asyncio.subprocess.Process:
    key = await api.stream_key(headers)
    proc = await start_ffmpeg_push(api.srv.rtmp_url(key), seconds=60, realtime=True)
    await eventually(lambda: _async(api.srv.hub.get("alice") is not None), what="alice live")
    return proc


async def _async(value):
    return value


async def _ended(proc: asyncio.subprocess.Process) -> int:
    """The publisher's exit status once the server cut it (FFmpeg ends with an error)."""
    try:
        return await asyncio.wait_for(proc.wait(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_suspension_cuts_the_live_and_refuses_login_publish_chat_and_gifts_until_its_end(tmp_path):
    clock = Clock()
    async with accounts_server(tmp_path, *LIVE, clock=clock) as api:
        alice = await api.user("alice", "creator")
        await api.user("carol", "creator")
        other_session = await api.login("alice")
        key = await api.stream_key(alice)
        chat, _ = await join(api, "alice", alice)
        token = alice["Authorization"].split()[1]
        feed = await api.http.get(f"/api/me/events?access_token={token}")
        assert feed.status == 200
        proc = await _go_live(api, alice)
        admin = await api.admin()

        until = clock.now + 3600
        response = await api.http.post("/api/admin/users/alice/suspension",
                                       json={"reason": "spam in every chat", "until": until}, headers=admin)
        assert response.status == 201, await response.text()
        body = await response.json()
        assert body["handle"] == "alice" and body["until"] == until and body["ended_live"] is True
        assert body["by"] == "admin" and body["reason"] == "spam in every chat"

        # The live ended at once: the real publisher was cut and the stream is gone.
        assert await _ended(proc) != 0
        assert api.srv.hub.get("alice") is None
        # Every session is revoked, and the chat connection closed with a reason.
        for headers in (alice, other_session):
            await api.error(await api.http.get("/api/me", headers=headers), 401)
        assert (await chat.recv("error"))["code"] == "suspended"
        # Her alerts feed ends too (a reconnection would be a 401).
        await asyncio.wait_for(feed.content.read(), 10)
        feed.close()
        # Login: 403 with the reason and the end, only for the right password.
        refused = await api.http.post("/api/login", json={"handle": "alice", "password": PASSWORD})
        assert refused.status == 403
        answer = await refused.json()
        assert answer["code"] == "suspended" and answer["reason"] == "spam in every chat" and answer["until"] == until
        assert "spam in every chat" in answer["error"]
        wrong = await api.http.post("/api/login", json={"handle": "alice", "password": "not-the-password"})
        assert wrong.status == 401 and "spam" not in await wrong.text()

        # Publishing again is refused by the account's check (RTMP here; WHIP asks the same).
        accounts = api.srv.app[ACCOUNTS]
        refused_before = accounts.publishes_refused
        again = await start_ffmpeg_push(api.srv.rtmp_url(key), seconds=5, realtime=True)
        assert await _ended(again) != 0
        assert accounts.publishes_refused > refused_before
        assert api.srv.hub.get("alice") is None
        decision = await accounts.check_publish(key, check_only=True)
        assert not decision.allowed and "suspended" in decision.reason
        # WHIP: the offer is refused on its key, before its SDP is read.
        whip = await api.http.post("/whip", data=b"v=0\r\n", headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/sdp"})
        assert whip.status == 401 and "suspended" in await whip.text()
        # No chat, no gifts (a token made meanwhile would not authenticate anyway).
        alice_user = api.store.get_user_by_handle("alice")
        carol_user = api.store.get_user_by_handle("carol")
        try:
            await api.srv.app[GIFTS].send(alice_user, carol_user, "carol", "rose", "r1")
            raise AssertionError("a suspended account sent a gift")
        except GiftRefused as refused_gift:
            assert refused_gift.status == 403
        assert api.srv.app[ACCOUNTS].suspensions.is_suspended(alice_user.id)

        listing = await (await api.http.get("/api/admin/suspensions", headers=admin)).json()
        assert [s["handle"] for s in listing["suspensions"]] == ["alice"]

        # The suspension ends by itself at its time.
        clock.now = until + 1
        assert (await api.http.post("/api/login", json={"handle": "alice", "password": PASSWORD})).status == 200
        assert (await accounts.check_publish(key, check_only=True)).allowed
        listing = await (await api.http.get("/api/admin/suspensions", headers=admin)).json()
        assert listing["suspensions"] == []
        await chat.close()


async def test_an_indefinite_suspension_lasts_until_lifted(tmp_path):
    clock = Clock()
    async with accounts_server(tmp_path, clock=clock) as api:
        await api.user("bob")
        admin = await api.admin()
        response = await api.http.post("/api/admin/users/bob/suspension", json={"reason": "abuse"}, headers=admin)
        assert response.status == 201 and (await response.json())["until"] is None
        assert (await response.json())["ended_live"] is False
        clock.now += 10 * 365 * 86400
        refused = await api.http.post("/api/login", json={"handle": "bob", "password": PASSWORD})
        assert refused.status == 403 and (await refused.json())["until"] is None
        admin = await api.admin()  # the first token expired in those ten years
        lifted = await api.http.delete("/api/admin/users/bob/suspension", headers=admin)
        assert await lifted.json() == {"handle": "bob", "lifted": True}
        assert (await api.http.post("/api/login", json={"handle": "bob", "password": PASSWORD})).status == 200
        again = await api.http.delete("/api/admin/users/bob/suspension", headers=admin)
        assert (await again.json())["lifted"] is False


async def test_who_may_suspend_whom(tmp_path):
    clock = Clock()
    async with accounts_server(tmp_path, clock=clock) as api:
        viewer = await api.user("viewer1")
        await api.user("creator1", "creator")
        mod = await api.user("mod1", "moderator")
        await api.user("mod2", "moderator")
        admin = await api.admin()
        body = {"reason": "test"}
        assert (await api.http.post("/api/admin/users/creator1/suspension", json=body)).status == 401
        await api.error(await api.http.post("/api/admin/users/creator1/suspension", json=body, headers=viewer), 403)
        await api.error(await api.http.post("/api/admin/users/mod2/suspension", json=body, headers=mod), 403)
        await api.error(await api.http.post("/api/admin/users/admin/suspension", json=body, headers=admin), 422)
        await api.error(await api.http.post("/api/admin/users/creator1/suspension",
                                            json={"reason": "x", "until": clock.now - 1}, headers=mod), 422)
        await api.error(await api.http.post("/api/admin/users/creator1/suspension", json={}, headers=mod), 400)
        await api.error(await api.http.post("/api/admin/users/nobody1/suspension", json=body, headers=mod), 404)
        assert (await api.http.post("/api/admin/users/creator1/suspension", json=body, headers=mod)).status == 201
        assert (await api.http.post("/api/admin/users/mod2/suspension", json=body, headers=admin)).status == 201


async def test_demoting_a_live_creator_to_viewer_ends_the_live(tmp_path):
    async with accounts_server(tmp_path, *LIVE) as api:
        alice = await api.user("alice", "creator")
        proc = await _go_live(api, alice)
        response = await api.http.put("/api/users/alice/role", json={"role": "viewer"}, headers=await api.admin())
        assert response.status == 200, await response.text()
        assert await _ended(proc) != 0
        assert api.srv.hub.get("alice") is None
