"""A creator's broadcast is recorded; only they (or an admin) decide; saving sends the
signed ``broadcast.saved`` webhook and the VOD plays."""

from __future__ import annotations

import asyncio

import pytest

from mediasrv.community.alerts.webhooks import verify
from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import wait_for
from tests.accounts.test_webhooks import SECRET, hook_settings, receiver
from tests.support.clients import ffmpeg_push, run_process
from tests.support.server import StreamRecorder
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e


async def test_only_the_creator_or_an_admin_decides_and_saving_notifies(tmp_path):
    ffmpeg = require_tool("ffmpeg")
    async with receiver() as hooks:
        async with accounts_server(tmp_path, *hook_settings(hooks.url), "recording.enabled=true") as api:
            recorder = StreamRecorder(api.srv.hub)
            alice = await api.user("alice", "creator")
            mallory = await api.user("mallory", "creator")
            await api.http.patch("/api/me/settings", headers=alice, json={"save_by_default": False})
            status, output = await ffmpeg_push(api.srv.rtmp_url(await api.stream_key(alice)), seconds=2)
            assert status == 0, output
            pushed = sum(1 for u in await recorder.wait_ended("alice") if u.kind.value == "video")

            async def pending():
                listing = await (await api.http.get("/api/recordings?stream=alice", headers=alice)).json()
                rows = [r for r in listing["recordings"] if r["state"] == "pending_decision"]
                return rows[0] if rows else None
            recording = None
            for _ in range(100):
                recording = await pending()
                if recording:
                    break
                await asyncio.sleep(0.1)
            assert recording, "the recording never became pending"
            rid = recording["id"]

            for headers in ({}, mallory):  # anonymous (not loopback-exempt in accounts mode), another creator
                response = await api.http.post(f"/api/recordings/{rid}/save", headers=headers)
                assert response.status == 403, await response.text()
            response = await api.http.post(f"/api/recordings/{rid}/save", headers=alice)
            assert response.status == 200, await response.text()

            await wait_for(lambda: hooks.accepted("broadcast.saved"), timeout=15)
            saved = hooks.accepted("broadcast.saved")[0]["data"]
            assert saved["id"] == rid and saved["stream"] == "alice"
            assert saved["vod_url"].endswith(f"/vod/{rid}/index.m3u8")
            for headers, body, _ in hooks.attempts("broadcast.saved"):
                assert verify(SECRET, headers["X-Mediasrv-Timestamp"], body, headers["X-Mediasrv-Signature"])

            status, output = await run_process(
                ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
                "-i", f"{api.srv.http_url}/vod/{rid}/index.m3u8", "-map", "0:v", "-f", "framecrc", "-", timeout=60)
            assert status == 0, output
            frames = sum(1 for line in output.splitlines() if line and not line.startswith("#"))
            assert frames == pushed


async def test_disk_full_tells_the_creator_and_the_stream_goes_on(tmp_path):
    """Issue 7, D7: "Disk-full while recording: the stream goes on, the recording is marked
    failed, the creator is told". ``recording.min_free_bytes`` above the free space of any
    disk makes the recorder's free-space check refuse the first segment, as a full disk
    does. The creator's alert feed (``GET /api/me/events``) gets ``recording.failed`` with
    the reason while the broadcast is still live; another user's feed gets nothing; the
    publisher never notices and live HLS has every frame pushed."""
    from tests.accounts.test_discovery import _events
    from tests.support.clients import ffmpeg_push_args
    from mediasrv.httpkit.keys import HLS_SERVICE

    async with accounts_server(tmp_path, "recording.enabled=true", f"recording.min_free_bytes={1 << 50}",
                               "live_access.min_followers=0") as api:
        hub_units = StreamRecorder(api.srv.hub)
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        queues, readers, responses = {}, [], []
        for name, headers in (("alice", alice), ("bob", bob)):
            response = await api.http.get("/api/me/events", headers=headers)
            assert response.status == 200
            responses.append(response)
            queues[name] = asyncio.Queue()
            readers.append(asyncio.create_task(_events(response, queues[name])))
            assert (await asyncio.wait_for(queues[name].get(), 10))[0] == "ready"
        try:
            push = asyncio.create_task(run_process(*ffmpeg_push_args(
                api.srv.rtmp_url(await api.stream_key(alice)), seconds=8, realtime=True), timeout=60))
            # The first segment is cut ~2 s in: the recorder refuses to write it.
            event, data = await asyncio.wait_for(queues["alice"].get(), 20)
            assert event == "recording.failed", (event, data)
            assert data["stream"] == "alice" and data["state"] == "failed"
            assert "disk almost full" in data["error"] and "min_free_bytes" in data["error"], data
            # The stream goes on: still live while its recording has failed ...
            assert not push.done() and api.srv.hub.get("alice") is not None
            live = await api.http.get("/live/alice/index.m3u8")
            assert live.status == 200
            # ... and to its end: the publisher never noticed, live HLS has every frame.
            status, output = await push
            assert status == 0, output
            units = await hub_units.wait_ended("alice")
            pushed = sum(1 for u in units if u.kind.value == "video")
            assert pushed == 8 * 25
            rendition = api.srv.app[HLS_SERVICE].rendition("alice", "source")
            assert rendition is not None and rendition.segmenter.stats.video_frames == pushed

            listing = await (await api.http.get("/api/recordings?stream=alice", headers=alice)).json()
            assert [(r["id"], r["state"]) for r in listing["recordings"]] == [(data["id"], "failed")]
            # Only the creator is told: bob's feed had nothing but its "ready".
            assert queues["bob"].empty()
            assert queues["alice"].empty() or (await queues["alice"].get())[0] != "recording.failed"
        finally:
            for task in readers:
                task.cancel()
            for response in responses:
                response.close()


