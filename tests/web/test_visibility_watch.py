"""The watch page of a followers-only, 18+ live (issue 18), in headless Chromium against
the whole server (accounts mode) with a real RTMP push.

- A signed-out visitor sees "This live is for followers" with a way in (sign in), not a
  bare error, and nothing of the live is played.
- A follower is asked to confirm their age first; once they do, the page gets a grant
  (``GET /api/live/alice/playback``) and plays the signed URLs with hls.js.
- A signed-in viewer who does not follow clicks "Follow to watch", confirms their age and
  plays.
- Discovery (``/``): the follower's grid has the live's card, "for followers", and no
  broken image (its thumbnail needs a grant; the card shows the cover or nothing); a
  signed-out visitor's grid has no card of it.
Screenshots (390x844 and 1366x768) of the followers-only state, of the age gate and of
the follower's discovery grid. No
console errors or failed requests; the only HTTP error allowed is the chat's 404 for the
visitor (the chat of a followers-only live is the followers').
"""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import wait_for
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.web.support import DESKTOP, PHONE, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

UI = 45000


async def _overlay(page) -> str:
    return await page.evaluate("document.getElementById('overlay').hidden ? '' : "
                               "document.getElementById('overlay-title').textContent")


async def _plays(page) -> None:
    await page.wait_for_function("() => window.mediasrvWatch.mode === 'live'", timeout=UI)
    await page.wait_for_function("() => document.getElementById('video').currentTime > 1", timeout=UI)


async def _grid_loaded(page) -> None:
    await page.wait_for_function("() => document.getElementById('streams').getAttribute('aria-busy') === 'false'",
                                 timeout=UI)


async def test_followers_only_and_age_gate_on_the_watch_page(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0", "hls.segment_duration=1") as api, \
            chromium() as browser:
        srv, http = api.srv, api.http
        alice = await api.user("alice", "creator")
        fan = await api.user("fan")
        await api.user("newcomer")
        response = await http.put("/api/me/following/alice", headers=fan)
        assert response.status == 200
        response = await http.patch("/api/me/settings", headers=alice, json={"visibility": "followers", "mature": True})
        assert response.status == 200, await response.text()
        push = await start_ffmpeg_push(srv.rtmp_url(await api.stream_key(alice)), seconds=300, realtime=True)
        try:
            stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            assert stream.visibility == "followers" and stream.mature

            # --- signed out: not in discovery; "for followers", and a way in ---------------
            context = await context_as(browser, api, None, PHONE)
            page = await context.new_page()
            watch = Watch(page)
            await page.goto(f"{srv.http_url}/")
            await _grid_loaded(page)
            assert await page.query_selector('[data-stream="alice"]') is None
            await page.goto(f"{srv.http_url}/watch/alice")
            await page.wait_for_function("() => window.mediasrvWatch.mode === 'gate'", timeout=UI)
            assert await _overlay(page) == "This live is for followers"
            assert "Sign in and follow alice" in await page.evaluate("document.getElementById('overlay-text').textContent")
            assert await page.evaluate("[...document.querySelectorAll('#overlay-actions button')]"
                                       ".map(b => b.textContent)") == ["Sign in"]
            assert "The chat is for followers" in await page.text_content("#chat-off")
            await screenshots(page, "visibility-watch-followers-only")
            watch.check()

            # --- a follower: the live in discovery, the age gate, then the live ---------------
            context = await context_as(browser, api, "fan", DESKTOP, headers=fan)
            page = await context.new_page()
            watch = Watch(page)
            await page.goto(f"{srv.http_url}/")
            await page.wait_for_selector('[data-stream="alice"]', timeout=UI)
            assert "for followers" in await page.text_content('[data-stream="alice"] .creator')
            assert await page.query_selector('[data-stream="alice"] .thumb img') is None  # no cover set
            await screenshots(page, "visibility-discovery-followers-only")
            await page.goto(f"{srv.http_url}/watch/alice")
            await page.wait_for_function("() => window.mediasrvWatch.mode === 'gate'", timeout=UI)
            assert await _overlay(page) == "18+ live"
            await screenshots(page, "visibility-watch-age-gate")
            await page.click("text=I am 18 or older")
            await _plays(page)
            assert await page.evaluate("window.mediasrvWatch.restricted") is True
            watch.check()

            # --- signed in, not following: follow to watch -------------------------------------
            context = await context_as(browser, api, "newcomer", PHONE)
            page = await context.new_page()
            watch = Watch(page)
            await page.goto(f"{srv.http_url}/watch/alice")
            await page.wait_for_function("() => window.mediasrvWatch.mode === 'gate'", timeout=UI)
            assert await _overlay(page) == "This live is for followers"
            await page.click("text=Follow to watch")
            await page.wait_for_function("() => document.getElementById('overlay-title').textContent === '18+ live'",
                                         timeout=UI)
            await page.click("text=I am 18 or older")
            await _plays(page)
            # Now a follower who may watch: the chat is joined (its box is back).
            await page.wait_for_function("() => document.getElementById('chat-off').hidden", timeout=UI)
            watch.check()
        finally:
            if push.returncode is None:
                push.kill()
            await push.wait()
