"""A portrait stream's renditions are named by their short side (issue 16, item 8): FFmpeg
publishes 720x1280 (a phone held upright), the transcoder makes its one rung, and the watch
page's quality menu in Chromium offers "Source (720p)" and "144p" (a 144x256 picture), never
"1280p" or a rung named by its long side."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from mediasrv.config import load_config
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.support.server import serving
from tests.web.support import UI, Watch, screenshots

pytestmark = pytest.mark.e2e

NAME = "upright"
#: One small rung, so the shared 2-core machine only encodes 144p.
CONFIG = """
transcode:
  enabled: true
  audio_bitrate: 64000
  ladder:
    - {name: 144p, height: 144, video_bitrate: 150000, maxrate: 170000, bufsize: 340000, max_fps: 10.0, preset: ultrafast}
"""


async def test_a_720x1280_stream_is_720p_in_the_quality_menu(tmp_path):
    config_file = tmp_path / "mediasrv.yaml"
    config_file.write_text(CONFIG)
    config = load_config(config_file, [f"data_dir={tmp_path}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0"])
    async with serving(config) as srv, aiohttp.ClientSession(srv.http_url) as http, chromium() as browser:
        push = await start_ffmpeg_push(srv.rtmp_url(NAME), seconds=120, fps=10, size="720x1280")
        try:
            # Both renditions have a segment (the server has no event for it: poll its API).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            renditions = []
            while loop.time() < deadline:
                response = await http.get(f"/api/streams/{NAME}")
                if response.status == 200:
                    renditions = (await response.json())["renditions"]
                    if len(renditions) >= 2 and all(r.get("segments") for r in renditions):
                        break
                await asyncio.sleep(0.5)
            sizes = {r["name"]: (r.get("width"), r.get("height")) for r in renditions}
            assert sizes.get("source") == (720, 1280), renditions
            assert sizes.get("144p") == (144, 256), renditions  # the rung is 144 wide, not 144 tall

            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            # Open mode: the stream's name is nobody's handle, so its profile is 404.
            watch = Watch(page, {(404, f"/api/users/{NAME}")})
            await page.goto(f"{srv.http_url}/watch/{NAME}")
            await page.wait_for_function("() => document.querySelectorAll('#quality option').length >= 3", timeout=UI)
            labels = await page.locator("#quality option").all_text_contents()
            assert labels[0].startswith("Auto")
            assert any(label.startswith("Source (720p)") for label in labels), labels
            assert any(label.startswith("144p") for label in labels), labels
            assert not any("1280p" in label or "256p" in label for label in labels), labels
            await page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=UI)
            assert "1280p" not in await page.locator("#quality option").first.text_content()
            await screenshots(page, "watch-portrait")
            watch.check()
        finally:
            push.kill()
            await push.wait()
