"""Who may reach whom in the pages (issue 18), in headless Chromium against the whole
server: a viewer blocks and reports a chat message's author from its ⋯ menu (the author's
messages leave the log), reports and blocks the creator from the watch page's More…
button, sees whom they block in /settings; an operator suspends the reported user from
/admin (with a reason and an end), who then sees the reason in the log-in dialog; the
suspension is lifted again. No console errors; screenshots at phone (390x844) and laptop
(1366x768) size go to test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.accounts.support import PASSWORD, accounts_server
from tests.chat.support import join
from tests.support.browser import chromium
from tests.web.support import UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e


async def test_block_mute_and_report_from_the_watch_page_and_the_chat(tmp_path):
    async with accounts_server(tmp_path) as api, chromium() as browser:
        await api.user("alice", "creator")
        bob_headers = await api.user("bob")
        troll_headers = await api.user("troll")
        context = await context_as(browser, api, "bob", headers=bob_headers)
        try:
            page = await context.new_page()
            errors = Watch(page)
            await page.goto(f"{api.srv.http_url}/watch/alice")
            await page.locator("#chat-input:not([disabled])").wait_for(timeout=UI)
            troll, _ = await join(api, "alice", troll_headers)
            assert (await troll.say("buy followers here"))["type"] == "message"
            line = page.locator("#chat-log li.message", has_text="buy followers")
            await line.wait_for(timeout=UI)

            # The message's menu: report its author (a user report, not the message's).
            await line.hover()
            await line.locator(".msg-menu-button").click()
            await page.locator("#msg-menu [data-action=report-user]").wait_for(timeout=UI)
            await screenshots(page, "watch-chat-user-menu")
            await page.locator("#msg-menu [data-action=report-user]").click()
            await page.locator("#report-dialog[open]").wait_for(timeout=UI)
            assert "@troll" in await page.locator("#report-what").text_content()
            await page.fill("#report-reason", "spams links")
            await page.click("#report-form button[type=submit]")
            await page.locator(".toast", has_text="report was sent").first.wait_for(timeout=UI)
            reports = await (await api.http.get("/api/reports", headers=await api.admin())).json()
            assert [(r["kind"], r["target"], r["reason"]) for r in reports["reports"]] == [("user", "troll", "spams links")]

            # Block the author: the dialog explains, the message leaves the log, the server knows.
            await line.hover()
            await line.locator(".msg-menu-button").click()
            await page.locator("#msg-menu [data-action=block]").click()
            await page.locator("#user-dialog[open]").wait_for(timeout=UI)
            await screenshots(page, "watch-user-dialog")
            await page.click("#user-block")
            await page.locator(".toast", has_text="You blocked @troll").first.wait_for(timeout=UI)
            await line.wait_for(state="detached", timeout=UI)
            blocks = await (await api.http.get("/api/me/blocks", headers=bob_headers)).json()
            assert [row["user"]["handle"] for row in blocks["users"]] == ["troll"]
            assert (await troll.say("you cannot see this"))["type"] == "message"

            # The creator, from the watch page: More… → report the user.
            await page.click("#creator-more")
            await page.locator("#user-dialog[open]").wait_for(timeout=UI)
            assert await page.locator("#user-title").text_content() == "@alice"
            await page.click("#user-report")
            await page.fill("#report-reason", "impersonation")
            await page.click("#report-form button[type=submit]")
            await page.locator("#report-dialog").wait_for(state="hidden", timeout=UI)
            reports = await (await api.http.get("/api/reports", headers=await api.admin())).json()
            assert ("user", "alice", "impersonation") in [(r["kind"], r["target"], r["reason"]) for r in reports["reports"]]
            # Mute the creator from the same dialog.
            await page.click("#creator-more")
            await page.click("#user-mute")
            await page.locator(".toast", has_text="You muted @alice").first.wait_for(timeout=UI)
            assert await page.locator("#chat-log li.message", has_text="you cannot see this").count() == 0
            await screenshots(page, "watch-after-block")

            # Settings lists them, with a way back.
            await page.goto(f"{api.srv.http_url}/settings")
            await page.locator("#blocked-list li[data-user=troll]").wait_for(timeout=UI)
            await page.locator("#muted-list li[data-user=alice]").wait_for(timeout=UI)
            await screenshots(page, "settings-blocked-muted")
            await page.click("#blocked-list li[data-user=troll] button")
            await page.locator("#blocked-list", has_text="Nobody").wait_for(timeout=UI)
            errors.check()
            await troll.close()
        finally:
            await context.close()


async def test_an_operator_suspends_from_admin_and_the_user_sees_why(tmp_path):
    async with accounts_server(tmp_path) as api, chromium() as browser:
        await api.user("alice", "creator")
        bob = await api.user("bob")
        await api.user("troll")
        response = await api.http.post("/api/users/troll/report", json={"reason": "harasses everyone"}, headers=bob)
        assert response.status == 201
        admin_context = await context_as(browser, api, "admin", headers=await api.admin())
        troll_context = await context_as(browser, api, None)
        try:
            admin = await admin_context.new_page()
            admin_errors = Watch(admin)
            await admin.goto(f"{api.srv.http_url}/admin")
            await admin.locator("#suspensions", has_text="No account is suspended").wait_for(timeout=UI)
            row = admin.locator("#reports tr", has_text="user troll")
            await row.wait_for(timeout=UI)
            await row.locator("[data-suspend=troll]").click()
            await admin.locator("#suspend-dialog[open]").wait_for(timeout=UI)
            await admin.fill("#suspend-reason", "harassment in chat")
            await admin.select_option("#suspend-for", "604800")
            await screenshots(admin, "admin-suspend-dialog")
            await admin.click("#suspend-submit")
            await admin.locator("#suspensions tr[data-suspended=troll]").wait_for(timeout=UI)
            assert "harassment in chat" in await admin.locator("#suspensions").text_content()
            await screenshots(admin, "admin-suspensions")

            # The suspended user tries to log in: the dialog says why and until when.
            page = await troll_context.new_page()
            # The log-in is refused with 403, on purpose: that answer carries the reason.
            troll_errors = Watch(page, {(403, "/api/login")})
            await page.goto(f"{api.srv.http_url}/")
            await page.click("#login")
            await page.fill("#auth-handle", "troll")
            await page.fill("#auth-password", PASSWORD)
            await page.click("#auth-submit")
            message = page.locator("#auth-dialog", has_text="harassment in chat")
            await message.wait_for(timeout=UI)
            assert "suspended until" in await page.locator("#auth-dialog").text_content()
            await screenshots(page, "login-suspended")

            # Lifted from the list: the empty state again, and the login works.
            await admin.locator("[data-lift=troll]").click()
            await admin.locator("#suspensions", has_text="No account is suspended").wait_for(timeout=UI)
            assert (await api.http.post("/api/login", json={"handle": "troll", "password": PASSWORD})).status == 200

            # A user's card says whether they are suspended and offers Suspend….
            await admin.fill("#user-handle", "troll")
            await admin.click("#user-form button[type=submit]")
            await admin.locator("#user-suspension", has_text="Not suspended").wait_for(timeout=UI)
            await admin.click("#user-suspend")
            await admin.locator("#suspend-dialog[open]").wait_for(timeout=UI)
            await admin.fill("#suspend-reason", "second warning")
            await admin.select_option("#suspend-for", "")
            await admin.click("#suspend-submit")
            await admin.locator("#user-suspension", has_text="until lifted: second warning").wait_for(timeout=UI)
            await screenshots(admin, "admin-user-suspended")
            await admin.click("#user-lift")
            await admin.locator("#user-suspension", has_text="Not suspended").wait_for(timeout=UI)
            admin_errors.check()
            troll_errors.check()
        finally:
            await admin_context.close()
            await troll_context.close()
