"""Every ``pattern`` attribute of every page is a valid regular expression in Chromium.

Browsers compile a form control's ``pattern`` with the ``v`` flag; one that does not
compile is ignored (Chromium only logs it), so the form accepts anything. The sign-up
handle's ``[A-Za-z0-9_-]+`` is such a pattern (a bare ``-`` in a class is a syntax error
under ``v``): a handle with a space went to the server. Issue 16, item 7.

Each page is opened as an anonymous visitor and as the admin (the studio's and the
operator page's forms exist only for them), the log-in / sign-up dialog is opened, and
every ``[pattern]`` in the document is compiled with ``new RegExp(p, "v")``. Then the
sign-up form refuses a handle with a space before any request is made.
"""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server
from tests.support.browser import chromium
from tests.web.support import UI, Watch, context_as

pytestmark = pytest.mark.e2e

PAGES = ("/", "/watch/alice", "/studio", "/studio/live", "/admin", "/settings")

COMPILE = """() => [...document.querySelectorAll('[pattern]')].map((node) => {
  const pattern = node.getAttribute('pattern');
  try { new RegExp(pattern, 'v'); return {id: node.id, pattern, error: null}; }
  catch (e) { return {id: node.id, pattern, error: String(e)}; }
})"""


async def open_auth_dialog(page, mode: str) -> None:
    """Open the header's log-in or sign-up dialog (it is built on first use)."""
    await page.locator("#signup" if mode == "signup" else "#login").click()
    await page.locator("#auth-dialog[open]").wait_for(timeout=UI)


async def test_every_pattern_on_every_page_compiles_in_chromium(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api:
        await api.user("alice", "creator")
        async with chromium() as browser:
            seen = []
            for who in (None, "admin"):
                context = await context_as(browser, api, who, headers=await api.admin() if who else None)
                for path in PAGES:
                    page = await context.new_page()
                    watch = Watch(page)
                    await page.goto(api.srv.http_url + path)
                    await page.locator("#site-header .account button, #site-header .account .who").first.wait_for(
                        timeout=UI)
                    if who is None:
                        await open_auth_dialog(page, "signup")
                    found = await page.evaluate(COMPILE)
                    bad = [f for f in found if f["error"]]
                    assert not bad, f"{path} as {who or 'anonymous'}: patterns Chromium cannot compile: {bad}"
                    seen += [(path, f["id"]) for f in found]
                    watch.check()
                    await page.close()
                await context.close()
            # Not vacuous: the sign-up dialog's handle has a pattern on every page.
            assert {path for path, control in seen if control == "auth-handle"} == set(PAGES), seen


async def test_the_sign_up_form_refuses_a_handle_with_a_space(tmp_path):
    async with accounts_server(tmp_path) as api:
        async with chromium() as browser:
            context = await context_as(browser, api, None)
            page = await context.new_page()
            watch = Watch(page)
            sent = []
            page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
            await page.goto(api.srv.http_url + "/")
            await open_auth_dialog(page, "signup")
            await page.fill("#auth-handle", "new user")
            await page.fill("#auth-password", "long-password-1")
            await page.locator("#auth-submit").click()
            validity = await page.evaluate(
                "() => { const i = document.getElementById('auth-handle');"
                " return {mismatch: i.validity.patternMismatch, message: i.validationMessage}; }")
            assert validity["mismatch"] is True, validity
            assert validity["message"], validity  # the browser tells the user why
            assert await page.locator("#auth-dialog[open]").count() == 1
            # The refusal is the browser's: nothing was sent, no account exists.
            assert not [url for url in sent if url.endswith("/api/users")], sent
            assert (await api.http.get("/api/users/new%20user")).status in (400, 404)

            # A handle the server accepts passes the form, in any case (stored lower-case).
            await page.fill("#auth-handle", "New_User-1")
            assert await page.evaluate("document.getElementById('auth-handle').checkValidity()") is True
            await page.locator("#auth-submit").click()
            await page.locator("#whoami", has_text="@new_user-1").wait_for(timeout=UI)
            watch.check()
            await context.close()
