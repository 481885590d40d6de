"""Email verification in the pages (issue 18 follow-up), in headless Chromium against the
whole server and a real SMTP server (aiosmtpd): where the server verifies emails the
sign-up form has an optional email field (and says why), the mailed link opened in the
browser lands on a page that says "verified" (and "expired" the second time), and
/settings shows the address, whether it is verified, and sends a new link ("check your
inbox"). Where the server sends no email, neither the field nor the settings card shows.
Phone (390x844) and desktop (1366x768) screenshots; console and network watched."""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server
from tests.support.browser import chromium
from tests.support.smtp import smtp_server, verification_link
from tests.web.support import UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e


async def test_sign_up_with_an_email_and_verify_it_from_the_mail(tmp_path):
    async with smtp_server() as (inbox, port):
        async with accounts_server(tmp_path, "email.enabled=true", "email.host=127.0.0.1", f"email.port={port}",
                                   "email.starttls=false", "email.from_address=noreply@example.org") as api:
            async with chromium() as browser:
                context = await context_as(browser, api, None)
                page = await context.new_page()
                # The second opening of the link: the page explains the API's 404.
                watch = Watch(page, {(404, "/api/verify-email")})
                await page.goto(api.srv.http_url + "/")
                await page.locator("#signup").click()
                await page.locator("#auth-email-row", has_text="live access").wait_for(timeout=UI)
                await page.fill("#auth-handle", "fan")
                await page.fill("#auth-password", "correct-horse-9")
                await page.fill("#auth-email", "fan@example.org")
                await screenshots(page, "signup-email")
                await page.locator("#auth-submit").click()
                await page.locator("#whoami", has_text="@fan").wait_for(timeout=UI)
                await page.get_by_text("Check your inbox").first.wait_for(timeout=UI)

                recipients, message, _ = await inbox.wait()
                assert recipients == ["fan@example.org"]
                link = verification_link(message)
                assert link.startswith(api.srv.http_url + "/api/verify-email?token=")
                await page.goto(link)  # as a mail client opens it: the browser's GET
                await page.locator("#ve-title", has_text="Email verified").wait_for(timeout=UI)
                assert "token" not in page.url  # used: not kept in the address bar
                await screenshots(page, "verify-email")
                fan = await api.login("fan", "correct-horse-9")
                status = await (await api.http.get("/api/me/email", headers=fan)).json()
                assert status["verified"] is True

                await page.goto(link)  # a link works once
                await page.locator("#ve-title", has_text="expired").wait_for(timeout=UI)
                assert await page.locator("#ve-settings").is_visible()
                await screenshots(page, "verify-email-expired")

                await page.goto(api.srv.http_url + "/settings")
                await page.locator("#email-status", has_text="fan@example.org · verified").wait_for(timeout=UI)
                await screenshots(page, "settings-email")
                await page.fill("#email-input", "new@example.org")
                await page.locator("#email-submit").click()
                await page.locator("#email-ok", has_text="Check your inbox").wait_for(timeout=UI)
                await page.locator("#email-status", has_text="new@example.org · not verified yet").wait_for(timeout=UI)
                recipients, message, _ = await inbox.wait(2)
                assert recipients == ["new@example.org"]
                await screenshots(page, "settings-email-sent")
                watch.check()
                await context.close()


async def test_no_email_field_where_the_server_sends_none(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.user("vera")
        async with chromium() as browser:
            context = await context_as(browser, api, "vera")
            page = await context.new_page()
            watch = Watch(page)
            await page.goto(api.srv.http_url + "/settings")
            await page.locator("#account-line", has_text="@vera").wait_for(timeout=UI)
            await page.wait_for_load_state("networkidle")
            assert not await page.locator("#email-card").is_visible()
            await page.evaluate("localStorage.clear()")
            await page.goto(api.srv.http_url + "/")
            await page.locator("#signup").click()
            await page.locator("#auth-role").wait_for(timeout=UI)
            await page.wait_for_load_state("networkidle")
            assert not await page.locator("#auth-email-row").is_visible()
            watch.check()
            await context.close()
