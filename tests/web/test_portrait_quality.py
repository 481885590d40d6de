"""Portrait streams in the pages, in Chromium against the whole server (open mode) with two
real-time FFmpeg RTMP pushes: "upright", 720x1280 (a phone held upright), and "wide",
320x240, with the transcoder on (one 144p rung).

- Issue 16, item 8: the renditions are named by their short side: the watch page's
  quality menu offers "Source (720p)" and "144p" (a 144x256 picture), never "1280p".
- Issue 17, item 3 (vertical video end to end): the API gives the picture's size and
  orientation; on a phone (390x844, a touch device) a portrait live fills the screen
  under the header: the player is as wide as the screen and as high as the picture's
  proportions (390x693), the video in it not letterboxed, the chat over its lower part
  with the message box on screen; a landscape live is as before (16:9 under the header,
  the chat under it). At 1366x768 a portrait player is a tall box centred in its column,
  the title under it on screen and the chat beside it. Discovery shows the portrait
  stream's card in the picture's proportions (full width on a phone) and the landscape
  one at 16:9.

No horizontal scroll anywhere; every page fails the test on a console error, an uncaught
error, a failed request or an HTTP error it did not expect (``Watch``). Screenshots
(``watch-portrait-*``, ``watch-landscape-phone``, ``discover-portrait-*``) go to
test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
import pytest_asyncio

from mediasrv.config import load_config
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.support.server import serving
from tests.web.support import DESKTOP, PHONE, SCREENSHOTS, UI, Watch, screenshots

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

NAME = "upright"
WIDE = "wide"
#: One small rung, so the shared 2-core machine only encodes 144p.
CONFIG = """
transcode:
  enabled: true
  audio_bitrate: 64000
  ladder:
    - {name: 144p, height: 144, video_bitrate: 150000, maxrate: 170000, bufsize: 340000, max_fps: 10.0, preset: ultrafast}
"""


async def wait_for(condition, timeout: float, what: str) -> None:
    """Poll the coroutine function ``condition`` until it is true (the server has no event
    for "a rendition has a segment": its API is asked)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(0.5)


class Site:
    def __init__(self, srv, http: aiohttp.ClientSession) -> None:
        self.srv, self.http = srv, http

    @property
    def url(self) -> str:
        return self.srv.http_url

    async def get(self, path: str) -> dict:
        async with self.http.get(path) as response:
            assert response.status == 200, (path, response.status)
            return await response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("portrait")
    config_file = tmp / "mediasrv.yaml"
    config_file.write_text(CONFIG)
    config = load_config(config_file, [f"data_dir={tmp}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0"])
    async with serving(config) as srv, aiohttp.ClientSession(srv.http_url) as http:
        pushes = [await start_ffmpeg_push(srv.rtmp_url(NAME), seconds=600, fps=10, size="720x1280"),
                  await start_ffmpeg_push(srv.rtmp_url(WIDE), seconds=600, fps=10, size="320x240")]
        try:
            site = Site(srv, http)

            async def ready() -> bool:
                # Both streams with both renditions cut, and a thumbnail of each listed.
                for name in (NAME, WIDE):
                    async with http.get(f"/api/streams/{name}") as response:
                        if response.status != 200:
                            return False
                        renditions = (await response.json())["renditions"]
                    if len(renditions) < 2 or not all(r.get("segments") for r in renditions):
                        return False
                listed = (await site.get("/api/live"))["streams"]
                return len(listed) == 2 and all(s["thumbnail_url"] for s in listed)

            await wait_for(ready, 90, "both streams' renditions and thumbnails")
            yield site
        finally:
            for push in pushes:
                with contextlib.suppress(ProcessLookupError):
                    push.kill()
                await push.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(site):
    async with chromium() as b:
        yield b


