"""deploy/nginx-cache.conf with real nginx in front of a live mediasrv: FFmpeg and hls.js
play through it, segments and parts come from its cache, playlists pass through to
mediasrv, and mediasrv still counts every viewer (by session token and, through
``http.trusted_proxies``, by the viewer's own address)."""

from __future__ import annotations

import asyncio
import re
import statistics
import time

import aiohttp
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.httpkit.keys import HTTP_STATS, VIEWERS
from tests.deploy.nginx_cache import running_cache
from tests.support.clients import start_ffmpeg_push
from tests.hls.conftest import until
from tests.hls.ll_rules import check_ll_playlist, last_part_position
from tests.support.clients import run_process
from tests.support.server import StreamRecorder, running_server
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e

#: How many viewers the coalescing test simulates, each from its own 127.0.0.x address.
VIEWER_COUNT = 200
#: Hinted parts each simulated viewer follows.
PARTS_PER_VIEWER = 6


async def _stop(process) -> None:
    if process is not None and process.returncode is None:
        process.kill()
        await process.wait()


def origin_requests(srv, kind: str) -> int:
    """Requests of ``kind`` (playlist, part, segment, init, master) mediasrv answered."""
    return srv.app[HTTP_STATS].requests.get(kind, 0)


async def test_ffmpeg_plays_through_the_cache_and_segments_are_cache_hits(tmp_path):
    ffmpeg = require_tool("ffmpeg")
    async with running_server(tmp_path / "srv", "http.trusted_proxies=127.0.0.1/32") as srv, \
            running_cache(tmp_path, srv.http_port) as cache:
        recorder = StreamRecorder(srv.hub)
        publisher = await start_ffmpeg_push(srv.rtmp_url("cached"), seconds=30)
        try:
            await recorder.wait_started("cached")
            await until(srv.app[HLS_SERVICE], "cached", lambda s: len(s.segments) >= 2, timeout=20)
            segments_before = origin_requests(srv, "segment")
            playlists_before = origin_requests(srv, "playlist")
            # FFmpeg plays 3 s of the live stream through nginx (master → media → init,
            # segments), decoding every frame.
            status, output = await run_process(
                ffmpeg, "-hide_banner", "-nostdin", "-i", f"{cache.url}/live/cached/index.m3u8",
                "-t", "3", "-map", "0:v", "-f", "null", "-", timeout=60)
            assert status == 0, output[-2000:]
            frames = [int(n) for n in re.findall(r"frame=\s*(\d+)", output)]
            assert frames and frames[-1] >= 50, output[-2000:]  # 3 s at 25 fps
            assert origin_requests(srv, "playlist") > playlists_before  # passed through
            fetched = origin_requests(srv, "segment") - segments_before
            assert fetched >= 1

            async with aiohttp.ClientSession() as session:
                # A second player asking for the same segments: answered by nginx alone.
                async with session.get(f"{cache.url}/live/cached/source/index.m3u8") as response:
                    assert response.status == 200
                    assert response.headers["X-Cache-Status"] == "PASS"
                    pl = check_ll_playlist(await response.text(), live=True)
                segment = pl.segments[-1].uri
                statuses = []
                for _ in range(3):
                    async with session.get(f"{cache.url}/live/cached/source/{segment}") as response:
                        assert response.status == 200
                        assert "immutable" in response.headers["Cache-Control"]
                        statuses.append(response.headers["X-Cache-Status"])
                        body = await response.read()
                assert statuses[1:] == ["HIT", "HIT"]
                async with session.get(f"{srv.http_url}/live/cached/source/{segment}") as response:
                    assert body == await response.read()
                # A Range request is cut from the cached file.
                async with session.get(f"{cache.url}/live/cached/source/{segment}",
                                       headers={"Range": "bytes=10-19"}) as response:
                    assert response.status == 206 and await response.read() == body[10:20]
                    assert response.headers["X-Cache-Status"] == "HIT"
                # Errors are not cached: a 404 stays a 404 from mediasrv each time.
                missing_before = srv.app[HTTP_STATS].errors.get(("segment", "4xx"), 0)
                for _ in range(2):
                    async with session.get(f"{cache.url}/live/cached/source/seg_zzzzzzzz_999999.m4s") as response:
                        assert response.status == 404
                assert srv.app[HTTP_STATS].errors.get(("segment", "4xx"), 0) == missing_before + 2
                # The API and the bad-request answers pass unchanged.
                async with session.get(f"{cache.url}/live/cached/source/index.m3u8?_HLS_part=1") as response:
                    assert response.status == 400
                async with session.get(f"{cache.url}/api/streams/cached") as response:
                    assert response.status == 200 and (await response.json())["name"] == "cached"
        finally:
            await _stop(publisher)


async def test_hlsjs_plays_through_the_cache(tmp_path):
    from tests.support.browser import chromium, open_player, wait_playing

    async with running_server(tmp_path / "srv", "http.trusted_proxies=127.0.0.1/32") as srv, \
            running_cache(tmp_path, srv.http_port) as cache:
        recorder = StreamRecorder(srv.hub)
        publisher = await start_ffmpeg_push(srv.rtmp_url("webcached"), seconds=40)
        try:
            await recorder.wait_started("webcached")
            await until(srv.app[HLS_SERVICE], "webcached", lambda s: len(s.segments) >= 1, timeout=20)
            async with chromium() as browser:
                player = await open_player(browser, f"{cache.url}/live/webcached/index.m3u8")
                await wait_playing(player, advance=2.0)
                assert not player.bad_responses(), player.bad_responses()
                assert player.requested(".m4s")
                # hls.js's session (the token its playlist URLs carry) is counted by
                # mediasrv, under the address nginx names in X-Forwarded-For.
                audience = srv.app[VIEWERS].audience("webcached")
                assert audience.concurrent == 1
                session = next(iter(audience.sessions.values()))
                assert session.rendition == "source" and session.requests >= 2
        finally:
            await _stop(publisher)


