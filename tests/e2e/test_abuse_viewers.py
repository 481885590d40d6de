"""Viewer-count inflation (issue 18): playlist requests with made-up session tokens, and
many real sessions from one address, against a real server with a live FFmpeg push.

Found by probing main: 200 playlist requests with made-up tokens from one client took a
stream from 0 viewers to 200 and its discovery score from 1.0 to 246. Now a viewer is a
client that fetched media with an open session, tokens are the server's, and one address
counts for at most ``viewers.max_per_address`` viewers.
"""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import pytest

from mediasrv.httpkit.keys import MONITOR, VIEWERS
from tests.security.support import eventually
from tests.support.clients import start_ffmpeg_push
from tests.support.server import running_server
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e

ATTEMPTS = 200


async def _json(http: aiohttp.ClientSession, url: str):
    async with http.get(url) as response:
        assert response.status == 200, (url, response.status)
        return await response.json()


async def _listed(http: aiohttp.ClientSession, base: str, name: str) -> dict:
    body = await _json(http, f"{base}/api/live")
    return next(item for item in body["streams"] if item["name"] == name)


async def _two_ticks(srv, name: str) -> None:
    """Wait until the monitor has sampled ``name`` twice more (a full sweep after now)."""
    health = srv.app[MONITOR].streams[name]
    start = health.viewer_samples
    await eventually(lambda: health.viewer_samples >= start + 2, what="two monitor ticks")


async def _live_stream(srv, http, name: str):
    push = await start_ffmpeg_push(srv.rtmp_url(name), seconds=40)
    await eventually(lambda: _has_segment(http, srv.http_url, name), timeout=30, what="the first segment")
    return push


async def _has_segment(http, base: str, name: str) -> bool:
    async with http.get(f"{base}/api/streams/{name}") as response:
        if response.status != 200:
            return False
        body = await response.json()
        return bool(body["renditions"] and body["renditions"][0].get("segments"))


async def _stop(process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


def _first_segment(playlist: str) -> str:
    return next(line for line in playlist.splitlines() if line and not line.startswith("#"))


async def test_made_up_tokens_on_playlists_are_no_viewers(tmp_path):
    async with running_server(tmp_path) as srv, \
            aiohttp.ClientSession() as http:
        push = await _live_stream(srv, http, "pop")
        try:
            before = await _listed(http, srv.http_url, "pop")
            assert before["viewers"] == 0
            # One client, 200 playlist requests, each with a made-up token (and a user
            # agent of its own, the strongest form of the finding).
            for index in range(ATTEMPTS):
                token = secrets.token_urlsafe(12)
                async with http.get(f"{srv.http_url}/live/pop/source/index.m3u8?s={token}",
                                    headers={"User-Agent": f"bot-{index}"}) as response:
                    assert response.status == 200
                    await response.read()
            # Nor can it claim media fetches through the cache's mirror route: only a
            # trusted proxy may tell of them (none is configured here).
            async with http.get(f"{srv.http_url}/live/pop/source/index.m3u8") as response:
                segment = _first_segment(await response.text())
            for index in range(20):
                async with http.get(f"{srv.http_url}/hls-seen/live/pop/source/{segment}",
                                    headers={"User-Agent": f"bot-{index}"}) as response:
                    assert response.status == 404
            await _two_ticks(srv, "pop")
            audience = srv.app[VIEWERS].audience("pop")
            assert (audience.concurrent, audience.peak, audience.unique) == (0, 0, 0)
            after = await _listed(http, srv.http_url, "pop")
            assert after["viewers"] == 0 and after["score"] == before["score"], (before, after)
            stats = await _json(http, f"{srv.http_url}/api/streams/pop/stats")
            assert stats["viewers"] == 0 and stats["unique_viewers"] == 0
        finally:
            await _stop(push)


async def test_real_sessions_from_one_address_count_at_most_the_cap(tmp_path):
    async with running_server(tmp_path) as srv, \
            aiohttp.ClientSession() as http:
        push = await _live_stream(srv, http, "pop")
        try:
            cap = srv.config.viewers.max_per_address  # the default (8)
            base = f"{srv.http_url}/live/pop"

            async def player(agent: str, session: aiohttp.ClientSession = http) -> None:
                """Master playlist (a real token), media playlist, a segment."""
                headers = {"User-Agent": agent}
                async with session.get(f"{base}/index.m3u8", headers=headers) as response:
                    variant = _first_segment(await response.text())
                assert "s=" in variant
                async with session.get(f"{base}/{variant}", headers=headers) as response:
                    segment = _first_segment(await response.text())
                async with session.get(f"{base}/source/{segment}", headers=headers) as response:
                    assert response.status == 200
                    await response.read()

            for index in range(ATTEMPTS):
                await player(f"bot-{index}")
            audience = srv.app[VIEWERS].audience("pop")
            assert audience.sessions_total == ATTEMPTS  # every one was served and has its session
            assert audience.concurrent == cap and audience.unique == cap
            # Another address still counts.
            connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=connector) as other:
                await player("neighbour", other)
            assert audience.concurrent == cap + 1
            await _two_ticks(srv, "pop")
            listed = await _listed(http, srv.http_url, "pop")
            assert listed["viewers"] == cap + 1, listed
            stats = await _json(http, f"{srv.http_url}/api/streams/pop/stats")
            assert stats["viewers"] == cap + 1 and stats["peak_viewers"] == cap + 1
            assert stats["unique_viewers"] == cap + 1
        finally:
            await _stop(push)


async def test_a_real_player_counts_once(tmp_path):
    ffmpeg = require_tool("ffmpeg")
    async with running_server(tmp_path) as srv, \
            aiohttp.ClientSession() as http:
        push = await _live_stream(srv, http, "pop")
        player = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-i", f"{srv.http_url}/live/pop/index.m3u8", "-t", "20", "-f", "null", "-",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            stats = await eventually(lambda: _stats_if(http, srv.http_url, "pop", lambda s: s["viewers"] >= 1),
                                 timeout=30, what="the player counted")
            assert stats["viewers"] == 1 and stats["unique_viewers"] == 1, stats
            listed = await _listed(http, srv.http_url, "pop")
            assert listed["viewers"] == 1
        finally:
            await _stop(player)
            await _stop(push)


async def _stats_if(http, base: str, name: str, predicate):
    stats = await _json(http, f"{base}/api/streams/{name}/stats")
    return stats if predicate(stats) else None
