"""Fault: ``kill -9`` of ``mediasrv serve`` while a creator is live, then a restart on the
same ``data_dir``.

After the restart: accounts log in, follows and the stream key are as they were, the gift
ledger holds every acknowledged gift and balances; the recording cut short awaits a
decision with every complete segment, and nothing half-written is ever served — a
temporary file such as a write interrupted by the kill leaves (planted here, because
where the kill lands is luck) is deleted, every file the VOD lists is whole and decodes.

(A burst of gifts interrupted by kill -9 is ``tests/e2e/test_gifts_crash.py``; torn
manifest lines and renamed-but-unlisted segments are
``tests/recording/test_recorder.py::test_kill_mid_stream_recovers_every_complete_segment``.)
"""

from __future__ import annotations

import asyncio
import io
import signal
import time

import aiohttp
import av
import pytest

from mediasrv.recording import files as rf
from mediasrv.store import SqliteStore
from tests.accounts.support import ADMIN_PASSWORD, PASSWORD
from tests.faults.support import start_serve, stop
from tests.gifts.support import assert_balanced
from tests.support.clients import ffmpeg_push, start_ffmpeg_push

pytestmark = pytest.mark.e2e

SETTINGS = ("auth.mode=accounts", f"accounts.admin_password={ADMIN_PASSWORD}", "live_access.min_followers=0",
            "transcode.enabled=false", "hls.segment_duration=1")
GIFTS = 7
PRICE = 10  # a rose
CREDITED = 1000


async def login(http: aiohttp.ClientSession, handle: str, password: str = PASSWORD) -> dict:
    async with http.post("/api/login", json={"handle": handle, "password": password}) as response:
        assert response.status == 200, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def poll(check, timeout: float, interval: float = 0.2):
    """Poll another process's state (files, HTTP) until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


def recording_dirs(data) -> list:
    root = data / "recordings"
    return [p for p in root.iterdir() if p.is_dir()] if root.exists() else []


async def test_kill_9_while_live_then_restart_loses_nothing(tmp_path):
    data = tmp_path / "data"
    srv = await start_serve(data, *SETTINGS)
    publisher = None
    try:
        async with aiohttp.ClientSession(srv.http_url) as http:
            admin = await login(http, "admin", ADMIN_PASSWORD)
            for handle, role in (("alice", "creator"), ("bob", "viewer"), ("carol", "viewer")):
                async with http.post("/api/users", json={"handle": handle, "password": PASSWORD, "role": role}) as r:
                    assert r.status == 201, await r.text()
            alice, bob, carol = [await login(http, h) for h in ("alice", "bob", "carol")]
            for viewer in (bob, carol):
                async with http.put("/api/me/following/alice", headers=viewer) as r:
                    assert r.status == 200, await r.text()
            async with http.post("/api/users/bob/wallet/credits", headers=admin,
                                 json={"coins": CREDITED, "idempotency_key": "pay-1"}) as r:
                assert r.status == 201, await r.text()
            for index in range(GIFTS):
                async with http.post("/api/streams/alice/gifts", headers=bob,
                                     json={"gift_id": "rose", "request_id": f"g{index}"}) as r:
                    assert r.status == 201, await r.text()
            async with http.get("/api/me/stream-key", headers=alice) as r:
                key = (await r.json())["stream_key"]

            publisher = await start_ffmpeg_push(srv.rtmp_url(key), seconds=60)
            await poll(lambda: recording_dirs(data)
                       and len((rf.load_manifest(recording_dirs(data)[0]) or rf.Manifest({})).segments) >= 3, 40)

        srv.proc.send_signal(signal.SIGKILL)  # no shutdown, no flush
        assert await asyncio.wait_for(srv.proc.wait(), 10) == -signal.SIGKILL
    finally:
        if publisher is not None:
            await stop(publisher)
        await stop(srv.proc)

    (path,) = recording_dirs(data)
    before = rf.load_manifest(path)
    assert before.ended_at is None  # cut short: no end line
    # A write the kill interrupted would leave its temporary file: plant one.
    torn = path / ".seg_torn_99.m4s.tmp"
    torn.write_bytes(b"\x00\x00\x00\x18styp half a segment")

    again = await start_serve(data, *SETTINGS, log_name="serve2.log")
    try:
        async with aiohttp.ClientSession(again.http_url) as http:
            # Accounts, follows, the stream key.
            admin = await login(http, "admin", ADMIN_PASSWORD)
            alice, bob, carol = await login(http, "alice"), await login(http, "bob"), await login(http, "carol")
            async with http.get("/api/users/alice/followers") as r:
                followers = await r.json()
            assert followers["total"] == 2 and {u["handle"] for u in followers["users"]} == {"bob", "carol"}
            async with http.get("/api/me/stream-key", headers=alice) as r:
                assert (await r.json())["stream_key"] == key

            # The ledger: every acknowledged gift, once, and the books balance.
            async with http.get("/api/me/wallet", headers=bob) as r:
                assert (await r.json())["balance"] == CREDITED - GIFTS * PRICE
            async with http.get("/api/ledger", headers=admin) as r:
                assert r.status == 200
                ledger = await r.json()
            store = SqliteStore(data / "mediasrv.db")  # a reader beside the server (WAL)
            try:
                summary = store.ledger_summary()
            finally:
                store.close()
            assert_balanced(summary)
            assert summary.gifts == GIFTS and summary.to_json() == ledger

            # The recording: recovered with every complete segment; nothing torn served.
            async with http.get("/api/recordings?stream=alice", headers=alice) as r:
                assert r.status == 200, await r.text()
                (recording,) = (await r.json())["recordings"]
            assert recording["state"] == "pending_decision"
            assert recording["segments"] >= len(before.segments) >= 3
            assert not torn.exists()
            assert not [f for f in path.iterdir() if f.name.endswith(".tmp")]
            async with http.post(f"/api/recordings/{recording['id']}/save", headers=alice) as r:
                assert r.status == 200, await r.text()
            async with http.get(f"/vod/{recording['id']}/index.m3u8") as r:
                assert r.status == 200
                vod = await r.text()
            assert vod.rstrip().endswith("#EXT-X-ENDLIST")
            after = rf.load_manifest(path)
            blob = bytearray()
            for name in after.inits() + [s.uri for s in after.segments]:
                async with http.get(f"/vod/{recording['id']}/{name}") as r:
                    assert r.status == 200, name
                    body = await r.read()
                assert body == (path / name).read_bytes()
                blob += body
            for name in (torn.name, "seg_torn_99.m4s", "manifest.jsonl"):
                async with http.get(f"/vod/{recording['id']}/{name}") as r:
                    assert r.status in (400, 404), (name, r.status)
            frames = 0
            with av.open(io.BytesIO(bytes(blob)), format="mp4") as container:
                for _ in container.decode(video=0):
                    frames += 1
            assert frames == after.video_frames > 0

        # The stream key still publishes.
        status, output = await ffmpeg_push(again.rtmp_url(key), seconds=1)
        assert status == 0, output
        again.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.proc.wait(), 10) == 0
    finally:
        await stop(again.proc)
