"""Numbers that add up on the studio and admin pages (issue 16, item 8), in headless
Chromium against the whole server (accounts mode, the default 50 % platform share):

- offline, every chart says it has no data (no axis labels: an empty chart used to label
  its scale "1 / 1"), the top-gifters list is a sentence, not a numbered item "1. No gifts
  yet.";
- live (FFmpeg pushing), with one viewer whose player opened two sessions, the figures
  agree: viewers now, peak and unique viewers are one; the viewers chart's axis names
  distinct values;
- after a rose (10 coins) and a heart (1 coin), the earnings show the coins sent, the
  platform's share and the creator's part exactly as the ledger has them, and they add up
  (11 - 6 = 5: the creator's part of each gift is rounded down);
- each figure says what it counts (a hint on the page, the same in its title).

No console errors; screenshots of the studio (empty and live) and /admin at 390x844 and
1366x768 go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re

import pytest

from mediasrv.httpkit.keys import VIEWERS
from tests.accounts.support import accounts_server
from tests.gifts.support import credit, send
from tests.support.browser import chromium
from tests.support.clients import start_ffmpeg_push
from tests.web.support import UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

CHARTS = ("viewers", "chat", "gifts", "bitrate", "fps")


async def figures(page, selector: str) -> dict[str, tuple[str, str]]:
    """{label: (value, hint)} of a figures list."""
    return {label: (value, hint) for label, value, hint in await page.eval_on_selector_all(
        f"{selector} dt", "ds => ds.map(d => [d.firstChild.textContent, d.nextElementSibling.textContent,"
        " d.title])")}


def number(text: str) -> int:
    return int(re.search(r"\d[\d,]*", text).group(0).replace(",", ""))


async def test_studio_and_admin_figures_add_up(tmp_path):
    # Sessions stay open for the whole test, however slow the shared machine is.
    async with accounts_server(tmp_path, "live_access.min_followers=0", "viewers.idle_timeout=600") as api, chromium() as browser:
        alice = await api.user("alice", "creator")
        bob = await api.user("bob")
        await credit(api, "bob", 100, "figures-credit")
        studio_context = await context_as(browser, api, "alice", headers=alice)
        admin_context = await context_as(browser, api, "admin", headers=await api.admin())
        push = None
        try:
            studio = await studio_context.new_page()
            watch = Watch(studio)
            await studio.goto(f"{api.srv.http_url}/studio")

            # --- offline: empty states -------------------------------------------------------
            await studio.locator("#leaderboard-empty").wait_for(state="visible", timeout=UI)
            for name in CHARTS:
                canvas = studio.locator(f"#chart-{name}")
                await studio.wait_for_function("c => c.dataset.empty === 'true'", arg=await canvas.element_handle(),
                                               timeout=UI)
                assert await canvas.get_attribute("data-axis") == "", name
            assert await studio.locator("#leaderboard").is_hidden()
            assert await studio.locator("#leaderboard li").count() == 0
            earnings = await figures(studio, "#earnings")
            assert number(earnings["Gift coins sent to you"][0]) == 0 and number(earnings["Your earnings"][0]) == 0
            await screenshots(studio, "studio-figures-empty")

            # --- live, one viewer with two sessions, two gifts ----------------------------
            push = await start_ffmpeg_push(api.srv.rtmp_url(await api.stream_key(alice)), seconds=120, fps=15)
            await studio.locator("#live-status", has_text="Live").wait_for(timeout=UI)
            # One browser whose page fetched the master playlist twice (a recovery): two
            # sessions of one client (address + user agent).
            for _ in range(2):
                response = await api.http.get("/live/alice/index.m3u8", headers={"User-Agent": "one-browser"})
                assert response.status == 200, await response.text()
                master = await response.text()
            # ... and plays: its media playlist, then a segment (issue 18: a viewer counts
            # once it fetches media, not on playlists alone).
            variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
            response = await api.http.get(f"/live/alice/{variant}", headers={"User-Agent": "one-browser"})
            assert response.status == 200, await response.text()
            segment = next(line for line in (await response.text()).splitlines() if line and not line.startswith("#"))
            response = await api.http.get(f"/live/alice/source/{segment}", headers={"User-Agent": "one-browser"})
            assert response.status == 200
            await response.read()
            audience = api.srv.app[VIEWERS].audience("alice")
            assert len(audience.sessions) == 2
            assert (await send(api, bob, "alice", "rose", "figures-1")).status == 201
            assert (await send(api, bob, "alice", "heart", "figures-2")).status == 201

            await studio.wait_for_function(
                "() => Number(document.getElementById('out-viewers').textContent) === 1", timeout=UI)
            live = await figures(studio, "#live-figures")
            assert number(live["Peak viewers"][0]) == 1 == number(live["Unique viewers"][0]), live
            assert await studio.get_attribute("#chart-viewers", "data-empty") == "false"
            axis = (await studio.get_attribute("#chart-viewers", "data-axis")).split(" / ")
            assert len(axis) == len(set(axis)) and axis == ["1", "2"], axis
            for name in CHARTS:
                axis = (await studio.get_attribute(f"#chart-{name}", "data-axis") or "").split(" / ")
                assert len(axis) == len(set(axis)), (name, axis)
            await studio.wait_for_function(
                "() => document.getElementById('live-figures').textContent.includes('11 coins')", timeout=UI)
            live = await figures(studio, "#live-figures")
            assert live["Gifts"][0] == "2 · 11 coins · 5 yours", live
            for label, (_, hint) in live.items():
                assert hint, f"{label} says nothing of what it counts"

            # The earnings (read when the studio opens) against the ledger.
            await studio.reload()
            await studio.locator("#leaderboard li").first.wait_for(timeout=UI)
            earnings = await figures(studio, "#earnings")
            totals = api.store.gift_totals(api.store.get_user_by_handle("alice").id)
            gross, platform, mine = (number(earnings["Gift coins sent to you"][0]),
                                     number(earnings["Platform share (50 %)"][0]), number(earnings["Your earnings"][0]))
            assert (gross, mine, platform) == totals == (11, 5, 6), (earnings, totals)
            assert gross - platform == mine
            assert "0.05 USD" in earnings["Your earnings"][0]
            for label, (_, hint) in earnings.items():
                assert hint, f"{label} says nothing of what it counts"
            assert await studio.locator("#leaderboard-empty").is_hidden()
            assert await studio.locator("#leaderboard li").all_text_contents() == ["bob — 11 coins"]
            for name in ("viewers", "chat", "gifts", "bitrate", "fps"):
                assert await studio.locator(f"#chart-{name}").locator("xpath=..").locator(".hint").text_content()
            await studio.wait_for_function(
                "() => Number(document.getElementById('chart-bitrate').dataset.samples || 0) >= 3", timeout=UI)
            await screenshots(studio, "studio-figures-live")
            watch.check()

            admin = await admin_context.new_page()
            admin_watch = Watch(admin)
            await admin.goto(f"{api.srv.http_url}/admin")
            row = admin.locator('tr[data-stream="alice"]')
            await row.wait_for(timeout=UI)
            assert await row.locator("td").nth(2).text_content() == "1"
            assert "one per browser" in await admin.locator("#live-hint").text_content()
            await screenshots(admin, "admin-figures")
            admin_watch.check()
        finally:
            if push is not None:
                push.kill()
                await push.wait()
            await studio_context.close()
            await admin_context.close()
