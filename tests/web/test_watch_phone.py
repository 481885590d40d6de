"""The watch page on a phone and moderation in its chat (issue 16, items 4 and 5), in
headless Chromium against the whole server (accounts mode) with a real RTMP push (FFmpeg,
320x240, real time, no transcoding) and a chat with messages in it.

- On a phone (390x844 and 360x740, a touch device) a viewer gets one header row, no
  horizontal scroll, a player as wide as the screen, the chat under it with the message box
  and the gifts on screen, and sending a message does not scroll the video away; a
  vertical stream fills the screen under the header with the chat over its lower part
  (issue 17, item 3). At 1366x768 the player and the chat sit side by side.
- The creator on her own page: no gift bar and no "Report" of her own stream; a message's
  actions are in a "⋯" menu (mouse and keyboard) that takes no width from the text; Ban
  asks first, and Cancel leaves the viewer unbanned (checked through the API).
- A banned viewer sees a notice in place of the message box, and the page makes at most
  one chat connection after the ban, also after a reload (the refused handshake is a 403;
  the page asks the server why once and stops); an unknown channel's chat (404) is not
  retried either. "No more" is checked by running the page's clock five minutes forward
  (Playwright's fake clock), not by waiting.

Every page's console errors, uncaught errors, failed requests and HTTP errors fail the
test unless the test expects them (``PageLog.allow``). Screenshots (viewer and creator, at
390x844 and 1366x768, and 360x740) go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from mediasrv.httpkit.keys import CHAT_SOCKETS

from tests.accounts.support import Api, accounts_server
from tests.chat.support import join
from tests.gifts.support import credit
from tests.support.browser import chromium
from tests.support.clients import ffmpeg_push_args

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1366, "height": 768}
#: Milliseconds a page may take to show something (generous: the 2-core machine is shared).
UI = 30000
#: How far the banned viewer's clock is run forward: far beyond any reconnect back-off.
FIVE_MINUTES_MS = 5 * 60 * 1000


class PageLog:
    """What a page reports as wrong: uncaught errors, console errors, requests that got no
    answer (a request the page cancelled itself, ERR_ABORTED, is not one) and HTTP answers
    of 400 or more. ``check()`` fails on any entry not matched by an ``allow``ed text."""

    def __init__(self, page) -> None:
        self.entries: list[str] = []
        self.allowed: list[str] = []
        page.on("pageerror", lambda e: self.entries.append(f"page error: {e}"))
        page.on("console", lambda m: self.entries.append(f"console: {m.text} ({m.location.get('url', '')})")
                if m.type == "error" else None)
        page.on("requestfailed", lambda r: self.entries.append(f"request failed: {r.failure} {r.url}")
                if "ERR_ABORTED" not in (r.failure or "") else None)
        page.on("response", lambda r: self.entries.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    def allow(self, text: str) -> None:
        self.allowed.append(text)

    def check(self) -> None:
        unexpected = [e for e in self.entries if not any(a in e for a in self.allowed)]
        assert not unexpected, unexpected


class Site:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.auth: dict[str, dict] = {}

    @property
    def url(self) -> str:
        return self.api.srv.http_url


async def wait_live(api: Api, name: str) -> None:
    """Until the stream is listed as live (the server has no event a test could await)."""
    async def live() -> bool:
        return (await api.http.get(f"/api/streams/{name}")).status == 200
    for _ in range(300):
        if await live():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} did not go live")


@contextlib.asynccontextmanager
async def pushing(api: Api, headers: dict, size: str):
    """A real-time FFmpeg push with the user's stream key, killed at the end."""
    key = await api.stream_key(headers)
    push = await asyncio.create_subprocess_exec(
        *ffmpeg_push_args(api.srv.rtmp_url(key), seconds=900, fps=15, realtime=True, size=size),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        yield push
    finally:
        if push.returncode is None:
            push.kill()
        await push.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("watch-phone")
    async with accounts_server(tmp, "live_access.min_followers=0") as api:
        site = Site(api)
        site.auth["alice"] = await api.user("alice", "creator")
        for handle in ("bob", "carol", "eve", "frank"):
            site.auth[handle] = await api.user(handle)
        await credit(api, "bob", 100, "phone-test-credit")
        response = await api.http.patch("/api/me/settings", headers=site.auth["alice"],
                                        json={"title": "Evening speedrun with chat"})
        assert response.status == 200, await response.text()
        async with pushing(api, site.auth["alice"], "320x240"):
            await wait_live(api, "alice")
            # A chat with something in it: short and long lines from several people; the
            # creator (who skips the rate limit) writes enough to fill a phone's chat.
            clients = {}
            for handle in ("alice", "bob", "carol", "eve"):
                clients[handle], _ = await join(api, "alice", site.auth[handle])
            await clients["bob"].say("hello there")
            await clients["carol"].say("first time here, the chat layout on my phone looks much better now than last week")
            await clients["eve"].say("buy followers cheap at example.com")
            for i in range(14):
                await clients["alice"].say(f"welcome everyone, round {i + 1} starts soon")
            await clients["bob"].say("gl hf!")
            for client in clients.values():
                await client.close()
            yield site


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(site):
    async with chromium() as b:
        yield b


async def context_for(browser, site: Site, handle: str | None, viewport: dict, *, phone: bool = False):
    """A browser context logged in as ``handle`` (token and user in localStorage, as the
    page's own log-in dialog leaves them); ``phone``: a touch device with no hover."""
    context = await browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    if handle is not None:
        headers = site.auth[handle]
        token = headers["Authorization"].split()[1]
        me = await (await site.api.http.get("/api/me", headers=headers)).json()
        await context.add_init_script(
            f"localStorage.setItem('mediasrv.token', {json.dumps(token)});"
            f" localStorage.setItem('mediasrv.user', {json.dumps(json.dumps(me))});")
    return context


async def open_watch(context, site: Site, name: str = "alice"):
    page = await context.new_page()
    log = PageLog(page)
    await page.goto(f"{site.url}/watch/{name}")
    return page, log


async def wait_playing(page) -> None:
    await page.wait_for_function(
        "() => window.mediasrvWatch.error || document.getElementById('video').currentTime > 0.5", timeout=UI)
    assert await page.evaluate("window.mediasrvWatch.error") is None


async def quiet_player(page) -> None:
    """Stop the page's video (the tests about chat need no decoding on 2 shared cores)."""
    await page.wait_for_function("() => window.mediasrvWatch && window.mediasrvWatch.player", timeout=UI)
    await page.evaluate("() => { window.mediasrvWatch.player.hls.stopLoad(); document.getElementById('video').pause(); }")


async def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


GEOMETRY = """() => {
  const box = (id) => { const r = document.getElementById(id).getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height}; };
  const header = document.getElementById('site-header');
  const style = getComputedStyle(header);
  // The header's row: its visible children (not the off-screen skip link) side by side.
  const parts = [...header.children].filter((c) => getComputedStyle(c).position !== 'absolute')
    .map((c) => c.getBoundingClientRect()).filter((r) => r.width > 0 && r.height > 0);
  return {
    width: innerWidth, height: innerHeight, scrollWidth: document.documentElement.scrollWidth, scrollY,
    header: box('site-header'), player: box('player'), chat: box('chat-log'), input: box('chat-input'),
    send: box('chat-send'), aside: document.querySelector('aside.chat').getBoundingClientRect().toJSON(),
    headerOneRow: Math.max(...parts.map((r) => r.top)) < Math.min(...parts.map((r) => r.bottom)),
    // One row of the header's text and controls is at most two of its lines high.
    headerBound: parseFloat(style.paddingTop) + parseFloat(style.paddingBottom) + parseFloat(style.borderBottomWidth)
      + 2 * parseFloat(style.lineHeight),
    chatLine: parseFloat(getComputedStyle(document.getElementById('chat-log')).lineHeight),
  };
}"""


def assert_fits(g: dict, where: str) -> None:
    """No horizontal scroll, a one-row header, the message box and Send on screen."""
    assert g["scrollWidth"] <= g["width"], f"{where}: horizontal scroll {g['scrollWidth']} > {g['width']}"
    assert g["headerOneRow"], f"{where}: the header wraps"
    assert g["header"]["height"] < g["headerBound"], f"{where}: header {g['header']['height']} px, bound {g['headerBound']}"
    for part in ("input", "send"):
        box = g[part]
        assert 0 <= box["top"] and box["bottom"] <= g["height"], f"{where}: {part} {box} outside the {g['height']} px viewport"
        assert 0 <= box["left"] and box["right"] <= g["width"], f"{where}: {part} {box} outside the viewport"


# --- item 5: the watch page on a phone ----------------------------------------------------

async def check_phone(browser, site: Site, viewport: dict, name: str) -> None:
    context = await context_for(browser, site, "bob", viewport, phone=True)
    page, log = await open_watch(context, site)
    await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    await page.locator("#chat-log li.message", has_text="gl hf!").wait_for(timeout=UI)
    await wait_playing(page)
    g = await page.evaluate(GEOMETRY)
    assert_fits(g, name)
    # The player is as wide as the screen, right under the header; the chat under it,
    # with room for several lines.
    assert g["player"]["left"] == 0 and abs(g["player"]["width"] - g["width"]) <= 1, g["player"]
    assert abs(g["player"]["top"] - g["header"]["bottom"]) <= 1, (g["player"], g["header"])
    assert g["aside"]["top"] >= g["player"]["bottom"], (g["aside"], g["player"])
    assert g["chat"]["height"] >= 5 * g["chatLine"], g["chat"]
    # The gifts are one tap away: on screen, above the message box.
    gift = await page.locator("#gift-bar button[data-gift]").first.bounding_box()
    assert gift is not None and gift["y"] >= 0 and gift["y"] + gift["height"] <= g["input"]["top"], (gift, g["input"])
    # Typing and sending does not scroll the page (the video stays where it is).
    await page.locator("#chat-input").tap()
    await page.fill("#chat-input", f"watching on a {viewport['width']} px phone")
    await page.locator("#chat-send").tap()
    await page.locator("#chat-log li.message", has_text=f"{viewport['width']} px phone").wait_for(timeout=UI)
    after = await page.evaluate(GEOMETRY)
    assert after["scrollY"] == 0 and after["player"]["top"] == g["player"]["top"], (after["scrollY"], after["player"])
    assert_fits(after, f"{name}, after sending")
    await screenshot(page, name)
    log.check()
    await context.close()


async def test_viewer_on_a_phone_has_the_video_chat_box_and_gifts_on_one_screen(site, browser):
    await check_phone(browser, site, PHONE, "watch-phone-viewer-390x844")
    await check_phone(browser, site, SMALL_PHONE, "watch-phone-viewer-360x740")
    # A laptop keeps the player and the chat side by side.
    context = await context_for(browser, site, "bob", LAPTOP)
    page, log = await open_watch(context, site)
    await page.locator("#chat-log li.message", has_text="gl hf!").wait_for(timeout=UI)
    await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    await wait_playing(page)
    g = await page.evaluate(GEOMETRY)
    assert_fits(g, "laptop")
    assert g["aside"]["left"] >= g["player"]["right"] and g["aside"]["top"] < g["player"]["bottom"], (g["aside"], g["player"])
    assert g["player"]["width"] >= 0.6 * g["width"], g["player"]
    await screenshot(page, "watch-laptop-viewer-1366x768")
    log.check()
    await context.close()


async def test_a_vertical_stream_fills_a_phone_screen_with_the_chat_over_it(site, browser):
    """Issue 17, item 3 (it was "up to half the height, letterboxed"): a portrait live fills
    the phone's screen under the header, as wide as the screen and as high as its
    proportions, the chat over its lower part with the message box on screen, the newest
    line just above it (tests/web/test_portrait_quality.py checks the shapes in detail)."""
    api = site.api
    site.auth["dana"] = await api.user("dana", "creator")
    async with pushing(api, site.auth["dana"], "180x320"):
        await wait_live(api, "dana")
        clients = {}
        for handle in ("dana", "bob", "carol"):
            clients[handle], _ = await join(api, "dana", site.auth[handle])
        await clients["bob"].say("the vertical view is so much better")
        await clients["carol"].say("hi dana! 👋")
        for i in range(6):
            await clients["dana"].say(f"thanks for coming, question {i + 1} next")
        await clients["bob"].say("last line")
        for client in clients.values():
            await client.close()
        context = await context_for(browser, site, "carol", PHONE, phone=True)
        page, log = await open_watch(context, site, "dana")
        await page.locator("body.immersive #player.vertical").wait_for(timeout=UI)
        await wait_playing(page)
        await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
        last = page.locator("#chat-log li.message", has_text="last line")
        await last.wait_for(timeout=UI)
        g = await page.evaluate(GEOMETRY)
        assert_fits(g, "vertical stream")
        # The video gets the width and the height its proportions say (390 x 693); the
        # chat keeps lines to read, over the video's lower part.
        assert abs(g["player"]["width"] - g["width"]) <= 1, g["player"]
        assert abs(g["player"]["height"] - g["width"] * 320 / 180) <= 1.5, (g["player"], g["height"])
        assert g["player"]["bottom"] <= g["height"], (g["player"], g["height"])
        assert g["aside"]["top"] < g["player"]["bottom"], (g["aside"], g["player"])
        assert g["chat"]["height"] >= 3 * g["chatLine"], g["chat"]
        box = await last.bounding_box()
        assert g["chat"]["bottom"] - (box["y"] + box["height"]) < 2 * g["chatLine"], (box, g["chat"])
        await screenshot(page, "watch-phone-vertical-390x844")
        log.check()
        await context.close()


# --- item 4: moderation in the chat ------------------------------------------------------------

async def bans(site: Site) -> list[str]:
    response = await site.api.http.get("/api/users/alice/chat/bans", headers=site.auth["alice"])
    assert response.status == 200, await response.text()
    return [b["user"] for b in (await response.json())["bans"]]


async def test_creator_moderates_from_a_menu_and_ban_asks_first(site, browser):
    context = await context_for(browser, site, "alice", LAPTOP)
    page, log = await open_watch(context, site)
    await wait_playing(page)  # for the screenshot
    hello = page.locator("#chat-log li.message", has_text="hello there")
    await hello.wait_for(timeout=UI)
    await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)

    # Her own page offers her no gifts and no report of her own stream.
    assert not await page.locator("#gift-bar").is_visible()
    assert not await page.locator("#report").is_visible()
    assert not await page.locator("#follow").is_visible()

    # A short message is one line: the actions take no width from it. They are behind one
    # "⋯" button, and none of them is on the page until its menu opens.
    height, line = await hello.evaluate("li => [li.getBoundingClientRect().height, parseFloat(getComputedStyle(li).lineHeight)]")
    assert height < 2 * line, (height, line)
    assert await hello.locator("button").count() == 1
    assert await page.locator("[role=menuitem]").count() == 0
    for text in ("Pin", "Delete", "Timeout", "Ban"):
        assert await page.locator("#chat-log button", has_text=text).count() == 0, text
    g = await page.evaluate(GEOMETRY)
    assert_fits(g, "creator, laptop")
    await screenshot(page, "watch-laptop-creator-1366x768")
    await quiet_player(page)

    # Mouse: the menu opens with the creator's actions (and Report, for the site's
    # moderators); Escape closes it and gives the focus back to its button.
    button = hello.locator(".msg-menu-button")
    await button.click()
    menu = page.locator("#msg-menu")
    await menu.wait_for(state="visible", timeout=UI)
    assert await button.get_attribute("aria-expanded") == "true"
    assert [t.strip() for t in await menu.locator("[role=menuitem]").all_text_contents()] == \
        ["Pin", "Delete message", "Time out 10 min", "Ban…", "Report message…",
         "Report @bob…", "Mute @bob", "Block @bob…"]  # the author: report, mute, block (issue 18)
    box, view = await menu.bounding_box(), page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"] and box["y"] + box["height"] <= view["height"], box
    await page.keyboard.press("Escape")
    await menu.wait_for(state="detached", timeout=UI)
    assert await button.evaluate("b => b === document.activeElement")
    assert await button.get_attribute("aria-expanded") == "false"

    # Keyboard: Enter opens it on the first item, the arrows and End move, Escape closes.
    await page.keyboard.press("Enter")
    focused = "() => document.activeElement && document.activeElement.dataset.action"
    assert await page.evaluate(focused) == "pin"
    await page.keyboard.press("ArrowDown")
    assert await page.evaluate(focused) == "delete"
    await page.keyboard.press("End")
    assert await page.evaluate(focused) == "block"  # the last: block the author (issue 18)
    await page.keyboard.press("ArrowDown")
    assert await page.evaluate(focused) == "pin"
    await page.keyboard.press("Escape")
    await menu.wait_for(state="detached", timeout=UI)

    # Ban asks first; Cancel leaves eve unbanned (the API says so).
    spam = page.locator("#chat-log li.message", has_text="buy followers")
    await spam.locator(".msg-menu-button").click()
    await page.locator('#msg-menu [data-action="ban"]').click()
    dialog = page.locator("#ban-dialog")
    await dialog.wait_for(state="visible", timeout=UI)
    assert "eve" in await dialog.locator("#ban-title").text_content()
    assert await page.evaluate("document.activeElement.id") == "ban-cancel"  # the safe default
    await screenshot(page, "watch-laptop-creator-ban-dialog-1366x768")
    await dialog.locator("#ban-cancel").click()
    await dialog.wait_for(state="hidden", timeout=UI)
    # The chat round trip that a ban would have made: the creator's next message is
    # echoed after any ban request, so once it is back, no ban is on its way.
    await page.fill("#chat-input", "no ban for now")
    await page.press("#chat-input", "Enter")
    await page.locator("#chat-log li.message", has_text="no ban for now").wait_for(timeout=UI)
    assert "eve" not in await bans(site)
    assert await spam.count() == 1
    # Confirmed, the ban goes through: her messages go and the API lists her.
    await spam.locator(".msg-menu-button").click()
    await page.locator('#msg-menu [data-action="ban"]').click()
    await dialog.wait_for(state="visible", timeout=UI)
    await page.fill("#ban-reason", "spam links")
    await dialog.locator("#ban-confirm").click()
    await page.locator("#chat-log li.system", has_text="banned eve").wait_for(timeout=UI)
    assert await spam.count() == 0
    assert "eve" in await bans(site)
    log.check()
    await context.close()

    # Her view on a phone (a touch device: the "⋯" buttons show without hover).
    context = await context_for(browser, site, "alice", PHONE, phone=True)
    page, log = await open_watch(context, site)
    await page.locator("#chat-log li.message", has_text="hello there").wait_for(timeout=UI)
    await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    await wait_playing(page)
    assert not await page.locator("#gift-bar").is_visible()
    assert not await page.locator("#report").is_visible()
    g = await page.evaluate(GEOMETRY)
    assert_fits(g, "creator, phone")
    await screenshot(page, "watch-phone-creator-390x844")
    await page.locator("#chat-log li.message", has_text="gl hf!").locator(".msg-menu-button").tap()
    await page.locator("#msg-menu").wait_for(state="visible", timeout=UI)
    box = await page.locator("#msg-menu").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] and box["y"] + box["height"] <= PHONE["height"], box
    await screenshot(page, "watch-phone-creator-menu-390x844")
    log.check()
    await context.close()


