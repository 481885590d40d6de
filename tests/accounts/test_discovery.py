"""Discovery (/api/live, ranking, the following feed), thumbnails and the per-user SSE
alerts, with streams published straight into the hub."""

from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp
import av
import pytest

from mediasrv.community.discovery.routes import FOLLOW_BOOST, score
from mediasrv.httpkit.keys import THUMBNAILS
from mediasrv.httpkit.keys import VIEWERS
from mediasrv.media.types import TrackKind
from tests.accounts.support import NO_RECORDING, accounts_server, bulk_users
from tests.hls.conftest import Publisher, encode
from tests.support.server import running_server


def go_live(srv, name: str, *, seconds: float = 1.0, width: int = 320, height: int = 240):
    """Publish ``name`` in the hub and push ``seconds`` of H.264+AAC; return the publication."""
    publication = srv.hub.publish(name, Publisher())
    for unit in encode(seconds=seconds, width=width, height=height).units:
        publication.push(unit)
    return publication


def watch(srv, name: str, viewers: int) -> None:
    tracker = srv.app[VIEWERS]
    for index in range(viewers):
        # A player: its master playlist (a server-issued token), then media (issue 18:
        # a playlist alone does not make a viewer).
        now = time.time()
        tracker.touch(name, tracker.new_token(), client=f"client-{index}", now=now)
        tracker.media(name, client=f"client-{index}", now=now)


async def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
    return value


def test_score_formula():
    assert score(0, 0, 0, False) == 1.0
    assert score(10, 4, 99, False) == pytest.approx(1 + 10 + 2 + 2)
    assert score(10, 4, 99, True) == pytest.approx(15 * FOLLOW_BOOST)
    # A followed creator with few viewers can pass a bigger one.
    assert score(2, 0, 0, True) > score(5, 0, 10, False)


