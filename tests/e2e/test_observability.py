"""Viewer sessions, health, Prometheus and the broadcast summary, with real pushes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

import aiohttp
import pytest
import yaml

from tests.support.clients import ffmpeg_push_args, pyav_push_process, run_process
from tests.support.server import running_server
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e

FAST = ("viewers.idle_timeout=2", "hls.keep_after_end=2", "hls.segment_duration=1")


async def poll(fetch, predicate, *, timeout: float = 20.0, interval: float = 0.2):
    """Fetch until ``predicate(value)`` holds; return the value. There is no event to
    await across HTTP, so this polls with a bounded deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {value!r}")
        await asyncio.sleep(interval)


class Player:
    """A plain HTTP client that follows the playlists as a player does."""

    def __init__(self, session: aiohttp.ClientSession, base: str, name: str, agent: str) -> None:
        self.session, self.base, self.name, self.agent = session, base, name, agent
        self.task: asyncio.Task | None = None
        self.segments = 0
        #: time.monotonic() when the last playlist request (the ones that keep a viewer
        #: session alive) was sent.
        self.last_playlist_sent = 0.0

    async def _get(self, url: str) -> tuple[int, bytes]:
        async with self.session.get(url, headers={"User-Agent": self.agent}) as response:
            return response.status, await response.read()

    async def run(self) -> None:
        status, body = await self._get(f"{self.base}/live/{self.name}/index.m3u8")
        assert status == 200
        variant = next(line for line in body.decode().splitlines() if line and not line.startswith("#"))
        assert "s=" in variant, "variant URL carries no session token"
        playlist_url = f"{self.base}/live/{self.name}/{variant}"
        seen: set[str] = set()
        while True:
            self.last_playlist_sent = time.monotonic()
            status, body = await self._get(playlist_url)
            if status != 200:
                return
            for line in body.decode().splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen.add(line)
                    uri = playlist_url.rsplit("/", 1)[0] + "/" + line
                    await self._get(uri)
                    self.segments += 1
            if "#EXT-X-ENDLIST" in body.decode():
                return
            await asyncio.sleep(0.5)  # a player's reload interval

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _json(session, url):
    async with session.get(url) as response:
        return response.status, (await response.json() if response.content_type == "application/json" else None)


async def _text(session, url):
    async with session.get(url) as response:
        return response.status, await response.text()


async def test_counts_are_exact_and_series_go_away(tmp_path):
    promtool = require_tool("promtool")
    async with running_server(tmp_path, *FAST) as srv, aiohttp.ClientSession() as http:
        push = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url("obs1"), seconds=14, realtime=True),
                                               timeout=40))
        stats_url = f"{srv.http_url}/api/streams/obs1/stats"
        # Wait for the first segment without becoming a viewer ourselves.
        await poll(lambda: _json(http, f"{srv.http_url}/api/streams/obs1"),
                   lambda r: r[0] == 200 and r[1]["renditions"] and r[1]["renditions"][0].get("segments"))
        players = [Player(http, srv.http_url, "obs1", f"player-{i}") for i in range(5)]
        for player in players:
            player.start()
        stats = await poll(lambda: _json(http, stats_url), lambda r: r[0] == 200 and r[1]["viewers"] == 5)
        assert stats[1]["unique_viewers"] == 5 and stats[1]["peak_viewers"] == 5
        # A scrape while live passes promtool and has per-stream series.
        status, metrics = await _text(http, f"{srv.http_url}/metrics")
        assert status == 200
        check = await asyncio.create_subprocess_exec(
            promtool, "check", "metrics", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await check.communicate(metrics.encode())
        assert check.returncode == 0, out.decode()
        assert 'mediasrv_stream_viewers{stream="obs1"} 5.0' in metrics
        # Two players stop: they leave after the idle timeout; peak and unique stay.
        await players[0].stop()
        await players[1].stop()
        stats = await poll(lambda: _json(http, stats_url), lambda r: r[1]["viewers"] == 3)
        assert stats[1]["peak_viewers"] == 5 and stats[1]["unique_viewers"] == 5
        assert stats[1]["bitrate_kbps"] > 0 and stats[1]["fps"] > 20
        status, metrics = await _text(http, f"{srv.http_url}/metrics")
        assert re.search(r'mediasrv_stream_ingest_rate_bytes_per_second\{stream="obs1"\} [1-9]', metrics)
        assert 'mediasrv_stream_rendition_viewers{rendition="source",stream="obs1"} 3.0' in metrics
        assert all(p.segments > 0 for p in players)
        for player in players[2:]:
            await player.stop()
        status, output = await push
        assert status == 0, output
        # The broadcast summary is persisted ...
        rows = await poll(lambda: _json(http, f"{srv.http_url}/api/broadcasts?stream=obs1"),
                          lambda r: r[1] and r[1]["broadcasts"])
        summary = rows[1]["broadcasts"][0]
        assert summary["peak_viewers"] == 5 and summary["unique_viewers"] == 5
        assert 10 <= summary["duration_seconds"] <= 30
        assert summary["watch_seconds"] > 5 and summary["average_viewers"] > 0
        # ... and the stream's series go away once keep_after_end passes.
        await poll(lambda: _text(http, f"{srv.http_url}/metrics"), lambda r: 'stream="obs1"' not in r[1], timeout=15)


async def test_players_that_stop_count_until_the_idle_timeout_then_leave(tmp_path):
    """Issue 6: "players that stop → leave after the timeout" — and not before it. Four
    simulated players; two stop. Every stats sample taken before a stopped player's last
    request + ``viewers.idle_timeout`` still counts it (exactly 4); then they leave
    (exactly 2), while peak and unique stay 4."""
    idle = 4.0
    async with running_server(tmp_path, f"viewers.idle_timeout={idle:g}", "hls.keep_after_end=2",
                              "hls.segment_duration=1") as srv, aiohttp.ClientSession() as http:
        push = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url("idle"), seconds=18, realtime=True),
                                               timeout=50))
        stats_url = f"{srv.http_url}/api/streams/idle/stats"
        await poll(lambda: _json(http, f"{srv.http_url}/api/streams/idle"),
                   lambda r: r[0] == 200 and r[1]["renditions"] and r[1]["renditions"][0].get("segments"))
        players = [Player(http, srv.http_url, "idle", f"player-{i}") for i in range(4)]
        for player in players:
            player.start()
        await poll(lambda: _json(http, stats_url), lambda r: r[0] == 200 and r[1]["viewers"] == 4)
        stopped = players[:2]
        for player in stopped:
            await player.stop()
        # No session can have been closed before this (each last request + idle).
        earliest_leave = min(p.last_playlist_sent for p in stopped) + idle
        samples = []  # (seconds since the stop-earliest_leave, viewers, peak, unique)
        deadline = earliest_leave + 6.0  # the timeout, one sweep period, and slack for load
        while True:
            status, body = await _json(http, stats_url)
            assert status == 200
            samples.append((time.monotonic() - earliest_leave, body["viewers"], body["peak_viewers"],
                            body["unique_viewers"]))
            if body["viewers"] == 2:
                break
            assert time.monotonic() < deadline, f"stopped players still counted: {samples}"
            await asyncio.sleep(0.2)  # the sampling period of this check
        before = [s for s in samples if s[0] < 0]
        # The players stopped well within the timeout, so there are samples before it ...
        assert len(before) >= 3, samples
        # ... and every one of them still counts all four players, exactly.
        assert all(v == 4 for _, v, _, _ in before), samples
        assert all(v in (4, 3, 2) for _, v, _, _ in samples), samples
        assert all((peak, unique) == (4, 4) for _, _, peak, unique in samples), samples
        for player in players[2:]:
            assert not player.task.done(), "a running player ended early"
            await player.stop()
        status, output = await push
        assert status == 0, output


