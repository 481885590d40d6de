"""Every node serves every stream: publish on node A, play through the pure edge B (FFmpeg,
hls.js, nginx's cache in front of B), with one origin request per part for 200 viewers and
the viewers of both nodes summed. A real redis-server carries the directory and counts."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest

from mediasrv.httpkit.keys import RTMP_SERVER
from mediasrv.httpkit.keys import CLUSTER, EDGE
from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.httpkit.keys import HTTP_STATS, VIEWERS
from tests.cluster.support import PREFIX, poll, running_node, running_redis
from tests.deploy.nginx_cache import running_cache
from tests.deploy.test_nginx_cache import Viewer
from tests.hls.conftest import until
from tests.support.clients import run_process, start_ffmpeg_push
from tests.support.server import StreamRecorder
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e

VIEWERS_ON_EDGE = 200
PARTS_PER_VIEWER = 4


def origin_requests(srv, kind: str) -> int:
    return srv.app[HTTP_STATS].requests.get(kind, 0)


async def _stop(process) -> None:
    if process is not None and process.returncode is None:
        process.kill()
        await process.wait()


async def _published(a, b, name: str, seconds: float):
    """Push a live test stream to A (FFmpeg, 320x240); return once B knows A is its origin
    and A lists a segment."""
    recorder = StreamRecorder(a.hub)
    publisher = await start_ffmpeg_push(a.rtmp_url(name), seconds=seconds)
    await recorder.wait_started(name)
    await until(a.app[HLS_SERVICE], name, lambda s: len(s.segments) >= 1, timeout=20)
    await poll(lambda: _true(b.app[CLUSTER].origin(name) is not None), timeout=5)
    return publisher


async def _true(value: bool) -> bool:
    return value


async def test_ffmpeg_plays_an_origin_stream_through_the_edge_and_through_nginx(tmp_path):
    ffmpeg = require_tool("ffmpeg")
    async with running_redis(tmp_path) as redis, \
            running_node(tmp_path, redis, "a") as a, \
            running_node(tmp_path, redis, "b", "http.trusted_proxies=127.0.0.1/32", ingest=False) as b, \
            running_cache(tmp_path, b.http_port) as cache:
        assert b.app.get(RTMP_SERVER) is None  # a pure edge takes no publishers
        publisher = await _published(a, b, "edgecast", seconds=40)
        try:
            async with aiohttp.ClientSession() as session:
                # The directory in Redis names A as the origin.
                client = redis.client()
                entry = await client.get(f"{PREFIX}:stream:edgecast")
                await client.aclose()
                assert '"node":"a"' in entry
                # B lists A's stream in /api/live and /api/streams.
                async with session.get(f"{b.http_url}/api/live") as response:
                    listed = {item["name"]: item for item in (await response.json())["streams"]}
                assert listed["edgecast"]["playback_url"] == f"{b.http_url}/live/edgecast/index.m3u8"
                async with session.get(f"{b.http_url}/api/streams") as response:
                    streams = (await response.json())["streams"]
                assert [s["origin"] for s in streams if s["name"] == "edgecast"] == ["a"]
                # Bad input at the edge: the same 400/404 as at the origin, never a 500 (a malformed
                # LL-HLS query is 400, a name that names nothing 404).
                for path, status in (("edgecast/source/index.m3u8?_HLS_part=1", 400),
                                     ("edgecast/source/index.m3u8?_HLS_msn=x", 400),
                                     ("edgecast/source/seg_zzzzzzzz_999999.m4s", 404),
                                     ("edgecast/source/seg_999999.m4s", 404),  # outside the naming scheme
                                     ("edgecast/source/part_zz_1.m4s", 404),
                                     ("nosuchstream/index.m3u8", 404)):
                    async with session.get(f"{b.http_url}/live/{path}") as response:
                        assert response.status == status, path

                segments_at_a = origin_requests(a, "segment")
                # FFmpeg plays 3 s from B (master, media playlist, init, segments from A),
                # then 3 s through nginx in front of B, decoding every frame.
                for base in (b.http_url, cache.url):
                    status, output = await run_process(
                        ffmpeg, "-hide_banner", "-nostdin", "-i", f"{base}/live/edgecast/index.m3u8",
                        "-t", "3", "-map", "0:v", "-f", "null", "-", timeout=60)
                    assert status == 0, output[-2000:]
                    frames = [int(n) for n in re.findall(r"frame=\s*(\d+)", output)]
                    assert frames and frames[-1] >= 50, output[-2000:]  # 3 s at 25 fps
                assert origin_requests(a, "segment") > segments_at_a  # fetched from the origin
                assert b.app[EDGE].origin_requests > 0
                # B counted its player sessions itself (A saw none of them as viewers).
                assert b.app[VIEWERS].audience("edgecast").sessions_total >= 2
                assert a.app[VIEWERS].audience("edgecast").sessions_total == 0
        finally:
            await _stop(publisher)


async def test_hlsjs_plays_an_origin_stream_through_the_edge(tmp_path):
    from tests.support.browser import chromium, open_player, wait_playing

    async with running_redis(tmp_path) as redis, \
            running_node(tmp_path, redis, "a") as a, \
            running_node(tmp_path, redis, "b", ingest=False) as b:
        publisher = await _published(a, b, "webedge", seconds=40)
        try:
            async with chromium() as browser:
                player = await open_player(browser, f"{b.http_url}/live/webedge/index.m3u8")
                await wait_playing(player, advance=2.0)
                assert not player.bad_responses(), player.bad_responses()
                assert player.requested(".m4s")
            audience = b.app[VIEWERS].audience("webedge")
            assert audience.sessions_total == 1
        finally:
            await _stop(publisher)


async def test_200_viewers_on_the_edge_cause_one_origin_request_per_part_and_counts_are_summed(tmp_path):
    async with running_redis(tmp_path) as redis, \
            running_node(tmp_path, redis, "a") as a, \
            running_node(tmp_path, redis, "b", ingest=False) as b:
        publisher = await _published(a, b, "crowd", seconds=60)
        try:
            # Two viewers on the origin A: master playlist (session token), media playlist
            # and a segment (issue 18: a viewer counts once it fetches media).
            # A viewer is a client (address + user agent): two browsers, not two requests.
            async with aiohttp.ClientSession() as session:
                for browser in ("viewer-1", "viewer-2"):
                    async with session.get(f"{a.http_url}/live/crowd/index.m3u8",
                                           headers={"User-Agent": browser}) as response:
                        variant = next(line for line in (await response.text()).splitlines()
                                       if line.startswith("source/"))
                    async with session.get(f"{a.http_url}/live/crowd/{variant}",
                                           headers={"User-Agent": browser}) as response:
                        assert response.status == 200
                        segment = next(line for line in (await response.text()).splitlines()
                                       if line and not line.startswith("#"))
                    async with session.get(f"{a.http_url}/live/crowd/source/{segment}",
                                           headers={"User-Agent": browser}) as response:
                        assert response.status == 200
            parts_before = origin_requests(a, "part")
            playlists_before = origin_requests(a, "playlist")
            inits_before = origin_requests(a, "init")
            viewers = [Viewer(b.http_url, "crowd", f"127.0.0.{2 + i}") for i in range(VIEWERS_ON_EDGE)]
            deadline = time.monotonic() + 40
            await asyncio.gather(*(viewer.run(PARTS_PER_VIEWER, deadline) for viewer in viewers))

            fetched = [len(viewer.parts) for viewer in viewers]
            assert min(fetched) == PARTS_PER_VIEWER, f"some viewers fell behind: {sorted(fetched)[:5]}"
            distinct = set().union(*(viewer.parts for viewer in viewers))
            origin_parts = origin_requests(a, "part") - parts_before
            # Coalescing at the edge: about one origin request per distinct part.
            assert len(distinct) <= origin_parts <= 1.1 * len(distinct) + 1, (origin_parts, len(distinct))
            assert origin_requests(a, "init") - inits_before == 1
            # Blocking reloads shared too: far fewer playlists at A than viewers asked B for.
            playlist_asks = VIEWERS_ON_EDGE * (PARTS_PER_VIEWER + 1)
            assert origin_requests(a, "playlist") - playlists_before < playlist_asks / 10
            print(f"\nslowest heartbeat A {a.app[CLUSTER].slowest_beat:.3f} s, B {b.app[CLUSTER].slowest_beat:.3f} s")
            print(f"\n{VIEWERS_ON_EDGE} viewers on the edge, {len(distinct)} parts, {sum(fetched)} part requests "
                  f"at B, {origin_parts} at A; {origin_requests(a, 'playlist') - playlists_before} playlist "
                  f"requests at A for {playlist_asks}+ at B")

            # Viewer counts: 200 sessions counted by B, 2 by A; both report 202.
            assert b.app[VIEWERS].audience("crowd").concurrent == VIEWERS_ON_EDGE
            assert a.app[VIEWERS].audience("crowd").concurrent == 2
            total = VIEWERS_ON_EDGE + 2

            async def both_report_the_sum() -> bool:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"{a.http_url}/api/streams/crowd/stats") as response:
                        at_a = (await response.json())["viewers"]
                    async with session.get(f"{b.http_url}/api/live") as response:
                        at_b = {i["name"]: i["viewers"] for i in (await response.json())["streams"]}["crowd"]
                    async with session.get(f"{b.http_url}/api/streams/crowd/stats") as response:
                        stats_b = await response.json()
                return at_a == total and at_b == total and stats_b["viewers"] == total

            await poll(both_report_the_sum, timeout=5, interval=0.1)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{a.http_url}/metrics") as response:
                    metrics_a = await response.text()
                async with session.get(f"{b.http_url}/metrics") as response:
                    metrics_b = await response.text()
            assert f'mediasrv_cluster_stream_viewers{{stream="crowd"}} {total}.0' in metrics_a
            assert "mediasrv_cluster_nodes 2.0" in metrics_b
            coalesced = re.search(r"^mediasrv_edge_coalesced_total (\S+)$", metrics_b, flags=re.MULTILINE)
            assert coalesced and float(coalesced.group(1)) > 0, metrics_b[-2000:]
        finally:
            await _stop(publisher)