async def test_the_api_gives_each_stream_s_size_and_orientation(site):
    """What the pages shape their players and cards by, before any video is loaded."""
    listed = {s["name"]: s for s in (await site.get("/api/live"))["streams"]}
    assert {k: listed[NAME][k] for k in ("width", "height", "orientation")} == \
        {"width": 720, "height": 1280, "orientation": "portrait"}
    assert {k: listed[WIDE][k] for k in ("width", "height", "orientation")} == \
        {"width": 320, "height": 240, "orientation": "landscape"}
    status = await site.get(f"/api/live/{NAME}/status")
    assert (status["live"], status["width"], status["height"], status["orientation"]) == (True, 720, 1280, "portrait")
    offline = await site.get("/api/live/nobody/status")
    assert (offline["live"], offline["width"], offline["height"], offline["orientation"]) == (False, None, None, None)
    # Every rendition keeps the portrait shape (the rung is 144 wide, not 144 tall).
    renditions = (await site.get(f"/api/streams/{NAME}"))["renditions"]
    assert {r["name"]: (r["width"], r["height"]) for r in renditions} == {"source": (720, 1280), "144p": (144, 256)}


async def test_a_720x1280_stream_is_720p_in_the_quality_menu(site, browser):
    page = await browser.new_page(viewport=DESKTOP)
    watch = Watch(page)
    await page.goto(f"{site.url}/watch/{NAME}")
    await page.wait_for_function("() => document.querySelectorAll('#quality option').length >= 3", timeout=UI)
    labels = await page.locator("#quality option").all_text_contents()
    assert labels[0].startswith("Auto")
    assert any(label.startswith("Source (720p)") for label in labels), labels
    assert any(label.startswith("144p") for label in labels), labels
    assert not any("1280p" in label or "256p" in label for label in labels), labels
    await page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=UI)
    assert "1280p" not in await page.locator("#quality option").first.text_content()
    watch.check()
    await page.close()


#: Where things are on the watch page, and the picture inside the video element: the
#: rectangle ``object-fit: contain`` draws it in (no letterboxing: the same as the box).
WATCH_GEOMETRY = """() => {
  const box = (el) => el.getBoundingClientRect().toJSON();
  const video = document.getElementById('video');
  const v = box(video);
  const scale = Math.min(v.width / video.videoWidth, v.height / video.videoHeight);
  const picture = {width: video.videoWidth * scale, height: video.videoHeight * scale};
  const aside = document.querySelector('aside.chat');
  return {
    width: innerWidth, height: innerHeight, scrollWidth: document.documentElement.scrollWidth,
    scrollHeight: document.documentElement.scrollHeight,
    videoWidth: video.videoWidth, videoHeight: video.videoHeight, controls: video.controls,
    immersive: document.body.classList.contains('immersive'), orientation: document.body.dataset.orientation || null,
    header: box(document.getElementById('site-header')), player: box(document.getElementById('player')),
    video: v, picture, column: box(document.querySelector('main.watch > section')), aside: box(aside),
    title: box(document.getElementById('title')), chat: box(document.getElementById('chat-log')),
    input: box(document.getElementById('chat-input')), send: box(document.getElementById('chat-send')),
    chatLine: parseFloat(getComputedStyle(document.getElementById('chat-log')).lineHeight),
    chatOverVideo: getComputedStyle(aside).position === 'absolute',
  };
}"""


async def open_watch(browser, site: Site, name: str, viewport: dict, *, phone: bool = False):
    context = await browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    page = await context.new_page()
    watch = Watch(page)
    await page.goto(f"{site.url}/watch/{name}")
    await page.wait_for_function(
        "() => window.mediasrvWatch.error || document.getElementById('video').currentTime > 0.5", timeout=UI)
    assert await page.evaluate("window.mediasrvWatch.error") is None
    # Two animation frames: the layout after the video's size arrived has been drawn.
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return context, page, watch


def assert_on_screen(g: dict, part: str) -> None:
    box = g[part]
    assert 0 <= box["left"] and box["right"] <= g["width"] + 0.5, (part, box)
    assert 0 <= box["top"] and box["bottom"] <= g["height"] + 0.5, (part, box)


def assert_not_letterboxed(g: dict) -> None:
    """The video element is the player's box and the picture fills it (its proportions are
    the box's, to a pixel): no black bars above, below or beside it."""
    for side in ("left", "top", "width", "height"):
        assert abs(g["video"][side] - g["player"][side]) <= 1, (side, g["video"], g["player"])
    assert abs(g["picture"]["width"] - g["video"]["width"]) <= 1.5, (g["picture"], g["video"])
    assert abs(g["picture"]["height"] - g["video"]["height"]) <= 1.5, (g["picture"], g["video"])


