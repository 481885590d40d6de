"""Run the whole server (``create_app``) inside the test's event loop on ephemeral ports."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web

from mediasrv.config import Config, load_config
from mediasrv.httpkit import send_timeout
from mediasrv.tls import http_context
from mediasrv.httpkit.keys import HUB, RTMP_SERVER
from mediasrv.app.root import create_app
from mediasrv.hub import Hub, StreamEnded, StreamStarted
from mediasrv.media.types import MediaUnit
from mediasrv.ingest.rtmp_server import RtmpServer


@dataclass
class RunningServer:
    app: web.Application
    config: Config
    http_port: int
    rtmp_port: int
    #: The aiohttp runner (its ``server`` knows every open HTTP connection).
    runner: web.AppRunner | None = None

    @property
    def hub(self) -> Hub:
        return self.app[HUB]

    @property
    def rtmp(self) -> RtmpServer:
        return self.app[RTMP_SERVER]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/{self.config.rtmp.app}/{key}"


#: Every test client is 127.0.0.1 and registers its users a second after they follow:
#: the registration limits and the followers' minimum age (issue 18) are lifted, and the
#: tests of those limits set them (later overrides win).
TEST_ACCOUNT_LIMITS = ("accounts.registrations_per_address=100000", "accounts.registrations_per_minute=100000",
                       "accounts.follower_min_age=0",
                       # and one address may hold any number of RTMP connections and
                       # handshakes (a test plays from eight viewers at once; the tests of
                       # the per-address caps set theirs)
                       "rtmp.max_connections_per_address=1000", "rtmp.max_handshakes_per_address=1000")


@contextlib.asynccontextmanager
async def running_server(tmp_path, *overrides: str, **clocks) -> AsyncIterator[RunningServer]:
    """Start the server with ``--set`` style overrides; ports are ephemeral.

    Transcoding is off unless the overrides turn it on (``transcode.enabled=true``):
    most tests are about other things and the 2-core machine is shared. The accounts'
    registration limits are lifted (``TEST_ACCOUNT_LIMITS``). ``clocks``
    (``clock=``, ``monotonic=``) go to ``create_app``: a test drives time with them."""
    config = load_config(None, [f"data_dir={tmp_path}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0",
                                "transcode.enabled=false", *TEST_ACCOUNT_LIMITS, *overrides])
    async with serving(config, **clocks) as server:
        yield server


@contextlib.asynccontextmanager
async def serving(config: Config, **clocks) -> AsyncIterator[RunningServer]:
    """Run ``create_app(config, **clocks)`` on an ephemeral HTTP port (HTTPS when the
    config has a certificate) until the block ends."""
    app = create_app(config, **clocks)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    # The listener mediasrv.cli starts.
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=http_context(config))
    await site.start()
    http_port = runner.addresses[0][1]
    sweeper = send_timeout.watch(runner, config.http.send_timeout)  # as mediasrv.cli does
    try:
        yield RunningServer(app, config, http_port, app[RTMP_SERVER].port, runner)
    finally:
        await sweeper.stop()
        await runner.cleanup()


class StreamRecorder:
    """Subscribes to every stream that starts and keeps every unit it publishes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.units: dict[str, list[MediaUnit]] = {}
        self.started: dict[str, asyncio.Event] = {}
        self.ended: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task] = []
        hub.add_listener(self._on_event)

    def _event(self, table: dict, name: str) -> asyncio.Event:
        return table.setdefault(name, asyncio.Event())

    def _on_event(self, event) -> None:
        name = event.stream.name
        if isinstance(event, StreamStarted):
            reader = event.stream.subscribe(max_units=1_000_000, name="test-recorder")
            units = self.units.setdefault(name, [])
            self._event(self.started, name).set()
            self._tasks.append(asyncio.get_running_loop().create_task(self._drain(reader, units)))
        elif isinstance(event, StreamEnded):
            pass

    async def _drain(self, reader, units: list) -> None:
        while True:
            unit = await reader.read()
            if unit is None:
                break
            units.append(unit)
        self._event(self.ended, reader.stream.name).set()

    async def wait_started(self, name: str, timeout: float = 20) -> None:
        await asyncio.wait_for(self._event(self.started, name).wait(), timeout)

    async def wait_ended(self, name: str, timeout: float = 30) -> list[MediaUnit]:
        await asyncio.wait_for(self._event(self.ended, name).wait(), timeout)
        return self.units.get(name, [])
