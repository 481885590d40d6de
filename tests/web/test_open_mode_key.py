"""A secret stream key is never a public name (issue 16, item 2).

In the default ``auth.mode: open``, a creator who signs up is shown a stream key in the
studio: pushing with it (FFmpeg) publishes under the creator's handle, as in accounts
mode; the key appears in no public listing. The studio says the creator may go live and
the keyframe interval to set. A name of the keys' form is refused in every mode."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from mediasrv.ingest.publish_auth import PublishAuthorizer
from mediasrv.config import load_config
from mediasrv.ports import PublishDecision
from tests.accounts.support import Api
from tests.support.browser import chromium
from tests.support.clients import ffmpeg_push, start_ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

UI = 30000


async def test_open_mode_studio_key_publishes_under_the_handle_never_the_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_server(tmp_path, "recording.enabled=false") as srv, \
            aiohttp.ClientSession(srv.http_url) as session, chromium() as browser:
        assert srv.config.auth.mode == "open"
        api = Api(srv, session)
        headers = await api.user("dana", "creator")
        token = headers["Authorization"].split()[1]

        # The studio, as the creator sees it.
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_init_script(
            f"localStorage.setItem('mediasrv.token', {json.dumps(token)});"
            f" localStorage.setItem('mediasrv.user', {json.dumps(json.dumps({'handle': 'dana', 'role': 'creator'}))});")
        page = await context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        await page.goto(f"{srv.http_url}/studio")
        await page.wait_for_function("() => document.getElementById('stream-key').value", timeout=UI)
        key = await page.input_value("#stream-key")
        assert key.startswith("sk_")
        await page.wait_for_function("() => document.getElementById('access-status').textContent", timeout=UI)
        assert await page.text_content("#access-status") == "Live access: yes"
        assert "Keyframe interval: 2 s" in await page.text_content("#keyframe-hint")
        await context.close()

        # Pushing with the studio's key publishes under the handle.
        recorder = StreamRecorder(srv.hub)
        push = await start_ffmpeg_push(srv.rtmp_url(key), seconds=30)
        try:
            await recorder.wait_started("dana")
            assert [s.name for s in srv.hub.streams()] == ["dana"]
            for path in ("/api/live", "/api/streams"):
                response = await session.get(path)
                text = await response.text()
                assert response.status == 200 and '"dana"' in text, text
                assert key not in text and "sk_" not in text, text
        finally:
            push.kill()
            await push.wait()

        # A made-up key of the same form is refused: never a public name.
        status, _ = await ffmpeg_push(srv.rtmp_url("sk_madeUpKey"), seconds=1)
        assert status != 0
        assert all(not s.name.lower().startswith("sk_") for s in srv.hub.streams())
        assert page_errors == []
    assert key not in caplog.text and "sk_madeUpKey" not in caplog.text


async def test_no_mode_takes_a_name_of_the_keys_form_for_a_public_name():
    """``keys`` with a public name of the keys' form, a webhook that echoes the key, and
    open mode without accounts: each refuses."""
    keys = load_config(None, ["auth.mode=keys", "auth.keys.secret1=SK_lookalike"]).auth
    decision = await PublishAuthorizer(keys).authorize(app="live", key="secret1", client="x")
    assert decision == PublishDecision(False, reason="a stream key is never a public stream name")
    open_ = load_config(None, []).auth
    authorizer = PublishAuthorizer(open_)  # no accounts service to map the key
    assert not (await authorizer.authorize(app="live", key="sk_abc", client="x")).allowed
    assert (await authorizer.authorize(app="live", key="skater", client="x")).name == "skater"


async def test_a_handle_of_the_keys_form_cannot_be_registered(tmp_path):
    async with running_server(tmp_path, "recording.enabled=false") as srv, \
            aiohttp.ClientSession(srv.http_url) as session:
        response = await session.post("/api/users", json={"handle": "sk_dana", "password": "correct-horse-1",
                                                           "role": "creator"})
        assert response.status == 400
        assert "sk_" in (await response.json())["error"]
