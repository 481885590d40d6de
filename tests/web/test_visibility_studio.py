"""Who may watch in the studio (issue 18), in headless Chromium against the whole server
with a real RTMP push: the creator invites a viewer (the empty state says what to do
first), chooses the visibility of her next lives and 18+, then, while live, changes the
live's visibility from the studio and the server applies it at once. The same controls on
/studio/live. Screenshots (390x844 and 1366x768) of the studio's "Who may watch" card; no
console errors or failed requests."""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import wait_for
from tests.security.support import eventually
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.web.support import DESKTOP, PHONE, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

UI = 45000


async def test_visibility_invites_and_18_plus_in_the_studio(tmp_path):
    async with accounts_server(tmp_path, "live_access.min_followers=0", "hls.segment_duration=1") as api, \
            chromium() as browser:
        srv, http = api.srv, api.http
        alice = await api.user("alice", "creator")
        await api.user("guest")
        context = await context_as(browser, api, "alice", PHONE, headers=alice)
        page = await context.new_page()
        watch = Watch(page)
        await page.goto(f"{srv.http_url}/studio")
        await page.wait_for_selector("#audience[data-ready='yes']", timeout=UI)
        assert await page.is_visible("#invites-empty")
        assert not await page.is_visible("#visibility-now-row")  # offline: no "this live, now"

        await page.fill("#invite-handle", "guest")
        await page.click("#invite-form button[type=submit]")
        await page.wait_for_selector("#invites li", timeout=UI)
        assert "@guest" in await page.text_content("#invites")
        assert not await page.is_visible("#invites-empty")
        invites = await (await http.get("/api/me/invites", headers=alice)).json()
        assert [i["handle"] for i in invites["invites"]] == ["guest"]

        await page.select_option("#visibility-default", "followers")
        await page.check("#mature-default")

        async def saved():
            settings = await (await http.get("/api/me/settings", headers=alice)).json()
            return settings["visibility"] == "followers" and settings["mature"]
        await wait_for_async(saved)
        await screenshots(page, "visibility-studio")

        push = await start_ffmpeg_push(srv.rtmp_url(await api.stream_key(alice)), seconds=120, realtime=True)
        try:
            stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            assert stream.visibility == "followers" and stream.mature  # the saved choice
            await page.reload()
            await page.wait_for_selector("#audience[data-ready='yes']", timeout=UI)
            await page.wait_for_function("() => !document.getElementById('visibility-now-row').hidden", timeout=UI)
            assert await page.input_value("#visibility-now") == "followers"
            await page.select_option("#visibility-now", "private")
            await wait_for_async(lambda: _async(stream.visibility == "private"))
            await screenshots(page, "visibility-studio-live")

            # /studio/live has the same controls, its "now" row showing the live's.
            golive = await context.new_page()
            golive_watch = Watch(golive)
            await golive.goto(f"{srv.http_url}/studio/live")
            await golive.wait_for_function("() => document.getElementById('visibility-now-row') && "
                                           "!document.getElementById('visibility-now-row').hidden", timeout=UI)
            assert await golive.input_value("#visibility-now") == "private"
            golive_watch.check()
        finally:
            if push.returncode is None:
                push.kill()
            await push.wait()
        watch.check()


async def _async(value):
    return value


async def wait_for_async(check, timeout: float = 20):
    """Until ``check()`` (a coroutine function) is truthy; fails after ``timeout`` s."""
    await eventually(check, timeout=timeout, what="the change saved")