async def _recording_in_state(api, headers: dict, state: str, known: set[str], timeout: float = 15.0) -> dict:
    """The creator's first recording in ``state`` not in ``known`` (polling the API)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        listing = await (await api.http.get("/api/recordings?stream=alice", headers=headers)).json()
        rows = [r for r in listing["recordings"] if r["state"] == state and r["id"] not in known]
        if rows:
            return rows[0]
        assert asyncio.get_running_loop().time() < deadline, f"no new {state} recording: {listing}"
        await asyncio.sleep(0.1)


async def test_saved_vods_are_listed_on_the_creators_profile(tmp_path):
    """Issue 7, D7: a saved broadcast is "listed on the creator's profile": ``GET
    /api/users/HANDLE`` has ``vods`` (id, title at go-live, duration, started_at, playback
    and download URLs that work); undecided and discarded broadcasts are not listed, and
    nobody else's profile lists them."""
    async with accounts_server(tmp_path, "recording.enabled=true", "live_access.min_followers=0") as api:
        alice = await api.user("alice", "creator")
        await api.user("bob", "creator")
        await api.http.patch("/api/me/settings", headers=alice, json={"save_by_default": False,
                                                                     "title": "Cooking <live> & more"})
        key = await api.stream_key(alice)
        profile = await (await api.http.get("/api/users/alice")).json()
        assert profile["vods"] == []

        status, output = await ffmpeg_push(api.srv.rtmp_url(key), seconds=3)
        assert status == 0, output
        first = await _recording_in_state(api, alice, "pending_decision", set())
        assert first["title"] == "Cooking <live> & more"
        assert (await (await api.http.get("/api/users/alice")).json())["vods"] == []  # undecided: not yet

        # A second broadcast under another title, discarded.
        await api.http.patch("/api/me/settings", headers=alice, json={"title": "Outtakes"})
        status, output = await ffmpeg_push(api.srv.rtmp_url(key), seconds=2)
        assert status == 0, output
        second = await _recording_in_state(api, alice, "pending_decision", {first["id"]})
        assert second["title"] == "Outtakes"
        response = await api.http.post(f"/api/recordings/{second['id']}/discard", headers=alice)
        assert response.status == 200, await response.text()
        response = await api.http.post(f"/api/recordings/{first['id']}/save", headers=alice)
        assert response.status == 200, await response.text()
        saved = await response.json()

        profile = await (await api.http.get("/api/users/alice")).json()
        assert [v["id"] for v in profile["vods"]] == [first["id"]]
        vod = profile["vods"][0]
        assert set(vod) == {"id", "title", "duration", "started_at", "ended_at", "playback_url", "download_url"}
        assert vod["title"] == "Cooking <live> & more"  # the title it went live with, as plain text
        assert vod["duration"] == round(saved["duration"], 3) and 2.5 <= vod["duration"] <= 3.5
        assert vod["started_at"] == saved["started_at"] and vod["ended_at"] == saved["ended_at"]
        assert vod["playback_url"].endswith(f"/vod/{first['id']}/index.m3u8")
        assert vod["download_url"].endswith(f"/vod/{first['id']}/download.mp4")
        playlist = await api.http.get(f"/vod/{first['id']}/index.m3u8")
        assert playlist.status == 200 and "#EXT-X-PLAYLIST-TYPE:VOD" in await playlist.text()
        # The same list on the creator's own /api/me; not on anyone else's profile.
        me = await (await api.http.get("/api/me", headers=alice)).json()
        assert me["vods"] == profile["vods"]
        assert (await (await api.http.get("/api/users/bob")).json())["vods"] == []
        # The OpenAPI description has it.
        doc = await (await api.http.get("/api/openapi.json")).json()
        schemas = doc["components"]["schemas"]
        assert "vods" in schemas["Profile"]["properties"]
        assert set(schemas["Vod"]["properties"]) == set(vod)
