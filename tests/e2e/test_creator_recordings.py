"""A creator's broadcast is recorded; only they (or an admin) decide; saving sends the
signed ``broadcast.saved`` webhook and the VOD plays."""

from __future__ import annotations

import asyncio

import pytest

from mediasrv.server.webhooks import verify
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
