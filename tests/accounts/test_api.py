"""The accounts API: registration, login, tokens, roles, follows, live access, keys, settings."""

from __future__ import annotations

import asyncio

import pytest

from mediasrv.httpkit.keys import STORE
from tests.accounts.support import ADMIN_PASSWORD, NO_RECORDING, PASSWORD, accounts_server, bulk_users
from tests.support.server import running_server


async def test_register_login_me_logout(tmp_path):
    async with accounts_server(tmp_path) as api:
        profile = await api.register("Alice", "creator")
        assert profile["handle"] == "alice" and profile["role"] == "creator" and profile["followers"] == 0
        headers = await api.login("alice")
        me = await (await api.http.get("/api/me", headers=headers)).json()
        assert me["handle"] == "alice" and me["live"] is False
        # Wrong password, unknown user: the same 401.
        for handle, password in (("alice", "wrong-password"), ("nobody", PASSWORD)):
            response = await api.http.post("/api/login", json={"handle": handle, "password": password})
            assert await api.error(response, 401) == "wrong handle or password"
        assert (await api.http.post("/api/logout", headers=headers)).status == 204
        response = await api.http.get("/api/me", headers=headers)
        assert "invalid, expired or revoked" in await api.error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_tokens_are_revocable_and_never_stored_in_clear(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.register("alice")
        first, second = await api.login("alice"), await api.login("alice")
        token = first["Authorization"].split()[1]
        rows = await asyncio.to_thread(lambda: api.store._db.execute("SELECT token_hash FROM tokens").fetchall())
        assert len(rows) == 2 and all(token not in row[0] for row in rows)
        response = await api.http.delete("/api/users/alice/tokens", headers=first)
        assert (await response.json())["revoked"] == 2
        for headers in (first, second):
            await api.error(await api.http.get("/api/me", headers=headers), 401)


async def test_admin_is_bootstrapped_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIASRV_ADMIN_PASSWORD", "from-the-env-1")
    async with running_server(tmp_path, "accounts.admin_handle=root", *NO_RECORDING) as srv:
        admin = srv.app[STORE].get_user_by_handle("root")
        assert admin is not None and admin.role == "admin"
    # A restart keeps the existing admin (and its password).
    monkeypatch.setenv("MEDIASRV_ADMIN_PASSWORD", "another-one-2")
    async with running_server(tmp_path, "accounts.admin_handle=root", *NO_RECORDING) as srv:
        import aiohttp

        async with aiohttp.ClientSession(srv.http_url) as http:
            ok = await http.post("/api/login", json={"handle": "root", "password": "from-the-env-1"})
            assert ok.status == 200


@pytest.mark.parametrize("body, status, fragment", [
    ({"handle": "ab", "password": PASSWORD}, 400, "handle"),
    ({"handle": "has space", "password": PASSWORD}, 400, "handle"),
    ({"handle": "../etc", "password": PASSWORD}, 400, "handle"),
    ({"handle": "okname", "password": "short"}, 400, "password"),
    ({"handle": "okname"}, 400, "password: required"),
    ({"handle": 5, "password": PASSWORD}, 400, "expected text"),
    ({"handle": "okname", "password": PASSWORD, "role": "god"}, 400, "role"),
    ({"handle": "okname", "password": PASSWORD, "role": "admin"}, 403, "only an admin"),
    ({"handle": "okname", "password": PASSWORD, "extra": 1}, 400, "unknown field"),
    ({"handle": "okname", "password": PASSWORD, "display_name": "x" * 65}, 400, "display_name"),
    ({"handle": "okname", "password": PASSWORD, "display_name": "bad\x00name"}, 400, "control"),
    ([1, 2], 400, "JSON object"),
])
async def test_registration_input_is_validated(tmp_path, body, status, fragment):
    async with accounts_server(tmp_path) as api:
        message = await api.error(await api.http.post("/api/users", json=body), status)
        assert fragment in message
        assert api.store.get_user_by_handle("okname") is None


async def test_bad_bodies_and_unknown_paths_answer_json(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.register("alice")
        assert "not valid JSON" in await api.error(
            await api.http.post("/api/login", data=b"{nope", headers={"Content-Type": "application/json"}), 400)
        assert "application/json" in await api.error(
            await api.http.post("/api/login", data=b"handle=x", headers={"Content-Type": "text/plain"}), 415)
        assert "empty" in await api.error(
            await api.http.post("/api/login", data=b"", headers={"Content-Type": "application/json"}), 400)
        await api.error(await api.http.get("/api/nothing/here"), 404)
        await api.error(await api.http.delete("/api/live"), 405)
        await api.error(await api.http.post("/api/users", json={"handle": "alice", "password": PASSWORD}), 409)
        await api.error(await api.http.get("/api/users/nobody"), 404)
        await api.error(await api.http.get("/api/users/NO%20BODY"), 400)
        await api.error(await api.http.get("/api/users/alice/followers?limit=0"), 400)
        await api.error(await api.http.get("/api/users/alice/followers?limit=abc"), 400)


async def test_roles_guard_state_changes(tmp_path):
    async with accounts_server(tmp_path) as api:
        viewer = await api.user("vic")
        creator = await api.user("cara", "creator")
        admin = await api.admin()
        # A viewer has no stream key or go-live settings; nobody but an admin sets roles or access.
        for method, path in (("GET", "/api/me/stream-key"), ("POST", "/api/me/stream-key"),
                             ("GET", "/api/me/settings"), ("PUT", "/api/me/cover")):
            assert "creator role" in await api.error(await api.http.request(method, path, headers=viewer), 403)
        for headers in (viewer, creator):
            await api.error(await api.http.put("/api/users/vic/role", json={"role": "admin"}, headers=headers), 403)
            await api.error(await api.http.put("/api/users/cara/live-access", json={"access": "granted"},
                                               headers=headers), 403)
            await api.error(await api.http.delete("/api/users/admin/tokens", headers=headers), 403)
        await api.error(await api.http.get("/api/me/stream-key"), 401)
        # The admin promotes the viewer: now a creator with a key.
        response = await api.http.put("/api/users/vic/role", json={"role": "creator"}, headers=admin)
        assert (await response.json())["role"] == "creator"
        assert (await api.http.get("/api/me/stream-key", headers=viewer)).status == 200
        await api.error(await api.http.put("/api/users/vic/role", json={"role": "boss"}, headers=admin), 400)
        await api.error(await api.http.put("/api/users/admin/role", json={"role": "viewer"}, headers=admin), 422)


async def test_registration_can_be_closed(tmp_path):
    async with accounts_server(tmp_path, "accounts.open_registration=false") as api:
        assert "closed" in await api.error(
            await api.http.post("/api/users", json={"handle": "alice", "password": PASSWORD}), 403)
        await api.register("alice", "moderator", admin=await api.admin())


async def test_follow_unfollow_counts_and_lists(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.register("alice", "creator")
        bob, carol = await api.user("bob"), await api.user("carol")
        for headers in (bob, carol, bob):
            response = await api.http.put("/api/me/following/alice", headers=headers)
            assert response.status == 200
        assert (await response.json()) == {"following": True, "changed": False, "handle": "alice", "followers": 2}
        await api.error(await api.http.put("/api/me/following/nobody", headers=bob), 404)
        await api.error(await api.http.put("/api/me/following/bob", headers=bob), 422)  # well-formed, refused
        await api.error(await api.http.put("/api/me/following/alice"), 401)
        followers = await (await api.http.get("/api/users/alice/followers")).json()
        assert followers["total"] == 2 and [u["handle"] for u in followers["users"]] == ["carol", "bob"]
        page = await (await api.http.get("/api/users/alice/followers?limit=1&offset=1")).json()
        assert [u["handle"] for u in page["users"]] == ["bob"]
        following = await (await api.http.get("/api/users/bob/following")).json()
        assert following["total"] == 1 and following["users"][0]["handle"] == "alice"
        response = await api.http.delete("/api/me/following/alice", headers=bob)
        assert (await response.json())["followers"] == 1
        profile = await (await api.http.get("/api/users/alice")).json()
        assert (profile["followers"], profile["following"]) == (1, 0)
        assert "password" not in str(profile) and "stream_key" not in str(profile)


async def test_live_access_endpoint_rule_and_admin_override(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=3") as api:
        alice = await api.user("alice", "creator")
        admin = await api.admin()
        access = await (await api.http.get("/api/me/live-access", headers=alice)).json()
        assert access == {"handle": "alice", "allowed": False, "followers": 0, "min_followers": 3, "override": None,
                          "reason": "live access requires 3 followers, you have 0"}
        user = api.store.get_user_by_handle("alice")
        api.store.add_followers(user.id, [u.id for u in bulk_users(api.store, "fan", 3)], 1.0)
        access = await (await api.http.get("/api/me/live-access", headers=alice)).json()
        assert access["allowed"] and access["followers"] == 3
        response = await api.http.put("/api/users/alice/live-access", json={"access": "revoked"}, headers=admin)
        body = await response.json()
        assert body["allowed"] is False and body["override"] == "revoked" and body["stopped_live_stream"] is False
        mine = await (await api.http.get("/api/me/live-access", headers=alice)).json()
        assert mine["reason"] == "live access was revoked by an admin"
        await api.http.put("/api/users/alice/live-access", json={"access": "rule"}, headers=admin)
        assert (await (await api.http.get("/api/users/alice/live-access", headers=admin)).json())["allowed"]
        await api.error(await api.http.put("/api/users/alice/live-access", json={"access": "maybe"},
                                           headers=admin), 400)
        viewer = await api.user("vic")
        await api.error(await api.http.get("/api/users/alice/live-access", headers=viewer), 403)


async def test_stream_key_is_owner_only_and_rotates(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob", "creator")
        first = await (await api.http.get("/api/me/stream-key", headers=alice)).json()
        assert first["public_name"] == "alice" and first["url"].endswith("/live/" + first["stream_key"])
        assert first["stream_key"] == await api.stream_key(alice)  # stable until rotated
        assert await api.stream_key(bob) != first["stream_key"]
        response = await api.http.post("/api/me/stream-key", headers=alice)
        assert response.headers["Cache-Control"].startswith("no-store")
        rotated = (await response.json())["stream_key"]
        assert rotated != first["stream_key"] and await api.stream_key(alice) == rotated
        # Nowhere public.
        for path in ("/api/users/alice", "/api/live", "/api/users/alice/followers", "/api/openapi.json"):
            assert rotated not in await (await api.http.get(path)).text()


async def test_go_live_settings(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        settings = await (await api.http.get("/api/me/settings", headers=alice)).json()
        assert settings["title"] == "" and settings["save_by_default"] is True and settings["chat"]["enabled"]
        response = await api.http.patch("/api/me/settings", headers=alice, json={
            "title": "  Speedrun night  ", "save_by_default": False, "chat": {"slow_mode_seconds": 10}})
        settings = await response.json()
        assert settings["title"] == "Speedrun night" and settings["save_by_default"] is False
        assert settings["chat"] == {"enabled": True, "slow_mode_seconds": 10, "followers_only": False}
        for body, fragment in (({"title": "x" * 141}, "title"), ({"save_by_default": "yes"}, "true or false"),
                               ({"chat": {"slow_mode_seconds": -1}}, "slow_mode_seconds"),
                               ({"chat": {"colour": 1}}, "unknown setting"), ({"chat": []}, "object"),
                               ({"cover": "x"}, "unknown field")):
            assert fragment in await api.error(await api.http.patch("/api/me/settings", headers=alice, json=body), 400)
        again = await (await api.http.get("/api/me/settings", headers=alice)).json()
        assert again["title"] == "Speedrun night"
        from mediasrv.httpkit.keys import ACCOUNTS

        service = api.srv.app[ACCOUNTS]
        assert await service.save_by_default("alice") is False and await service.save_by_default("nobody") is None


async def test_profile_update_and_password_change(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice")
        response = await api.http.patch("/api/me", headers=alice, json={"display_name": "Alice A."})
        assert (await response.json())["display_name"] == "Alice A."
        await api.error(await api.http.patch("/api/me", headers=alice, json={"new_password": "another-pass-2"}), 400)
        await api.error(await api.http.patch("/api/me", headers=alice, json={
            "new_password": "another-pass-2", "current_password": "wrong"}), 403)
        response = await api.http.patch("/api/me", headers=alice, json={
            "new_password": "another-pass-2", "current_password": PASSWORD})
        assert response.status == 200
        await api.login("alice", "another-pass-2")


async def test_a_password_change_ends_every_other_session(tmp_path):
    """Issue 16, item 7: the session that changes the password stays logged in; every other
    token of the account (another browser, a stolen token) stops working at once; other
    accounts' sessions are untouched."""
    async with accounts_server(tmp_path) as api:
        here, elsewhere = await api.user("alice"), await api.login("alice")
        bob = await api.user("bob")
        response = await api.http.patch("/api/me", headers=here, json={
            "new_password": "another-pass-2", "current_password": PASSWORD})
        assert response.status == 200, await response.text()
        assert (await api.http.get("/api/me", headers=here)).status == 200
        await api.error(await api.http.get("/api/me", headers=elsewhere), 401)
        assert (await api.http.get("/api/me", headers=bob)).status == 200
        # A wrong current password changes nothing and ends nothing.
        again = await api.login("alice", "another-pass-2")
        await api.error(await api.http.patch("/api/me", headers=here, json={
            "new_password": "third-pass-3", "current_password": "wrong"}), 403)
        assert (await api.http.get("/api/me", headers=again)).status == 200
        await api.login("alice", "another-pass-2")


async def test_a_viewer_becomes_a_creator_where_anyone_may_sign_up_as_one(tmp_path):
    async with accounts_server(tmp_path) as api:
        viewer = await api.user("vera")
        await api.error(await api.http.get("/api/me/stream-key", headers=viewer), 403)
        response = await api.http.post("/api/me/become-creator", headers=viewer)
        assert response.status == 200, await response.text()
        assert (await response.json())["role"] == "creator"
        assert (await api.http.get("/api/me/stream-key", headers=viewer)).status == 200  # a key was made
        # Asking again (or as a moderator or admin) changes nothing.
        assert (await (await api.http.post("/api/me/become-creator", headers=viewer)).json())["role"] == "creator"
        admin = await api.admin()
        assert (await (await api.http.post("/api/me/become-creator", headers=admin)).json())["role"] == "admin"
        await api.error(await api.http.post("/api/me/become-creator"), 401)


async def test_no_self_service_creators_when_registration_is_closed(tmp_path):
    async with accounts_server(tmp_path, "accounts.open_registration=false") as api:
        admin = await api.admin()
        await api.register("vera", admin=admin)
        viewer = await api.login("vera")
        message = await api.error(await api.http.post("/api/me/become-creator", headers=viewer), 403)
        assert "admin" in message
        assert (await (await api.http.get("/api/me", headers=viewer)).json())["role"] == "viewer"


async def test_accounts_api_works_in_open_mode_too(tmp_path):
    async with running_server(tmp_path, f"accounts.admin_password={ADMIN_PASSWORD}", *NO_RECORDING) as srv:
        import aiohttp

        async with aiohttp.ClientSession(srv.http_url) as http:
            response = await http.post("/api/users", json={"handle": "alice", "password": PASSWORD})
            assert response.status == 201
            assert (await http.get("/api/live")).status == 200
