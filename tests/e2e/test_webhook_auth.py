"""auth.mode=webhook: a real HTTP receiver decides each publish."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from tests.support.clients import ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture
async def webhook():
    """A webhook receiver: key 'k-good-1' → name 'pretty', 'k-slow-3' never answers in time, else 403."""
    calls = []
    release = asyncio.Event()

    async def decide(request):
        body = await request.json()
        calls.append(body)
        if body["key"] == "k-good-1":
            return web.json_response({"name": "pretty"})
        if body["key"] == "k-slow-3":
            await release.wait()
        return web.Response(status=403)

    app = web.Application()
    app.router.add_post("/auth", decide)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/auth", calls
    release.set()
    await runner.cleanup()


async def test_webhook_allows_renames_and_refuses(tmp_path, webhook, caplog):
    caplog.set_level(logging.INFO)
    url, calls = webhook
    async with running_server(tmp_path, "auth.mode=webhook", f"auth.webhook.url={url}",
                              "auth.webhook.timeout=0.5") as srv:
        recorder = StreamRecorder(srv.hub)
        status, output = await ffmpeg_push(srv.rtmp_url("k-good-1"), seconds=1)
        assert status == 0, output
        assert await recorder.wait_ended("pretty")
        assert calls[0]["app"] == "live" and calls[0]["key"] == "k-good-1" and calls[0]["client"].startswith("127.0.0.1:")

        status, _ = await ffmpeg_push(srv.rtmp_url("k-bad-2"), seconds=1)
        assert status != 0
        status, _ = await ffmpeg_push(srv.rtmp_url("k-slow-3"), seconds=1)
        assert status != 0
        assert srv.rtmp.stats.publish_refused == 2
        assert srv.hub.streams() == []
    assert "refused" in caplog.text
    for key in ("k-good-1", "k-bad-2", "k-slow-3"):
        assert key not in caplog.text, f"a stream key reached the log: {key}"
