"""Headless Debian Chromium driven by Playwright, playing HLS with the vendored hls.js."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import AsyncIterator

from tests.support.tools import require_path

CHROMIUM = "/usr/bin/chromium"
HLS_JS = Path(__file__).resolve().parents[2] / "mediasrv" / "web" / "vendor" / "hls.js" / "hls.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    """Yield a Playwright Browser (headless Debian Chromium)."""
    require_path(CHROMIUM, "Debian's chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


PLAYER_PAGE = """<!doctype html><html><body>
<video id="v" muted playsinline style="width:320px"></video>
<script>%(hls)s</script>
<script>
window.playerErrors = [];
window.levelSwitches = [];
const video = document.getElementById('v');
const hls = new Hls(%(config)s);
window.hls = hls;
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.playerErrors.push(d.type + ':' + d.details); });
hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => window.levelSwitches.push(d.level));
hls.loadSource(%(url)r);
hls.attachMedia(video);
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(e => window.playerErrors.push('play:' + e)));
</script></body></html>"""


async def open_player(browser, url: str, *, low_latency: bool = True):
    """Open a page that plays ``url`` with hls.js; return the Playwright page."""
    config = "{lowLatencyMode: %s, liveSyncDurationCount: 2}" % ("true" if low_latency else "false")
    html = PLAYER_PAGE % {"hls": HLS_JS.read_text(), "config": config, "url": url}
    page = await browser.new_page()
    await page.set_content(html)
    return page


async def wait_playing(page, *, advance: float = 2.0, timeout_ms: int = 30000) -> float:
    """Wait until the video's currentTime advanced by ``advance`` seconds; return it.

    Raises if hls.js reported a fatal error."""
    await page.wait_for_function(
        "([a]) => window.playerErrors.length > 0 || document.getElementById('v').currentTime >= a",
        arg=[advance], timeout=timeout_ms,
    )
    errors = await page.evaluate("window.playerErrors")
    assert not errors, f"hls.js errors: {errors}"
    return await page.evaluate("document.getElementById('v').currentTime")
