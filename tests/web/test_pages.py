"""The browser pages, driven in headless Chromium against the whole server with a real
RTMP push (FFmpeg, 320x240, real time) and transcoding on (source + one small rung).

One server, one push and one browser are shared by the module (they run in order):

1. discovery lists the live stream (title, creator, viewers);
2. the watch page plays (currentTime advances, no player error) and the rung can be changed;
3. two viewers: a chat message typed by one appears for the other; a gift updates the
   sender's balance and shows in both chats;
4. the studio's charts fill from the SSE feed; the operator stops the stream on /admin;
   the creator saves the recording in the studio; the watch page offers it and it plays.

Screenshots of every page at phone (390x844) and desktop (1280x800) size are written to
test-artifacts/screenshots/. The route tests at the end need no browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from mediasrv.config import load_config
from tests.accounts.support import ADMIN_PASSWORD, Api
from tests.accounts.test_cover import encode_image
from tests.gifts.support import credit
from tests.support.browser import chromium
from tests.web.support import PageErrors
from tests.support.clients import ffmpeg_push_args
from tests.support.server import RunningServer, serving

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
#: Milliseconds a page may take to show something (generous: the 2-core machine is shared).
UI = 30000
TITLE = "Sunday <b>speedrun</b> & chat"  # markup characters must show as text

#: Source + one small rung: the quality selector has something to switch to, and the
#: shared 2-core machine only encodes 144p.
CONFIG = """
transcode:
  enabled: true
  audio_bitrate: 64000
  ladder:
    - {name: 144p, height: 144, video_bitrate: 150000, maxrate: 170000, bufsize: 340000, max_fps: 15.0, preset: ultrafast}
"""


class Site:
    """The shared server, its users and the running push."""

    def __init__(self, srv: RunningServer, api: Api) -> None:
        self.srv = srv
        self.api = api
        self.tokens: dict[str, str] = {}
        self.push: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return self.srv.http_url


@contextlib.asynccontextmanager
async def web_server(tmp_path: Path):
    config_file = tmp_path / "mediasrv.yaml"
    config_file.write_text(CONFIG)
    config = load_config(config_file, [
        f"data_dir={tmp_path}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0",
        "auth.mode=accounts", f"accounts.admin_password={ADMIN_PASSWORD}", "live_access.min_followers=0",
        "recording.enabled=true", "thumbnails.interval=2"])
    async with serving(config) as server:
        yield server


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.2):
    """Poll an async predicate until it returns something truthy (the server has no
    event for "discovery lists it"); fail with the last value after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = None
    while loop.time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    async with web_server(tmp) as srv, aiohttp.ClientSession(srv.http_url) as session:
        api = Api(srv, session)
        site = Site(srv, api)
        alice = await api.user("alice", "creator")
        await api.user("bob")
        await api.register("carol")
        for handle, headers in (("alice", alice),):
            site.tokens[handle] = headers["Authorization"].split()[1]
        site.tokens["bob"] = (await api.login("bob"))["Authorization"].split()[1]
        site.tokens["admin"] = (await api.admin())["Authorization"].split()[1]
        response = await session.patch("/api/me/settings", headers=alice,
                                       json={"title": TITLE, "save_by_default": False})
        assert response.status == 200, await response.text()
        await credit(api, "bob", 100, "web-test-credit")

        key = await api.stream_key(alice)
        args = ffmpeg_push_args(srv.rtmp_url(key), seconds=600, fps=15, realtime=True)
        site.push = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.PIPE)
        try:
            async def live():
                r = await session.get("/api/streams/alice")
                return r.status == 200 and len((await r.json())["renditions"]) >= 2
            await wait_until(live, timeout=60)
            yield site
        finally:
            if site.push.returncode is None:
                site.push.kill()
            await site.push.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(site):
    async with chromium() as b:
        yield b


