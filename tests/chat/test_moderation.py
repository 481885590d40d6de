"""Chat moderation over real WebSocket clients and the REST API, with a SQLite file store:
appointed moderators, timeouts, bans (also across a restart), slow mode, followers-only,
banned words and the moderation log."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from mediasrv.httpkit.keys import MODERATION
from tests.accounts.support import Api, accounts_server
from tests.chat.support import Client, chat_service, join

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def appoint(api: Api, creator: dict, who: str) -> dict:
    response = await api.http.put(f"/api/users/{creator['handle']}/chat/moderators/{who}", headers=creator["auth"])
    assert response.status == 200, await response.text()
    return await response.json()


async def creator_and_users(api: Api, *viewers: str) -> tuple[dict, dict[str, dict]]:
    alice = {"handle": "alice", "auth": await api.user("alice", "creator")}
    return alice, {name: await api.user(name) for name in viewers}


async def expect_closed_banned(client: Client) -> None:
    """The server's last word to a banned member: an error frame, then close code 1008."""
    while True:
        frame = await client.recv(timeout=5)
        if frame["type"] == "error":
            assert frame["code"] == "banned", frame
            break
    msg = await asyncio.wait_for(client.ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.POLICY_VIOLATION, msg


async def refused_upgrade(api: Api, headers: dict) -> dict:
    response = await api.http.get("/live/alice/chat", headers={**UPGRADE, **headers})
    assert response.status == 403, await response.text()
    return await response.json()


async def test_appointed_moderator_times_a_viewer_out(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice, users = await creator_and_users(api, "bob", "carol", "dave")
        await appoint(api, alice, "bob")
        await appoint(api, alice, "dave")
        creator, _ = await join(api, "alice", alice["auth"])
        mod, state = await join(api, "alice", users["bob"])
        assert state["you"]["badges"] == ["moderator"] and state["you"]["can_moderate"] is True
        viewer, state = await join(api, "alice", users["carol"])
        assert state["you"]["can_moderate"] is False
        said = [await viewer.say(f"spam {i}") for i in range(2)]
        assert (await mod.say("calm down"))["badges"] == ["moderator"]

        # A viewer cannot moderate; an appointed moderator cannot act on the creator, an equal or an admin.
        await viewer.send("timeout", user="bob", minutes=5)
        assert (await viewer.recv("error"))["code"] == "forbidden"
        for target in ("alice", "dave", "admin"):
            await mod.send("timeout", user=target, minutes=5)
            assert (await mod.recv("error"))["code"] == "forbidden", target
        await mod.send("timeout", user="carol", minutes=0)
        assert (await mod.recv("error"))["code"] == "bad_request"
        await mod.send("timeout", user="nobody", minutes=5)
        assert (await mod.recv("error"))["code"] == "not_found"

        await mod.send("timeout", user="carol", minutes=10)
        for client in (creator, mod, viewer):
            frame = await client.recv("moderation")
            assert frame["action"] == "timeout" and frame["user"] == "carol" and frame["by"] == "bob"
            assert frame["minutes"] == 10 and sorted(frame["deleted"]) == sorted(m["id"] for m in said)
        refused = await viewer.say("let me talk")
        assert refused["code"] == "timed_out" and 590 < refused["retry_after"] <= 600
        # Reconnecting does not help: the state says so, writing is refused.
        again, state = await join(api, "alice", users["carol"])
        assert state["you"]["can_write"] is False and state["you"]["timed_out_until"] == frame["until"]
        assert [m["text"] for m in state["history"]] == ["calm down"]  # carol's messages are gone
        assert (await again.say("still me"))["code"] == "timed_out"

        await creator.send("untimeout", user="carol")
        assert (await viewer.recv("moderation"))["action"] == "untimeout"
        assert (await viewer.say("thanks"))["type"] == "message"
        # Removing the appointment takes the powers away at once.
        response = await api.http.delete("/api/users/alice/chat/moderators/bob", headers=alice["auth"])
        assert [m["handle"] for m in (await response.json())["moderators"]] == ["dave"]
        await mod.send("timeout", user="carol", minutes=1)
        assert (await mod.recv("error"))["code"] == "forbidden"
        for client in (creator, mod, viewer, again):
            await client.close()


async def test_ban_closes_connections_refuses_reconnects_and_survives_a_restart(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice, users = await creator_and_users(api, "bob", "carol", "erin")
        await appoint(api, alice, "bob")
        carol_token = users["carol"]
        creator, _ = await join(api, "alice", alice["auth"])
        mod, _ = await join(api, "alice", users["bob"])
        carol1, _ = await join(api, "alice", carol_token)
        carol2, _ = await join(api, "alice", carol_token)
        await carol1.say("buy followers at example.com")
        await carol2.recv("message")

        await mod.send("ban", user="carol", reason="spam links")
        await expect_closed_banned(carol1)
        await expect_closed_banned(carol2)
        for client in (creator, mod):
            frame = await client.recv("moderation")
            assert frame["action"] == "ban" and frame["user"] == "carol" and len(frame["deleted"]) == 1
            assert "reason" not in frame  # the reason is for the moderators (log, ban list)
        # A new connection of a banned user is refused before the upgrade.
        body = await refused_upgrade(api, carol_token)
        assert body["code"] == "banned" and "banned" in body["error"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await api.http.ws_connect("/live/alice/chat", headers=carol_token)
        assert info.value.status == 403
        # A browser cannot read a refused handshake's status: a plain GET (no upgrade) gets
        # the same refusal, so the watch page knows to stop reconnecting; anyone else's is
        # the "send an Upgrade request" 400, and an unknown creator's a 404.
        plain = await api.http.get("/live/alice/chat", headers=carol_token)
        assert plain.status == 403 and (await plain.json())["code"] == "banned"
        assert (await api.http.get("/live/alice/chat", headers=users["erin"])).status == 400
        assert (await api.http.get("/live/alice/chat")).status == 400
        assert (await api.http.get("/live/nobody/chat", headers=carol_token)).status == 404
        # Reading anonymously stays possible; the ban is per creator.
        _, state = await join(api, "alice")
        assert state["history"] == []
        await api.user("zed", "creator")
        other, _ = await join(api, "zed", carol_token)
        assert (await other.say("hi zed"))["type"] == "message"
        moderation = api.srv.app[MODERATION]
        alice_id, carol_id, zed_id = (api.store.get_user_by_handle(h).id for h in ("alice", "carol", "zed"))
        assert await moderation.is_banned(alice_id, carol_id) is True
        assert await moderation.is_banned(zed_id, carol_id) is False
        # Time erin out too: timeouts are kept across restarts as well.
        await mod.send("timeout", user="erin", minutes=30)
        await creator.recv("moderation")
        bans = await (await api.http.get("/api/users/alice/chat/bans", headers=alice["auth"])).json()
        assert [(b["user"], b["by"], b["reason"]) for b in bans["bans"]] == [("carol", "bob", "spam links")]
        assert [t["user"] for t in bans["timeouts"]] == ["erin"]
        for client in (creator, mod, other):
            await client.close()

    async with accounts_server(tmp_path) as api:  # the same SQLite file
        moderation = api.srv.app[MODERATION]
        carol = api.store.get_user_by_handle("carol")
        alice_id = api.store.get_user_by_handle("alice").id
        assert await moderation.is_banned(alice_id, carol.id) is True
        assert (await refused_upgrade(api, carol_token))["code"] == "banned"
        erin, state = await join(api, "alice", users["erin"])
        assert state["you"]["can_write"] is False
        assert (await erin.say("hello?"))["code"] == "timed_out"

        # Unban over REST: carol may join and write again.
        response = await api.http.delete("/api/users/alice/chat/bans/carol", headers=alice["auth"])
        assert (await response.json()) == {"banned": False, "changed": True, "user": "carol"}
        assert await moderation.is_banned(alice_id, carol.id) is False
        viewer, _ = await join(api, "alice", carol_token)
        assert (await viewer.say("sorry"))["type"] == "message"
        assert (await erin.recv("message"))["text"] == "sorry"
        # A ban over REST closes the open connection too.
        response = await api.http.put("/api/users/alice/chat/bans/carol", json={"reason": "again"},
                                      headers=alice["auth"])
        assert (await response.json())["changed"] is True
        await expect_closed_banned(viewer)
        await erin.close()


async def test_rest_roles_and_refusals(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice, users = await creator_and_users(api, "bob", "carol")
        admin = await api.admin()
        await appoint(api, alice, "bob")
        mod = await api.user("sitemod", "moderator")
        base = "/api/users/alice/chat"
        # Appointing: the creator or an admin, nobody else (not even an appointed moderator).
        await api.error(await api.http.put(f"{base}/moderators/carol"), 401)
        await api.error(await api.http.put(f"{base}/moderators/carol", headers=users["bob"]), 403)
        await api.error(await api.http.put(f"{base}/moderators/carol", headers=mod), 403)
        await api.error(await api.http.put(f"{base}/moderators/nobody", headers=alice["auth"]), 404)
        await api.error(await api.http.put(f"{base}/moderators/alice", headers=alice["auth"]), 422)
        await api.error(await api.http.put("/api/users/nobody/chat/moderators/carol", headers=admin), 404)
        await api.error(await api.http.put(f"{base}/moderators/BAD!", headers=alice["auth"]), 400)
        listed = await (await api.http.put(f"{base}/moderators/carol", headers=admin)).json()
        assert [m["handle"] for m in listed["moderators"]] == ["bob", "carol"] and listed["changed"]
        again = await (await api.http.put(f"{base}/moderators/carol", headers=admin)).json()
        assert again["changed"] is False
        public = await (await api.http.get(f"{base}/moderators")).json()
        assert [m["handle"] for m in public["moderators"]] == ["bob", "carol"]

        # Bans, timeouts, modes and the log: the chat's staff only.
        viewer = await api.user("vic")
        for path in ("bans", "banned-words", "moderation-log"):
            await api.error(await api.http.get(f"{base}/{path}"), 401)
            await api.error(await api.http.get(f"{base}/{path}", headers=viewer), 403)
            assert (await api.http.get(f"{base}/{path}", headers=users["bob"])).status == 200
            assert (await api.http.get(f"{base}/{path}", headers=mod)).status == 200
        await api.error(await api.http.put(f"{base}/bans/vic", headers=viewer), 403)
        await api.error(await api.http.put(f"{base}/bans/alice", headers=admin), 403)  # the creator
        await api.error(await api.http.put(f"{base}/bans/carol", headers=users["bob"]), 403)  # an equal
        await api.error(await api.http.put(f"{base}/bans/sitemod", headers=users["bob"]), 403)  # outranks bob
        await api.error(await api.http.put(f"{base}/bans/bob", headers=users["bob"]), 422)  # himself
        await api.error(await api.http.put(f"{base}/bans/vic", json={"reason": "x" * 501}, headers=mod), 400)
        await api.error(await api.http.put(f"{base}/bans/vic", json={"why": "x"}, headers=mod), 400)
        assert (await api.http.put(f"{base}/bans/vic", headers=users["bob"])).status == 200  # no body needed
        await api.error(await api.http.put(f"{base}/moderators/vic", headers=alice["auth"]), 409)  # banned
        await api.error(await api.http.put(f"{base}/timeouts/carol", json={}, headers=mod), 400)
        await api.error(await api.http.put(f"{base}/timeouts/carol", json={"minutes": 10081}, headers=mod), 400)
        await api.error(await api.http.put(f"{base}/timeouts/carol", json={"minutes": "5"}, headers=mod), 400)
        timed = await (await api.http.put(f"{base}/timeouts/carol", json={"minutes": 5}, headers=mod)).json()
        assert timed["user"] == "carol" and timed["until"] > 0
        assert (await (await api.http.delete(f"{base}/timeouts/carol", headers=mod)).json())["changed"] is True
        await api.error(await api.http.patch(f"{base}/modes", json={"slow_mode_seconds": -1}, headers=mod), 400)
        await api.error(await api.http.patch(f"{base}/modes", json={"followers_only": "yes"}, headers=mod), 400)
        await api.error(await api.http.patch(f"{base}/modes", json={"slow_mode_seconds": 5}, headers=viewer), 403)
        modes = await (await api.http.patch(f"{base}/modes", json={"slow_mode_seconds": 5, "followers_only": True},
                                            headers=users["bob"])).json()
        assert modes == {"slow_mode_seconds": 5, "followers_only": True}
        settings = await (await api.http.get("/api/me/settings", headers=alice["auth"])).json()
        assert settings["chat"]["slow_mode_seconds"] == 5 and settings["chat"]["followers_only"] is True

        # Banning an appointed moderator ends the appointment.
        assert (await api.http.put(f"{base}/bans/carol", headers=alice["auth"])).status == 200
        public = await (await api.http.get(f"{base}/moderators")).json()
        assert [m["handle"] for m in public["moderators"]] == ["bob"]

        doc = await (await api.http.get("/api/openapi.json")).json()
        assert doc["paths"]["/api/reports"]["get"]["x-required-role"] == "moderator"
        assert "409" in doc["paths"]["/api/users/{handle}/chat/moderators/{user}"]["put"]["responses"]


async def test_slow_mode_followers_only_and_banned_words(tmp_path):
    overrides = ("chat.banned_words=spam", "moderation.max_banned_words=3", "chat.burst=20")
    async with accounts_server(tmp_path, *overrides) as api:
        alice, users = await creator_and_users(api, "bob", "carol")
        await appoint(api, alice, "bob")
        creator, _ = await join(api, "alice", alice["auth"])
        mod, _ = await join(api, "alice", users["bob"])
        viewer, _ = await join(api, "alice", users["carol"])

        await viewer.send("slow_mode", seconds=30)
        assert (await viewer.recv("error"))["code"] == "forbidden"
        await mod.send("slow_mode", seconds=3601)
        assert (await mod.recv("error"))["code"] == "bad_request"
        await mod.send("slow_mode", seconds=30)
        for client in (creator, mod, viewer):
            assert await client.recv("moderation") == {"type": "moderation", "action": "slow_mode", "seconds": 30,
                                                       "by": "bob"}
        assert (await viewer.say("one"))["type"] == "message"
        refused = await viewer.say("two")
        assert refused["code"] == "slow_mode" and 29 < refused["retry_after"] <= 30
        assert (await mod.say("mods skip slow mode"))["type"] == "message"
        assert (await mod.say("twice"))["type"] == "message"
        # Turned off through the creator's go-live settings: applies to the open room at once.
        response = await api.http.patch("/api/me/settings", json={"chat": {"slow_mode_seconds": 0}},
                                        headers=alice["auth"])
        assert response.status == 200
        assert (await viewer.recv("moderation"))["seconds"] == 0
        assert (await viewer.say("two"))["type"] == "message"

        await creator.send("followers_only", on="yes")
        assert (await creator.recv("error"))["code"] == "bad_request"
        await creator.send("followers_only", on=True)
        assert (await viewer.recv("moderation"))["on"] is True
        assert (await viewer.say("let me in"))["code"] == "followers_only"
        assert (await mod.say("moderators may"))["type"] == "message"
        assert (await api.http.put("/api/me/following/alice", headers=users["carol"])).status == 200
        assert (await viewer.say("now a follower"))["type"] == "message"
        await mod.send("followers_only", on=False)
        assert (await viewer.recv("moderation"))["on"] is False

        # The creator's own banned words, on top of the server-wide list.
        words = "/api/users/alice/chat/banned-words"
        await api.error(await api.http.put(words, json={"words": ["x"]}, headers=users["bob"]), 403)
        await api.error(await api.http.put(words, json={"words": "crap"}, headers=alice["auth"]), 400)
        await api.error(await api.http.put(words, json={"words": ["a", "b", "c", "d"]}, headers=alice["auth"]), 400)
        await api.error(await api.http.put(words, json={"words": ["ok", "bad\u0000"]}, headers=alice["auth"]), 400)
        await api.error(await api.http.put(words, json={"words": ["y" * 65]}, headers=alice["auth"]), 400)
        saved = await (await api.http.put(words, json={"words": ["Crème", "bad  word", "BAD word"]},
                                          headers=alice["auth"])).json()
        assert saved == {"words": ["Crème", "bad word"], "max_words": 3}
        assert (await viewer.say("a BAD   word here"))["code"] == "banned_word"
        assert (await viewer.say("creme brulee"))["code"] == "banned_word"
        assert (await mod.say("no spam please"))["code"] == "banned_word"  # server-wide, nobody skips it
        assert (await viewer.say("badword is fine"))["type"] == "message"
        assert (await (await api.http.get(words, headers=users["bob"])).json())["words"] == ["Crème", "bad word"]
        # Another creator's chat is not affected.
        await api.user("zed", "creator")
        other, _ = await join(api, "zed", users["carol"])
        assert (await other.say("bad word"))["type"] == "message"

        log = await (await api.http.get("/api/users/alice/chat/moderation-log", headers=alice["auth"])).json()
        actions = [(e["action"], e["by"], e["detail"]) for e in reversed(log["entries"])]
        assert actions == [
            ("add_moderator", "alice", {}), ("slow_mode", "bob", {"seconds": 30}),
            ("slow_mode", "alice", {"seconds": 0}), ("followers_only", "alice", {"on": True}),
            ("followers_only", "bob", {"on": False}), ("banned_words", "alice", {"count": 2})]
        for client in (creator, mod, viewer, other):
            await client.close()


async def test_every_action_is_in_the_log_for_the_creator(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice, users = await creator_and_users(api, "bob", "carol")
        await appoint(api, alice, "bob")
        mod, _ = await join(api, "alice", users["bob"])
        viewer, _ = await join(api, "alice", users["carol"])
        said = await viewer.say("rude words")
        await mod.send("delete", id=said["id"])
        await viewer.recv("deleted")
        for request in ({"type": "timeout", "user": "carol", "minutes": 2}, {"type": "untimeout", "user": "carol"},
                        {"type": "ban", "user": "carol", "reason": "rude"}, {"type": "unban", "user": "carol"}):
            await mod.send(request.pop("type"), **request)
            assert (await mod.recv("moderation"))["user"] == "carol"
        await api.http.delete("/api/users/alice/chat/moderators/bob", headers=alice["auth"])

        url = "/api/users/alice/chat/moderation-log"
        log = await (await api.http.get(url, headers=alice["auth"])).json()
        entries = list(reversed(log["entries"]))
        assert [(e["action"], e["by"], e["target"]) for e in entries] == [
            ("add_moderator", "alice", "bob"), ("delete", "bob", "carol"), ("timeout", "bob", "carol"),
            ("untimeout", "bob", "carol"), ("ban", "bob", "carol"), ("unban", "bob", "carol"),
            ("remove_moderator", "alice", "bob")]
        assert entries[1]["message_id"] == said["id"] and entries[1]["detail"] == {"text": "rude words"}
        assert entries[2]["detail"]["minutes"] == 2 and entries[4]["detail"] == {"reason": "rude"}
        assert all(e["at"] > 0 for e in entries)
        # Paging back, and bob (no longer a moderator) may not read it.
        page = await (await api.http.get(f"{url}?limit=2", headers=alice["auth"])).json()
        older = await (await api.http.get(f"{url}?limit=2&before={page['entries'][-1]['id']}",
                                          headers=alice["auth"])).json()
        assert [e["action"] for e in page["entries"] + older["entries"]] == [
            "remove_moderator", "unban", "ban", "untimeout"]
        await api.error(await api.http.get(url, headers=users["bob"]), 403)
        await api.error(await api.http.get(f"{url}?limit=0", headers=alice["auth"]), 400)
        assert list(chat_service(api).rooms["alice"].history) == []  # the deleted message is gone for good
        await mod.close()
        await viewer.close()


async def test_chat_off_in_the_creators_settings_closes_the_chat_to_all_but_the_creator(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice, users = await creator_and_users(api, "bob", "carol")
        await appoint(api, alice, "bob")
        creator, state = await join(api, "alice", alice["auth"])
        assert state["enabled"] is True
        mod, _ = await join(api, "alice", users["bob"])
        viewer, _ = await join(api, "alice", users["carol"])
        reader, _ = await join(api, "alice")

        response = await api.http.patch("/api/me/settings", json={"chat": {"enabled": False}}, headers=alice["auth"])
        assert response.status == 200 and (await response.json())["chat"]["enabled"] is False
        for client in (creator, mod, viewer, reader):
            assert await client.recv("moderation") == {"type": "moderation", "action": "chat_enabled", "on": False,
                                                       "by": "alice"}
        for client in (viewer, mod):  # a viewer and an appointed moderator alike
            assert await client.say("is anyone there?") == {
                "type": "error", "code": "chat_off", "reason": "the creator has turned the chat off", "retry_after": 0}
        assert (await creator.say("back in five"))["type"] == "message"
        assert (await viewer.recv("message"))["text"] == "back in five"
        # A new connection learns it from its first frame.
        again, state = await join(api, "alice", users["carol"])
        assert state["enabled"] is False and state["you"]["can_write"] is False
        assert [m["text"] for m in state["history"]] == ["back in five"]
        creator2, state = await join(api, "alice", alice["auth"])
        assert state["enabled"] is False and state["you"]["can_write"] is True
        reader2, state = await join(api, "alice")
        assert state["enabled"] is False and state["you"] is None
        # Other settings changes leave it off.
        await api.http.patch("/api/me/settings", json={"chat": {"slow_mode_seconds": 0}}, headers=alice["auth"])
        assert (await again.say("now?"))["code"] == "chat_off"

        response = await api.http.patch("/api/me/settings", json={"chat": {"enabled": True}}, headers=alice["auth"])
        assert response.status == 200
        assert (await viewer.recv("moderation"))["on"] is True
        # The connections that were refused write again without reconnecting.
        assert (await viewer.say("hello again"))["type"] == "message"
        assert (await mod.say("welcome back"))["type"] == "message"

        log = await (await api.http.get("/api/users/alice/chat/moderation-log", headers=alice["auth"])).json()
        assert [(e["action"], e["detail"]) for e in log["entries"] if e["action"] == "chat_enabled"] == [
            ("chat_enabled", {"on": True}), ("chat_enabled", {"on": False})]
        for client in (creator, mod, viewer, reader, again, creator2, reader2):
            await client.close()
