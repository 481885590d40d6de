"""Headless Chromium publishes over WHIP from a page of another origin (fake camera and
microphone): VP8 by default, H.264 when the page prefers it; the stream is in the hub and
on HLS; DELETE ends it at once; a page that vanishes without a DELETE leaves the stream
orphaned for the reconnect grace, then ended; a second publisher with the same key takes
over (WHIP or RTMP) and the first session is closed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import aiohttp
import pytest

from mediasrv.hub.stream import StreamState
from tests.support.browser import FAKE_MEDIA_ARGS, chromium
from tests.support.clients import ffmpeg_push
from tests.support.server import RunningServer, StreamRecorder
from tests.whip.browser_page import page_origin
from tests.whip.support import KEY, NAME, until, until_async, whip_of, whip_server

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def publisher_pages() -> AsyncIterator:
    """A function opening a fresh publishing page (all in one browser)."""
    async with page_origin() as origin, chromium(FAKE_MEDIA_ARGS) as browser:
        context = await browser.new_context()
        errors: list[str] = []

        async def open_page():
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(origin)
            return page

        try:
            yield open_page
        finally:
            await context.close()
        assert not errors, errors


async def _publish(page, srv: RunningServer, codec: str | None = None, key: str = KEY) -> str:
    return await page.evaluate("([url, key, codec]) => window.publish(url, key, codec)",
                               [f"{srv.http_url}/whip", key, codec])


async def _hls_ready(http: aiohttp.ClientSession, srv: RunningServer, name: str = NAME):
    async with http.get(f"{srv.http_url}/live/{name}/source/index.m3u8") as response:
        return response.status == 200 and "#EXTINF" in await response.text()


async def test_chromium_publishes_vp8_then_h264_from_another_origin(tmp_path):
    async with whip_server(tmp_path, "recording.enabled=false") as srv, publisher_pages() as open_page, \
            aiohttp.ClientSession() as http:
        recorder = StreamRecorder(srv.hub)
        whip = whip_of(srv)
        for codec, expected in ((None, "VP8"), ("H264", "H264")):
            page = await open_page()
            location = await _publish(page, srv, codec)
            assert location.startswith(srv.http_url + "/whip/sessions/")  # CORS exposed Location
            await recorder.wait_started(NAME, timeout=30)
            session = next(iter(whip.sessions.values()))
            assert session.codecs == (expected, "opus")
            assert await page.evaluate("window.sentCodec()") == f"video/{expected}"
            await until_async(lambda: _hls_ready(http, srv), timeout=30, what="the stream on HLS")
            stream = srv.hub.get(NAME)
            assert stream.attributes["ingest_protocol"] == "whip"
            assert stream.attributes["publisher_address"] == "127.0.0.1"
            await until(lambda: stream.stats.audio_units > 50 and stream.stats.keyframes >= 2, timeout=30,
                        what="two keyframes and a second of audio")
            video = next(u for u in recorder.units[NAME] if u.kind.value == "video")
            assert (video.track.codec.value, video.track.width, video.track.height) == ("h264", 640, 480)
            print(f"Chromium {expected}: connected {session.connect_seconds:.2f} s, first frame "
                  f"{session.first_frame_seconds:.2f} s after the offer")
            if expected == "VP8":
                # DELETE: a clean unpublish, the stream ends at once.
                assert await page.evaluate("window.unpublish()") == 200
            else:
                # An operator's stop, or the creator's end (both hub.stop): the publisher
                # is kicked, its peer connection closed.
                assert srv.hub.stop(NAME, "stopped by the test")
                await until(lambda: session.closed, timeout=10, what="the session closed")
                assert session.end_reason == "stopped by the test"
            await recorder.wait_ended(NAME, timeout=10)
            assert srv.hub.get(NAME) is None and not whip.sessions
            recorder.started.pop(NAME)
            recorder.ended.pop(NAME)
            recorder.units.pop(NAME)
            await page.close()
        assert whip.stats.deleted == 1 and whip.stats.kicked == 1 and whip.stats.publishes == 2


async def test_a_vanished_page_orphans_its_stream_it_comes_back_within_the_grace_then_it_ends(tmp_path):
    async with whip_server(tmp_path, "recording.enabled=false", "hls.reconnect_grace=5") as srv, \
            publisher_pages() as open_page:
        recorder = StreamRecorder(srv.hub)
        whip = whip_of(srv)
        loop = asyncio.get_running_loop()
        page = await open_page()
        await _publish(page, srv)
        await recorder.wait_started(NAME, timeout=30)
        stream = srv.hub.get(NAME)
        await until(lambda: stream.stats.video_units > 10, timeout=30, what="video in the hub")
        dropped_at = loop.time()
        await page.evaluate("window.drop()")  # no DELETE: the peer connection just goes
        await until(lambda: stream.state is StreamState.ORPHANED, timeout=45, what="the stream orphaned")
        print(f"orphaned {loop.time() - dropped_at:.2f} s after the page closed its connection")
        assert not whip.sessions and whip.stats.lost == 1
        # It comes back within the grace: the same broadcast goes on.
        again = await open_page()
        await _publish(again, srv)
        await until(lambda: stream.state is StreamState.LIVE, timeout=30, what="the publisher back")
        units = stream.stats.video_units
        await until(lambda: stream.stats.video_units > units + 10, timeout=30, what="video again")
        assert srv.hub.get(NAME) is stream and NAME not in recorder.ended and stream.stats.reconnects == 1
        # Gone again, for good: the stream ends once the grace has run out.
        await again.evaluate("window.drop()")
        await until(lambda: stream.state is StreamState.ORPHANED, timeout=45, what="orphaned again")
        orphaned_at = loop.time()
        await recorder.wait_ended(NAME, timeout=15)
        assert loop.time() - orphaned_at >= 4.5  # it waited for the grace (5 s)
        assert stream.stats.reconnects == 2 and whip.stats.lost == 2


async def test_the_same_key_takes_over_a_whip_stream_from_whip_and_rtmp(tmp_path):
    # The pages outlive the server: the last session is still live when the server stops.
    async with publisher_pages() as open_page, whip_server(tmp_path, "recording.enabled=false") as srv:
        recorder = StreamRecorder(srv.hub)
        whip = whip_of(srv)
        first = await open_page()
        await _publish(first, srv)
        await recorder.wait_started(NAME, timeout=30)
        stream = srv.hub.get(NAME)
        old = next(iter(whip.sessions.values()))
        # A second WHIP publisher with the same key: the first session is closed.
        second = await open_page()
        await _publish(second, srv)
        await until(lambda: old.closed, timeout=30, what="the first session kicked")
        assert srv.hub.get(NAME) is stream and stream.state is StreamState.LIVE  # one broadcast goes on
        assert stream.stats.takeovers == 1 and whip.stats.kicked == 1 and whip.stats.takeovers == 1
        # The browser hears of it (DTLS closed by the server): its connection is no more.
        state = await until_async(lambda: first.evaluate(
            "['closed', 'failed', 'disconnected'].includes(window.whip.state) && window.whip.state"),
            timeout=30, what="the first page's connection to end")
        print(f"the kicked page's connection: {state}")
        newer = next(iter(whip.sessions.values()))
        await until(lambda: newer.live, timeout=30, what="the second session publishing")
        # RTMP with the same key takes over from WHIP.
        push = asyncio.create_task(ffmpeg_push(srv.rtmp_url(KEY), seconds=3, realtime=True))
        await until(lambda: newer.closed, timeout=30, what="the WHIP session kicked by RTMP")
        assert stream.attributes["ingest_protocol"] == "rtmp" and srv.hub.get(NAME) is stream
        status, output = await push
        assert status == 0, output
        await recorder.wait_ended(NAME, timeout=20)
        assert stream.stats.takeovers == 2 and not whip.sessions
        # A session live when the server stops: closed, its encoder thread ended.
        last = await open_page()
        await _publish(last, srv)
        await until(lambda: whip.sessions and next(iter(whip.sessions.values())).live, timeout=30,
                    what="a live session")
        live = next(iter(whip.sessions.values()))
    assert live.closed and live.end_reason == "server shutting down" and not live.transcoder.alive
