"""Recordings a creator can find and a viewer can watch (issue 16, item 6), in headless
Chromium against the whole server (accounts mode, recording on) with a real FFmpeg push.

- A fresh server's discovery page, nobody live and nothing recorded: an empty state that
  says what to do next (sign up; as a creator, go live).
- Alice (a cover, a go-live title with markup characters, "save by default" as a new
  creator has it) broadcasts 3 s: the recording is saved when it ends, without anyone
  deciding. Her channel page (offline) lists it under "Past broadcasts": title, cover,
  date and length, linking to the video page.
- The video page is titled with the broadcast's title, its quality menu names the
  rendition ("Source"), never the recording's id, and it has no live chat or gift bar; it
  plays.
- Discovery, nobody live: the recent video and the channels, and what to do next.

Every page's console and network are watched (tests/web/support.py). Screenshots at
390x844 and 1366x768 go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.accounts.support import accounts_server
from tests.accounts.test_cover import encode_image
from tests.support.browser import chromium
from tests.support.clients import ffmpeg_push
from tests.web.support import UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

TITLE = "Knitting <b>socks</b> & tea"  # markup characters must show as text


async def saved_recording(api, headers: dict, timeout: float = 30.0) -> dict:
    """Alice's recording once it is decided (polled: the API has no event). Saved by default,
    it passes through ``pending_decision`` for a moment at its end: not a final state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = (await (await api.http.get("/api/recordings?stream=alice", headers=headers)).json())["recordings"]
        if rows and rows[0]["state"] not in ("recording", "pending_decision"):
            return rows[0]
        assert asyncio.get_running_loop().time() < deadline, rows
        await asyncio.sleep(0.1)


async def test_a_saved_broadcast_is_on_the_channel_page_and_plays_as_a_video(tmp_path):
    async with accounts_server(tmp_path, "recording.enabled=true", "live_access.min_followers=0") as api:
        async with chromium() as browser:
            # --- a fresh server: nobody live, nothing to watch -------------------------------
            context = await context_as(browser, api, None)
            page = await context.new_page()
            watch = Watch(page)
            await page.goto(api.srv.http_url + "/")
            empty = page.locator("#empty")
            await empty.wait_for(state="visible", timeout=UI)
            assert "Nobody is live right now" in await empty.text_content()
            assert "Nobody has gone live on this server yet" in await empty.text_content()
            assert await page.locator("#empty #empty-signup").is_visible()  # what to do next
            assert not await page.locator("#videos-section").is_visible()
            assert not await page.locator("#channels-section").is_visible()
            await screenshots(page, "discover-empty")
            watch.check()

            # --- alice broadcasts; a new creator saves by default ----------------------------
            alice = await api.user("alice", "creator")
            await api.user("bob", "creator")
            response = await api.http.patch("/api/me/settings", headers=alice, json={"title": TITLE})
            assert (await response.json())["save_by_default"] is True
            response = await api.http.put("/api/me/cover", data=encode_image("mjpeg", "yuvj420p", 640, 360),
                                          headers={**alice, "Content-Type": "image/jpeg"})
            assert response.status == 200, await response.text()
            status, output = await ffmpeg_push(api.srv.rtmp_url(await api.stream_key(alice)), seconds=3)
            assert status == 0, output
            recording = await saved_recording(api, alice)
            assert recording["state"] == "saved" and recording["decided_by"] == "default", recording
            rid = recording["id"]

            # --- the channel page, offline: past broadcasts ----------------------------------
            channel = await context.new_page()
            watch = Watch(channel)
            await channel.goto(api.srv.http_url + "/watch/alice")
            card = channel.locator(f"#past a.vod-card[data-vod='{rid}']")
            await card.wait_for(timeout=UI)
            assert await card.locator(".title").text_content() == TITLE
            assert await card.get_attribute("href") == f"/watch/alice?vod={rid}"
            cover = card.locator(".thumb img")
            assert "/api/users/alice/cover" in await cover.get_attribute("src")
            await channel.wait_for_function(
                "() => [...document.querySelectorAll('#past .thumb img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=UI)
            length = await card.locator(".vod-length").text_content()
            assert length in ("0:03", "0:02", "0:04"), length
            assert await card.locator("time").get_attribute("datetime")
            assert (await card.locator("time").text_content()).strip()
            await screenshots(channel, "channel-past-broadcasts")
            watch.check()

            # --- the video page --------------------------------------------------------------
            await card.click()
            await channel.wait_for_url(f"**/watch/alice?vod={rid}", timeout=UI)
            watch = Watch(channel)
            await channel.wait_for_function(
                "a => window.mediasrvWatch.error || document.getElementById('video').currentTime >= a",
                arg=1.0, timeout=UI)
            assert await channel.evaluate("window.mediasrvWatch.error") is None
            assert await channel.title() == f"{TITLE} · mediasrv"
            assert await channel.locator("#title").text_content() == TITLE
            options = await channel.locator("#quality option").all_text_contents()
            assert not [o for o in options if rid in o], options
            assert any(o.startswith("Source") for o in options), options
            assert not await channel.locator("aside.chat").is_visible()
            assert not await channel.locator("#gift-bar").is_visible()
            assert not await channel.locator("#chat-input").is_visible()
            await screenshots(channel, "vod-page")
            watch.check()

            # --- discovery, nobody live: the video and the channels --------------------------
            await page.reload()
            watch = Watch(page)
            video = page.locator(f"#videos a.vod-card[data-vod='{rid}']")
            await video.wait_for(timeout=UI)
            assert await video.locator(".title").text_content() == TITLE
            assert await video.get_attribute("href") == f"/watch/alice?vod={rid}"
            assert "/api/users/alice/cover" in await video.locator(".thumb img").get_attribute("src")
            channels = await page.locator("#channels a.channel-card").evaluate_all("a => a.map(n => n.dataset.channel)")
            assert sorted(channels) == ["alice", "bob"], channels
            text = await page.locator("#empty").text_content()
            assert "Nobody is live right now" in text and "Watch a recent video below" in text, text
            await page.wait_for_function(
                "() => [...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=UI)
            await screenshots(page, "discover-videos")
            watch.check()
            await context.close()