async def test_sse_feed_and_health_warnings(tmp_path):
    ffmpeg = require_tool("ffmpeg")
    async with running_server(tmp_path, *FAST) as srv, aiohttp.ClientSession() as http:
        # 5 s keyframe interval against 1 s segments, and no audio track.
        args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "12",
                "-c:v", "libx264", "-preset", "superfast", "-x264-params", "keyint=125:min-keyint=125:scenecut=0",
                "-f", "flv", srv.rtmp_url("warn")]
        push = asyncio.create_task(run_process(*args, timeout=40))
        await poll(lambda: _json(http, f"{srv.http_url}/api/streams/warn/stats"), lambda r: r[0] == 200)
        events = await _sse_events(http, f"{srv.http_url}/api/streams/warn/events")
        status, output = await push
        assert status == 0, output
    stats = [data for kind, data in events if kind == "stats"]
    assert events[-1][0] == "ended"
    assert len(stats) >= 8, "expected about one update a second"
    assert all(set(s) >= {"viewers", "bitrate_kbps", "fps", "warnings"} for s in stats)
    warnings = " ".join(w for s in stats for w in s["warnings"])
    assert "audio missing" in warnings
    assert "keyframe interval" in warnings


async def _sse_events(http, url: str) -> list[tuple[str, dict]]:
    """Read a stream's SSE feed to its ``ended`` event; return (event, data) pairs."""
    events = []
    async with http.get(url) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        event = None
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
                if event == "ended":
                    break
    return events