class Viewer:
    """A simulated LL-HLS player: master playlist, then for each part the preload-hinted
    part (held until complete) and the blocking reload that lists it (§6.2.5.2)."""

    def __init__(self, base: str, name: str, address: str) -> None:
        self.base, self.name, self.address = base, name, address
        self.parts: dict[str, float] = {}  # part URI -> when its body had arrived

    async def run(self, parts: int, deadline: float) -> None:
        connector = aiohttp.TCPConnector(local_addr=(self.address, 0), limit=4)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         headers={"User-Agent": "simulated-viewer"}) as session:
            async with session.get(f"{self.base}/live/{self.name}/index.m3u8") as response:
                assert response.status == 200
                variant = next(line for line in (await response.text()).splitlines()
                               if line.startswith("source/index.m3u8"))
            media = f"{self.base}/live/{self.name}/{variant}"
            async with session.get(media) as response:
                assert response.status == 200
                pl = check_ll_playlist(await response.text(), live=True)
            async with session.get(f"{self.base}/live/{self.name}/source/{pl.segments[-1].map_uri}") as response:
                assert response.status == 200
                await response.read()
            while len(self.parts) < parts and time.monotonic() < deadline:
                hint = pl.preload_hints[0]["URI"]
                async with session.get(f"{self.base}/live/{self.name}/source/{hint}") as response:
                    assert response.status == 200, (hint, response.status)
                    await response.read()
                self.parts[hint] = time.monotonic()
                msn, index = last_part_position(pl)
                async with session.get(f"{media}&_HLS_msn={msn}&_HLS_part={index + 1}") as response:
                    assert response.status == 200
                    pl = check_ll_playlist(await response.text(), live=True)


async def test_200_viewers_cause_one_origin_request_per_part_and_are_all_counted(tmp_path):
    async with running_server(tmp_path / "srv", "http.trusted_proxies=127.0.0.1/32") as srv, \
            running_cache(tmp_path, srv.http_port) as cache:
        recorder = StreamRecorder(srv.hub)
        publisher = await start_ffmpeg_push(srv.rtmp_url("crowd"), seconds=60)
        try:
            await recorder.wait_started("crowd")
            await until(srv.app[HLS_SERVICE], "crowd", lambda s: len(s.segments) >= 1, timeout=20)
            parts_before = origin_requests(srv, "part")
            inits_before = origin_requests(srv, "init")
            playlists_before = origin_requests(srv, "playlist")
            # Each viewer from its own loopback address (127.0.0.2 ...): nginx names it
            # in X-Forwarded-For, as it would a viewer on the internet.
            viewers = [Viewer(cache.url, "crowd", f"127.0.0.{2 + i}") for i in range(VIEWER_COUNT)]
            deadline = time.monotonic() + 40
            await asyncio.gather(*(viewer.run(PARTS_PER_VIEWER, deadline) for viewer in viewers))

            fetched = [len(viewer.parts) for viewer in viewers]
            assert min(fetched) == PARTS_PER_VIEWER, f"some viewers fell behind: {sorted(fetched)[:5]}"
            distinct = set().union(*(viewer.parts for viewer in viewers))
            part_requests = sum(fetched)
            origin_parts = origin_requests(srv, "part") - parts_before
            # Coalescing: about one request per distinct part reached mediasrv, however
            # many viewers asked for it.
            assert part_requests >= VIEWER_COUNT * PARTS_PER_VIEWER
            assert len(distinct) <= origin_parts <= 1.1 * len(distinct) + 1, (origin_parts, len(distinct))
            assert origin_requests(srv, "init") - inits_before == 1
            # Playlists are not cached: every viewer's reloads reached mediasrv.
            assert origin_requests(srv, "playlist") - playlists_before >= VIEWER_COUNT * (PARTS_PER_VIEWER + 1)

            # Viewer counting through the cache: one session per player (its token),
            # one unique viewer per address (X-Forwarded-For from a trusted proxy).
            audience = srv.app[VIEWERS].audience("crowd")
            assert audience.concurrent == VIEWER_COUNT
            assert audience.unique == VIEWER_COUNT
            assert audience.per_rendition() == {"source": VIEWER_COUNT}

            # How long after the first viewer the others had each part (nginx's cache
            # lock: waiting requests re-check every 500 ms).
            lags = []
            for uri in distinct:
                times = [viewer.parts[uri] for viewer in viewers if uri in viewer.parts]
                lags.extend(t - min(times) for t in times)
            lags.sort()
            print(f"\n{VIEWER_COUNT} viewers, {len(distinct)} parts, {part_requests} part requests through nginx, "
                  f"{origin_parts} at mediasrv ({origin_parts / len(distinct):.2f} per part); lag behind the "
                  f"first viewer p50 {statistics.median(lags) * 1000:.0f} ms, "
                  f"p99 {lags[int(0.99 * (len(lags) - 1))] * 1000:.0f} ms")
        finally:
            await _stop(publisher)