async def test_ranking_with_follow_boost_and_the_following_feed(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api:
        srv = api.srv
        for handle in ("alice", "bob", "carol"):
            await api.register(handle, "creator")
        viewer = await api.user("vic")
        alice = api.store.get_user_by_handle("alice")
        api.store.add_followers(alice.id, [u.id for u in bulk_users(api.store, "fan", 10)], time.time())
        await api.http.put("/api/me/following/bob", headers=viewer)
        alice_headers = await api.login("alice")
        await api.http.patch("/api/me/settings", headers=alice_headers, json={"title": "Alice plays"})
        pubs = [go_live(srv, name) for name in ("carol", "bob", "alice")]
        watch(srv, "alice", 5)
        watch(srv, "bob", 2)

        anonymous = (await (await api.http.get("/api/live")).json())["streams"]
        assert [s["name"] for s in anonymous] == ["alice", "bob", "carol"]
        first = anonymous[0]
        assert first["title"] == "Alice plays" and first["viewers"] == 5 and first["followed"] is False
        assert first["creator"]["handle"] == "alice" and first["creator"]["followers"] == 10
        assert first["playback_url"].endswith("/live/alice/index.m3u8")
        assert first["started_at"].endswith("Z")
        # The monitor's average so far lies between 0 and the viewers now.
        assert score(5, 0, 10, False) <= first["score"] <= score(5, 5, 10, False)
        assert anonymous[2]["title"] == "carol"  # no title set: the display name

        mine = (await (await api.http.get("/api/live", headers=viewer)).json())["streams"]
        assert [s["name"] for s in mine] == ["bob", "alice", "carol"]
        assert mine[0]["followed"] is True
        assert score(2, 0, 1, True) <= mine[0]["score"] <= score(2, 2, 1, True)

        feed = (await (await api.http.get("/api/live/following", headers=viewer)).json())["streams"]
        assert [s["name"] for s in feed] == ["bob"]
        await api.error(await api.http.get("/api/live/following"), 401)
        await api.error(await api.http.get("/api/live?limit=9999"), 400)
        assert len((await (await api.http.get("/api/live?limit=1")).json())["streams"]) == 1
        # Renditions of a stream are not listed as broadcasts.
        srv.hub.publish("alice/720p", Publisher())
        names = [s["name"] for s in (await (await api.http.get("/api/live")).json())["streams"]]
        assert "alice/720p" not in names
        # Settings change while live: the next listing shows it.
        await api.http.patch("/api/me/settings", headers=alice_headers, json={"title": "New title"})
        listing = (await (await api.http.get("/api/live")).json())["streams"]
        assert listing[0]["title"] == "New title"
        for pub in pubs:
            pub.detach(clean=True)
        assert (await (await api.http.get("/api/live")).json())["streams"] == []


async def test_live_listing_in_open_mode(tmp_path):
    async with running_server(tmp_path, *NO_RECORDING) as srv:
        go_live(srv, "anyname")
        async with aiohttp.ClientSession(srv.http_url) as http:
            streams = (await (await http.get("/api/live")).json())["streams"]
        assert [(s["name"], s["creator"], s["title"]) for s in streams] == [("anyname", None, "anyname")]


async def test_the_listing_gives_each_live_s_picture_size_and_orientation(tmp_path):
    """Issue 17, item 3: pages shape a portrait live's player and card before its video
    loads. A phone held upright is portrait; a stream with no video yet has no size."""
    async with running_server(tmp_path, *NO_RECORDING) as srv:
        go_live(srv, "upright", width=144, height=256)
        go_live(srv, "wide", width=320, height=180)
        go_live(srv, "square", width=240, height=240)
        srv.hub.publish("starting", Publisher())  # connected, nothing sent yet
        async with aiohttp.ClientSession(srv.http_url) as http:
            streams = (await (await http.get("/api/live")).json())["streams"]
            status = await (await http.get("/api/live/upright/status")).json()
        pictures = {s["name"]: (s["width"], s["height"], s["orientation"]) for s in streams}
        assert pictures == {"upright": (144, 256, "portrait"), "wide": (320, 180, "landscape"),
                            "square": (240, 240, "square"), "starting": (None, None, None)}
        assert (status["width"], status["height"], status["orientation"]) == (144, 256, "portrait")


async def test_thumbnails_are_taken_served_and_stand_in_for_the_cover(tmp_path):
    async with accounts_server(tmp_path, "thumbnails.interval=1", "live_access.min_followers=0") as api:
        alice = await api.user("alice", "creator")
        service = api.srv.app[THUMBNAILS]
        publication = go_live(api.srv, "alice", seconds=1)
        thumb = await wait_for(lambda: service.get("alice"))
        assert thumb.number == 1 and (thumb.width, thumb.height) == (320, 240)
        response = await api.http.get("/api/live/alice/thumbnail")
        assert response.status == 200 and response.content_type == "image/jpeg"
        with av.open(io.BytesIO(await response.read()), format="jpeg_pipe") as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)
        etag = response.headers["ETag"]
        assert (await api.http.get("/api/live/alice/thumbnail", headers={"If-None-Match": etag})).status == 304

        item = (await (await api.http.get("/api/live")).json())["streams"][0]
        assert item["cover_url"] is None and item["image_url"] == item["thumbnail_url"]
        fallback = await api.http.get("/api/users/alice/cover")
        assert fallback.status == 200 and await fallback.read() == thumb.jpeg

        # At most one per interval: more keyframes right away make no new thumbnail.
        keyframes = [u for u in encode(seconds=1).units if u.kind is TrackKind.VIDEO and u.keyframe]
        for unit in keyframes * 3:
            publication.push(unit.__class__(unit.track, unit.dts + 2000, unit.pts + 2000, True, unit.data))
        await asyncio.sleep(0.3)
        assert service.get("alice").number == 1
        await asyncio.sleep(0.8)
        publication.push(keyframes[0].__class__(keyframes[0].track, 5000, 5000, True, keyframes[0].data))
        await wait_for(lambda: service.get("alice").number == 2)

        # A cover, once uploaded, wins over the thumbnail.
        from tests.accounts.test_cover import encode_image

        await api.http.put("/api/me/cover", data=encode_image("png", "rgb24"), headers=alice)
        item = (await (await api.http.get("/api/live")).json())["streams"][0]
        assert item["image_url"] == item["cover_url"] != item["thumbnail_url"]

        publication.detach(clean=True)
        assert service.get("alice") is None
        await api.error(await api.http.get("/api/live/alice/thumbnail"), 404)
        await api.error(await api.http.get("/api/live/bad..name%20/thumbnail"), 400)