CHAT_STATE = "() => { const c = window.mediasrvWatch.chat; return {stopped: c.stopped, attempts: c.attempts, " \
    "pending: c.retryTimer !== null, open: c.ws !== null}; }"


async def test_a_banned_viewer_sees_it_and_the_chat_stops_reconnecting(site, browser):
    context = await context_for(browser, site, "frank", PHONE, phone=True)
    page = await context.new_page()
    log = PageLog(page)
    # The page's clock is Playwright's: it runs as usual until the test runs it forward.
    await page.clock.install()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url) if "/live/alice/chat" in ws.url else None)
    await page.goto(f"{site.url}/watch/alice")
    await quiet_player(page)
    await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    assert len(sockets) == 1
    # A connection the server drops (as on a restart) is not a ban: the page reconnects
    # (after a back-off on its clock, run forward here) and writes again.
    for ws in list(site.api.srv.app[CHAT_SOCKETS]):
        await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
    await page.locator("#chat-input[disabled]").wait_for(timeout=UI)  # the page noticed
    await page.clock.run_for(60_000)
    await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
    await page.fill("#chat-input", "first!!!")
    await page.press("#chat-input", "Enter")
    await page.locator("#chat-log li.message", has_text="first!!!").wait_for(timeout=UI)
    assert len(sockets) == 2
    sockets.clear()

    response = await site.api.http.put("/api/users/alice/chat/bans/frank", headers=site.auth["alice"], json={})
    assert response.status == 200, await response.text()
    notice = page.locator("#chat-off")
    await notice.wait_for(state="visible", timeout=UI)
    assert "You are banned from this chat" in await notice.text_content()
    assert not await page.locator("#chat-form").is_visible()
    assert not await page.locator("#gift-bar").is_visible()
    # Five minutes later (on the page's clock) it has not tried again.
    await page.clock.run_for(FIVE_MINUTES_MS)
    state = await page.evaluate(CHAT_STATE)
    assert state == {"stopped": "banned", "attempts": 2, "pending": False, "open": False}, state
    assert len(sockets) <= 1, sockets  # at most one attempt after the ban (there is none)
    await screenshot(page, "watch-phone-banned-390x844")
    log.check()

    # Back later (a reload): the handshake is refused (403); the page asks once why, says
    # so, and does not retry.
    sockets.clear()
    log.allow("/live/alice/chat")  # the refused handshake and the one question why
    await page.reload()
    await quiet_player(page)  # hls.js would take the clock's jump for a stall
    await notice.wait_for(state="visible", timeout=UI)
    assert "You are banned from this chat" in await notice.text_content()
    await page.clock.run_for(FIVE_MINUTES_MS)
    state = await page.evaluate(CHAT_STATE)
    assert state == {"stopped": "banned", "attempts": 1, "pending": False, "open": False}, state
    assert len(sockets) == 1, sockets
    assert not await page.locator("#chat-form").is_visible()
    log.check()
    await context.close()


async def test_an_unknown_channel_is_a_404_page_with_no_chat_to_retry(site, browser):
    """Since issue 16, item 9, /watch/nobody (no account, nothing live) is the site's 404
    page: there is no chat to connect to, let alone retry (tests/web/test_empty_states.py
    checks the page itself)."""
    context = await context_for(browser, site, None, PHONE, phone=True)
    page = await context.new_page()
    log = PageLog(page)
    log.allow("/watch/nobody")  # the page's own 404 status
    await page.clock.install()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    response = await page.goto(f"{site.url}/watch/nobody")
    assert response.status == 404
    await page.locator("#nf-title", has_text="No channel called nobody").wait_for(timeout=UI)
    await page.clock.run_for(FIVE_MINUTES_MS)
    assert sockets == [], sockets
    log.check()
    await context.close()