async def test_a_portrait_live_fills_a_phone_screen_and_a_landscape_one_is_as_before(site, browser):
    context, page, watch = await open_watch(browser, site, NAME, PHONE, phone=True)
    await page.locator("#chat-input").wait_for(timeout=UI)
    g = await page.evaluate(WATCH_GEOMETRY)
    assert g["videoHeight"] * 720 == g["videoWidth"] * 1280, g  # the source or the 144x256 rung
    assert g["immersive"] and g["orientation"] == "portrait", g
    assert g["scrollWidth"] <= g["width"], f"horizontal scroll: {g['scrollWidth']} > {g['width']}"
    # The player is as wide as the screen, right under the header, and as high as the
    # picture's proportions say (390 x 693): the screen below the header is filled.
    player = g["player"]
    assert player["left"] == 0 and abs(player["width"] - g["width"]) <= 1, player
    assert abs(player["top"] - g["header"]["bottom"]) <= 1, (player, g["header"])
    assert abs(player["height"] - g["width"] * 1280 / 720) <= 1.5, player
    assert player["bottom"] <= g["height"] and g["height"] - player["bottom"] < 0.15 * g["height"], (player, g["height"])
    assert_not_letterboxed(g)
    # The chat is over the video's lower part, with lines to read; the title above, the
    # message box and Send on screen; the page does not scroll; the video's own controls
    # (which the chat would cover) are off.
    assert g["chatOverVideo"] and g["aside"]["top"] > player["top"] + player["height"] / 2, (g["aside"], player)
    assert g["chat"]["height"] >= 3 * g["chatLine"], g["chat"]
    for part in ("title", "input", "send"):
        assert_on_screen(g, part)
    assert g["scrollHeight"] <= g["height"] and not g["controls"], g
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "watch-portrait-live-phone.png"))
    # Less height (a shorter phone, or the on-screen keyboard open): the player is as high
    # as the room under the header and as wide as its proportions say, centred; the message
    # box stays on screen.
    await page.set_viewport_size({"width": 390, "height": 560})
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    g = await page.evaluate(WATCH_GEOMETRY)
    player = g["player"]
    assert abs(player["top"] - g["header"]["bottom"]) <= 1 and abs(player["bottom"] - g["height"]) <= 1, player
    assert abs(player["width"] / player["height"] - 720 / 1280) < 0.01, player
    assert abs(player["left"] - (g["width"] - player["right"])) <= 1, player
    assert_not_letterboxed(g)
    for part in ("title", "input", "send"):
        assert_on_screen(g, part)
    assert g["scrollWidth"] <= g["width"] and g["scrollHeight"] <= g["height"], g
    await page.screenshot(path=str(SCREENSHOTS / "watch-portrait-live-short-phone.png"))
    watch.check()
    await context.close()

    # A landscape live on the same phone: as today (16:9 under the header, the chat under it).
    context, page, watch = await open_watch(browser, site, WIDE, PHONE, phone=True)
    await page.locator("#chat-input").wait_for(timeout=UI)
    g = await page.evaluate(WATCH_GEOMETRY)
    assert not g["immersive"] and g["orientation"] == "landscape" and g["controls"], g
    player = g["player"]
    assert player["left"] == 0 and abs(player["width"] - g["width"]) <= 1, player
    assert abs(player["height"] - g["width"] * 9 / 16) <= 1.5, player
    assert not g["chatOverVideo"] and g["aside"]["top"] >= player["bottom"], (g["aside"], player)
    assert g["scrollWidth"] <= g["width"]
    for part in ("title", "input", "send"):
        assert_on_screen(g, part)
    await page.screenshot(path=str(SCREENSHOTS / "watch-landscape-phone.png"))
    watch.check()
    await context.close()