async def test_thumbnails_are_refreshed_only_while_someone_looks(tmp_path):
    """The first thumbnail is always taken; later ones only while ``get`` (the listings,
    the thumbnail URL) asked for that stream within ``wanted_for`` seconds."""
    async with running_server(tmp_path, *NO_RECORDING, "thumbnails.interval=1") as srv:
        service = srv.app[THUMBNAILS]
        now = [1000.0]
        service.clock = lambda: now[0]
        publication = go_live(srv, "quiet", seconds=1)
        first = await wait_for(lambda: service.latest.get("quiet"))  # not get(): nobody looks
        stream = srv.hub.get("quiet")
        (reader,) = [r for r in stream.readers if r.name == "thumbnails"]
        keyframe = next(u for u in encode(seconds=1).units if u.kind is TrackKind.VIDEO and u.keyframe)

        async def keyframe_at(dts: int) -> bool:
            """Push a keyframe an interval later; True if it started a thumbnail."""
            before = service.latest["quiet"]
            now[0] += 10
            publication.push(keyframe.__class__(keyframe.track, dts, dts, True, keyframe.data))
            # The reader's task takes the unit and decides in the same step.
            await wait_for(lambda: reader.queued == 0)
            return "quiet" in service._busy or service.latest["quiet"] is not before

        assert first.number == 1 and not await keyframe_at(5000)
        assert service.get("quiet") is first  # someone looks: the next keyframe refreshes it
        assert await keyframe_at(6000)
        assert (await wait_for(lambda: service.latest["quiet"] is not first and service.latest["quiet"])).number == 2
        now[0] += service.wanted_for  # nobody looked since
        assert not await keyframe_at(7000)
        assert service.get("nosuchstream") is None and "nosuchstream" not in service._wanted_at


async def _events(response: aiohttp.ClientResponse, queue: asyncio.Queue) -> None:
    event = None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            await queue.put((event, json.loads(line[6:])))


async def test_sse_alert_reaches_followers_only(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api:
        alice_headers = await api.user("alice", "creator")
        await api.http.patch("/api/me/settings", headers=alice_headers, json={"title": "Hello fans"})
        fan = await api.user("fan")
        other = await api.user("other")
        await api.http.put("/api/me/following/alice", headers=fan)
        queues = {}
        tasks = []
        responses = []
        for name, headers in (("fan", fan), ("other", other)):
            response = await api.http.get("/api/me/events", headers=headers)
            assert response.status == 200 and response.content_type == "text/event-stream"
            queues[name] = asyncio.Queue()
            responses.append(response)
            tasks.append(asyncio.create_task(_events(response, queues[name])))
        for name in queues:
            event, data = await asyncio.wait_for(queues[name].get(), 5)
            assert (event, data) == ("ready", {"handle": name})
        # EventSource style: the token in the query.
        token = fan["Authorization"].split()[1]
        query = await api.http.get(f"/api/me/events?access_token={token}")
        assert query.status == 200
        query.close()
        await api.error(await api.http.get("/api/me/events"), 401)

        publication = go_live(api.srv, "alice")
        event, data = await asyncio.wait_for(queues["fan"].get(), 5)
        assert event == "stream.started"
        assert data["stream"] == "alice" and data["title"] == "Hello fans"
        assert data["creator"] == {"handle": "alice", "display_name": "alice"}
        assert data["playback_url"].endswith("/live/alice/index.m3u8")
        await asyncio.sleep(0.3)
        assert queues["other"].empty()
        publication.detach(clean=True)
        for task in tasks:
            task.cancel()
        for response in responses:
            response.close()


async def test_revoking_live_access_takes_a_live_creator_off_the_air(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api:
        await api.register("alice", "creator")
        publisher = Publisher()
        publication = api.srv.hub.publish("alice", publisher)
        response = await api.http.put("/api/users/alice/live-access", json={"access": "revoked"},
                                      headers=await api.admin())
        body = await response.json()
        assert body["allowed"] is False and body["stopped_live_stream"] is True
        assert publisher.kicked and api.srv.hub.get("alice") is None and not publication.active


async def test_channels_list_creators_most_followed_first(tmp_path):
    """Issue 16, item 6: discovery has channels to show when nobody is live."""
    async with accounts_server(tmp_path) as api:
        assert (await (await api.http.get("/api/channels")).json()) == {"channels": []}
        alice = await api.user("alice", "creator")
        await api.user("bob", "creator")
        viewer = await api.user("vera")
        await api.http.patch("/api/me/settings", headers=alice, json={"title": "Knitting <live>"})
        assert (await api.http.put("/api/me/following/bob", headers=viewer)).status == 200
        response = await api.http.get("/api/channels")
        assert response.status == 200
        channels = (await response.json())["channels"]
        assert [c["handle"] for c in channels] == ["bob", "alice"]  # viewers and the admin are no channels
        assert channels[0]["followers"] == 1 and channels[1]["title"] == "Knitting <live>"
        assert all(c["live"] is False and c["cover_url"] is None for c in channels)
        assert [c["handle"] for c in (await (await api.http.get("/api/channels?limit=1")).json())["channels"]] == ["bob"]
        await api.error(await api.http.get("/api/channels?limit=0"), 400)
