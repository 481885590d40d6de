"""The stream directory in Redis: a node that dies (SIGKILL) has its streams leave it
within ``cluster.directory_ttl``, and the other nodes stop listing and serving them; a node
that stops cleanly removes its entries at once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from mediasrv.httpkit.keys import CLUSTER
from tests.cluster.support import PREFIX, node_settings, poll, running_node, running_redis
from tests.cluster.support import SHORT_HEARTBEAT as HEARTBEAT, SHORT_TTL as TTL
from tests.deploy.nginx_cache import free_port
from tests.support.clients import start_ffmpeg_push
from tests.support.server import StreamRecorder

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


async def _stop(process) -> None:
    if process is not None and process.returncode is None:
        process.kill()
        await process.wait()


async def _listed(session: aiohttp.ClientSession, base: str) -> set[str]:
    async with session.get(f"{base}/api/live") as response:
        assert response.status == 200
        return {item["name"] for item in (await response.json())["streams"]}


async def _serve_process(tmp_path: Path, redis, node: str) -> tuple[asyncio.subprocess.Process, int]:
    """``mediasrv serve`` as its own process (so it can be killed for real); returns it
    and its RTMP port once its banner is out."""
    port = free_port()
    args = [sys.executable, "-m", "mediasrv.cli", "serve", "--set", f"data_dir={tmp_path / node}",
            "--set", "rtmp.listen=127.0.0.1:0", "--set", f"http.listen=127.0.0.1:{port}",
            "--set", "transcode.enabled=false", "--set", "recording.enabled=false"]
    for setting in node_settings(redis, node, port, heartbeat=HEARTBEAT, ttl=TTL):
        args += ["--set", setting]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    banner = ""
    while "API:" not in banner:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "the node exited before printing its banner"
        banner += line.decode()
    rtmp = re.search(r"Server:\s+rtmp://127\.0\.0\.1:(\d+)/live", banner)
    assert rtmp, banner
    return proc, int(rtmp.group(1))


async def test_a_killed_node_leaves_the_directory_within_the_ttl(tmp_path):
    async with running_redis(tmp_path) as redis, \
            running_node(tmp_path, redis, "b", ingest=False, heartbeat=HEARTBEAT, ttl=TTL) as b, \
            aiohttp.ClientSession() as session:
        client = redis.client()
        node_c, rtmp_port = await _serve_process(tmp_path, redis, "c")
        publisher = None
        try:
            publisher = await start_ffmpeg_push(f"rtmp://127.0.0.1:{rtmp_port}/live/doomed", seconds=60)
            key = f"{PREFIX}:stream:doomed"
            await poll(lambda: client.exists(key), timeout=20)
            await poll(lambda: _contains(_listed(session, b.http_url), "doomed"), timeout=5)
            assert await client.exists(f"{PREFIX}:node:c")

            # Hard kill: no cleanup runs, the keys stay until they expire.
            node_c.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await node_c.wait()
            await poll(lambda: _gone(client, key), timeout=TTL + 2, interval=0.05)
            gone_after = time.monotonic() - killed
            assert gone_after <= TTL + 1.0, gone_after  # refreshed at most TTL before the kill
            assert not await client.exists(f"{PREFIX}:node:c")
            # B drops it at its next heartbeat: no longer listed, no longer served.
            await poll(lambda: _not(_contains(_listed(session, b.http_url), "doomed")), timeout=HEARTBEAT * 3 + 1)
            async with session.get(f"{b.http_url}/live/doomed/index.m3u8") as response:
                assert response.status == 404
            # Nothing else broke: B answers and keeps its heartbeat.
            beats = b.app[CLUSTER].heartbeats
            await poll(lambda: _true(b.app[CLUSTER].heartbeats > beats), timeout=HEARTBEAT * 5)
            async with session.get(f"{b.http_url}/healthz") as response:
                assert response.status == 200
        finally:
            await _stop(publisher)
            await _stop(node_c)
            await client.aclose()


async def test_a_node_that_stops_cleanly_removes_its_streams_at_once(tmp_path):
    async with running_redis(tmp_path) as redis:
        client = redis.client()
        publisher = None
        try:
            async with running_node(tmp_path, redis, "a") as a:
                recorder = StreamRecorder(a.hub)
                publisher = await start_ffmpeg_push(a.rtmp_url("brief"), seconds=60)
                await recorder.wait_started("brief")
                # Announced at once (a directory event), not only at the next heartbeat.
                await poll(lambda: client.exists(f"{PREFIX}:stream:brief"), timeout=2)
            # The node stopped (its streams ended): its keys are gone without waiting the TTL.
            assert not await client.exists(f"{PREFIX}:stream:brief")
            assert not await client.exists(f"{PREFIX}:node:a")
        finally:
            await _stop(publisher)
            await client.aclose()


async def _contains(listing, name: str) -> bool:
    return name in await listing


async def _not(awaitable) -> bool:
    return not await awaitable


async def _gone(client, key: str) -> bool:
    return not await client.exists(key)


async def _true(value: bool) -> bool:
    return value
