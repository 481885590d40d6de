"""Gifts over HTTP against the whole server: wallets, sends, retries, refusals, the chat
frame, leaderboard, earnings. Every test ends with the ledger balancing (gifts_server)."""

from __future__ import annotations

import asyncio

from tests.chat.support import Publisher, join
from tests.gifts.support import balance, credit, gifts_server, send


async def test_twenty_concurrent_senders_on_one_wallet_with_coins_for_ten(tmp_path):
    async with gifts_server(tmp_path) as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        await credit(api, "bob", 100, "pay-1")  # ten roses (10 coins each)
        responses = await asyncio.gather(*(send(api, bob, "alice", "rose", f"burst-{i}") for i in range(20)))
        statuses = sorted(r.status for r in responses)
        assert statuses == [201] * 10 + [402] * 10, statuses
        for response in responses:
            if response.status == 402:
                body = await response.json()
                assert body["price"] == 10 and body["balance"] == 0 and "coins" in body["error"]
        assert await balance(api, bob) == 0
        assert api.store.earnings(api.store.get_user_by_handle("alice").id) == (50, 10)


async def test_a_retried_request_id_charges_once(tmp_path):
    async with gifts_server(tmp_path) as api:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        assert (await credit(api, "bob", 250, "pay-1"))["balance"] == 250
        again = await credit(api, "bob", 250, "pay-1")  # the provider's webhook, delivered twice
        assert again["replayed"] is True and again["balance"] == 250
        first = await send(api, bob, "alice", "rocket", "tap-1")
        assert first.status == 201
        sent = await first.json()
        assert sent["replayed"] is False and sent["balance"] == 150
        assert sent["gift"]["coins"] == 100 and sent["gift"]["creator_coins"] == 50 and sent["gift"]["platform_coins"] == 50
        # The client timed out and retries, several times at once even.
        retries = await asyncio.gather(*(send(api, bob, "alice", "rocket", "tap-1") for _ in range(5)))
        for retry in retries:
            assert retry.status == 200
            body = await retry.json()
            assert body["replayed"] is True and body["gift"] == sent["gift"] and body["balance"] == 150
        assert await balance(api, bob) == 150
        # A request id is not reusable for another gift.
        conflict = await send(api, bob, "alice", "heart", "tap-1")
        assert "request_id" in await api.error(conflict, 409)
        # A credit key is not reusable for another amount.
        response = await api.http.post("/api/users/bob/wallet/credits", json={"coins": 5, "idempotency_key": "pay-1"},
                                       headers=await api.admin())
        assert "pay-1" in await api.error(response, 409)
        assert await balance(api, bob) == 150


