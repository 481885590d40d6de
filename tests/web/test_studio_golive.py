"""The studio's go-live page (``/studio/live``, issue 17 items 4 and 5) in headless Chromium
with its fake camera and microphone, against the whole server.

- Layout: at 390x844 (a phone held upright) and 1366x768 nothing is wider than the screen
  and nothing scrolls sideways, the preview fills the phone's width, the main button is on
  screen without scrolling; a phone gets a portrait camera (720x1280 asked for).
- The full loop over WHIP: "Go live" publishes from the page; the stream is live in the hub
  (portrait on a phone), listed and plays over HLS in hls.js; the health shows the server's
  bitrate; "End live" ends it and the page asks "save or discard" and does it. With the
  creator's ``backstage`` setting on (ticked on the page) the live is first private (not
  listed, not recorded, "Backstage — only you can see this"), then "Go public" lists it
  and starts the recording.
- Refusals said clearly: the camera refused (no fake-UI flag: Chromium denies), no camera
  at all, a stream key replaced in another tab (WHIP 401).

Screenshots (viewport, so the button pinned to the bottom is where the creator sees it)
go to test-artifacts/screenshots/golive-*.png. Every page fails the test on a console
error, an uncaught exception, a failed request or an HTTP error it did not name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import aiohttp
import pytest

from mediasrv.community.live.service import ENDED_BY_CREATOR
from tests.accounts.support import ADMIN_PASSWORD, Api
from tests.support.browser import FAKE_MEDIA_ARGS, chromium, open_player, wait_playing
from tests.support.clients import start_ffmpeg_push
from tests.support.server import running_server
from tests.support.turn_probe import turn_probe
from tests.web.support import DESKTOP, PHONE, SCREENSHOTS, UI, Watch, context_as, screenshots

pytestmark = pytest.mark.e2e

#: Milliseconds for the live to start: ICE, DTLS, the first keyframe, on a shared 2-core machine.
ON_AIR = 60000

LAYOUT = """() => {
  const width = innerWidth, off = [];
  for (const node of document.querySelectorAll('body *')) {
    // The header's links scroll sideways inside their own row on a phone, by design; the
    // skip link is off-screen until focused; sr-only text is 1 px.
    if (node.closest('.site-nav, .sr-only, .skip, option')) continue;
    const r = node.getBoundingClientRect();
    if (!r.width && !r.height) continue;
    if (r.left < -0.5 || r.right > width + 0.5) {
      off.push(`${node.tagName.toLowerCase()}#${node.id}.${node.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  return {scrollWidth: document.scrollingElement.scrollWidth, width, off};
}"""

ON_SCREEN = """(id) => {
  const r = document.getElementById(id).getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
}"""

# Whether the element is in sight without scrolling: on screen, and above the button bar
# pinned to the bottom (what scrolls under it is hidden).
ABOVE_BAR = """(id) => {
  const r = document.getElementById(id).getBoundingClientRect();
  const bar = document.getElementById('actions');
  const top = bar.hidden ? innerHeight : bar.getBoundingClientRect().top;
  return {top: r.top, bottom: r.bottom, bar: top, ok: r.height > 0 && r.top >= 0 && r.bottom <= top + 0.5};
}"""


async def frames(page) -> None:
    """Two animation frames: the layout at the current size has been drawn."""
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


async def check_layout(page, name: str, *, button: str | None = None, in_sight: str | None = None) -> None:
    """At phone and desktop size: nothing off-screen sideways, no horizontal scroll, the
    ``button`` on screen without scrolling, the element ``in_sight`` above the pinned button
    bar without scrolling, a viewport screenshot NAME-phone / -desktop."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await page.evaluate("window.scrollTo(0, 0)")
        await frames(page)
        layout = await page.evaluate(LAYOUT)
        assert layout["scrollWidth"] <= layout["width"], f"{name} scrolls sideways at {label} size: {layout}"
        assert not layout["off"], f"{name} at {label} size: off-screen {layout['off']}"
        if button is not None:
            assert await page.evaluate(ON_SCREEN, button), f"{name}: #{button} is not on the {label} screen"
        if in_sight is not None:
            sight = await page.evaluate(ABOVE_BAR, in_sight)
            assert sight["ok"], f"{name}: #{in_sight} is not in sight above the buttons at {label} size: {sight}"
        if label == "phone" and await page.locator("#preview-box").is_visible():
            box = await page.locator("#preview-box").bounding_box()
            assert box["x"] == 0 and box["width"] == PHONE["width"], f"{name}: the preview does not fill the width: {box}"
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"))
    await page.set_viewport_size(size)
    await frames(page)


async def phase(page, wanted: str, timeout: int = UI) -> None:
    """Wait for the page's phase (window.mediasrvGoLive.phase); fail early with its problem."""
    await page.wait_for_function(
        "(p) => window.mediasrvGoLive && (window.mediasrvGoLive.phase === p || !!window.mediasrvGoLive.problem)",
        arg=wanted, timeout=timeout)
    state = await page.evaluate("window.mediasrvGoLive")
    assert state["phase"] == wanted and not state["problem"], state


@contextlib.asynccontextmanager
async def golive_server(tmp_path, *overrides: str):
    """The whole server in accounts mode, recording on, every creator allowed to go live."""
    async with running_server(tmp_path, "auth.mode=accounts", f"accounts.admin_password={ADMIN_PASSWORD}",
                              "live_access.min_followers=0", "hls.segment_duration=1", *overrides) as srv:
        async with aiohttp.ClientSession(srv.http_url) as session:
            yield Api(srv, session)


async def open_golive(browser, api: Api, handle: str, viewport: dict, allowed=frozenset()):
    context = await context_as(browser, api, handle, viewport)
    page = await context.new_page()
    watch = Watch(page, allowed)
    await page.goto(api.srv.http_url + "/studio/live")
    await page.wait_for_function("() => window.mediasrvGoLive && window.mediasrvGoLive.phase === 'setup'", timeout=UI)
    return context, page, watch


async def camera_ready(page) -> None:
    await page.locator("#go-live:not([disabled])").wait_for(timeout=UI)
    await page.wait_for_function("() => document.getElementById('preview').videoWidth > 0", timeout=UI)


async def test_the_go_live_page_fits_a_phone_and_a_desktop_with_a_portrait_camera_on_the_phone(tmp_path):
    async with golive_server(tmp_path) as api:
        await api.user("alice", "creator")
        async with chromium(FAKE_MEDIA_ARGS) as browser:
            context, page, watch = await open_golive(browser, api, "alice", PHONE)
            await camera_ready(page)
            # A phone held upright asks for a portrait picture, and the preview is one.
            size = await page.evaluate("[document.getElementById('preview').videoWidth, document.getElementById('preview').videoHeight]")
            assert size[1] > size[0], size
            assert await page.locator("#preview-box.portrait.mirrored").count() == 1
            # The pickers list the (fake) devices once allowed.
            assert await page.locator("#camera option").count() >= 1
            assert (await page.locator("#camera option").first.text_content()).strip()
            assert not await page.locator("#camera").is_disabled()
            await check_layout(page, "golive-setup", button="go-live")
            # A toast (the cover taken from the preview) shows above the pinned button.
            await page.locator("#cover-snap").click()
            toast = page.locator("#toast")
            await toast.wait_for(timeout=UI)
            assert "Cover updated" in await toast.text_content()
            assert (await page.evaluate(ABOVE_BAR, "toast"))["ok"], await page.evaluate(ABOVE_BAR, "toast")
            watch.check()
            await context.close()

            context, page, watch = await open_golive(browser, api, "alice", DESKTOP)
            await camera_ready(page)
            size = await page.evaluate("[document.getElementById('preview').videoWidth, document.getElementById('preview').videoHeight]")
            assert size[0] > size[1], size  # a landscape screen: a landscape picture
            watch.check()
            await context.close()


async def test_a_refused_camera_and_no_camera_say_what_to_do(tmp_path):
    async with golive_server(tmp_path) as api:
        await api.user("alice", "creator")
        # Without the fake UI, headless Chromium answers the permission prompt with "no".
        async with chromium(("--use-fake-device-for-media-stream",)) as browser:
            context, page, watch = await open_golive(browser, api, "alice", PHONE)
            empty = page.locator("#camera-empty")
            await empty.wait_for(timeout=UI)
            text = await empty.text_content()
            assert "Camera and microphone blocked" in text and "Allow them for this site" in text, text
            assert await page.locator("#camera-retry").is_visible()
            assert await page.locator("#go-live").is_disabled()
            assert "Turn on your camera" in await page.locator("#go-hint").text_content()
            assert await page.locator("#camera option").first.text_content() == "Blocked"
            await check_layout(page, "golive-camera-refused", button="camera-retry")
            watch.check()
            await context.close()
        # No camera at all (this machine has none; the fake UI would allow one).
        async with chromium(("--use-fake-ui-for-media-stream",)) as browser:
            context, page, watch = await open_golive(browser, api, "alice", PHONE)
            await page.wait_for_function("() => !document.getElementById('camera-empty').hidden"
                                         " || document.getElementById('preview').videoWidth > 0", timeout=UI)
            if not await page.locator("#camera-empty").is_visible():
                pytest.skip("this machine has a camera: the no-camera message cannot be shown")
            text = await page.locator("#camera-empty").text_content()
            assert "No camera found" in text and "Connect a camera" in text, text
            await check_layout(page, "golive-no-camera", button="camera-retry")
            watch.check()
            await context.close()


# --- the full loop over WHIP ----------------------------------------------------------------

async def listed(api: Api, name: str) -> bool:
    """Whether discovery (anonymous) lists the stream."""
    body = await (await api.http.get("/api/live")).json()
    return any(s["name"] == name for s in body["streams"])


async def recordings(api: Api, headers: dict, name: str) -> list[dict]:
    response = await api.http.get(f"/api/recordings?stream={name}", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["recordings"]


async def eventually(condition, what: str, timeout: float = 30) -> None:
    """Poll an async condition until true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def plays_over_hls(browser, api: Api, name: str) -> None:
    """The stream plays in hls.js, as a viewer gets it."""
    player = await open_player(browser, f"{api.srv.http_url}/live/{name}/index.m3u8")
    try:
        await wait_playing(player, advance=1.0, timeout_ms=ON_AIR)
    finally:
        await player.page.close()


async def end_and_decide(page, api: Api, headers: dict, choice: str, *, saved_by_default: bool) -> None:
    """End live on the page, answer its save-or-discard question, check the recording
    (``saved_by_default``: the creator's setting, so the question is "keep or discard")."""
    await page.locator("#end-live").click()
    await page.wait_for_function("() => !document.getElementById('decide-actions').hidden"
                                 " || window.mediasrvGoLive.phase === 'done' || !!window.mediasrvGoLive.problem",
                                 timeout=ON_AIR)
    text = await page.locator("#decide-text").text_content()
    asked = "Save it as a video" if not saved_by_default else "Keep it, or discard it?"
    assert asked in text, (text, await page.evaluate("window.mediasrvGoLive"))
    await check_layout(page, "golive-decide", button="save")
    recording = (await page.evaluate("window.mediasrvGoLive.recording"))["id"]
    assert api.srv.hub.get("alice") is None  # the server ended the broadcast
    await page.locator("#save" if choice == "save" else "#discard").click()
    await phase(page, "done")
    assert await page.evaluate("window.mediasrvGoLive.decision") == choice
    text = await page.locator("#decide-text").text_content()
    assert ("Saved" if choice == "save" else "Discarded") in text, text
    assert await page.locator("#again").is_visible()
    if choice == "save":
        assert await page.locator("#watch-video").get_attribute("href") == f"/watch/alice?vod={recording}"
    states = {r["id"]: r["state"] for r in await recordings(api, headers, "alice")}
    assert states.get(recording, "discarded") == ("saved" if choice == "save" else "discarded"), states
    await check_layout(page, "golive-done-" + choice, button="again")


async def test_go_live_from_a_phone_then_end_and_save(tmp_path):
    """Public at once: listed, plays, health and viewers, End live → Save (the creator
    does not save by default: the recording waits for her).

    The server lists a TURN server (``webrtc.ice_servers``): the page asks for the ICE
    servers with an OPTIONS bearing the stream key and gathers through the TURN server
    with its credentials before it sends its offer (a listening TURN server sees its
    authenticated Allocate; it allocates nothing, so the live goes over host candidates)."""
    async with turn_probe("turn-user", "turn-pass") as turn, golive_server(tmp_path, "webrtc.ice_servers=" + json.dumps(
            [{"urls": [turn.url], "username": "turn-user", "credential": "turn-pass"}])) as api:
        alice = await api.user("alice", "creator")
        response = await api.http.patch("/api/me/settings", json={"save_by_default": False}, headers=alice)
        assert response.status == 200, await response.text()
        async with chromium(FAKE_MEDIA_ARGS) as browser:
            context, page, watch = await open_golive(browser, api, "alice", PHONE)
            options: list[dict] = []
            page.on("request", lambda r: options.append(r.headers) if r.method == "OPTIONS" else None)
            await camera_ready(page)
            await page.fill("#title", "Morning run")
            await page.locator("#go-live").click()
            await phase(page, "live", timeout=ON_AIR)
            key = (await (await api.http.get("/api/me/stream-key", headers=alice)).json())["stream_key"]
            assert [h.get("authorization") for h in options] == [f"Bearer {key}"]
            assert await page.evaluate("window.mediasrvGoLive.iceServers") == [turn.url]
            assert turn.authenticated.is_set(), turn.requests  # before the offer: no trickle ICE
            assert await page.locator("#onair").text_content() == "Live"
            stream = api.srv.hub.get("alice")
            assert stream is not None
            assert await listed(api, "alice")
            title = (await (await api.http.get("/api/me/settings", headers=alice)).json())["title"]
            assert title == "Morning run"
            assert await page.evaluate("window.mediasrvGoLive.codec") in ("H264", "VP8")
            await plays_over_hls(browser, api, "alice")
            # A phone held upright publishes a portrait picture.
            video = next(t for t in stream.tracks.values() if t.width)
            assert video.height > video.width, (video.width, video.height)
            # The health: the server's figures reach the page.
            await page.wait_for_function("() => /kbps/.test(document.getElementById('h-bitrate').textContent)"
                                         " && /fps/.test(document.getElementById('h-fps').textContent)", timeout=ON_AIR)
            assert "watching" in await page.locator("#viewers").text_content()
            assert await page.locator("#live-title").text_content() == "Morning run"
            await check_layout(page, "golive-live", button="end-live", in_sight="h-figures")
            await end_and_decide(page, api, alice, "save", saved_by_default=False)
            # Going live again waits out the server's hold after an end from the studio.
            await page.locator("#again").click()
            await phase(page, "setup")
            assert await page.locator("#go-live").is_disabled()
            assert "you can go live again in" in await page.locator("#go-hint").text_content()
            watch.check()
            await context.close()


async def test_backstage_then_go_public_then_end_and_discard(tmp_path):
    """With backstage ticked on the page: private (not listed, nothing recorded, the
    banner), Go public → listed and recorded, End live → Discard (saved by default, the
    default: the page asks "keep or discard")."""
    async with golive_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        async with chromium(FAKE_MEDIA_ARGS) as browser:
            context, page, watch = await open_golive(browser, api, "alice", DESKTOP)
            await camera_ready(page)
            await page.locator("#backstage-row").wait_for(timeout=UI)
            await page.locator("#backstage").check()
            await eventually(lambda: _backstage_on(api, alice), "the backstage setting")
            await page.locator("#go-live").click()
            await phase(page, "backstage", timeout=ON_AIR)
            assert api.srv.hub.get("alice") is not None
            banner = await page.locator("#backstage-banner").text_content()
            assert "Backstage — only you can see this" in banner
            assert await page.locator("#go-public").is_visible()
            assert not await listed(api, "alice")
            assert not [r for r in await recordings(api, alice, "alice") if r["state"] != "discarded"]
            await page.wait_for_function("() => /kbps/.test(document.getElementById('h-bitrate').textContent)",
                                         timeout=ON_AIR)
            await check_layout(page, "golive-backstage", button="go-public", in_sight="h-figures")

            await page.locator("#go-public").click()
            await phase(page, "live")
            assert await listed(api, "alice")
            await eventually(lambda: _recording(api, alice), "the recording to start")
            await plays_over_hls(browser, api, "alice")
            await end_and_decide(page, api, alice, "discard", saved_by_default=True)
            watch.check()
            await context.close()


async def _backstage_on(api: Api, headers: dict) -> bool:
    return (await (await api.http.get("/api/me/settings", headers=headers)).json()).get("backstage") is True


async def _recording(api: Api, headers: dict) -> bool:
    return any(r["state"] == "recording" for r in await recordings(api, headers, "alice"))


async def test_a_stream_key_replaced_in_another_tab_is_explained(tmp_path):
    """WHIP answers 401: the page says the key was replaced and to reload."""
    async with golive_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        async with chromium(FAKE_MEDIA_ARGS) as browser:
            context, page, watch = await open_golive(browser, api, "alice", PHONE, allowed={(401, "/whip")})
            await camera_ready(page)
            response = await api.http.post("/api/me/stream-key", headers=alice)  # "New key" elsewhere
            assert response.status == 200, await response.text()
            await page.locator("#go-live").click()
            problem = page.locator("#problem")
            await problem.wait_for(timeout=ON_AIR)
            assert "Stream key refused" in await problem.text_content()
            assert "Reload this page" in await problem.text_content()
            assert await page.evaluate("window.mediasrvGoLive.phase") == "setup"
            assert api.srv.hub.get("alice") is None
            await check_layout(page, "golive-key-refused", button="go-live")
            watch.check()
            await context.close()


def _without_candidates(sdp: str) -> str:
    return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith("a=candidate:"))


async def test_a_connection_that_cannot_be_made_says_what_to_do(tmp_path):
    """The network between the browser and the server carries no UDP: played here by
    taking every ICE candidate out of the offer and the answer on their way (a real WHIP
    exchange otherwise). The page gives up after its connection timeout, says so and what
    to try, and ends the session it made (DELETE)."""
    async with golive_server(tmp_path, "webrtc.setup_timeout=120") as api:
        await api.user("alice", "creator")
        async with chromium(FAKE_MEDIA_ARGS) as browser:
            context, page, watch = await open_golive(browser, api, "alice", PHONE)
            deleted: list[int] = []
            page.on("response", lambda r: deleted.append(r.status) if r.request.method == "DELETE" else None)

            async def no_path(route) -> None:
                if route.request.method != "POST":
                    await route.continue_()
                    return
                response = await route.fetch(post_data=_without_candidates(route.request.post_data))
                await route.fulfill(response=response, body=_without_candidates(await response.text()))

            await page.route("**/whip", no_path)
            await camera_ready(page)
            await page.locator("#go-live").click()
            problem = page.locator("#problem")
            await problem.wait_for(timeout=ON_AIR)
            text = await problem.text_content()
            assert "Connection failed" in text and "Try another network" in text and "TURN" in text, text
            assert await page.evaluate("window.mediasrvGoLive.phase") == "setup"
            assert not await page.locator("#go-live").is_disabled()  # it can be tried again
            await eventually(lambda: _true(deleted == [200]), "the page's DELETE of its session")
            assert api.srv.hub.get("alice") is None
            await check_layout(page, "golive-connection-failed", button="go-live")
            watch.check()
            await context.close()


async def _true(value: bool) -> bool:
    return value


async def test_an_obs_live_backstage_is_made_public_and_ended_from_the_studio(tmp_path):
    """Backstage ticked in the studio's settings, an RTMP push (FFmpeg, as OBS): the studio
    says Backstage and offers Go public; the go-live page on a phone follows that live (no
    camera opened; its preview plays the private live) and turns public when the studio
    makes it so; End live in the studio
    disconnects the encoder and asks "keep or discard" there (saved by default): Discard.
    Neither page calls the creator's own end an operator's stop."""
    async with golive_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        async with chromium(FAKE_MEDIA_ARGS) as browser:
            studio_context = await context_as(browser, api, "alice", DESKTOP)
            studio = await studio_context.new_page()
            studio_watch = Watch(studio)
            await studio.goto(api.srv.http_url + "/studio")
            await studio.locator("#backstage-label").wait_for(timeout=UI)
            await studio.locator("#backstage-default").check()
            await studio.locator("#settings-form button[type=submit]").click()
            await studio.locator("#settings-msg", has_text="Saved.").wait_for(timeout=UI)
            assert await _backstage_on(api, alice)

            push = await start_ffmpeg_push(api.srv.rtmp_url(await api.stream_key(alice)), seconds=300)
            try:
                await studio.locator("#live-status", has_text="Backstage").wait_for(timeout=ON_AIR)
                assert await studio.locator("#backstage-notice").is_visible()
                assert await studio.locator("#studio-go-public").is_visible()
                assert await studio.locator("#golive-link").get_attribute("href") == "/studio/live"
                assert not await listed(api, "alice")
                # The private live's figures reach the studio (its feed takes the grant).
                await studio.wait_for_function(
                    "() => window.mediasrvStudio.live && document.getElementById('out-bitrate').textContent !== '–'",
                    timeout=ON_AIR)
                await screenshots(studio, "studio-backstage")

                context, page, watch = await open_golive(browser, api, "alice", PHONE)
                await phase(page, "backstage", timeout=ON_AIR)
                assert await page.evaluate("window.mediasrvGoLive.elsewhere")
                assert "You are live from another app or device" in await page.locator("#info").text_content()
                assert await page.evaluate("document.getElementById('preview').srcObject") is None  # no camera
                # The preview plays what the server gets (the private live, with its grant).
                await page.wait_for_function("() => document.getElementById('preview').currentTime > 0.5", timeout=ON_AIR)
                await check_layout(page, "golive-elsewhere", button="go-public")

                await studio.locator("#studio-go-public").click()
                await studio.locator("#live-status", has_text="Live").wait_for(timeout=UI)
                assert not await studio.locator("#backstage-notice").is_visible()
                assert await listed(api, "alice")
                await phase(page, "live")  # the go-live page follows

                await studio.locator("#studio-end-live").click()
                prompt = studio.locator("#end-prompt-text")
                await prompt.filter(has_text="Keep it, or discard it?").wait_for(timeout=ON_AIR)
                assert "Your live has ended" in await prompt.text_content()
                assert await asyncio.wait_for(push.wait(), 30) != 0  # the encoder was disconnected
                await studio.locator("#live-status", has_text="Offline").wait_for(timeout=UI)
                assert not await studio.locator("#stop-notice").is_visible()
                await screenshots(studio, "studio-live-ended")
                await studio.locator("#end-discard").click()
                await prompt.filter(has_text="Discarded").wait_for(timeout=UI)
                assert not [r for r in await recordings(api, alice, "alice") if r["state"] != "discarded"]

                # The go-live page learnt of the end from its feed: no operator's stop.
                await page.wait_for_function("() => ['decide', 'done'].includes(window.mediasrvGoLive.phase)",
                                             timeout=ON_AIR)
                assert not await page.evaluate("window.mediasrvGoLive.problem")
                watch.check()
                await context.close()
            finally:
                if push.returncode is None:
                    push.kill()
                    await push.wait()
            studio_watch.check()
            await studio_context.close()


def test_the_pages_know_the_servers_words_for_an_end_from_the_studio():
    """live.js tells an operator's stop from the creator's own end by the server's text."""
    script = (Path(__file__).resolve().parents[2] / "mediasrv" / "web" / "js" / "live.js").read_text()
    assert f"export const ENDED_BY_CREATOR = '{ENDED_BY_CREATOR}';" in script
