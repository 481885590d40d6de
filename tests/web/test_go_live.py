"""A viewer waiting on the watch page when a stream starts gets video, whatever the
encoder's keyframe interval (issue 16, item 1): FFmpeg publishes with OBS's "auto"
keyframe interval (250 frames at 30 fps: the first segment exists after 8.3 s), the
viewer (hls.js in Chromium) opened the page before the push started."""

from __future__ import annotations

import re

import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

NAME = "golive"
#: Milliseconds the page may take: the first segment alone takes 8.3 s of stream time,
#: and the shared 2-core machine runs the encoder and the browser.
UI = 60000
#: Requests the watch page is expected to see fail while it waits: the stream's own API
#: while it is offline (404), its playlist while the first segment is made (503), and in
#: open mode the creator profile the stream name is not (404).
EXPECTED_FAILURES = re.compile(rf"/api/(streams|users)/{NAME}$|/live/{NAME}/(source/)?index\.m3u8(\?.*)?$")


@pytest.mark.parametrize("segment_duration", [
    2.0,  # the default: the server holds the playlist request until the first segment (10 s)
    0.5,  # its wait (2.5 s) runs out: 503 + Retry-After, hls.js and then the page ask again
])
async def test_viewer_waiting_before_go_live_gets_video_with_an_8_second_keyframe_interval(tmp_path, segment_duration):
    async with running_server(tmp_path, f"hls.segment_duration={segment_duration}") as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text} at {m.location.get('url')}")
                if m.type == "error" and not EXPECTED_FAILURES.search(m.location.get("url") or "") else None)
        playlist_statuses: list[int] = []
        page.on("response", lambda r: playlist_statuses.append(r.status)
                if r.url.split("?")[0].endswith(f"/live/{NAME}/index.m3u8") else None)

        await page.goto(f"{srv.http_url}/watch/{NAME}")
        await page.wait_for_function("() => window.mediasrvWatch && window.mediasrvWatch.mode === 'offline'",
                                     timeout=UI)
        # The chat is connected: its "stream-started" frame is what starts the player.
        await page.wait_for_function(
            "() => window.mediasrvWatch.chat && window.mediasrvWatch.chat.ws"
            " && window.mediasrvWatch.chat.ws.readyState === 1", timeout=UI)

        recorder = StreamRecorder(srv.hub)
        push = await start_ffmpeg_push(srv.rtmp_url(NAME), seconds=60, fps=30, gop=250)
        try:
            await recorder.wait_started(NAME)
            await page.wait_for_function("() => window.mediasrvWatch.mode === 'live'", timeout=UI)
            # The page asked for the playlist while no segment existed yet.
            assert not srv.app[HLS_SERVICE].rendition(NAME, "source").ready
            await page.wait_for_function(
                "() => window.mediasrvWatch.error || document.getElementById('video').currentTime >= 1", timeout=UI)
            assert await page.evaluate("window.mediasrvWatch.error") is None
            assert await page.evaluate("document.getElementById('overlay').hidden")
            retries = await page.evaluate("window.mediasrvWatch.retries || 0")
        finally:
            push.kill()
            await push.wait()
        assert 200 in playlist_statuses and 404 not in playlist_statuses, playlist_statuses
        if segment_duration < 1:
            assert 503 in playlist_statuses, playlist_statuses
            # hls.js retries a manifest once; the rest was the page's own recovery.
            assert retries >= 1
        assert not problems, problems
