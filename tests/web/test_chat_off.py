"""The watch page when the creator has turned the chat off (docs/chat.md, "Turning the chat
off"), in headless Chromium against the whole server (accounts mode, no stream needed: the
chat is there whether or not the creator is live).

A viewer, logged in or not, sees "Chat is off for this live" in place of the message box;
the creator keeps the box and is told only they can write. The creator turns the chat on
again in the studio and the viewer's open page offers the box again and sends a message,
without a reload. Screenshots of the viewer's page at phone (390x844) and laptop
(1366x768) size go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.accounts.support import Api, accounts_server
from tests.support.browser import chromium
from tests.web.support import PageErrors

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
#: Milliseconds a page may take to show something (generous: the 2-core machine is shared).
UI = 30000
NOTICE = "Chat is off for this live"


async def logged_in_context(browser, api: Api, handle: str | None, viewport: dict):
    """A browser context (its own localStorage), logged in as ``handle`` when given, the
    way the page's own login dialog leaves it (token and user in localStorage)."""
    context = await browser.new_context(viewport=viewport)
    if handle is not None:
        token = (await api.login(handle))["Authorization"].split()[1]
        me = (await (await api.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json())
        await context.add_init_script(
            f"localStorage.setItem('mediasrv.token', {json.dumps(token)});"
            f" localStorage.setItem('mediasrv.user', {json.dumps(json.dumps(me))});")
    return context




async def expect_chat_off_for_viewers(page) -> None:
    """The notice is shown and no message box (nor its log-in button) is offered."""
    notice = page.locator("#chat-off")
    await notice.wait_for(state="visible", timeout=UI)
    assert NOTICE in await notice.text_content()
    assert "turned the chat off" in await notice.text_content()
    assert not await page.locator("#chat-form").is_visible()
    assert not await page.locator("#chat-input").is_visible()
    assert not await page.locator("#chat-send").is_visible()


async def test_watch_page_says_the_chat_is_off_and_reopens_when_the_creator_turns_it_on(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api:
        alice = await api.user("alice", "creator")
        await api.user("carol")
        response = await api.http.patch("/api/me/settings", json={"chat": {"enabled": False}}, headers=alice)
        assert response.status == 200, await response.text()
        watch = api.srv.http_url + "/watch/alice"

        async with chromium() as browser:
            viewer_context = await logged_in_context(browser, api, "carol", PHONE)
            viewer = await viewer_context.new_page()
            viewer_errors = PageErrors(viewer)
            await viewer.goto(watch)
            await expect_chat_off_for_viewers(viewer)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await viewer.screenshot(path=str(SCREENSHOTS / "watch-chat-off-phone.png"), full_page=True)
            await viewer.set_viewport_size(LAPTOP)
            await viewer.locator("#chat-off").wait_for(state="visible", timeout=UI)
            await viewer.screenshot(path=str(SCREENSHOTS / "watch-chat-off-laptop.png"))

            anonymous_context = await logged_in_context(browser, api, None, LAPTOP)
            anonymous = await anonymous_context.new_page()
            anonymous_errors = PageErrors(anonymous)
            await anonymous.goto(watch)
            await expect_chat_off_for_viewers(anonymous)

            # The creator keeps the box: she may still write (a notice to her viewers).
            creator_context = await logged_in_context(browser, api, "alice", LAPTOP)
            creator = await creator_context.new_page()
            creator_errors = PageErrors(creator)
            await creator.goto(watch)
            notice = creator.locator("#chat-off")
            await notice.wait_for(state="visible", timeout=UI)
            assert "Only you can write" in await notice.text_content()
            await creator.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
            await creator.fill("#chat-input", "back in five")
            await creator.press("#chat-input", "Enter")
            line = viewer.locator("#chat-log li.message", has_text="back in five")
            await line.wait_for(timeout=UI)
            assert await line.locator(".badge.creator").count() == 1

            # She turns the chat on again in the studio: the viewer's open page offers the
            # box again (no reload, no reconnect) and her message goes through.
            await creator.goto(api.srv.http_url + "/studio")
            toggle = creator.locator("#chat-enabled")
            await creator.locator("#settings-form #chat-enabled:not(:checked)").wait_for(timeout=UI)
            await toggle.check()
            await creator.locator("#settings-form button[type=submit]").click()
            await creator.locator("#settings-msg", has_text="Saved.").wait_for(timeout=UI)
            assert (await (await api.http.get("/api/me/settings", headers=alice)).json())["chat"]["enabled"] is True
            await viewer.locator("#chat-off").wait_for(state="hidden", timeout=UI)
            await viewer.locator("#chat-log li.system", has_text="The chat is on again").wait_for(timeout=UI)
            await viewer.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
            await viewer.fill("#chat-input", "welcome back")
            await viewer.press("#chat-input", "Enter")
            await anonymous.locator("#chat-log li.message", has_text="welcome back").wait_for(timeout=UI)
            # The anonymous reader is offered the box's log-in button again.
            await anonymous.locator("#chat-send", has_text="Log in").wait_for(timeout=UI)
            assert not await anonymous.locator("#chat-off").is_visible()

            viewer_errors.check()
            anonymous_errors.check()
            creator_errors.check()
            for context in (viewer_context, anonymous_context, creator_context):
                await context.close()
