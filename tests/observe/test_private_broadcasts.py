"""``GET /api/broadcasts`` and a broadcast that never went public (issue 17, item 5): its
summary is kept (the creator's analytics), marked ``private``, and listed only for its
creator (the stream named after their handle) and for operators. Since issue 18 every
summary of a creator's broadcast is theirs (and operators'): nobody else sees any. Broadcasts are made through the running
server's own hub (a publisher handle instead of an encoder: what is tested is the monitor,
the store and the route), and ended, so the monitor writes their summaries."""

from __future__ import annotations

from mediasrv.httpkit.keys import MONITOR
from tests.accounts.support import accounts_server
from tests.security.support import eventually


class Publisher:
    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        pass


async def test_a_never_public_broadcast_is_listed_for_its_creator_and_operators_only(tmp_path):
    async with accounts_server(tmp_path) as api:
        http, hub = api.http, api.srv.hub
        people = {"anonymous": {}, "alice": await api.user("alice", "creator"),
                  "dave": await api.user("dave", "creator"), "fan": await api.user("fan"),
                  "operator": await api.user("operator", "moderator"), "admin": await api.admin()}
        monitor = api.srv.app[MONITOR]
        # alice: one public broadcast, then one that stayed backstage; dave: one backstage
        # made public, one that stayed backstage.
        for name, backstage, made_public in (("alice", False, False), ("alice", True, False),
                                             ("dave", True, True), ("dave", True, False)):
            hub.set_backstage(name, backstage)
            hub.publish(name, Publisher())
            if made_public:
                assert hub.make_public(name)
            hub.stop(name)
        await eventually(lambda: _written(monitor, 4), what="four summaries")

        async def listed(who: str, query: str = "") -> list[tuple[str, bool]]:
            async with http.get(f"/api/broadcasts{query}", headers=people[who]) as response:
                assert response.status == 200, await response.text()
                return sorted((b["stream"], b["private"]) for b in (await response.json())["broadcasts"])

        # A creator's summaries are their analytics (issue 18): nobody else but operators
        # sees them, public or not.
        for who in ("anonymous", "fan"):
            assert await listed(who) == [], who
        assert await listed("alice") == [("alice", False), ("alice", True)]
        assert await listed("dave") == [("dave", False), ("dave", True)]
        everything = [("alice", False), ("alice", True), ("dave", False), ("dave", True)]
        assert await listed("operator") == everything and await listed("admin") == everything
        assert await listed("fan", "?stream=alice") == []
        assert await listed("alice", "?stream=dave") == []
        assert await listed("alice", "?stream=alice&limit=1") == [("alice", True)]  # the newest, hers
        # A token that is no longer valid is told so, not answered as anonymous.
        response = await http.get("/api/broadcasts", headers={"Authorization": "Bearer not-a-valid-token"})
        assert response.status == 401


async def _written(monitor, count: int) -> bool:
    return monitor.summaries_written >= count
