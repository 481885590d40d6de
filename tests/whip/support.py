"""Helpers of the WHIP tests: a server taking WHIP, requests against it, waiting on it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import ifaddr

from mediasrv.httpkit.keys import WHIP_SERVER
from mediasrv.ingest.whip.server import WhipServer
from tests.support.server import RunningServer, running_server
from tests.support.tools import missing

KEY = "whip-secret-key"
NAME = "whipper"
KEYS_MODE = ("auth.mode=keys", f"auth.keys.{KEY}={NAME}")


def gatherable_addresses() -> list[str]:
    """The addresses aioice gathers host candidates on (its rule: every IPv4 address but
    127.0.0.1, every IPv6 address but ::1 without a scope)."""
    out = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if ip.ip != "127.0.0.1":
                    out.append(ip.ip)
            elif ip.ip[0] != "::1" and ip.ip[2] == 0:
                out.append(ip.ip[0])
    return out


def require_webrtc_address() -> None:
    """WebRTC needs an address besides 127.0.0.1 (aioice leaves it out): fail under CI,
    skip locally, saying how to add one."""
    if gatherable_addresses():
        return
    missing("this machine has no network address but 127.0.0.1, and aioice gathers no ICE candidate on it: "
            "WebRTC cannot connect (add one, e.g. `ip addr add 127.0.0.2/8 dev lo`)")


@contextlib.asynccontextmanager
async def whip_server(tmp_path, *overrides: str) -> AsyncIterator[RunningServer]:
    """The whole server (keys mode: ``KEY`` publishes ``NAME``) on ephemeral ports."""
    require_webrtc_address()
    async with running_server(tmp_path, *KEYS_MODE, *overrides) as srv:
        yield srv


def whip_of(srv: RunningServer) -> WhipServer:
    return srv.app[WHIP_SERVER]


def sdp_headers(key: str | None = KEY, content_type: str = "application/sdp", **extra: str) -> dict[str, str]:
    headers = {"Content-Type": content_type, **extra}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def post_offer(http: aiohttp.ClientSession, srv: RunningServer, body: str | bytes, **headers_args):
    """POST ``body`` to /whip: (status, headers, text)."""
    async with http.post(f"{srv.http_url}/whip", data=body, headers=sdp_headers(**headers_args)) as response:
        return response.status, response.headers, await response.text()


async def until(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll ``condition`` (state with no event to await) until true; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def until_async(condition: Callable[[], Awaitable[object]], *, timeout: float, what: str):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
