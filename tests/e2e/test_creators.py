"""Creators end to end, with real RTMP pushes (FFmpeg): live access at publish time,
stream keys (rotation mid-stream, wrong keys, another creator's key), and the go-live
alerts (SSE, signed webhooks) and thumbnails of a real broadcast."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import av
import pytest

from mediasrv.community.alerts.webhooks import verify
from tests.accounts.support import accounts_server, bulk_users
from tests.accounts.test_discovery import wait_for
from tests.accounts.test_webhooks import SECRET, hook_settings, receiver
from tests.support.clients import ffmpeg_push, ffmpeg_push_args, run_process
from tests.support.server import StreamRecorder

pytestmark = pytest.mark.e2e


def _video_units(units) -> int:
    return sum(1 for u in units if u.kind.value == "video")


async def test_live_access_is_checked_at_publish(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with accounts_server(tmp_path) as api:  # live_access.min_followers: 1000 (the default)
        srv = api.srv
        recorder = StreamRecorder(srv.hub)
        alice_headers = await api.user("alice", "creator")
        bob_headers = await api.user("bob", "creator")
        alice_key, bob_key = await api.stream_key(alice_headers), await api.stream_key(bob_headers)
        fans = await asyncio.to_thread(bulk_users, api.store, "fan", 1000)
        alice = api.store.get_user_by_handle("alice")
        await asyncio.to_thread(api.store.add_followers, alice.id, [f.id for f in fans[:999]], time.time())

        # 999 followers: refused, and the publisher is told why.
        status, output = await ffmpeg_push(srv.rtmp_url(alice_key), seconds=1)
        assert status != 0
        assert "live access requires 1000 followers, you have 999" in output
        assert srv.hub.streams() == [] and srv.rtmp.stats.publish_refused == 1
        access = await (await api.http.get("/api/me/live-access", headers=alice_headers)).json()
        assert access["allowed"] is False and access["followers"] == 999

        # The 1000th follow (through the API) lets the next publish through.
        fan = await api.login(fans[999].handle)
        assert (await api.http.put("/api/me/following/alice", headers=fan)).status == 200
        status, output = await ffmpeg_push(srv.rtmp_url(alice_key), seconds=1)
        assert status == 0, output
        assert _video_units(await recorder.wait_ended("alice")) == 25

        # An admin revokes access: refused again, whatever the count.
        admin = await api.admin()
        await api.http.put("/api/users/alice/live-access", json={"access": "revoked"}, headers=admin)
        status, output = await ffmpeg_push(srv.rtmp_url(alice_key), seconds=1)
        assert status != 0 and "live access was revoked by an admin" in output

        # An admin grants access to a creator with no followers at all.
        status, output = await ffmpeg_push(srv.rtmp_url(bob_key), seconds=1)
        assert status != 0 and "you have 0" in output
        await api.http.put("/api/users/bob/live-access", json={"access": "granted"}, headers=admin)
        status, output = await ffmpeg_push(srv.rtmp_url(bob_key), seconds=1)
        assert status == 0, output
        await recorder.wait_ended("bob")
        assert srv.rtmp.stats.publish_refused == 3
    assert "live access requires 1000 followers, you have 999" in caplog.text
    for key in (alice_key, bob_key):
        assert key not in caplog.text


async def test_key_rotation_mid_stream_wrong_key_and_another_creators_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api:
        srv = api.srv
        recorder = StreamRecorder(srv.hub)
        alice = await api.user("alice", "creator")
        bob = await api.user("bob", "creator")
        old_key, bob_key = await api.stream_key(alice), await api.stream_key(bob)

        live = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url(old_key), seconds=4, realtime=True),
                                               timeout=40))
        await recorder.wait_started("alice")
        new_key = (await (await api.http.post("/api/me/stream-key", headers=alice)).json())["stream_key"]
        assert new_key != old_key

        # The old key stops working at once for new publishes...
        status, output = await ffmpeg_push(srv.rtmp_url(old_key), seconds=1)
        assert status != 0 and "unknown stream key" in output
        # ... a wrong key too ...
        status, output = await ffmpeg_push(srv.rtmp_url("sk_not-a-real-key-000000000000"), seconds=1)
        assert status != 0 and "unknown stream key" in output
        # ... and another creator's key publishes as that creator, never as alice.
        status, output = await ffmpeg_push(srv.rtmp_url(bob_key), seconds=1)
        assert status == 0, output
        assert _video_units(await recorder.wait_ended("bob")) == 25

        # The stream live on the old key was not cut, nor taken over.
        status, output = await asyncio.wait_for(live, 40)
        assert status == 0, output
        assert _video_units(await recorder.wait_ended("alice")) == 100
        assert srv.rtmp.stats.takeovers == 0

        # The new key publishes as alice.
        recorder.ended.pop("alice")
        recorder.units.pop("alice")
        status, output = await ffmpeg_push(srv.rtmp_url(new_key), seconds=1)
        assert status == 0, output
        assert _video_units(await recorder.wait_ended("alice")) == 25
        assert srv.rtmp.stats.publish_refused == 2
    for key in (old_key, new_key, bob_key, "sk_not-a-real-key-000000000000"):
        assert key not in caplog.text


async def _read_events(response, queue: asyncio.Queue) -> None:
    event = None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            await queue.put((event, json.loads(line[6:])))


async def test_a_real_broadcast_alerts_followers_calls_webhooks_and_has_thumbnails(tmp_path):
    async with receiver(fail_first=1) as hooks:
        async with accounts_server(tmp_path, *hook_settings(hooks.url), "thumbnails.interval=1") as api:
            srv = api.srv
            recorder = StreamRecorder(srv.hub)
            alice = await api.user("alice", "creator")
            await api.http.patch("/api/me/settings", headers=alice, json={"title": "Real push"})
            key = await api.stream_key(alice)
            fan = await api.user("fan")
            await api.http.put("/api/me/following/alice", headers=fan)
            feed = await api.http.get("/api/me/events", headers=fan)
            events: asyncio.Queue = asyncio.Queue()
            reader = asyncio.create_task(_read_events(feed, events))
            assert (await asyncio.wait_for(events.get(), 5))[0] == "ready"

            push = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url(key), seconds=3, realtime=True),
                                                   timeout=40))
            event, data = await asyncio.wait_for(events.get(), 15)
            assert event == "stream.started" and data["stream"] == "alice" and data["title"] == "Real push"

            # While live: listed with a thumbnail taken from the stream.
            async def thumbnail_listed():
                while True:
                    streams = (await (await api.http.get("/api/live")).json())["streams"]
                    if streams and streams[0]["thumbnail_url"]:
                        return streams[0]
                    await asyncio.sleep(0.1)
            item = await asyncio.wait_for(thumbnail_listed(), 15)
            assert item["name"] == "alice" and item["title"] == "Real push" and item["image_url"] == item["thumbnail_url"]
            image = await api.http.get(item["thumbnail_url"])
            with av.open(io.BytesIO(await image.read()), format="jpeg_pipe") as container:
                frame = next(container.decode(video=0))
            assert (frame.width, frame.height) == (320, 240)

            status, output = await asyncio.wait_for(push, 40)
            assert status == 0, output
            await recorder.wait_ended("alice")
            await wait_for(lambda: hooks.accepted("stream.started") and hooks.accepted("stream.ended"), timeout=15)
            reader.cancel()
            feed.close()

    for event in ("stream.started", "stream.ended"):
        attempts = hooks.attempts(event)
        assert [h["X-Mediasrv-Attempt"] for h, _, _ in attempts] == ["1", "2"]  # failed once, retried
        for headers, body, _ in attempts:
            assert verify(SECRET, headers["X-Mediasrv-Timestamp"], body, headers["X-Mediasrv-Signature"])
    assert hooks.accepted("stream.ended")[0]["data"]["duration_seconds"] > 2
