"""The WHIP endpoint over HTTP: refusals (401, 415, 400, 503, 405, 404), CORS, ``Link``
headers, the public address, the set-up reaper, the webhook and the metrics.

Offers come from ``tests.whip.offers`` (shaped like a browser's, with a candidate nobody
answers at): they are answered, but their sessions never connect.
"""

from __future__ import annotations

import json
import logging
import subprocess

import aiohttp
import pytest
from aiohttp import web

from mediasrv.httpkit.keys import ACCOUNTS
from mediasrv.ingest.whip.port_range import read_port_range
from tests.accounts.support import accounts_server
from tests.support.server import StreamRecorder
from tests.support.tools import require_tool
from tests.whip.offers import offer
from tests.whip.support import KEY, NAME, post_offer, until, whip_of, whip_server

pytestmark = pytest.mark.e2e

EVIL = "https://elsewhere.example"
STUN = "stun:stun.example.net:3478"
TURN = "turn:turn.example.net:3478?transport=udp"
ICE = json.dumps([{"urls": [STUN]}, {"urls": [TURN], "username": "alice", "credential": "turn-pass"}])
TURN_LINK = f'<{TURN}>; rel="ice-server"; username="alice"; credential="turn-pass"; credential-type="password"'


async def _metrics(http: aiohttp.ClientSession, srv) -> str:
    async with http.get(f"{srv.http_url}/metrics") as response:
        return await response.text()


