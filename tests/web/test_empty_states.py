"""Empty states and feedback in the pages (issue 16, item 9), in headless Chromium against
the whole server (accounts mode):

- ``/watch/nobody`` (no such account, nothing live) is a 404 page in the site's style that
  says what to do next, with no Follow or gift buttons; alice's offline channel keeps its
  channel page.
- The offline channel page and the studio wait for a stream without a 404 in their
  console: they ask ``GET /api/live/NAME/status`` (the studio its own ``GET /api/me/live``,
  which also sees a private live; 200 either way), never ``GET /api/streams/NAME``.
- An operator stops a live (a real FFmpeg push) from /admin with a reason, in an in-page
  dialog: the viewer's watch page and the creator's studio say an operator stopped it and
  why. The report is resolved in an in-page form (no window.prompt / confirm); the page's
  buttons fit a 390 px phone; "Live for" says what its column shows; users are found by
  the start of their handle, and those waiting for live access listed.

Every page's console and network are watched (tests/web/support.py). Screenshots at
390x844 and 1366x768 go to test-artifacts/screenshots/ (watch-no-channel, admin-operator,
watch-stopped, studio-stopped).
"""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.support.server import StreamRecorder
from tests.web.support import DESKTOP, PHONE, UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

REASON = "Music you have no rights to"

#: Every button on screen (in #admin) whose right edge is past the viewport: none may be.
BUTTONS_OFF_SCREEN = """() => [...document.querySelectorAll('#admin button, #admin a.button')]
  .filter((b) => b.offsetParent !== null)
  .map((b) => [b.textContent.trim(), b.getBoundingClientRect().right])
  .filter(([, right]) => right > window.innerWidth)"""


async def test_no_channel_is_a_404_page_and_waiting_pages_log_no_404(tmp_path):
    async with accounts_server(tmp_path) as api, chromium() as browser:
        alice = await api.user("alice", "creator")
        for viewport in (PHONE, DESKTOP):
            context = await context_as(browser, api, None, viewport)
            page = await context.new_page()
            watch = Watch(page, {(404, "/watch/nobody")})  # the page's own status, on purpose
            response = await page.goto(api.srv.http_url + "/watch/nobody")
            assert response.status == 404
            await page.locator("#nf-title", has_text="No channel called nobody").wait_for(timeout=UI)
            assert await page.title() == "No such channel · mediasrv"
            # What to do next, and nothing of a channel page.
            assert await page.locator("#nf-live").get_attribute("href") == "/"
            assert await page.locator("#nf-studio").is_visible()
            assert await page.locator("#follow, #gift-bar, #chat-form, video").count() == 0
            assert await page.locator("#site-header .brand").is_visible()  # the site's header and style
            await screenshots(page, "watch-no-channel")
            watch.check()
            await context.close()

        # Alice's channel, offline: her channel page, and it waits quietly.
        context = await context_as(browser, api, None, PHONE)
        page = await context.new_page()
        watch = Watch(page)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url.split("?")[0].removeprefix(api.srv.http_url)))
        response = await page.goto(api.srv.http_url + "/watch/alice")
        assert response.status == 200
        await page.wait_for_function("() => window.mediasrvWatch && window.mediasrvWatch.mode === 'offline'",
                                     timeout=UI)
        assert "alice is offline" in await page.locator("#title").text_content()
        # Its fallback look (every 10 s) is the quiet status too.
        async with page.expect_request(lambda r: "/api/live/alice/status" in r.url, timeout=UI):
            pass
        watch.check()
        await context.close()

        studio_context = await context_as(browser, api, "alice", DESKTOP, headers=alice)
        studio = await studio_context.new_page()
        studio_watch = Watch(studio)
        studio.on("request", lambda r: asked.append(r.url.split("?")[0].removeprefix(api.srv.http_url)))
        await studio.goto(api.srv.http_url + "/studio")
        await studio.locator("#live-status", has_text="Offline").wait_for(timeout=UI)
        for _ in range(2):  # the studio looks every 3 s: twice more, and never a 404
            async with studio.expect_request(lambda r: r.url.endswith("/api/me/live"), timeout=UI):
                pass
        studio_watch.check()
        assert "/api/streams/alice" not in asked, asked
        await studio_context.close()


