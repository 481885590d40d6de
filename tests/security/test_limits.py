"""Request size limits and login rate limiting.

- A JSON body over ``http.max_body_bytes`` is a 413 with a JSON error, not a 500, on
  every endpoint that reads one; a cover over ``uploads.max_cover_bytes`` is a 413 whether
  it announces its length or streams it chunked; a chat frame over the chat limit closes
  the WebSocket with 1009 (message too big).
- Failed logins: ``accounts.login_failures`` per address and per handle in
  ``accounts.login_window`` seconds, then 429 with Retry-After, before the password is
  checked (a right password is refused too), per address and per handle separately.
"""

from __future__ import annotations

import aiohttp
import pytest

from mediasrv.community.accounts.login_limit import LoginLimiter
from tests.accounts.support import PASSWORD, accounts_server

pytestmark = pytest.mark.e2e


async def test_over_limit_json_bodies_are_413(tmp_path):
    async with accounts_server(tmp_path, "http.max_body_bytes=4096") as api:
        creator = await api.user("alice", "creator")
        big = {"display_name": "x" * 8000}
        for method, path, headers in [("POST", "/api/users", {}), ("POST", "/api/login", {}),
                                      ("PATCH", "/api/me", creator), ("PATCH", "/api/me/settings", creator),
                                      ("POST", "/api/reports", creator)]:
            response = await api.http.request(method, path, json=big, headers=headers)
            assert response.status == 413, (path, await response.text())
            assert "too large" in (await response.json())["error"]
        # Just under the limit is read (and refused on its content, not its size).
        response = await api.http.patch("/api/me", json={"display_name": "x" * 3000}, headers=creator)
        assert response.status == 400, await response.text()


async def test_over_limit_cover_uploads_are_413(tmp_path):
    async with accounts_server(tmp_path, "uploads.max_cover_bytes=20000") as api:
        creator = await api.user("alice", "creator")
        data = b"\xff\xd8\xff" + bytes(40000)
        response = await api.http.put("/api/me/cover", data=data, headers={**creator, "Content-Type": "image/jpeg"})
        assert response.status == 413, await response.text()

        async def chunked():  # no Content-Length: the limit is applied while reading
            for _ in range(10):
                yield bytes(4096)

        response = await api.http.put("/api/me/cover", data=chunked(), headers={**creator, "Content-Type": "image/jpeg"})
        assert response.status == 413, await response.text()
        form = aiohttp.FormData()
        form.add_field("cover", data, filename="c.jpg", content_type="image/jpeg")
        response = await api.http.put("/api/me/cover", data=form, headers=creator)
        assert response.status == 413, await response.text()


async def test_over_limit_chat_frame_closes_with_1009(tmp_path):
    async with accounts_server(tmp_path, "chat.max_chars=50") as api:
        token = (await api.user("alice", "creator"))["Authorization"].split()[1]
        async with api.http.ws_connect(f"/live/alice/chat?access_token={token}") as ws:
            await ws.send_str('{"type":"message","text":"' + "x" * 5000 + '"}')
            async for frame in ws:
                if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
            assert ws.close_code == 1009


async def test_login_failures_are_limited_per_account_and_address_with_retry_after(tmp_path):
    async with accounts_server(tmp_path, "accounts.login_failures=3", "accounts.login_window=60") as api:
        await api.user("alice", "viewer")
        for _ in range(3):
            response = await api.http.post("/api/login", json={"handle": "alice", "password": "wrong-password"})
            assert response.status == 401
        # That account from that address, even with the right password: refused.
        response = await api.http.post("/api/login", json={"handle": "alice", "password": PASSWORD})
        assert response.status == 429, await response.text()
        retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert (await response.json())["retry_after"] == retry_after
        # Another account from the same address is not locked out (issue 18: it was).
        response = await api.http.post("/api/login", json={"handle": "bob", "password": "whatever-1"})
        assert response.status == 401, await response.text()


async def test_login_failures_are_limited_per_handle_across_addresses(tmp_path):
    """Behind a trusted proxy each X-Forwarded-For is another client: a handle tried from
    many addresses is still limited (by ``accounts.login_ceiling``), while other handles
    from those addresses are not."""
    async with accounts_server(tmp_path, "accounts.login_failures=3", "accounts.login_ceiling=3",
                               "http.trusted_proxies=127.0.0.1/32") as api:
        await api.user("alice", "viewer")
        await api.user("bob", "viewer")
        for i in range(3):
            response = await api.http.post("/api/login", json={"handle": "alice", "password": "wrong-password"},
                                           headers={"X-Forwarded-For": f"203.0.113.{i}"})
            assert response.status == 401
        response = await api.http.post("/api/login", json={"handle": "alice", "password": PASSWORD},
                                       headers={"X-Forwarded-For": "203.0.113.99"})
        assert response.status == 429
        assert "Retry-After" in response.headers
        response = await api.http.post("/api/login", json={"handle": "bob", "password": PASSWORD},
                                       headers={"X-Forwarded-For": "203.0.113.1"})
        assert response.status == 200, await response.text()


def test_limiter_window_slides_and_memory_is_bounded():
    now = [1000.0]
    limiter = LoginLimiter(2, 60.0, clock=lambda: now[0], max_keys=10)
    assert limiter.retry_after("a", "h") == 0
    limiter.failed("a", "h")
    now[0] += 10
    limiter.failed("a", "h")
    assert limiter.retry_after("a", "h") == 50  # the first failure leaves the window at 1060
    now[0] += 50
    assert limiter.retry_after("a", "h") == 0
    assert limiter.retry_after("a", "H") == 0  # handles are case-insensitive, like logins
    for i in range(100):
        limiter.failed(f"10.0.0.{i}", f"user{i}")
    assert len(limiter._pairs) <= 10 and len(limiter._wide) <= 10
