"""Headless Debian Chromium driven by Playwright, playing HLS with the vendored hls.js.

``open_player`` returns a :class:`Player`: the Playwright page plus every HTTP response
the page saw (status and URL, recorded from Playwright's ``response`` event, so the
test sees what hls.js really got, not what it chose to report) and every request that
failed at the network level. ``wait_playing`` waits until ``currentTime`` advanced and
fails on a fatal hls.js error or a media element error. ``Player.watch_stalls`` /
``Player.stalls`` record hls.js ``BUFFER_STALLED_ERROR`` errors and the video element's
``waiting`` events from a chosen moment (after the initial start), and
``Player.level_switches`` every ``LEVEL_SWITCHED`` with the media time it happened at.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
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


def _no_realtime_scheduling_for_children() -> None:
    """Run as root, Chromium puts its audio threads on SCHED_FIFO. When such a renderer
    hangs or exits badly it can starve the 2-core machine (seen here: two FIFO threads
    spinning in the kernel's dcache shrinker, every other process at ~8 % CPU). Dropping
    CAP_SYS_NICE from this process's bounding set means the programs it starts cannot
    take real-time priority (RLIMIT_RTPRIO is 0), so Chromium keeps normal threads."""
    import ctypes
    import ctypes.util
    import resource

    PR_CAPBSET_DROP, CAP_SYS_NICE = 24, 23
    try:
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    except (ValueError, OSError):
        pass
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0)  # fails harmlessly when not root


#: A fake camera and microphone that need no permission prompt (WHIP publishing tests).
FAKE_MEDIA_ARGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


@contextlib.asynccontextmanager
async def chromium(extra_args: tuple[str, ...] = ()) -> AsyncIterator[object]:
    """Yield a Playwright Browser (headless Debian Chromium); ``extra_args`` are added to
    its command line (e.g. ``FAKE_MEDIA_ARGS``)."""
    require_path(CHROMIUM, "Debian's chromium")
    from playwright.async_api import async_playwright

    _no_realtime_scheduling_for_children()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            await browser.close()


PLAYER_PAGE = """<!doctype html><html><body>
<video id="v" muted playsinline style="width:320px"></video>
<script>%(hls)s</script>
<script>
window.playerErrors = [];
window.otherErrors = [];
window.levelSwitches = [];
// Stall watch (Player.watch_stalls / stalls): every hls.js BUFFER_STALLED_ERROR and every
// 'waiting' event of the video element, with the page clock and the media time, and each
// LEVEL_SWITCHED with the media time at which the new level started playing.
window.stallEvents = [];
window.levelSwitchLog = [];
window.stallWatchFrom = null;
const video = document.getElementById('v');
const hls = new Hls(%(config)s);
window.hls = hls;
hls.on(Hls.Events.ERROR, (e, d) => {
  (d.fatal ? window.playerErrors : window.otherErrors).push(d.type + ':' + d.details);
  if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) {
    window.stallEvents.push({kind: 'hls:' + d.details, at: performance.now(), media: video.currentTime});
  }
});
hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => {
  window.levelSwitches.push(d.level);
  window.levelSwitchLog.push({level: d.level, at: performance.now(), media: video.currentTime});
});
video.addEventListener('waiting', () => window.stallEvents.push({kind: 'video:waiting', at: performance.now(), media: video.currentTime}));
video.addEventListener('error', () => window.playerErrors.push('video:' + (video.error && video.error.message)));
hls.loadSource(%(url)s);
hls.attachMedia(video);
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(e => window.playerErrors.push('play:' + e)));
</script></body></html>"""


@dataclass
class Player:
    """A page playing one URL with hls.js, and what it saw on the network."""

    page: object
    url: str
    #: (status, url) of every HTTP response the page received, in order.
    responses: list[tuple[int, str]] = field(default_factory=list)
    #: (failure text, url) of every request that got no HTTP response at all.
    failures: list[tuple[str, str]] = field(default_factory=list)

    def statuses(self) -> set[int]:
        return {status for status, _ in self.responses}

    def bad_responses(self) -> list[tuple[int, str]]:
        """Responses with a status of 400 or more (a 404 during a live stream is a bug)."""
        return [(status, url) for status, url in self.responses if status >= 400]

    def requested(self, suffix: str) -> list[str]:
        return [url for _, url in self.responses if url.split("?", 1)[0].endswith(suffix)]

    async def current_time(self) -> float:
        return await self.page.evaluate("document.getElementById('v').currentTime")

    async def errors(self) -> dict:
        return await self.page.evaluate("({fatal: window.playerErrors, other: window.otherErrors})")

    async def watch_stalls(self) -> float:
        """Start the stall watch now (call it once playback has started, so the initial
        buffering does not count); return the page clock (ms) it started at."""
        return await self.page.evaluate("window.stallWatchFrom = performance.now()")

    async def stalls(self) -> list[dict]:
        """Stalls since :meth:`watch_stalls`: hls.js ``BUFFER_STALLED_ERROR`` errors and the
        video element's ``waiting`` events, each ``{kind, at (page ms), media (s)}``."""
        return await self.page.evaluate(
            "window.stallEvents.filter(e => window.stallWatchFrom !== null && e.at >= window.stallWatchFrom)")

    async def level_switches(self) -> list[dict]:
        """Every hls.js ``LEVEL_SWITCHED``: ``{level, at (page ms), media (s)}``, in order."""
        return await self.page.evaluate("window.levelSwitchLog")


async def open_player(browser, url: str, *, low_latency: bool = True, config: dict | None = None) -> Player:
    """Open a page that plays ``url`` with hls.js; return the :class:`Player`.

    ``config``: the hls.js configuration to use instead of the default one
    (``lowLatencyMode`` + ``liveSyncDurationCount: 2``); e.g. ``{"lowLatencyMode": True}``
    alone lets hls.js aim at the playlist's PART-HOLD-BACK, as it does by default."""
    if config is not None:
        config = json.dumps(config)
    else:
        config = "{lowLatencyMode: %s, liveSyncDurationCount: 2}" % ("true" if low_latency else "false")
    html = PLAYER_PAGE % {"hls": HLS_JS.read_text(), "config": config, "url": json.dumps(url)}
    page = await browser.new_page()
    player = Player(page, url)
    page.on("response", lambda response: player.responses.append((response.status, response.url)))
    page.on("requestfailed", lambda request: player.failures.append((str(request.failure), request.url)))
    await page.set_content(html)
    return player


async def wait_playing(player: Player, *, advance: float = 2.0, timeout_ms: int = 30000) -> float:
    """Wait until the video's currentTime reached ``advance`` seconds; return it.

    Fails if hls.js reported a fatal error or the media element an error."""
    page = player.page
    await page.wait_for_function(
        "([a]) => window.playerErrors.length > 0 || document.getElementById('v').currentTime >= a",
        arg=[advance], timeout=timeout_ms,
    )
    errors = await page.evaluate("window.playerErrors")
    assert not errors, f"hls.js errors: {errors}; responses: {player.bad_responses()}"
    return await player.current_time()