async def test_on_a_desktop_a_portrait_player_is_a_tall_centred_box_beside_the_chat(site, browser):
    context, page, watch = await open_watch(browser, site, NAME, DESKTOP)
    g = await page.evaluate(WATCH_GEOMETRY)
    assert not g["immersive"] and g["orientation"] == "portrait" and g["controls"], g
    player, column = g["player"], g["column"]
    assert player["height"] > 1.7 * player["width"], player
    assert abs(player["width"] / player["height"] - 720 / 1280) < 0.01, player
    assert_not_letterboxed(g)
    # Centred in its column, as high as the window leaves room for with the title on
    # screen under it; the chat beside it.
    left, right = player["left"] - column["left"], column["right"] - player["right"]
    assert abs(left - right) <= 1, (player, column)
    assert player["height"] >= 0.6 * g["height"], player
    assert_on_screen(g, "title")
    assert g["aside"]["left"] >= column["right"] and g["aside"]["top"] < player["bottom"], (g["aside"], column)
    assert g["scrollWidth"] <= g["width"]
    # Both sizes, full page, no horizontal scroll (the helper resizes the window).
    await screenshots(page, "watch-portrait")
    watch.check()
    await context.close()


DISCOVERY_GEOMETRY = """() => {
  const card = (name) => {
    const node = document.querySelector(`.stream-card[data-stream="${name}"]`);
    const thumb = node.querySelector('.thumb').getBoundingClientRect().toJSON();
    const img = node.querySelector('.thumb img');
    return {card: node.getBoundingClientRect().toJSON(), thumb, portrait: node.classList.contains('portrait'),
      image: img ? {src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight,
                    complete: img.complete} : null};
  };
  return {width: innerWidth, scrollWidth: document.documentElement.scrollWidth,
    grid: document.getElementById('grid').getBoundingClientRect().toJSON(),
    upright: card('upright'), wide: card('wide')};
}"""


async def discovery_geometry(page) -> dict:
    await page.locator('.stream-card[data-stream="upright"] .thumb img').scroll_into_view_if_needed()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.stream-card .thumb img')].every(i => i.complete && i.naturalWidth > 0)"
        " && document.querySelectorAll('.stream-card').length === 2", timeout=UI)
    await page.evaluate("() => window.scrollTo(0, 0)")
    return await page.evaluate(DISCOVERY_GEOMETRY)


def assert_cards(d: dict) -> None:
    upright, wide = d["upright"], d["wide"]
    assert d["scrollWidth"] <= d["width"], d
    # The portrait card is the picture's shape, and shows the live picture (a portrait
    # thumbnail), whole: its proportions are the box's (no bars, no crop).
    assert upright["portrait"] and "/thumbnail" in upright["image"]["src"], upright
    assert abs(upright["thumb"]["width"] / upright["thumb"]["height"] - 720 / 1280) < 0.01, upright
    assert abs(upright["image"]["width"] / upright["image"]["height"] - 720 / 1280) < 0.01, upright
    # The landscape card is as before: 16:9.
    assert not wide["portrait"], wide
    assert abs(wide["thumb"]["width"] / wide["thumb"]["height"] - 16 / 9) < 0.01, wide


async def test_discovery_shows_a_portrait_stream_in_a_portrait_card(site, browser):
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    watch = Watch(page)
    await page.goto(f"{site.url}/")
    d = await discovery_geometry(page)
    assert_cards(d)
    # On a phone the portrait card is as wide as the list: its picture fills the screen's width.
    assert abs(d["upright"]["card"]["width"] - d["grid"]["width"]) <= 1, d
    assert d["upright"]["thumb"]["height"] > 1.7 * d["upright"]["thumb"]["width"] - 2, d
    watch.check()
    await context.close()

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch = Watch(page)
    await page.goto(f"{site.url}/")
    d = await discovery_geometry(page)
    assert_cards(d)
    # Side by side on a desktop, each card as wide as the other; the landscape one keeps
    # its own (short) height rather than being stretched to the portrait one's.
    assert abs(d["upright"]["card"]["width"] - d["wide"]["card"]["width"]) <= 1, d
    assert d["wide"]["card"]["height"] < 0.7 * d["upright"]["card"]["height"], d
    await screenshots(page, "discover-portrait")
    watch.check()
    await context.close()