async def test_an_operator_stops_a_live_with_a_reason_the_viewer_and_creator_see(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0") as api, chromium() as browser:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        admin_headers = await api.admin()
        await api.user("alfie", "creator")
        response = await api.http.post("/api/reports", headers=bob,
                                       json={"kind": "stream", "stream": "alice", "reason": "loud music"})
        assert response.status in (200, 201), await response.text()

        recorder = StreamRecorder(api.srv.hub)
        push = await start_ffmpeg_push(api.srv.rtmp_url(await api.stream_key(alice)), seconds=300)
        try:
            await recorder.wait_started("alice")
            studio_context = await context_as(browser, api, "alice", DESKTOP, headers=alice)
            viewer_context = await context_as(browser, api, "bob", PHONE, headers=bob)
            admin_context = await context_as(browser, api, "admin", PHONE, headers=admin_headers)

            studio = await studio_context.new_page()
            studio_watch = Watch(studio)
            await studio.goto(api.srv.http_url + "/studio")
            await studio.locator("#live-status", has_text="Live").wait_for(timeout=UI)

            viewer = await viewer_context.new_page()
            viewer_watch = Watch(viewer)
            await viewer.goto(api.srv.http_url + "/watch/alice")
            await viewer.wait_for_function("() => document.getElementById('video').currentTime >= 0.5", timeout=UI)

            admin = await admin_context.new_page()
            admin_watch = Watch(admin)
            native_dialogs: list[str] = []
            admin.on("dialog", lambda d: native_dialogs.append(d.message))
            await admin.goto(api.srv.http_url + "/admin")
            stop = admin.locator('button[data-stop="alice"]')
            await stop.wait_for(timeout=UI)
            report = admin.locator("#reports tr[data-report]", has_text="loud music")
            await report.wait_for(timeout=UI)
            # "Live for": a duration (h:mm:ss or m:ss), its start time in the title.
            assert await admin.locator("#live-h ~ .table-wrap th").nth(3).text_content() == "Live for"
            since = admin.locator('#live-streams tr[data-stream="alice"] time')
            assert ":" in await since.text_content()
            assert (await since.get_attribute("title")).startswith("since ")
            # On a phone every button is on screen (rows are laid out as cards).
            assert await admin.evaluate(BUTTONS_OFF_SCREEN) == []
            await screenshots(admin, "admin-operator")

            # Resolve the report in the page's own form.
            await report.locator('button[data-how="resolved"]').click()
            dialog = admin.locator("#resolve-dialog[open]")
            await dialog.wait_for(timeout=UI)
            assert "loud music" in await dialog.locator("#resolve-what").text_content()
            await admin.fill("#resolve-text", "Asked her to turn it down")
            await screenshots(admin, "admin-resolve-dialog")
            await dialog.locator("#resolve-submit").click()
            await admin.locator("#reports", has_text="No reports here").wait_for(timeout=UI)
            done = await (await api.http.get("/api/reports?status=resolved", headers=admin_headers)).json()
            assert [r["resolution"] for r in done["reports"]] == ["Asked her to turn it down"]

            # Users by the start of their handle; those waiting for live access (none).
            await admin.fill("#user-handle", "al")
            await admin.click("#user-form button[type=submit]")
            await admin.locator('#user-results li[data-user="alfie"]').wait_for(timeout=UI)
            assert await admin.locator("#user-results li").count() == 2  # alfie, alice
            assert "2 users" in await admin.locator("#user-results-status").text_content()
            await admin.click("#user-waiting")
            await admin.locator("#user-results-status", has_text="Nobody is waiting").wait_for(timeout=UI)

            # Stop, with a reason, in the page's own dialog.
            await stop.click()
            dialog = admin.locator("#stop-dialog[open]")
            await dialog.wait_for(timeout=UI)
            await admin.fill("#stop-reason", REASON)
            await dialog.locator("#stop-submit").click()
            await admin.locator("#live-streams", has_text="Nobody is live").wait_for(timeout=UI)
            assert native_dialogs == []

            await viewer.locator("#overlay-title", has_text="An operator stopped this stream").wait_for(timeout=UI)
            assert REASON in await viewer.locator("#overlay-text").text_content()
            assert REASON in await viewer.locator("#chat-log").text_content()
            await screenshots(viewer, "watch-stopped")
            notice = studio.locator("#stop-notice")
            await notice.wait_for(state="visible", timeout=UI)
            assert REASON in await notice.text_content()
            await studio.locator("#live-status", has_text="Offline").wait_for(timeout=UI)
            await screenshots(studio, "studio-stopped")

            for watch in (studio_watch, viewer_watch, admin_watch):
                watch.check()
            for context in (studio_context, viewer_context, admin_context):
                await context.close()
        finally:
            if push.returncode is None:  # the stop disconnects it; FFmpeg then exits by itself
                push.kill()
            await push.wait()