async def context_for(browser, site: Site, user: str | None, viewport=DESKTOP):
    """A browser context (its own localStorage), logged in as ``user`` when given."""
    context = await browser.new_context(viewport=viewport)
    if user is not None:
        token = site.tokens[user]
        me = {"handle": user, "role": "creator" if user == "alice" else ("admin" if user == "admin" else "viewer")}
        await context.add_init_script(
            f"if (!sessionStorage.getItem('seeded')) {{ sessionStorage.setItem('seeded', '1');"
            f" localStorage.setItem('mediasrv.token', {json.dumps(token)});"
            f" localStorage.setItem('mediasrv.user', {json.dumps(json.dumps(me))}); }}")
    return context




async def screenshots(page, name: str) -> None:
    """Write NAME-desktop.png and NAME-phone.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    await page.set_viewport_size(PHONE)
    await page.wait_for_timeout(300)  # let the layout and canvases settle at the new size
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)
    await page.wait_for_timeout(300)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    await page.set_viewport_size(size)


async def quiet_player(page) -> None:
    """Stop a watch page's video once it started (tests about chat do not need three
    players decoding at once on the shared 2-core machine)."""
    await page.wait_for_function("() => window.mediasrvWatch && window.mediasrvWatch.player", timeout=UI)
    await page.evaluate("() => { window.mediasrvWatch.player.hls.stopLoad(); document.getElementById('video').pause(); }")


async def current_time(page) -> float:
    return await page.evaluate("document.getElementById('video').currentTime")


async def wait_playing(page, advance: float, timeout_ms: int = 30000) -> None:
    """currentTime reaches ``advance`` with no fatal player error (watch.js keeps it)."""
    await page.wait_for_function(
        "a => window.mediasrvWatch.error || document.getElementById('video').currentTime >= a",
        arg=advance, timeout=timeout_ms)
    assert await page.evaluate("window.mediasrvWatch.error") is None


# --- 1. discovery ------------------------------------------------------------------------

async def test_discovery_lists_the_live_stream(site, browser):
    context = await context_for(browser, site, None)
    page = await context.new_page()
    errors = PageErrors(page)
    await page.goto(site.url + "/")
    card = page.locator('.stream-card[data-stream="alice"]')
    await card.wait_for(timeout=UI)
    assert await card.locator(".title").text_content() == TITLE  # shown as text, not markup
    assert "alice" in await card.locator(".creator").text_content()
    assert "watching" in await card.locator(".viewers").text_content()
    assert await card.get_attribute("href") == "/watch/alice"
    # Logged out, the Following tab asks to log in.
    await page.click("#tab-following")
    await page.locator("#empty", has_text="Log in").wait_for()
    await page.click("#tab-all")
    await card.wait_for()
    # Wait for the thumbnail (taken every 2 s) so the screenshot shows one.
    image = page.locator('.stream-card[data-stream="alice"] img')
    await image.wait_for(timeout=UI)
    # A refresh (every 5 s; the thumbnail changes every 2 s) keeps the card a keyboard
    # user is on focused.
    src = await image.get_attribute("src")
    await card.focus()
    await page.wait_for_function(
        "s => document.querySelector('.stream-card[data-stream=alice] img').getAttribute('src') !== s", arg=src, timeout=UI)
    assert await page.evaluate("document.activeElement.dataset.stream") == "alice"
    await screenshots(page, "discovery")
    errors.check()
    await context.close()


# --- 2. watch page -------------------------------------------------------------------------

async def test_watch_page_plays_and_the_rung_can_be_changed(site, browser):
    context = await context_for(browser, site, None)
    page = await context.new_page()
    errors = PageErrors(page)
    await page.goto(site.url + "/watch/alice")
    await wait_playing(page, 1.5)
    assert await page.text_content("#title") == TITLE
    # Auto + source + 144p.
    await page.wait_for_function("() => document.querySelectorAll('#quality option').length >= 3", timeout=UI)
    options = await page.eval_on_selector_all("#quality option", "os => os.map(o => [o.value, o.textContent])")
    assert options[0] == ["-1", "Auto"] or options[0][0] == "-1"
    small = [value for value, text in options if text.startswith("144p")]
    assert small, options
    await page.select_option("#quality", small[0])
    await page.wait_for_function(
        "i => window.mediasrvWatch.player.hls.currentLevel === i && window.mediasrvWatch.levelSwitches.includes(i)",
        arg=int(small[0]), timeout=UI)
    height = await page.evaluate("window.mediasrvWatch.player.hls.levels[window.mediasrvWatch.player.hls.currentLevel].height")
    assert height == 144
    before = await current_time(page)
    await wait_playing(page, before + 1.5)
    # The latency indicator shows how far behind live the player is.
    latency = page.locator("#latency")
    await latency.wait_for(state="visible", timeout=UI)
    assert "behind live" in await latency.text_content()
    await screenshots(page, "watch")
    errors.check()
    await context.close()


# --- 3. chat and gifts between two viewers --------------------------------------------------

async def test_chat_and_gifts_between_two_viewers(site, browser):
    bob_context = await context_for(browser, site, "bob")
    carol_context = await context_for(browser, site, None, viewport=PHONE)
    bob = await bob_context.new_page()
    carol = await carol_context.new_page()
    bob_errors, carol_errors = PageErrors(bob), PageErrors(carol)
    await bob.goto(site.url + "/watch/alice")
    await carol.goto(site.url + "/watch/alice")
    await quiet_player(bob)
    await quiet_player(carol)

    # Carol logs in through the page's own dialog.
    await carol.click("#login")
    await carol.fill("#auth-handle", "carol")
    await carol.fill("#auth-password", "correct-horse-1")
    await carol.click("#auth-submit")
    await carol.locator("#whoami", has_text="@carol").wait_for()
    await carol.locator("#chat-input:not([disabled])").wait_for(timeout=UI)

    await bob.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    text = "hello <i>carol</i> 👋"
    await bob.fill("#chat-input", text)
    await bob.press("#chat-input", "Enter")
    line = carol.locator("#chat-log li.message", has_text="hello")
    await line.wait_for(timeout=UI)
    assert await line.locator(".text").text_content() == text
    assert await line.locator(".name").text_content() == "bob"
    assert await carol.locator("#chat-log i").count() == 0  # never rendered as markup

    # Bob sends a Rose (10 coins) with 100 in his wallet.
    await bob.locator("#balance", has_text="100 coins").wait_for(timeout=UI)
    await bob.click('button[data-gift="rose"]')
    await bob.locator("#balance", has_text="90 coins").wait_for(timeout=UI)
    for page in (bob, carol):
        gift = page.locator("#chat-log li.gift", has_text="Rose")
        await gift.wait_for(timeout=UI)
        assert "bob" in await gift.text_content()

    # Carol follows the creator and reports the stream (it reaches the operators' queue).
    await carol.click("#follow")
    await carol.locator("#follow[aria-pressed=true]").wait_for(timeout=UI)
    following = await (await site.api.http.get("/api/users/carol/following")).json()
    assert [u["handle"] for u in following["users"]] == ["alice"]
    await carol.click("#report")
    await carol.fill("#report-reason", "spam in the title")
    await carol.click("#report-form button[type=submit]")
    await carol.locator("#toast", has_text="report was sent").wait_for(timeout=UI)

    # The creator pins Bob's message from her own watch page; everyone sees it pinned,
    # and her own messages carry the creator badge.
    alice_context = await context_for(browser, site, "alice")
    alice = await alice_context.new_page()
    alice_errors = PageErrors(alice)
    await alice.goto(site.url + "/watch/alice")
    await quiet_player(alice)
    message = alice.locator("#chat-log li.message", has_text="hello")
    await message.wait_for(timeout=UI)
    # The actions are in the message's "⋯" menu (docs/web.md).
    await message.locator(".msg-menu-button").click()
    await alice.locator('#msg-menu [role=menuitem][data-action="pin"]').click()
    pinned = carol.locator("#pinned", has_text="hello")
    await pinned.wait_for(timeout=UI)
    assert await pinned.locator(".text").text_content() == text
    assert "null" not in await pinned.text_content()
    await alice.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    await alice.fill("#chat-input", "thanks for watching")
    await alice.press("#chat-input", "Enter")
    own = carol.locator("#chat-log li.message", has_text="thanks for watching")
    await own.wait_for(timeout=UI)
    assert await own.locator(".badge.creator").count() == 1
    await screenshots(carol, "watch-chat")

    # Carol's Following tab lists the creator she follows.
    await carol.goto(site.url + "/")
    await carol.click("#tab-following")
    await carol.locator('.stream-card[data-stream="alice"]').wait_for(timeout=UI)
    alice_errors.check()
    await alice_context.close()
    bob_errors.check()
    carol_errors.check()
    await bob_context.close()
    await carol_context.close()


# --- 4. studio, operator stop, save, VOD ----------------------------------------------------

async def test_studio_charts_then_stop_save_and_the_vod_plays(site, browser):
    alice_context = await context_for(browser, site, "alice")
    studio = await alice_context.new_page()
    studio_errors = PageErrors(studio)
    await studio.goto(site.url + "/studio")
    await studio.locator("#live-status", has_text="Live").wait_for(timeout=UI)
    # The stream key is hidden until revealed.
    assert await studio.get_attribute("#stream-key", "type") == "password"
    await studio.click("#reveal-key")
    assert await studio.get_attribute("#stream-key", "type") == "text"
    # Rotating (confirmed) shows a new key; the broadcast already live goes on.
    studio.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    old_key = await studio.input_value("#stream-key")
    await studio.click("#rotate-key")
    await studio.wait_for_function(
        "k => document.getElementById('stream-key').value && document.getElementById('stream-key').value !== k",
        arg=old_key, timeout=UI)
    assert await site.api.stream_key({"Authorization": f"Bearer {site.tokens['alice']}"}) == \
        await studio.input_value("#stream-key")
    assert (await studio.input_value("#server-url")).startswith("rtmp://127.0.0.1:")

    # Title and cover forms.
    await studio.fill("#title", "Speedrun, part 2")
    await studio.click("#settings-form button[type=submit]")
    await studio.locator("#settings-msg", has_text="Saved").wait_for(timeout=UI)
    alice_headers = {"Authorization": f"Bearer {site.tokens['alice']}"}
    settings = await (await site.api.http.get("/api/me/settings", headers=alice_headers)).json()
    assert settings["title"] == "Speedrun, part 2"
    await studio.set_input_files("#cover-file", files=[{
        "name": "cover.jpg", "mimeType": "image/jpeg", "buffer": encode_image("mjpeg", "yuvj420p")}])
    await studio.click("#cover-upload")
    await studio.locator("#cover-preview:visible").wait_for(timeout=UI)
    assert "/api/users/alice/cover" in await studio.get_attribute("#cover-preview", "src")

    # Charts take one sample a second from the SSE feed.
    charts = ["viewers", "chat", "gifts", "bitrate", "fps"]
    first = await studio.evaluate("() => Number(document.getElementById('chart-bitrate').dataset.samples || 0)")
    await studio.wait_for_function(
        "n => Number(document.getElementById('chart-bitrate').dataset.samples || 0) >= n + 3", arg=first, timeout=UI)
    for name in charts:
        assert int(await studio.get_attribute(f"#chart-{name}", "data-samples") or 0) >= 3, name
    bitrate = float((await studio.text_content("#out-bitrate")).replace("k", "000") or 0)
    assert bitrate > 0
    assert float(await studio.text_content("#out-fps")) > 0
    await studio.click("#reveal-key")  # hide the key again for the screenshots
    await screenshots(studio, "studio")

    # A viewer keeps the watch page open while the stream is stopped.
    viewer_context = await context_for(browser, site, None)
    watch = await viewer_context.new_page()
    watch_errors = PageErrors(watch)
    await watch.goto(site.url + "/watch/alice")
    await wait_playing(watch, 1.0)

    # The operator stops the stream from /admin.
    admin_context = await context_for(browser, site, "admin")
    admin = await admin_context.new_page()
    admin_errors = PageErrors(admin)
    admin.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await admin.goto(site.url + "/admin")
    stop = admin.locator('button[data-stop="alice"]')
    await stop.wait_for(timeout=UI)
    report = admin.locator("#reports tr[data-report]", has_text="spam in the title")
    await report.wait_for(timeout=UI)
    await screenshots(admin, "admin")
    await report.locator('button[data-how="dismissed"]').click()  # an in-page form, not window.prompt
    await admin.locator("#resolve-dialog[open]").wait_for(timeout=UI)
    await admin.fill("#resolve-text", "not spam")
    await admin.click("#resolve-submit")
    await admin.locator("#reports", has_text="No reports here").wait_for(timeout=UI)
    await stop.click()
    await admin.locator("#stop-dialog[open]").wait_for(timeout=UI)  # a reason may be given; none here
    await admin.click("#stop-submit")
    await admin.locator("#live-streams", has_text="Nobody is live").wait_for(timeout=UI)
    assert await asyncio.wait_for(site.push.wait(), 30) != 0  # the encoder was disconnected

    # The watch page says so; the studio offers the recording to save.
    # (an operator's stop: the standard reason, none was given)
    await watch.locator("#overlay-title", has_text="An operator stopped this stream").wait_for(timeout=UI)
    assert "An operator stopped this stream." in await watch.locator("#overlay-text").text_content()
    await studio.locator("#live-status", has_text="Offline").wait_for(timeout=UI)
    save = studio.locator('button[data-action="save"]')
    await save.first.wait_for(timeout=UI)
    await save.first.click()
    await studio.locator('tr[data-state="saved"]').first.wait_for(timeout=UI)

    # The watch page finds the saved recording and plays it.
    vod_link = watch.locator("#watch-vod")
    await vod_link.wait_for(timeout=UI)
    await screenshots(watch, "watch-ended")
    await vod_link.click()
    await watch.wait_for_url("**/watch/alice?vod=*")
    await wait_playing(watch, 2.0)
    assert await watch.evaluate("window.mediasrvWatch.mode") == "vod"
    for errors in (studio_errors, watch_errors, admin_errors):
        errors.check()
    for context in (alice_context, viewer_context, admin_context):
        await context.close()


# --- routes (no browser) ------------------------------------------------------------------

async def test_pages_and_assets_have_the_right_headers(site):
    async with aiohttp.ClientSession(site.url) as http:
        for path in ("/", "/watch/alice", "/studio", "/admin"):
            response = await http.get(path)
            assert response.status == 200, path
            assert response.content_type == "text/html"
            assert response.headers["Cache-Control"] == "no-cache"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            body = await response.text()
            assert "<script>" not in body  # no inline script: the CSP would refuse it anyway
        response = await http.get("/web/js/api.js")
        assert response.status == 200 and response.content_type == "text/javascript"
        assert "max-age" in response.headers["Cache-Control"]
        etag = response.headers["ETag"]
        again = await http.get("/web/js/api.js", headers={"If-None-Match": etag})
        assert again.status == 304
        hls = await http.get("/web/vendor/hls.js/hls.min.js")
        assert hls.status == 200
        for bad in ("/web/../http/app.py", "/web/%2e%2e/http/app.py", "/web/js/", "/web/vendor/hls.js/VERSION",
                    "/web/.hidden.js", "/watch/bad%20name", "/watch/..%2fx"):
            response = await http.get(bad)
            assert response.status == 404, bad


async def test_stop_endpoint_is_for_admins_and_documented(site):
    api = site.api
    response = await api.http.post("/api/streams/alice/stop")
    await api.error(response, 401)
    bob = {"Authorization": f"Bearer {site.tokens['bob']}"}
    await api.error(await api.http.post("/api/streams/alice/stop", headers=bob), 403)
    admin = await api.admin()
    await api.error(await api.http.post("/api/streams/nobody-live/stop", headers=admin), 404)
    document = await (await api.http.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/streams/{name}/stop"]["post"]
    assert operation["x-required-role"] == "admin"
