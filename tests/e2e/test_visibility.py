"""Who may watch (issue 18): visibility × resource × who, against a real server with a
live FFmpeg push.

One RTMP push; the creator changes the live's visibility while live (``PATCH
/api/me/live``) and every cell of the table is asked for each visibility: discovery,
the playback API, the master and media playlists, an init segment, a segment, a part,
RTMP play, the thumbnail, the chat, the stats API, for eight viewers. The blocked user is
blocked by the creator through the API (``POST /api/me/blocks/HANDLE``), which the gate
asks through ``ports.BlockList``.

What a cell says: ``True`` the resource answers (200, or the chat's upgrade-only 400:
admitted), ``False`` it answers as for a stream that does not exist (404, RTMP
StreamNotFound), never revealing the live. A viewer refused by the playback API tries the
media with no grant (and the media URLs an allowed viewer got, stripped of their
signature): for a public live that is open to anyone, so even a blocked user gets the
public HLS (a signed-out viewer cannot be told apart); the blocked user's refusals are
where they are known: the playback API, the chat.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import pytest

from mediasrv.httpkit.keys import VIEWERS
from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import wait_for
from tests.e2e.test_backstage import _uris
from tests.security.support import eventually
from tests.support.clients import run_process, start_ffmpeg_push
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e

WHO = ("anonymous", "stranger", "follower", "blocked", "invited", "moderator", "creator", "operator")
RESOURCES = ("discovery", "following", "playback", "master", "media", "init", "segment", "part", "rtmp", "thumbnail", "chat",
             "stats")
#: Who may watch, by visibility (the playback API, and so every resource opened by its grant).
WATCH = {
    "public": {"anonymous", "stranger", "follower", "invited", "moderator", "creator", "operator"},
    "followers": {"follower", "moderator", "creator", "operator"},
    "unlisted": {"anonymous", "stranger", "follower", "invited", "moderator", "creator", "operator"},
    "private": {"invited", "moderator", "creator", "operator"},
}
MEDIA = ("master", "media", "init", "segment", "part", "rtmp", "thumbnail", "stats")


def expected(visibility: str, who: str) -> dict[str, bool]:
    """The table: one row per (visibility, who)."""
    watch = who in WATCH[visibility]
    # A followers-only live is listed to the creator's followers (the blocked user's follow
    # went with the block), in /api/live and their following feed.
    listed = visibility == "public" or (visibility == "followers" and who == "follower")
    row = {"discovery": listed, "following": listed and who == "follower", "playback": watch, "chat": watch}
    # Media without a grant: a public live's is anyone's (a blocked user signed out too).
    for resource in MEDIA:
        row[resource] = watch or visibility == "public"
    return row


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def _status(http: aiohttp.ClientSession, url: str, headers: dict | None = None) -> int:
    async with http.get(url, headers=headers or {}) as response:
        await response.read()
        return response.status


async def _walk(http: aiohttp.ClientSession, master_url: str) -> dict[str, tuple[int, str]]:
    """master → first variant → its init, last whole segment, last part: (status, url)."""
    out = {"master": (await _status(http, master_url), master_url)}
    async with http.get(master_url) as response:
        if response.status != 200:
            return out
        variant = urljoin(master_url, _uris(await response.text())[0])
    async with http.get(variant) as response:
        out["media"] = (response.status, variant)
        text = await response.text()
    uris = _uris(text)
    init = [u for u in uris if "init" in u][:1]
    segments = [u for u in uris if "seg_" in u][-1:]
    parts = [u for u in uris if "part_" in u and "PRELOAD" not in u][-1:]
    for key, found in (("init", init), ("segment", segments), ("part", parts)):
        assert found, (key, text)
        url = urljoin(variant, found[0])
        out[key] = (await _status(http, url), url)
    return out


async def _rtmp_plays(url: str) -> bool:
    status, _ = await run_process(require_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin",
                                  "-rw_timeout", "8000000", "-i", url, "-frames:v", "2", "-f", "null", "-",
                                  timeout=30)
    return status == 0


async def _row(api, who: str, headers: dict, allowed_walk: dict[str, tuple[int, str]]) -> dict[str, bool]:
    """Every resource for one viewer (the live's visibility as it is now)."""
    http, srv = api.http, api.srv
    row: dict[str, bool] = {}
    async with http.get("/api/live", headers=headers) as response:
        row["discovery"] = "alice" in [s["name"] for s in (await response.json())["streams"]]
    async with http.get("/api/live/following", headers=headers) as response:
        assert response.status == (401 if who == "anonymous" else 200), (who, response.status)
        row["following"] = response.status == 200 and "alice" in [s["name"] for s in (await response.json())["streams"]]
    async with http.get("/api/live/alice/playback", headers=headers) as response:
        row["playback"] = response.status == 200
        answer = await response.json() if response.status == 200 else None
    assert row["playback"] or response.status == 404
    grant = answer["grant"] if answer else None
    if answer is not None:
        walk = await _walk(http, answer["playback_url"])
        rtmp_url = answer["rtmp_playback_url"]
    else:
        # No grant: the plain URLs, and those an allowed viewer was given, unsigned.
        walk = {"master": (await _status(http, f"{srv.http_url}/live/alice/index.m3u8"), "")}
        for key in ("media", "init", "segment", "part"):
            url = _strip_query(allowed_walk[key][1])
            walk[key] = (await _status(http, url), url)
        rtmp_url = srv.rtmp_url("alice")
    for key in ("master", "media", "init", "segment", "part"):
        status = walk[key][0]
        assert status in (200, 404), (who, key, status)
        row[key] = status == 200
    row["rtmp"] = await _rtmp_plays(rtmp_url)
    carry = f"?pt={grant}" if grant else ""
    row["thumbnail"] = await _status(http, f"/api/live/alice/thumbnail{carry}") == 200
    row["stats"] = await _status(http, f"/api/streams/alice/stats{carry}") == 200
    chat = await _status(http, "/live/alice/chat", headers)
    # 400: admitted, but a plain GET is no upgrade; 404: as for no such live; the blocked
    # user is told (403 `blocked`: the page says why), whatever the visibility.
    assert chat in ((403,) if who == "blocked" else (400, 404)), (who, chat)
    row["chat"] = chat == 400
    return row


async def _people(api) -> dict[str, dict]:
    http = api.http
    people = {"anonymous": {}}
    people["creator"] = await api.user("alice", "creator")
    people["stranger"] = await api.user("stranger")
    people["follower"] = await api.user("fan")
    people["blocked"] = await api.user("troll")
    people["invited"] = await api.user("guest")
    people["moderator"] = await api.user("mod")
    people["operator"] = await api.user("operator", "moderator")
    alice = people["creator"]
    for who in ("follower", "blocked"):
        response = await http.put("/api/me/following/alice", headers=people[who])
        assert response.status == 200, await response.text()
    for handle in ("guest", "troll"):
        response = await http.post(f"/api/me/invites/{handle}", headers=alice)
        assert response.status == 200 and (await response.json())["changed"] is True, await response.text()
    response = await http.put("/api/users/alice/chat/moderators/mod", headers=alice)
    assert response.status == 200, await response.text()
    return people


async def test_who_may_watch_each_visibility_every_resource(tmp_path):
    async with accounts_server(tmp_path, "hls.segment_duration=1", "live_access.min_followers=0",
                               "http.trusted_proxies=[\"127.0.0.1\"]") as api:
        srv, http = api.srv, api.http
        people = await _people(api)
        alice = people["creator"]
        store = api.store

        async def block(on: bool) -> None:
            method = http.post if on else http.delete
            async with method("/api/me/blocks/troll", headers=alice) as response:
                assert response.status in (200, 201, 204), await response.text()

        await block(True)

        invites = await (await http.get("/api/me/invites", headers=alice)).json()
        assert sorted(i["handle"] for i in invites["invites"]) == ["guest", "troll"]

        publisher = await start_ffmpeg_push(srv.rtmp_url(await api.stream_key(alice)), seconds=120, realtime=True)
        try:
            stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            assert stream.visibility == "public" and not stream.restricted
            # Until a picture and a first part exist (there is no event for either).
            await eventually(lambda: _has_thumbnail(http), what="a thumbnail")
            failures = []
            for visibility in ("public", "followers", "unlisted", "private"):
                response = await http.patch("/api/me/live", headers=alice, json={"visibility": visibility})
                assert response.status == 200, await response.text()
                state = await response.json()
                assert state["visibility"] == visibility and stream.visibility == visibility
                async with http.get("/api/live/alice/playback", headers=alice) as response:
                    creator_answer = await response.json()
                allowed_walk = await _walk(http, creator_answer["playback_url"])
                assert all(status == 200 for status, _ in allowed_walk.values()), allowed_walk
                if visibility != "public":
                    # Every media URI the creator was given is signed (hs=) and carries her grant.
                    assert all("hs=" in url and "pt=" in url for key, (_, url) in allowed_walk.items()
                               if key in ("init", "segment", "part")), allowed_walk
                rows = await asyncio.gather(*(_row(api, who, people[who], allowed_walk) for who in WHO))
                for who, row in zip(WHO, rows):
                    want = expected(visibility, who)
                    for resource in RESOURCES:
                        if row[resource] != want[resource]:
                            failures.append(f"{visibility} × {resource} × {who}: got {row[resource]}, "
                                            f"expected {want[resource]}")
            assert not failures, "\n".join(failures)

            # A block takes effect at the viewer's next request, grant or not: the blocked
            # user unblocked gets a grant, is blocked again, and that grant opens nothing.
            troll = store.get_user_by_handle("troll").id
            await block(False)
            async with http.get("/api/live/alice/playback", headers=people["blocked"]) as response:
                assert response.status == 200
                answer = await response.json()
            assert answer["grant"].endswith(f".{troll}")  # the viewer is signed into the grant
            assert await _status(http, answer["playback_url"]) == 200
            await block(True)
            assert await _status(http, answer["playback_url"]) == 404
            # Withdrawing an invitation revokes the live's grants (the others ask again).
            async with http.get("/api/live/alice/playback", headers=people["invited"]) as response:
                guest = await response.json()
            assert await _status(http, guest["playback_url"]) == 200
            response = await http.delete("/api/me/invites/guest", headers=alice)
            assert (await response.json()) == {"handle": "guest", "invited": False, "changed": True}
            assert await _status(http, guest["playback_url"]) == 404
            assert await _status(http, "/api/live/alice/playback", people["invited"]) == 404
            # A forged or expired media signature is refused by mediasrv too.
            async with http.get("/api/live/alice/playback", headers=alice) as response:
                fresh = await _walk(http, (await response.json())["playback_url"])
            segment = fresh["segment"][1]
            base, _, signature = segment.partition("hs=")
            expires, _, mac = signature.partition(".")
            assert await _status(http, f"{_strip_query(segment)}?hs={signature}") == 200  # the signature alone
            forged = f"{int(expires) + 600}.{mac}"
            assert await _status(http, f"{_strip_query(segment)}?hs={forged}") == 404
            assert await _status(http, f"{_strip_query(segment)}?hs=1.{mac}") == 404  # long expired
            # A cache's mirror of a media request (/hls-seen, from a trusted proxy) counts a
            # viewer of a live that is not public only with the signature the file needs.
            await _mirror_counts_only_signed(http, srv, (await (await http.get(
                "/api/live/alice/playback", headers=alice)).json())["playback_url"])
            # 18+: out of discovery for signed-out viewers only.
            response = await http.patch("/api/me/live", headers=alice, json={"visibility": "public", "mature": True})
            assert response.status == 200 and (await response.json())["mature"] is True
            for who, listed in (("anonymous", False), ("stranger", True), ("follower", True)):
                for path in ("/api/live", "/api/streams"):
                    async with http.get(path, headers=people[who]) as response:
                        names = [s["name"] for s in (await response.json())["streams"]]
                    assert ("alice" in names) is listed, (who, path)
            status = await (await http.get("/api/live/alice/status")).json()
            assert status["live"] is True and status["mature"] is True  # the page asks the age first
            # The chat follows the live's visibility: a stranger in the chat of a public live
            # is closed out when it becomes private; the creator's moderator stays.
            stranger_ws = await http.ws_connect("/live/alice/chat", headers=people["stranger"])
            mod_ws = await http.ws_connect("/live/alice/chat", headers=people["moderator"])
            first = await asyncio.wait_for(stranger_ws.receive_json(), 10)  # joined
            assert first["type"] != "error", first
            await asyncio.wait_for(mod_ws.receive_json(), 10)
            response = await http.patch("/api/me/live", headers=alice, json={"visibility": "private"})
            assert response.status == 200
            frames = []
            async for message in stranger_ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    frames.append(message.json())
            assert frames and frames[-1]["code"] == "not_allowed", frames
            assert stranger_ws.close_code == 1008  # policy violation
            assert not mod_ws.closed
            await mod_ws.close()
            # A setting nobody may choose on this site: 400.
            response = await http.patch("/api/me/live", headers=alice, json={"visibility": "secret"})
            assert response.status == 400
            # An 18+ followers-only live: listed to the follower only (tagged so), never to a
            # stranger or a signed-out viewer.
            response = await http.patch("/api/me/live", headers=alice, json={"visibility": "followers"})
            assert response.status == 200 and (await response.json())["mature"] is True
            for who, listed in (("anonymous", False), ("stranger", False), ("follower", True)):
                for path in ("/api/live", "/api/live/following"):
                    async with http.get(path, headers=people[who]) as response:
                        streams = (await response.json())["streams"] if response.status == 200 else []
                    assert [s["visibility"] for s in streams if s["name"] == "alice"] == (
                        ["followers"] if listed else []), (who, path)
        finally:
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()


async def _mirror_counts_only_signed(http: aiohttp.ClientSession, srv, master_url: str) -> None:
    """One client behind the cache (its address in X-Forwarded-For) opens a session with
    the playlists; a mirrored segment request without ``hs``/``pt`` makes it no viewer, the
    same request with them does."""
    headers = {"X-Forwarded-For": "10.9.9.9", "User-Agent": "mirror-probe"}
    async with http.get(master_url, headers=headers) as response:
        variant = urljoin(master_url, _uris(await response.text())[0])
    async with http.get(variant, headers=headers) as response:
        segment = urljoin(variant, [u for u in _uris(await response.text()) if "seg_" in u][-1])
    parts = urlsplit(segment)
    unsigned = "&".join(p for p in parts.query.split("&") if not p.startswith(("hs=", "pt=")))
    assert unsigned != parts.query, segment
    audience = srv.app[VIEWERS].audience("alice")
    before = audience.concurrent
    assert await _status(http, f"/hls-seen{parts.path}?{unsigned}", headers) == 204
    assert audience.concurrent == before
    assert await _status(http, f"/hls-seen{parts.path}?{parts.query}", headers) == 204
    assert audience.concurrent == before + 1


async def _has_thumbnail(http) -> bool:
    return await _status(http, "/api/live/alice/thumbnail") == 200
