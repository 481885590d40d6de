"""Helpers of the page tests in Chromium: logged-in browser contexts, a console and
network watch that fails a test on anything the page did not expect, screenshots at phone
and desktop size."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from tests.accounts.support import Api

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
#: Milliseconds a page may take to show something (generous: the 2-core machine is shared).
UI = 30000


async def context_as(browser, api: Api, handle: str | None, viewport: dict = DESKTOP, *, headers: dict | None = None):
    """A browser context (its own localStorage), logged in as ``handle`` the way the
    page's log-in dialog leaves it (token and user in localStorage). Seeded once per tab:
    what the page does later (log out, a new role) survives a reload. ``headers``: the
    session to use (else a new login)."""
    context = await browser.new_context(viewport=viewport)
    if handle is not None:
        headers = headers or await api.login(handle)
        token = headers["Authorization"].split()[1]
        me = await (await api.http.get("/api/me", headers=headers)).json()
        await context.add_init_script(
            "if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1');"
            f" localStorage.setItem('mediasrv.token', {json.dumps(token)});"
            f" localStorage.setItem('mediasrv.user', {json.dumps(json.dumps(me))}); }}")
    return context


class Watch:
    """Everything a page reports that it should not: console errors, uncaught exceptions,
    requests that failed and HTTP answers of 400 or more, except those ``allowed`` (a set
    of (status, path) the test names, each with its reason)."""

    def __init__(self, page, allowed: set[tuple[int, str]] = frozenset()) -> None:
        self.problems: list[str] = []
        self.allowed = set(allowed)
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        # Chromium logs every 4xx/5xx answer as a console error "Failed to load resource";
        # those are judged by their response or failure (below), where the URL is known.
        if message.text.startswith("Failed to load resource"):
            return
        self.problems.append(f"console error: {message.text}")

    def _failed(self, request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure:  # a request the page itself cancelled (navigation, hls.js)
            return
        self.problems.append(f"request failed: {request.url} ({failure})")

    def _response(self, response) -> None:
        if response.status >= 400 and (response.status, urlsplit(response.url).path) not in self.allowed:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


async def screenshots(page, name: str) -> None:
    """Write NAME-phone.png (390x844) and NAME-desktop.png (1366x768), full page, and check
    neither size scrolls sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        # Two animation frames: the layout at the new size has been drawn.
        await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"{name} scrolls sideways at {viewport['width']} px ({width} px wide)"
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(size)


class PageErrors:
    """Uncaught page errors and Content-Security-Policy refusals fail the test: the lenient
    collector of the older page tests (``Watch`` is the strict one)."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text)
                if m.type == "error" and "Content Security Policy" in m.text else None)

    def check(self) -> None:
        assert not self.errors, self.errors
