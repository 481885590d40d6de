"""A private live (backstage) on the watch page (issue 17, item 5), in headless Chromium
against the whole server (accounts mode) with a real RTMP push (FFmpeg, real time).

- The creator and the moderator she appointed open /watch/alice while the live is private:
  the page learns from the live status (asked with their login) that they may watch it,
  asks ``GET /api/live/alice/playback`` and plays its signed URL with hls.js (the video's
  time advances), under a "Backstage" banner that says who can see it. It renews the grant
  before it expires (``live.grant_seconds`` is short here) without a single refused request.
- A visitor who is not logged in and a viewer who is see the channel's ordinary offline
  page: no banner, not one request for the live's playlists or its playback URLs.
- The creator removes her moderator: his page is refused (404, the grant was revoked) and
  turns into the offline page; hers gets a 404 too, renews the grant and keeps playing.
- She makes the live public: her banner goes, and the anonymous visitor's page, still
  open, starts playing it.

Screenshots (390x844 and 1366x768): the creator backstage, the viewer's offline page, the
removed moderator's page. No console errors, failed requests or HTTP errors on any page
but the refusals the test causes (named below).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import wait_for
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.web.support import DESKTOP, PHONE, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

#: Milliseconds a page may take (generous: the 2-core machine runs the encoder and Chromium).
UI = 45000
#: Seconds a grant lives here: the page renews it at 80 % of that (16 s), within the test.
GRANT_SECONDS = 20
BANNER = "Backstage — only the creator, their moderators and operators can see this"


class PageWatch(Watch):
    """``Watch``, plus the 404s of the live's media URLs once the test revoked the grants
    they carry (``revoked``): expected, and kept in ``refused`` instead."""

    def __init__(self, page) -> None:
        self.revoked = False
        self.refused: list[str] = []
        self.requested: list[str] = []
        self.requested_urls: list[str] = []
        super().__init__(page)
        page.on("request", self._request)

    def _request(self, request) -> None:
        self.requested.append(urlsplit(request.url).path)
        self.requested_urls.append(request.url)

    def _response(self, response) -> None:
        path = urlsplit(response.url).path
        if self.revoked and response.status == 404 and (path.startswith("/live/alice/")
                                                        or path == "/api/streams/alice/events"):
            self.refused.append(response.url)
            return
        super()._response(response)


async def _advancing(page, seconds: float = 1.0) -> None:
    """Until the video's time has moved on by ``seconds`` from now: it plays."""
    start = await page.evaluate("document.getElementById('video').currentTime")
    await page.wait_for_function(f"() => document.getElementById('video').currentTime > {start + seconds}",
                                 timeout=UI)


async def _banner(page) -> str | None:
    """The backstage banner's text, or None while it is hidden."""
    return await page.evaluate("(() => { const b = document.getElementById('backstage-banner');"
                               " return b.hidden ? null : b.textContent.trim(); })()")


