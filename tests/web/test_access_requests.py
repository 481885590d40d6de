"""Live access on request in the pages (issue 16, item 3), in headless Chromium against the
whole server (accounts mode, a follower threshold no new creator meets):

the studio explains the threshold and what counts toward it and offers a request form; the
creator asks; an admin sees the request in /admin, refuses one without a reason (refused by
the server, the page says so), grants it; the creator's open studio hears of it on its
alerts feed and shows "Live access: yes" without a reload. The admin sets the community's
threshold in /admin. No console errors on either page; screenshots at phone (390x844) and
laptop (1366x768) size go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server
from tests.support.browser import chromium
from tests.web.support import UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e


async def test_ask_refuse_needs_a_reason_grant_and_the_studio_hears_it(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=50") as api, chromium() as browser:
        admin_headers = await api.admin()
        studio_context = await context_as(browser, api, "dana", headers=await api.user("dana", "creator"))
        admin_context = await context_as(browser, api, "admin", headers=admin_headers)
        try:
            studio = await studio_context.new_page()
            studio_errors = Watch(studio)
            await studio.goto(f"{api.srv.http_url}/studio")
            explain = studio.locator("#access-explain")
            await explain.wait_for(state="visible", timeout=UI)
            assert "50 followers" in await explain.text_content()
            await studio.fill("#access-message", "I stream board games on Sundays")
            await studio.click("#access-request-form button[type=submit]")
            await studio.locator("#access-request-status").filter(has_text="waiting for an operator").wait_for(timeout=UI)
            assert await studio.locator("#access-request-form").is_hidden()
            await screenshots(studio, "studio-access-request")

            admin = await admin_context.new_page()
            # The test refuses once without a reason, on purpose: the server answers 400.
            admin_errors = Watch(admin, {(400, "/api/live-access/requests/1/refuse")})
            await admin.goto(f"{api.srv.http_url}/admin")
            row = admin.locator("#access-requests tr", has_text="@dana")
            await row.wait_for(timeout=UI)
            assert "board games" in await row.text_content()
            await screenshots(admin, "admin-access-requests")
            await row.locator("[data-refuse=dana]").click()  # no reason: the server refuses to refuse
            await admin.locator(".toast", has_text="reason").first.wait_for(timeout=UI)
            assert (await (await api.http.get("/api/live-access/requests",
                                              headers=admin_headers)).json())["requests"][0]["status"] == "pending"
            await row.locator("[data-grant=dana]").click()
            await admin.locator("#access-requests", has_text="No requests waiting").wait_for(timeout=UI)

            # The studio hears of it (alerts feed) and shows it without a reload.
            await studio.locator("#access-status", has_text="Live access: yes").wait_for(timeout=UI)
            assert await studio.locator("#access-request").is_hidden()

            # The community's threshold, set by the admin, is what creators are measured by.
            await admin.fill("#min-followers", "7")
            await admin.click("#threshold-form button[type=submit]")
            await admin.locator("#threshold-source", has_text="Set here").wait_for(timeout=UI)
            eve = await api.user("eve", "creator")
            access = await (await api.http.get("/api/me/live-access", headers=eve)).json()
            assert access["min_followers"] == 7
            studio_errors.check()
            admin_errors.check()
        finally:
            await studio_context.close()
            await admin_context.close()