async def test_refusals_are_clear_and_cost_nothing(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        await api.user("carol")
        await credit(api, "bob", 5, "pay")
        assert "log in" in await api.error(await send(api, {}, "alice", "heart", "x"), 401)
        assert "catalogue" in await api.error(await send(api, bob, "alice", "diamond", "x"), 400)
        assert "request_id" in await api.error(await send(api, bob, "alice", "heart", "has space"), 400)
        assert "yourself" in await api.error(await send(api, alice, "alice", "heart", "x"), 422)
        assert "creator" in await api.error(await send(api, bob, "carol", "heart", "x"), 404)  # a viewer
        assert "creator" in await api.error(await send(api, bob, "nobody", "heart", "x"), 404)
        too_dear = await send(api, bob, "alice", "rose", "x")
        assert "5" in await api.error(too_dear, 402)
        response = await api.http.post("/api/streams/alice/gifts", json={"gift_id": "heart"}, headers=bob)
        assert "request_id" in await api.error(response, 400)
        # Only an admin credits coins; amounts are bounded whole numbers.
        response = await api.http.post("/api/users/bob/wallet/credits", json={"coins": 5, "idempotency_key": "k"},
                                       headers=bob)
        assert "admin" in await api.error(response, 403)
        admin = await api.admin()
        for coins in (0, -1, 2.5, "10", 10**12):
            response = await api.http.post("/api/users/bob/wallet/credits",
                                           json={"coins": coins, "idempotency_key": "k"}, headers=admin)
            assert "coins" in await api.error(response, 400)
        response = await api.http.post("/api/users/nobody/wallet/credits", json={"coins": 1, "idempotency_key": "k"},
                                       headers=admin)
        await api.error(response, 404)
        assert "admin" in await api.error(await api.http.get("/api/ledger", headers=bob), 403)
        assert await balance(api, bob) == 5


async def test_a_gift_shows_in_the_chat_for_everyone(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        await credit(api, "bob", 100, "pay")
        creator, _ = await join(api, "alice", alice)
        reader, _ = await join(api, "alice")
        response = await send(api, bob, "alice", "rose", "r1")
        assert response.status == 201
        seen = [await creator.recv("gift"), await reader.recv("gift")]
        assert seen[0] == seen[1]
        frame = seen[0]
        assert frame["user"] == "bob" and frame["coins"] == 10 and frame["gift"]["id"] == "rose"
        assert frame["gift"]["name"] == "Rose" and frame["id"] == (await response.json())["gift"]["id"]
        # A replay is not shown again: the next gift frame is the next gift.
        assert (await send(api, bob, "alice", "rose", "r1")).status == 200
        assert (await send(api, bob, "alice", "heart", "r2")).status == 201
        assert (await reader.recv("gift"))["gift"]["id"] == "heart"
        for client in (creator, reader):
            await client.close()


async def test_earnings_in_coins_and_money_and_who_may_see_them(tmp_path):
    async with gifts_server(tmp_path, "gifts.platform_share=0.3", "gifts.coin_value=0.005", "gifts.currency=EUR") as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        await credit(api, "bob", 2000, "pay")
        for index, gift in enumerate(["castle", "rose", "heart"]):
            assert (await send(api, bob, "alice", gift, f"g{index}")).status == 201
        response = await api.http.get("/api/users/alice/earnings", headers=alice)
        assert response.status == 200, await response.text()
        # 1000 → 700, 10 → 7, 1 → floor(0.7) = 0: 707 coins, worth 3.535 → 3.54 EUR (half-even).
        # What viewers sent (1011), the platform's 30 % (304) and alice's part add up.
        assert await response.json() == {"handle": "alice", "coins": 707, "gifts": 3, "money": "3.54", "currency": "EUR",
                                         "gross_coins": 1011, "platform_coins": 304, "platform_share": "0.3"}
        assert (await api.http.get("/api/users/alice/earnings", headers=await api.admin())).status == 200
        assert "creator" in await api.error(await api.http.get("/api/users/alice/earnings", headers=bob), 403)
        catalogue = await (await api.http.get("/api/gifts")).json()
        assert catalogue["currency"] == "EUR" and catalogue["platform_share"] == "0.3"
        assert [(g["id"], g["price"], g["value"]) for g in catalogue["gifts"]] == [
            ("heart", 1, "0.00"), ("rose", 10, "0.05"), ("rocket", 100, "0.50"), ("castle", 1000, "5.00")]
        ledger = await (await api.http.get("/api/ledger", headers=await api.admin())).json()
        assert ledger["platform"] == 300 + 3 + 1 and ledger["balanced"] is True


async def test_leaderboard_of_all_time_and_of_the_live_broadcast(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")  # her top gifters are hers (issue 18)
        fans = {name: await api.user(name) for name in ("bob", "carol", "dave")}
        for name in fans:
            await credit(api, name, 1000, f"pay-{name}")
        assert (await send(api, fans["bob"], "alice", "rocket", "1")).status == 201  # offline
        publication = api.srv.hub.publish("alice", Publisher())
        assert (await send(api, fans["carol"], "alice", "rose", "1")).status == 201
        assert (await send(api, fans["dave"], "alice", "rose", "1")).status == 201
        assert (await send(api, fans["dave"], "alice", "heart", "2")).status == 201
        board = await (await api.http.get("/api/streams/alice/leaderboard", headers=alice)).json()
        assert board["live"] is True and board["scope"] == "all"
        assert [(g["rank"], g["user"], g["coins"], g["gifts"]) for g in board["gifters"]] == [
            (1, "bob", 100, 1), (2, "dave", 11, 2), (3, "carol", 10, 1)]
        live = await (await api.http.get("/api/streams/alice/leaderboard?scope=broadcast", headers=alice)).json()
        assert [g["user"] for g in live["gifters"]] == ["dave", "carol"]
        publication.detach(clean=True)
        ended = await (await api.http.get("/api/streams/alice/leaderboard?scope=broadcast", headers=alice)).json()
        assert ended["live"] is False and ended["gifters"] == []
        await api.error(await api.http.get("/api/streams/alice/leaderboard?scope=week", headers=alice), 400)


async def test_a_user_banned_from_the_creators_chat_cannot_send_gifts(tmp_path):
    async with gifts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        carol = await api.user("carol")
        for name in ("bob", "carol"):
            await credit(api, name, 100, f"pay-{name}")
        response = await api.http.put("/api/users/alice/chat/bans/bob", json={"reason": "spam"}, headers=alice)
        assert response.status in (200, 201), await response.text()
        assert "may not" in await api.error(await send(api, bob, "alice", "rose", "1"), 403)
        assert (await send(api, carol, "alice", "rose", "1")).status == 201
        assert await balance(api, bob) == 100 and await balance(api, carol) == 90
        # Lifting the ban lets bob give again.
        response = await api.http.delete("/api/users/alice/chat/bans/bob", headers=alice)
        assert response.status in (200, 204), await response.text()
        assert (await send(api, bob, "alice", "rose", "2")).status == 201
        assert await balance(api, bob) == 90