async def test_refusals_say_why_and_are_never_a_5xx(tmp_path):
    async with whip_server(tmp_path) as srv, aiohttp.ClientSession() as http:
        recorder = StreamRecorder(srv.hub)
        cases = [
            ({"key": None}, offer(), 401, "Bearer"),
            ({"key": "wrong-key"}, offer(), 401, "unknown stream key"),
            ({"content_type": "text/plain"}, offer(), 415, "application/sdp"),
            ({"content_type": "application/json"}, "{}", 415, "application/sdp"),
            ({}, "hello, I am not SDP", 400, "v=0"),
            ({}, b"\xff\xfe\xfd", 400, "UTF-8"),
            ({}, "", 400, "empty"),
            ({}, offer(video=None), 400, "no video track"),
            ({}, offer(video=("H264-high",)), 400, "no usable video codec"),
            ({}, offer(audio="pcmu"), 400, "Opus"),
            ({}, offer(video_direction="recvonly"), 400, "sendonly"),
            ({}, offer().replace("a=setup:actpass", "a=setup:sideways"), 400, "could not be negotiated"),
        ]
        for args, body, status, reason in cases:
            got, headers, text = await post_offer(http, srv, body, **args)
            assert got == status, (args, reason, got, text)
            assert reason in json.loads(text)["error"], (reason, text)
            assert headers["Access-Control-Allow-Origin"] == "*"  # a page can read why
            if status == 401:
                assert headers["WWW-Authenticate"].startswith("Bearer")
        # A body over http.max_body_bytes.
        got, _, text = await post_offer(http, srv, "v=0\r\n" + "a=x\r\n" * 300_000)
        assert got == 413, text
        async with http.patch(f"{srv.http_url}/whip/sessions/whatever", data="a=candidate:1",
                              headers={"Content-Type": "application/trickle-ice-sdpfrag"}) as response:
            assert response.status == 405
            assert "DELETE" in response.headers["Allow"]
        async with http.delete(f"{srv.http_url}/whip/sessions/nope",
                               headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 404
        whip = whip_of(srv)
        assert whip.stats.sessions_total == 0 and not whip.sessions
        assert whip.stats.refused == {"auth": 2, "content_type": 2, "offer": 9}
        text = await _metrics(http, srv)
        assert 'mediasrv_whip_refusals_total{reason="offer"} 9.0' in text
        assert 'mediasrv_http_errors_total{class="4xx",kind="whip"}' in text
        assert 'mediasrv_http_errors_total{class="5xx",kind="whip"}' not in text
        promtool = subprocess.run([require_tool("promtool"), "check", "metrics"], input=text, text=True,
                                  capture_output=True, timeout=60)
        assert promtool.returncode == 0, promtool.stdout + promtool.stderr
        assert NAME not in recorder.started  # nothing reached the hub


async def test_answer_location_delete_and_the_session_limit(tmp_path):
    async with whip_server(tmp_path, "webrtc.max_sessions=2", f"webrtc.ice_servers={ICE}") as srv, \
            aiohttp.ClientSession() as http:
        whip = whip_of(srv)
        answers = []
        for _ in range(2):
            status, headers, text = await post_offer(http, srv, offer(), Origin=EVIL)
            assert status == 201, text
            assert headers["Content-Type"] == "application/sdp"
            assert text.startswith("v=0") and "a=candidate:" in text and "a=setup:active" in text
            location = headers["Location"]
            assert location.startswith("/whip/sessions/") and len(location) > len("/whip/sessions/") + 20
            assert headers["ETag"].strip('"') == location.rsplit("/", 1)[1]
            assert headers["Access-Control-Allow-Origin"] == "*"
            assert {"Location", "Link", "ETag"} <= {h.strip() for h in
                                                    headers["Access-Control-Expose-Headers"].split(",")}
            assert "Access-Control-Allow-Credentials" not in headers
            # Every ICE server, the TURN password included: this POST was authorised.
            assert headers.getall("Link") == [
                f'<{STUN}>; rel="ice-server"',
                f'<{TURN}>; rel="ice-server"; username="alice"; credential="turn-pass"; credential-type="password"']
            answers.append(location)
        assert answers[0] != answers[1]
        status, headers, text = await post_offer(http, srv, offer())
        assert status == 503, text
        assert int(headers["Retry-After"]) > 0
        assert "2 WHIP sessions" in json.loads(text)["error"]
        # Only the key that made a session ends it.
        async with http.delete(srv.http_url + answers[0], headers={"Authorization": "Bearer another"}) as response:
            assert response.status == 401
        async with http.delete(srv.http_url + answers[0]) as response:
            assert response.status == 401
        async with http.delete(srv.http_url + answers[0], headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 200
        async with http.delete(srv.http_url + answers[0], headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 404
        status, _, text = await post_offer(http, srv, offer())
        assert status == 201, text
        assert len(whip.sessions) == 2 and whip.stats.refused == {"capacity": 1} and whip.stats.deleted == 1
        text = await _metrics(http, srv)
        assert "mediasrv_whip_sessions_open 2.0" in text and "mediasrv_whip_sessions_answered_total 3.0" in text


async def test_cors_preflight_and_ice_servers_without_secrets_on_options(tmp_path):
    async with whip_server(tmp_path, f"webrtc.ice_servers={ICE}") as srv, aiohttp.ClientSession() as http:
        for path in ("/whip", "/whip/sessions/anything"):
            async with http.options(srv.http_url + path, headers={
                    "Origin": EVIL, "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type"}) as response:
                assert response.status == 204, path
                headers = response.headers
                assert headers["Access-Control-Allow-Origin"] == "*"
                methods = {m.strip() for m in headers["Access-Control-Allow-Methods"].split(",")}
                assert methods == {"POST", "DELETE", "PATCH", "OPTIONS"}
                allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
                assert {"authorization", "content-type", "if-match"} <= allowed
                assert "Location" in headers["Access-Control-Expose-Headers"]
                assert "Access-Control-Allow-Credentials" not in headers
        async with http.options(srv.http_url + "/whip") as response:
            # Anyone may ask: the STUN server is listed, the TURN server (a password) is not.
            assert response.headers.getall("Link") == [f'<{STUN}>; rel="ice-server"']
            assert response.headers["Accept-Post"] == "application/sdp"
            assert response.headers["Vary"] == "Authorization"
        # With a key a POST would take (RFC 9725 §4.6), the TURN credentials too, kept by no
        # cache; with a wrong or malformed one, the same answer as without.
        links, headers = await _options_links(http, srv, f"Bearer {KEY}", origin=EVIL)
        assert links == [f'<{STUN}>; rel="ice-server"', TURN_LINK]
        assert headers["Cache-Control"] == "no-store" and headers["Access-Control-Allow-Origin"] == "*"
        assert "Link" in headers["Access-Control-Expose-Headers"]
        for authorization in ("Bearer wrong-key", f"Basic {KEY}", "Bearer", f"Bearer {'k' * 600}"):
            links, headers = await _options_links(http, srv, authorization)
            assert links == [f'<{STUN}>; rel="ice-server"'], authorization
            assert "Cache-Control" not in headers
        # Asking published, refused and counted nothing.
        whip = whip_of(srv)
        assert whip.stats.refused == {} and whip.authorizer.refusals == 0
        assert not whip.sessions and srv.hub.get(NAME) is None


async def _options_links(http: aiohttp.ClientSession, srv, authorization: str, origin: str | None = None):
    """``OPTIONS /whip`` with an Authorization header: (its Link values, its headers)."""
    headers = {"Authorization": authorization, **({"Origin": origin} if origin else {})}
    async with http.options(srv.http_url + "/whip", headers=headers) as response:
        assert response.status == 204
        return response.headers.getall("Link", []), response.headers


async def test_options_with_a_creators_key_gives_turn_credentials_and_decides_nothing(tmp_path):
    """``auth.mode: accounts``: the key is checked as a POST's is (a creator's current key,
    live access) but with none of a publish's effects: no refusal counted (the WHIP
    server's, the authorizer's, the accounts'), the backstage of the next broadcast not
    set (a POST's publish decision sets it), no session. A POST then does each of these."""
    async with accounts_server(tmp_path, f"webrtc.ice_servers={ICE}", "live_access.min_followers=1") as api:
        srv, http = api.srv, api.http
        alice, bob, fan = await api.user("alice", "creator"), await api.user("bob", "creator"), await api.user("fan")
        assert (await http.put("/api/me/following/alice", headers=fan)).status == 200  # alice may go live
        assert (await http.patch("/api/me/settings", json={"backstage": True}, headers=alice)).status == 200
        alice_key, bob_key = await api.stream_key(alice), await api.stream_key(bob)
        whip, accounts = whip_of(srv), srv.app[ACCOUNTS]
        async with aiohttp.ClientSession() as plain:
            links, headers = await _options_links(plain, srv, f"Bearer {alice_key}")
            assert links == [f'<{STUN}>; rel="ice-server"', TURN_LINK] and headers["Cache-Control"] == "no-store"
            for key in (bob_key, "sk_" + "x" * 32, alice_key[:-1]):  # no live access; unknown keys
                links, _ = await _options_links(plain, srv, f"Bearer {key}")
                assert links == [f'<{STUN}>; rel="ice-server"'], key
            assert whip.stats.refused == {} and whip.authorizer.refusals == 0 and accounts.publishes_refused == 0
            assert not srv.hub.starts_private("alice") and not whip.sessions
            # The same keys in a POST: refused and counted; accepted, with the backstage set.
            status, _, text = await post_offer(plain, srv, offer(), key=bob_key)
            assert status == 401 and "follower" in text, text
            assert whip.stats.refused == {"auth": 1} and accounts.publishes_refused == 1
            status, _, text = await post_offer(plain, srv, offer(), key=alice_key)
            assert status == 201, text
            assert srv.hub.starts_private("alice") and len(whip.sessions) == 1


async def test_public_address_adds_twin_candidates_on_the_same_ports(tmp_path):
    async with whip_server(tmp_path, "webrtc.public_address=203.0.113.7") as srv, aiohttp.ClientSession() as http:
        status, _, answer = await post_offer(http, srv, offer())
        assert status == 201, answer
        candidates = [line.split() for line in answer.splitlines() if line.startswith("a=candidate:")]
        local = {(c[4], c[5]) for c in candidates if c[4] != "203.0.113.7" and ":" not in c[4]}
        public = {c[5] for c in candidates if c[4] == "203.0.113.7"}
        assert local and public == {port for _, port in local}


async def test_a_session_that_never_connects_is_reaped_and_leaves_no_trace(tmp_path):
    async with whip_server(tmp_path, "webrtc.setup_timeout=1") as srv, aiohttp.ClientSession() as http:
        recorder = StreamRecorder(srv.hub)
        whip = whip_of(srv)
        status, headers, text = await post_offer(http, srv, offer())
        assert status == 201, text
        assert len(whip.sessions) == 1
        await until(lambda: not whip.sessions, timeout=10, what="the reaper")
        assert whip.stats.reaped == 1 and whip.stats.publishes == 0
        assert srv.hub.get(NAME) is None and NAME not in recorder.started
        async with http.delete(srv.http_url + headers["Location"],
                               headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 404  # it is gone
        assert "mediasrv_whip_reaped_total 1.0" in await _metrics(http, srv)


async def test_off_says_so(tmp_path):
    async with whip_server(tmp_path, "webrtc.enabled=false") as srv, aiohttp.ClientSession() as http:
        status, _, text = await post_offer(http, srv, offer())
        assert status == 404 and "off" in json.loads(text)["error"]


async def test_the_publish_webhook_decides_for_whip_as_for_rtmp(tmp_path):
    asked = []

    async def decide(request: web.Request) -> web.Response:
        body = await request.json()
        asked.append(body)
        if body["key"] != "hook-key":
            return web.Response(status=403)
        return web.json_response({"name": "hooked"})

    hook = web.Application()
    hook.router.add_post("/auth", decide)
    runner = web.AppRunner(hook)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/auth"
    try:
        async with whip_server(tmp_path, "auth.mode=webhook", f"auth.webhook.url={url}",
                               f"webrtc.ice_servers={ICE}") as srv, aiohttp.ClientSession() as http:
            # An OPTIONS is no publish: the webhook is not asked (it would take the question
            # for one), so no TURN credentials before the POST in this mode.
            links, _ = await _options_links(http, srv, "Bearer hook-key")
            assert links == [f'<{STUN}>; rel="ice-server"'] and asked == []
            status, _, text = await post_offer(http, srv, offer(), key="bad-key")
            assert status == 401 and "webhook" in text
            status, _, text = await post_offer(http, srv, offer(), key="hook-key")
            assert status == 201, text
            assert [a["action"] for a in asked] == ["publish", "publish"]
            assert asked[1]["app"] == srv.config.rtmp.app and asked[1]["client"] == "127.0.0.1"
            session = next(iter(whip_of(srv).sessions.values()))
            assert session.name == "hooked"
    finally:
        await runner.cleanup()


async def test_a_port_range_other_than_the_kernels_is_warned_about(tmp_path, caplog):
    actual = read_port_range()
    if actual is None:
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range here")
    other = f"{actual[0] + 1}-{actual[1]}" if actual[0] < 65000 else "40000-40099"
    with caplog.at_level(logging.WARNING, logger="mediasrv.whip"):
        async with whip_server(tmp_path, f"webrtc.udp_ports={other}") as srv:
            warning = whip_of(srv).port_warning
    assert warning and "ip_local_port_range" in warning and f"{actual[0]}-{actual[1]}" in warning
    assert warning in caplog.text
    async with whip_server(tmp_path / "same", f"webrtc.udp_ports={actual[0]}-{actual[1]}") as srv:
        assert whip_of(srv).port_warning is None
