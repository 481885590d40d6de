"""Signed media URIs of a non-public live through the shipped deploy/nginx-cache.conf
(issue 18): nginx checks the signature itself (njs, HMAC-SHA256, the secret shared with
mediasrv) and refuses a bad or expired one with its own 403, without a request to
mediasrv; a real hls.js player in Chromium keeps playing across many signature expiries
(``hls.url_signing_seconds=2``), renewing them as it reloads the playlists."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

from mediasrv.httpkit.url_signing import UrlSigner
from mediasrv.httpkit.keys import HTTP_STATS
from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import wait_for
from tests.deploy.nginx_cache import TEST_URL_SECRET, running_cache
from tests.e2e.test_backstage import _uris
from tests.security.support import eventually
from tests.support.clients import start_ffmpeg_push

pytestmark = pytest.mark.e2e

TTL = 2


async def _followers_live(api):
    """alice, live with visibility ``followers``; her auth headers and the push."""
    alice = await api.user("alice", "creator")
    response = await api.http.patch("/api/me/settings", headers=alice, json={"visibility": "followers"})
    assert response.status == 200 and (await response.json())["visibility"] == "followers", await response.text()
    publisher = await start_ffmpeg_push(api.srv.rtmp_url(await api.stream_key(alice)), seconds=60, realtime=True)
    stream = await wait_for(lambda: api.srv.hub.get("alice"), timeout=20)
    assert stream.visibility == "followers"
    return alice, publisher


async def _stop(process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


def _origin_media_requests(srv) -> int:
    requests = srv.app[HTTP_STATS].requests
    return sum(requests.get(kind, 0) for kind in ("segment", "part", "init"))


async def test_nginx_refuses_bad_and_expired_signatures_itself(tmp_path):
    async with accounts_server(tmp_path / "srv", "live_access.min_followers=0", "hls.segment_duration=1",
                               f"hls.url_signing_secret={TEST_URL_SECRET}", f"hls.url_signing_seconds={TTL}",
                               "http.trusted_proxies=127.0.0.1/32") as api, \
            running_cache(tmp_path, api.srv.http_port) as cache:
        http, srv = api.http, api.srv
        alice, publisher = await _followers_live(api)
        try:
            async with http.get("/api/live/alice/playback", headers=alice) as response:
                answer = await response.json()
            master = answer["playback_url"].replace(srv.http_url, cache.url)

            async def media_uris():
                async with http.get(master) as response:
                    assert response.status == 200
                    variant = urljoin(master, _uris(await response.text())[0])
                async with http.get(variant) as response:
                    assert response.status == 200
                    text = await response.text()
                return [urljoin(variant, u) for u in _uris(text) if "seg_" in u]

            segments = await eventually(media_uris, what="a listed segment")
            segment = segments[-1]
            assert re.search(r"[?&]hs=\d+\.[A-Za-z0-9_-]{43}(&|$)", segment), segment
            async with http.get(segment) as response:
                assert response.status == 200 and response.headers["Cache-Control"] == "private, no-store"

            plain = segment.split("?")[0]
            signature = re.search(r"hs=([^&]+)", segment).group(1)
            expires, mac = signature.split(".")
            past = UrlSigner(TEST_URL_SECRET, ttl=TTL, clock=lambda: 1_000_000.0).sign("alice")
            other_stream = UrlSigner(TEST_URL_SECRET, ttl=60, clock=lambda: float(expires)).sign("bob")
            other_key = UrlSigner("another-key", ttl=60, clock=lambda: float(expires)).sign("alice")
            before = _origin_media_requests(srv)
            for bad in (f"{int(expires) + 3600}.{mac}", f"{expires}.{mac[:-1]}A" if mac[-1] != "A" else
                        f"{expires}.{mac[:-1]}B", past, other_stream, other_key, "junk"):
                async with http.get(f"{plain}?hs={bad}") as response:
                    assert response.status == 403, (bad, response.status)
                    assert response.headers.get("Server", "").startswith("nginx"), response.headers
            # None of those reached mediasrv: nginx answered them alone.
            assert _origin_media_requests(srv) == before
            # A missing signature is mediasrv's to refuse (nginx cannot know the live is not
            # public): the 404 of no such stream, and nothing of it was in the cache.
            async with http.get(plain) as response:
                assert response.status == 404
            assert _origin_media_requests(srv) == before + 1
        finally:
            await _stop(publisher)


async def test_hlsjs_plays_a_followers_live_through_nginx_across_signature_expiries(tmp_path):
    from tests.support.browser import chromium, open_player, wait_playing

    async with accounts_server(tmp_path / "srv", "live_access.min_followers=0", "hls.segment_duration=1",
                               f"hls.url_signing_secret={TEST_URL_SECRET}", f"hls.url_signing_seconds={TTL}",
                               "http.trusted_proxies=127.0.0.1/32") as api, \
            running_cache(tmp_path, api.srv.http_port) as cache:
        http, srv = api.http, api.srv
        alice, publisher = await _followers_live(api)
        fan = await api.user("fan")
        response = await http.put("/api/me/following/alice", headers=fan)
        assert response.status == 200
        try:
            async with http.get("/api/live/alice/playback", headers=fan) as response:
                assert response.status == 200, await response.text()
                answer = await response.json()
            master = answer["playback_url"].replace(srv.http_url, cache.url)
            async with chromium() as browser:
                player = await open_player(browser, master)
                started = await wait_playing(player, advance=1.0)
                # Several signature lifetimes of playing (4 × 2 s).
                await wait_playing(player, advance=started + 4 * TTL, timeout_ms=60000)
                assert not player.bad_responses(), player.bad_responses()
                media = [url for status, url in player.responses if re.search(r"/(seg|part)_[^/]*\.m4s", url)]
                expiries = {re.search(r"hs=(\d+)\.", url).group(1) for url in media}
                assert len(expiries) >= 4, expiries  # renewed as it reloaded
                assert all(url.startswith(cache.url) for url in media)
        finally:
            await _stop(publisher)
