"""Signed media URIs of a non-public live through the shipped deploy/nginx-cache.conf
(issue 18): nginx checks the signature itself (njs, HMAC-SHA256, the secret shared with
mediasrv) and refuses a bad or expired one with its own 403, without a request to
mediasrv; a real hls.js player in Chromium keeps playing across many signature expiries
(``hls.url_signing_seconds=2``), renewing them as it reloads the playlists; and the
visibility table's HLS columns hold through the cache for every kind of viewer."""

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
from tests.e2e.test_visibility import WHO, _people, _status, _strip_query, _walk, expected
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


HLS_KEYS = ("master", "media", "init", "segment", "part")


async def test_who_may_watch_each_visibility_through_the_cache(tmp_path):
    """The visibility table's HLS columns (master, media playlist, init, segment, part)
    for the eight viewers of tests/e2e/test_visibility.py, every request through the
    shipped nginx cache: a viewer who may watch gets all five through it, with the grant
    and signatures the playback API gave them; anyone else gets none (mediasrv's 404 or
    nginx's 403), also with the URIs an allowed viewer was given, stripped of their
    signature and grant. A public live is anyone's (a signed-out viewer, the blocked
    user too, cannot be told apart).

    The live starts public and changes while live, so the cache holds what it served while
    public: the segments and parts checked are ones made after each change (media that was
    public stays so, docs/security.md), and the broadcast's init segment (no picture, the
    same all along) may be that cached public copy (``X-Cache-Status: HIT``), never a
    fresh answer from mediasrv."""
    async with accounts_server(tmp_path / "srv", "live_access.min_followers=0", "hls.segment_duration=1",
                               f"hls.url_signing_secret={TEST_URL_SECRET}",
                               "http.trusted_proxies=127.0.0.1/32") as api, \
            running_cache(tmp_path, api.srv.http_port) as cache:
        http, srv = api.http, api.srv
        people = await _people(api)
        alice = people["creator"]
        async with http.post("/api/me/blocks/troll", headers=alice) as response:
            assert response.status in (200, 201, 204), await response.text()
        publisher = await start_ffmpeg_push(srv.rtmp_url(await api.stream_key(alice)), seconds=90, realtime=True)
        try:
            await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            failures = []
            seen: set[str] = set()  # the init segment's path while public (maybe cached)
            public_msn = None  # the newest media sequence number listed while public
            for visibility in ("public", "followers", "unlisted", "private"):
                response = await http.patch("/api/me/live", headers=alice, json={"visibility": visibility})
                assert response.status == 200, await response.text()
                if visibility != "public" and public_msn is None:
                    # Whatever a viewer could have fetched (and the cache kept) while the live
                    # was public was listed by then: the media checked below is newer.
                    public_msn = await _newest_listed_msn(http, srv, alice)

                async def creator_walk():
                    async with http.get("/api/live/alice/playback", headers=alice) as response:
                        url = (await response.json())["playback_url"].replace(srv.http_url, cache.url)
                    try:
                        walk = await _walk(http, url)
                    except AssertionError:  # no part listed yet
                        return None
                    if not all(walk.get(key, (0,))[0] == 200 for key in HLS_KEYS):
                        return None
                    fresh = public_msn is None or all(_msn(walk[key][1]) > public_msn for key in ("segment", "part"))
                    return walk if fresh else None

                allowed_walk = await eventually(creator_walk, what=f"the creator's walk through the cache ({visibility})")
                if visibility != "public":
                    assert all("hs=" in allowed_walk[key][1] for key in ("init", "segment", "part")), allowed_walk
                for who in WHO:
                    async with http.get("/api/live/alice/playback", headers=people[who]) as response:
                        answer = await response.json() if response.status == 200 else None
                    if answer is not None:
                        walk = await _walk(http, answer["playback_url"].replace(srv.http_url, cache.url))
                    else:
                        walk = {"master": (await _status(http, f"{cache.url}/live/alice/index.m3u8"), "")}
                        for key in HLS_KEYS[1:]:
                            url = _strip_query(allowed_walk[key][1])
                            async with http.get(url) as response:
                                await response.read()
                                walk[key] = (response.status, url)
                                if key == "init" and response.status == 200 and visibility != "public":
                                    # The public period's cached copy, not mediasrv's answer.
                                    assert response.headers.get("X-Cache-Status") == "HIT", (visibility, who)
                                    assert url in seen, (visibility, who, url)
                                    walk[key] = (404, url)
                    want = expected(visibility, who)
                    for key in HLS_KEYS:
                        status = walk[key][0]
                        assert status in (200, 403, 404), (visibility, who, key, status)
                        if (status == 200) != want[key]:
                            failures.append(f"{visibility} × {key} × {who}: got {status}, expected "
                                            f"{'200' if want[key] else 'a refusal'}")
                if visibility == "public":
                    seen.add(_strip_query(allowed_walk["init"][1]))
            assert not failures, "\n".join(failures)
        finally:
            await _stop(publisher)


def _msn(uri: str) -> int:
    """The media sequence number in a segment's or part's name (hls/names.py)."""
    match = re.search(r"/(?:seg|part)_[^_/]+_(\d+)(?:_\d+)?\.m4s", uri)
    assert match, uri
    return int(match.group(1))


async def _newest_listed_msn(http, srv, alice: dict) -> int:
    """The newest media sequence number the source's media playlist lists now (segments,
    parts and the preload hint), read from mediasrv itself with the creator's grant."""
    async with http.get("/api/live/alice/playback", headers=alice) as response:
        master = (await response.json())["playback_url"]
    async with http.get(master) as response:
        variant = urljoin(master, _uris(await response.text())[0])
    async with http.get(variant) as response:
        text = await response.text()
    numbers = [int(n) for n in re.findall(r"(?:seg|part)_[^_/\s\"]+_(\d+)", text)]
    assert numbers, text
    return max(numbers)