async def test_sse_feed_warns_of_a_bitrate_collapse_then_a_frame_rate_drop(tmp_path):
    """A PyAV encoder (320x240, 25 fps, x264 ABR 2 Mbit/s + AAC) that, mid-stream, freezes
    its picture for 7 s at full frame rate (the encoder has nothing to spend bits on: the
    bitrate collapses) and then moves again keeping one frame in five (the frame rate
    drops): the SSE feed says "bitrate collapsed" during the first trouble, while the
    frame rate is still fine, then "frame rate dropped", and neither while the encoder
    was healthy."""
    async with running_server(tmp_path, *FAST) as srv, aiohttp.ClientSession() as http:
        push = asyncio.create_task(pyav_push_process(
            srv.rtmp_url("trouble"), seconds=28, fps=25, width=320, height=240, realtime=True,
            bit_rate=2_000_000, still=(10, 17), keep_every=(17, 28, 5), timeout=90))
        await poll(lambda: _json(http, f"{srv.http_url}/api/streams/trouble/stats"), lambda r: r[0] == 200)
        events = await _sse_events(http, f"{srv.http_url}/api/streams/trouble/events")
        result = await push
    assert result.video_frames == 17 * 25 + 11 * 25 // 5
    stats = [data for kind, data in events if kind == "stats"]
    assert events[-1][0] == "ended" and len(stats) >= 18
    trace = [(s["fps"], s["bitrate_kbps"], s["warnings"]) for s in stats]

    def first(prefix: str) -> int:
        return next((i for i, s in enumerate(stats) if any(w.startswith(prefix) for w in s["warnings"])), -1)

    collapsed, dropped = first("bitrate collapsed"), first("frame rate dropped")
    assert collapsed >= 0 and dropped >= 0, trace
    # The feed saw the encoder healthy first (about 25 fps and 2 Mbit/s), with no warning.
    healthy = [s for s in stats[:collapsed] if s["fps"] > 20]
    assert healthy, trace
    assert dropped > collapsed, trace
    # The collapse is the bitrate's alone: the frame rate was still fine then.
    assert stats[collapsed]["fps"] > 20, trace
    assert stats[collapsed]["bitrate_kbps"] < 0.3 * max(s["bitrate_kbps"] for s in healthy), trace
    assert stats[dropped]["fps"] < 0.6 * max(s["fps"] for s in healthy), trace


async def test_a_real_prometheus_scrapes_per_stream_series(tmp_path):
    prometheus = require_tool("prometheus")
    async with running_server(tmp_path, *FAST) as srv, aiohttp.ClientSession() as http:
        push = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url("prom"), seconds=12, realtime=True),
                                               timeout=40))
        port = _free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "mediasrv", "static_configs": [{"targets": [f"127.0.0.1:{srv.http_port}"]}]}],
        }))
        proc = await asyncio.create_subprocess_exec(
            prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            query = f"http://127.0.0.1:{port}/api/v1/query?query=mediasrv_stream_ingest_bytes_total"

            async def fetch():
                try:
                    return await _json(http, query)
                except aiohttp.ClientError:
                    return None, None

            result = await poll(fetch, lambda r: r[1] and r[1]["data"]["result"], timeout=30)
            series = result[1]["data"]["result"]
            assert series[0]["metric"]["stream"] == "prom"
            assert float(series[0]["value"][1]) > 0
        finally:
            proc.terminate()
            await proc.wait()
        await push


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_hls_js_in_chromium_counts_as_one_viewer(tmp_path):
    from tests.support.browser import chromium, open_player, wait_playing

    async with running_server(tmp_path, *FAST) as srv, aiohttp.ClientSession() as http:
        # Long enough to outlast a slow browser start on a busy machine; stopped below
        # once the count is read.
        push = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url("web"), seconds=40, realtime=True),
                                               timeout=60))
        await poll(lambda: _json(http, f"{srv.http_url}/api/streams/web"),
                   lambda r: r[0] == 200 and r[1]["renditions"] and r[1]["renditions"][0].get("segments"))
        async with chromium() as browser:
            player = await open_player(browser, f"{srv.http_url}/live/web/index.m3u8")
            await wait_playing(player, advance=1.0)
            # Give hls.js several playlist reloads: still exactly one session.
            stats = await poll(lambda: _json(http, f"{srv.http_url}/api/streams/web/stats"),
                               lambda r: r[1]["watch_seconds"] >= 3)
            assert stats[1]["viewers"] == 1 and stats[1]["unique_viewers"] == 1, stats[1]
            assert stats[1]["viewers_per_rendition"] == {"source": 1}
        push.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await push


async def test_metrics_with_the_ladder_running_pass_promtool(tmp_path):
    """Per-rung transcoder series appear during a live stream with a ladder, and the
    whole scrape passes promtool."""
    promtool = require_tool("promtool")
    # The default ladder (720p/480p/360p) on a 640x360 source: only 360p is encoded.
    async with running_server(tmp_path, *FAST, "transcode.enabled=true") as srv, aiohttp.ClientSession() as http:
        push = asyncio.create_task(run_process(*ffmpeg_push_args(srv.rtmp_url("ladder"), seconds=10, realtime=True,
                                                                 size="640x360"), timeout=40))
        _, metrics = await poll(
            lambda: _text(http, f"{srv.http_url}/metrics"),
            lambda r: re.search(r'mediasrv_transcode_speed_ratio\{rendition="360p",stream="ladder"\} [0-9.]*[1-9]', r[1]),
            timeout=25)
        check = await asyncio.create_subprocess_exec(
            promtool, "check", "metrics", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await check.communicate(metrics.encode())
        assert check.returncode == 0, out.decode()
        assert 'mediasrv_transcode_worker_restarts_total{stream="ladder"} 0.0' in metrics
        assert 'mediasrv_transcode_queue_delay_seconds{stream="ladder"}' in metrics
        # Rungs taller than the 360p source are left out.
        assert 'rendition="720p"' not in metrics and 'rendition="480p"' not in metrics
        await push
