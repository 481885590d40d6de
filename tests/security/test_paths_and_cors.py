"""No path traversal on the routes that serve files, and CORS only where it is meant.

One creator goes live and saves her broadcast, so a real VOD (files on disk next to the
database) and a real HLS stream exist. Then:

- traversal attempts on the VOD, HLS and cover routes (dot-dot, ``%2F``, ``%2e``,
  backslash, NUL, absolute paths, over-long names) are 4xx and never return a byte of a
  file outside the recording (the SQLite database is the prize);
- media GETs (HLS and VOD playlists and segments) carry ``Access-Control-Allow-Origin: *``
  and answer preflights for GET only; WHIP (``/whip``) grants any origin, never
  credentials: its credential is the stream key a page sends itself, not a cookie; the
  state-changing API grants no origin at all
  (no ``Access-Control-Allow-Origin`` on answers or preflights, never credentials), so a
  page on another origin cannot drive a logged-in user's browser against it.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from mediasrv.httpkit.keys import RECORDER
from tests.accounts.support import accounts_server
from tests.security.support import eventually
from tests.support.clients import ffmpeg_push

pytestmark = pytest.mark.e2e

EVIL = "https://evil.example"


async def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET with the request target exactly as given (no client-side normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


async def _live_and_saved(api) -> str:
    alice = await api.user("alice", "creator")
    key = await api.stream_key(alice)
    status, output = await ffmpeg_push(api.srv.rtmp_url(key), seconds=2)
    assert status == 0, output
    recorder = api.srv.app[RECORDER]

    async def ended():
        rows = await recorder.list(stream="alice", states=None, limit=5)
        # Saved at once (a new creator saves by default) or, on older defaults, pending.
        return rows if rows and rows[0].state.value in ("pending_decision", "saved") else None

    recording = (await eventually(ended, timeout=60, what="the recording to end"))[0]
    response = await api.http.post(f"/api/recordings/{recording.id}/save", headers=alice)
    assert response.status == 200, await response.text()
    return recording.id


async def test_no_traversal_and_cors_only_on_media(tmp_path):
    async with accounts_server(tmp_path, "recording.enabled=true", "live_access.min_followers=0",
                               "hls.keep_after_end=300") as api:
        rid = await _live_and_saved(api)
        port = api.srv.http_port
        status, body = await _raw_get(port, f"/vod/{rid}/index.m3u8")
        assert status == 200, body[:300]
        segment = re.search(rb"^(seg_\S+)$", body, re.M).group(1).decode()
        assert (await _raw_get(port, f"/vod/{rid}/{segment}"))[0] == 200

        db_names = ["mediasrv.db", "../mediasrv.db", "../../mediasrv.db", "../../../mediasrv.db"]
        attacks = []
        for name in db_names:
            for encoded in (name, name.replace("/", "%2F"), name.replace(".", "%2e").replace("/", "%2f"),
                            name.replace("/", "\\"), name.replace("/", "%5C")):
                attacks += [f"/vod/{rid}/{encoded}", f"/vod/{encoded}/index.m3u8",
                            f"/live/alice/{encoded}", f"/live/alice/source/{encoded}",
                            f"/api/users/{encoded}/cover"]
        attacks += [f"/vod/{rid}/seg_0.m4s%00.db", f"/vod/{rid}/%2Fetc%2Fpasswd", "/vod/%2e%2e/%2e%2e/etc/passwd",
                    f"/vod/{rid}/" + "a" * 5000, "/live/..%2F..%2F..%2Fetc%2Fpasswd/index.m3u8",
                    f"/vod/{rid}/{segment}/../../../../mediasrv.db", f"//vod/{rid}/../../mediasrv.db"]
        for target in attacks:
            status, data = await _raw_get(port, target)
            assert 400 <= status < 500, (target, data[:200])
            assert b"SQLite format 3" not in data and b"root:" not in data, target

        async with aiohttp.ClientSession() as http:
            base = api.srv.http_url
            # Media: any origin may read (players on other sites), preflight allows GET only.
            for path in (f"/vod/{rid}/index.m3u8", f"/vod/{rid}/{segment}", "/live/alice/index.m3u8"):
                async with http.get(base + path, headers={"Origin": EVIL}) as response:
                    assert response.status == 200, path
                    assert response.headers.get("Access-Control-Allow-Origin") == "*", path
                    assert "Access-Control-Allow-Credentials" not in response.headers
                async with http.options(base + path, headers={"Origin": EVIL,
                                                              "Access-Control-Request-Method": "GET"}) as response:
                    assert response.status == 204, path
                    assert response.headers["Access-Control-Allow-Origin"] == "*"
                    assert "POST" not in response.headers["Access-Control-Allow-Methods"]

            # WHIP: a page of any origin may publish with the stream key it sends (docs/whip.md).
            async with http.options(base + "/whip", headers={
                    "Origin": EVIL, "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type"}) as response:
                assert response.status == 204
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                assert "Access-Control-Allow-Credentials" not in response.headers

            # The API: no origin is granted anything, with or without a token.
            admin = await api.admin()
            checks = [("GET", "/api/me", admin), ("POST", "/api/login", {}), ("POST", "/api/me/stream-key", admin),
                      ("PUT", "/api/users/alice/role", admin), ("POST", f"/api/recordings/{rid}/discard", {})]
            for method, path, headers in checks:
                async with http.request(method, base + path, json={}, headers={**headers, "Origin": EVIL}) as response:
                    assert "Access-Control-Allow-Origin" not in response.headers, (method, path)
                    assert "Access-Control-Allow-Credentials" not in response.headers
                async with http.options(base + path, headers={"Origin": EVIL, "Access-Control-Request-Method": method,
                                                              "Access-Control-Request-Headers": "authorization"}
                                        ) as response:
                    assert "Access-Control-Allow-Origin" not in response.headers, (method, path)
                    assert response.status >= 400 or "Access-Control-Allow-Methods" not in response.headers
            recording = await api.srv.app[RECORDER].get(rid)
            assert recording.state.value == "saved"  # the anonymous cross-origin discard was refused
