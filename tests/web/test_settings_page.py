"""The settings page (/settings, issue 16 item 7) in headless Chromium against the whole
server (accounts mode): a viewer changes their display name, changes their password
(the page's session stays, every other session ends), and turns their account into a
creator account (the header then offers the studio). Where only an admin makes creators,
the page says so instead. Logged out, it says to log in. Phone (390x844) and desktop
(1366x768) screenshots go to test-artifacts/screenshots/; the console and network are
watched (tests/web/support.py)."""

from __future__ import annotations

import pytest

from tests.accounts.support import PASSWORD, accounts_server
from tests.support.browser import chromium
from tests.web.support import UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e


async def test_settings_name_password_and_becoming_a_creator(tmp_path):
    async with accounts_server(tmp_path) as api:
        await api.register("vera")
        here, elsewhere = await api.login("vera"), await api.login("vera")
        async with chromium() as browser:
            anonymous = await context_as(browser, api, None)
            page = await anonymous.new_page()
            watch = Watch(page)
            await page.goto(api.srv.http_url + "/settings")
            await page.locator("#gate", has_text="Log in to change").wait_for(timeout=UI)
            assert await page.locator("#gate-login").is_visible()
            assert not await page.locator("#settings").is_visible()
            await screenshots(page, "settings-logged-out")
            watch.check()

            context = await context_as(browser, api, "vera", headers=here)
            page = await context.new_page()
            # The wrong current password below is a 403 the page expects and explains.
            watch = Watch(page, {(403, "/api/me")})
            await page.goto(api.srv.http_url + "/")
            await page.locator("#site-header a[href='/settings']").click()  # linked from the nav
            await page.wait_for_url("**/settings", timeout=UI)
            await page.locator("#account-line", has_text="@vera · viewer account").wait_for(timeout=UI)
            assert not await page.locator("#site-header a[href='/studio']").count()
            await screenshots(page, "settings")

            await page.fill("#display-name", "Vera V.")
            await page.locator("#name-form button[type=submit]").click()
            await page.locator("#name-ok", has_text="Saved").wait_for(timeout=UI)
            assert (await (await api.http.get("/api/users/vera")).json())["display_name"] == "Vera V."

            await page.fill("#current-password", "not-my-password")
            await page.fill("#new-password", "brand-new-pass-2")
            await page.fill("#repeat-password", "brand-new-pass-2")
            await page.locator("#password-form button[type=submit]").click()
            await page.locator("#password-error", has_text="current password is wrong").wait_for(timeout=UI)
            assert (await api.http.get("/api/me", headers=elsewhere)).status == 200  # nothing changed
            await page.fill("#current-password", PASSWORD)
            await page.fill("#repeat-password", "something-else-3")
            await page.locator("#password-form button[type=submit]").click()
            await page.locator("#password-error", has_text="two new passwords differ").wait_for(timeout=UI)
            await page.fill("#repeat-password", "brand-new-pass-2")
            await page.locator("#password-form button[type=submit]").click()
            await page.locator("#password-ok", has_text="logged out everywhere else").wait_for(timeout=UI)
            assert (await api.http.get("/api/me", headers=elsewhere)).status == 401  # the other session ended
            assert (await api.http.get("/api/me", headers=here)).status == 200  # this page's did not
            await api.login("vera", "brand-new-pass-2")

            await page.locator("#become-creator").click()
            await page.locator("#studio-link").wait_for(timeout=UI)
            await page.locator("#site-header a[href='/studio']").wait_for(timeout=UI)
            assert (await (await api.http.get("/api/users/vera")).json())["role"] == "creator"
            await page.reload()
            await page.locator("#account-line", has_text="creator account").wait_for(timeout=UI)
            assert not await page.locator("#become-creator").is_visible()
            await screenshots(page, "settings-creator")
            watch.check()
            await context.close()
            await anonymous.close()


async def test_settings_say_who_makes_creators_when_registration_is_closed(tmp_path):
    async with accounts_server(tmp_path, "accounts.open_registration=false") as api:
        await api.register("vera", admin=await api.admin())
        async with chromium() as browser:
            context = await context_as(browser, api, "vera")
            page = await context.new_page()
            watch = Watch(page, {(403, "/api/me/become-creator")})  # the refusal the page explains
            await page.goto(api.srv.http_url + "/settings")
            await page.locator("#become-creator").click()
            await page.locator("#creator-error", has_text="ask an admin").wait_for(timeout=UI)
            assert not await page.locator("#become-creator").is_visible()  # nothing left to try
            assert (await (await api.http.get("/api/users/vera")).json())["role"] == "viewer"
            watch.check()
            await context.close()
