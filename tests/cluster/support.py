"""A real redis-server and mediasrv nodes sharing it, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from mediasrv.config import load_config
from mediasrv.httpkit.keys import RTMP_SERVER
from mediasrv.app.root import create_app
from mediasrv.httpkit.keys import CLUSTER
from tests.deploy.nginx_cache import free_port
from tests.support.server import RunningServer
from tests.support.tools import require_tool

#: Timings of most tests: a heartbeat often enough that counts are summed soon, and a TTL
#: that survives the event loop stalls of a loaded 2-core machine running both nodes and
#: hundreds of viewers in one process.
HEARTBEAT = 0.5
TTL = 10.0
#: Short timings, so a dead node leaves the directory within seconds (test_directory.py).
SHORT_HEARTBEAT = 0.3
SHORT_TTL = 2.0
PREFIX = "msvtest"


@dataclass
class RunningRedis:
    port: int
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> aioredis.Redis:
        return aioredis.from_url(self.url, decode_responses=True)


@contextlib.asynccontextmanager
async def running_redis(tmp_path: Path) -> AsyncIterator[RunningRedis]:
    """redis-server on a free loopback port, without persistence; stopped after."""
    server = require_tool("redis-server")
    port = free_port()
    directory = tmp_path / "redis"
    directory.mkdir(exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--protected-mode", "yes",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    redis = RunningRedis(port, process)
    client = redis.client()
    try:
        deadline = time.monotonic() + 10
        while True:  # redis-server signals readiness no other way: poll PING, bounded
            assert process.returncode is None, f"redis-server exited with {process.returncode}"
            try:
                if await client.ping():
                    break
            except (OSError, aioredis.ConnectionError):
                assert time.monotonic() < deadline, "redis-server does not answer"
                await asyncio.sleep(0.05)
        yield redis
    finally:
        await client.aclose()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


def node_settings(redis: RunningRedis, node: str, port: int, *, ingest: bool = True,
                  heartbeat: float = HEARTBEAT, ttl: float = TTL) -> list[str]:
    return [
        f"cluster.redis_url={redis.url}", f"cluster.node_id={node}",
        f"cluster.advertise_url=http://127.0.0.1:{port}", f"cluster.ingest={'true' if ingest else 'false'}",
        f"cluster.heartbeat={heartbeat}", f"cluster.directory_ttl={ttl}", f"cluster.key_prefix={PREFIX}",
    ]


@contextlib.asynccontextmanager
async def running_node(tmp_path: Path, redis: RunningRedis, node: str, *overrides: str, ingest: bool = True,
                       heartbeat: float = HEARTBEAT, ttl: float = TTL) -> AsyncIterator[RunningServer]:
    """A whole mediasrv (``create_app``) in this event loop, a node of the cluster."""
    port = free_port()  # known before the start: it is the node's advertised URL
    data = tmp_path / node
    config = load_config(None, [
        f"data_dir={data}", "rtmp.listen=127.0.0.1:0", f"http.listen=127.0.0.1:{port}", "transcode.enabled=false",
        "recording.enabled=false", *node_settings(redis, node, port, ingest=ingest, heartbeat=heartbeat, ttl=ttl),
        *overrides])
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        await asyncio.wait_for(app[CLUSTER].subscribed.wait(), 10)
        rtmp = app.get(RTMP_SERVER)
        yield RunningServer(app, config, port, rtmp.port if rtmp is not None else 0)
    finally:
        await runner.cleanup()


async def poll(check, *, timeout: float, interval: float = 0.05) -> float:
    """Await ``check()`` until true (state in Redis or another node has no event to wait
    on); return the seconds it took. Bounded by ``timeout``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started