async def test_a_private_live_plays_on_the_watch_page_for_its_team_and_nobody_else(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0", "hls.segment_duration=1",
                               f"live.grant_seconds={GRANT_SECONDS}") as api, \
            chromium() as browser:
        http, srv = api.http, api.srv
        people = {"alice": await api.user("alice", "creator"), "mod": await api.user("mod"),
                  "fan": await api.user("fan"), "anonymous": None}
        response = await http.patch("/api/me/settings", headers=people["alice"],
                                    json={"backstage": True, "title": "Sound check"})
        assert response.status == 200 and (await response.json())["backstage"] is True
        response = await http.put("/api/users/alice/chat/moderators/mod", headers=people["alice"])
        assert response.status == 200, await response.text()

        push = await start_ffmpeg_push(srv.rtmp_url(await api.stream_key(people["alice"])), seconds=600)
        pages: dict[str, tuple] = {}
        studio_context = None
        try:
            stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            assert stream.private
            for who, viewport in (("alice", DESKTOP), ("mod", PHONE), ("fan", PHONE), ("anonymous", DESKTOP)):
                headers = people[who]
                context = await context_as(browser, api, who if headers else None, viewport, headers=headers)
                page = await context.new_page()
                pages[who] = (page, PageWatch(page))
                await page.goto(f"{srv.http_url}/watch/alice")

            # --- the creator and her moderator see it, under the banner ---------------------
            for who in ("alice", "mod"):
                page, _ = pages[who]
                await page.wait_for_function(
                    "() => window.mediasrvWatch.mode === 'live' && window.mediasrvWatch.backstage", timeout=UI)
                await _advancing(page)
                assert await _banner(page) == BANNER, who
                assert await page.evaluate("document.getElementById('overlay').hidden"), who
                assert await page.evaluate("window.mediasrvWatch.error") is None, who

            # --- anyone else: the ordinary offline page, nothing asked of the live ----------
            for who in ("fan", "anonymous"):
                page, watch = pages[who]
                await page.wait_for_function("() => window.mediasrvWatch.mode === 'offline'", timeout=UI)
                assert await _banner(page) is None
                assert await page.evaluate("document.getElementById('overlay-title').textContent") == "Offline"
                assert await page.evaluate("document.getElementById('title').textContent") == "alice is offline"
                asked = [p for p in watch.requested if p.startswith("/live/alice/") and not p.endswith("/chat")
                         or p == "/api/live/alice/playback"]
                assert asked == [], (who, asked)
            await screenshots(pages["alice"][0], "backstage-watch-creator")
            await screenshots(pages["fan"][0], "backstage-watch-viewer")

            # --- the grant is renewed before it expires, the player never refused -----------
            page, watch = pages["alice"]
            first = await page.evaluate("window.mediasrvWatch.grant")
            await page.wait_for_function("() => window.mediasrvWatch.renewals >= 1", timeout=GRANT_SECONDS * 1000 + UI)
            renewed = await page.evaluate("window.mediasrvWatch.grant")
            assert renewed != first
            # Past the first grant's expiry (the server's clock is this process's): the
            # running player goes on, every request now carrying the new grant.
            expires = int(first.split(".")[0])
            await asyncio.sleep(max(0.0, expires + 1 - time.time()))  # the time under test, not a synchronisation
            since = len(watch.requested_urls)
            await _advancing(page, 2.0)
            later = [u for u in watch.requested_urls[since:] if "/live/alice/" in u]
            assert later and all(f"pt={renewed}" in u for u in later), later
            assert not watch.problems, watch.problems

            # The creator's studio follows the private live's figures with a grant too.
            studio_context = await context_as(browser, api, "alice", DESKTOP, headers=people["alice"])
            studio = await studio_context.new_page()
            studio_watch = PageWatch(studio)
            await studio.goto(f"{srv.http_url}/studio")
            await studio.wait_for_function("() => (window.mediasrvStudio.statsReceived || 0) >= 2", timeout=UI)

            # --- the moderator is removed: his page is refused, hers renews -----------------
            for _, watch in [*pages.values(), (studio, studio_watch)]:
                watch.revoked = True
            renewals = await page.evaluate("window.mediasrvWatch.renewals")
            response = await http.delete("/api/users/alice/chat/moderators/mod", headers=people["alice"])
            assert response.status == 200 and (await response.json())["changed"] is True
            mod_page, mod_watch = pages["mod"]
            await mod_page.wait_for_function(
                "() => window.mediasrvWatch.mode === 'offline' && !window.mediasrvWatch.backstage", timeout=UI)
            assert await _banner(mod_page) is None and mod_watch.refused, mod_watch.refused
            assert "/api/live/alice/playback" in mod_watch.requested  # how it played before
            await screenshots(mod_page, "backstage-watch-removed-moderator")
            await page.wait_for_function(f"() => window.mediasrvWatch.renewals > {renewals}", timeout=UI)
            await _advancing(page, 2.0)
            assert await page.evaluate("window.mediasrvWatch.backstage") and await _banner(page) == BANNER
            # The studio's open feed is closed by the server (its grant voided); the browser
            # reconnects with that grant, is refused, takes a fresh grant and goes on.
            await studio.wait_for_function("() => (window.mediasrvStudio.feedRenewals || 0) >= 1", timeout=UI)
            received = await studio.evaluate("window.mediasrvStudio.statsReceived")
            await studio.wait_for_function(f"() => window.mediasrvStudio.statsReceived >= {received + 2}", timeout=UI)
            assert studio_watch.refused and all("/api/streams/alice/events" in u or "/live/alice/" in u
                                                for u in studio_watch.refused), studio_watch.refused
            studio_watch.check()

            # --- public: the banner goes, the visitor's open page starts playing ------------
            response = await http.post("/api/me/live/public", headers=people["alice"])
            assert response.status == 200 and (await response.json())["state"] == "public"
            await page.wait_for_function("() => !window.mediasrvWatch.backstage", timeout=UI)
            assert await _banner(page) is None
            await _advancing(page)
            visitor, _ = pages["anonymous"]
            await visitor.wait_for_function("() => window.mediasrvWatch.mode === 'live'", timeout=UI)
            await _advancing(visitor)
            assert await _banner(visitor) is None
            for who, (_, watch) in pages.items():
                watch.check()
        finally:
            for page, _ in pages.values():
                await page.context.close()
            if studio_context is not None:
                await studio_context.close()
            if push.returncode is None:
                push.kill()
            await push.wait()
