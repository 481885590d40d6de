"""Every route of the app, walked from its router, with what an attacker sends: NUL and
invalid bytes in the path, bodies that are not JSON, nested too deep, too large or of the
wrong type, with no Content-Type; anonymous and signed in. Nothing may answer a 5xx
(issue 18: a deep JSON body and a NUL in a path were 500s).

The route list is the router's, so a route added later is swept too, with nothing to
update here."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
import yarl

from tests.accounts.support import accounts_server

pytestmark = pytest.mark.e2e

#: Each path parameter is replaced by each of these (already percent-encoded).
BAD_SEGMENTS = ("%00", "a%00b", "%ff%fe", "%c0%af", "..%2f..%2fetc%2fpasswd", "%e2%80%ae" * 3, "x" * 4000)
MAX_BODY = 64 * 1024
DEEP = b"[" * 5000 + b"]" * 5000
#: (name, Content-Type or None, body)
BAD_BODIES = (
    ("json without a Content-Type", None, b'{"handle": "eve", "password": "long-password-1"}'),
    ("json as text/plain", "text/plain", b'{"handle": "eve", "password": "long-password-1"}'),
    ("a form", "application/x-www-form-urlencoded", b"handle=eve&password=long-password-1"),
    ("deep json", "application/json", DEEP),
    ("deep json in an object", "application/json", b'{"a": ' + DEEP + b"}"),
    ("invalid utf-8", "application/json", b'{"a": "\xff\xfe\x00"}'),
    ("a NUL", "application/json", b'{"a\x00": 1}'),
    ("not an object", "application/json", b"[1, 2, 3]"),
    ("truncated", "application/json", b'{"a": [1, 2'),
    ("a huge number", "application/json", b'{"limit": 1' + b"0" * 5000 + b"}"),
    ("too large", "application/json", b'{"a": "' + b"x" * (MAX_BODY + 1024) + b'"}'),
    ("a bad charset", "application/json; charset=nonsense", b"{}"),
    ("multipart without a boundary", "multipart/form-data", b"--x\r\n\r\n"),
)
SAFE = {"GET", "HEAD", "OPTIONS"}


def _routes(app) -> list[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "*":
            continue
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.resource.canonical)
        out.add((route.method, path))
    return sorted(out)


def _fill(path: str, bad: str | None, which: str | None) -> str:
    """``path`` with ``which`` parameter set to ``bad`` and the others to plain values."""
    def value(match):
        name = match.group(1)
        if name == which:
            return bad
        return {"handle": "alice", "name": "alice", "user": "bob", "file": "init.mp4", "rest": "1.0.m4s",
                "rendition": "src", "path": "js/api.js"}.get(name, "1")

    return re.sub(r"\{(\w+)\}", value, path)


@pytest.mark.timeout(300)
async def test_no_route_answers_a_5xx_to_bad_paths_or_bodies(tmp_path):
    async with accounts_server(tmp_path, f"http.max_body_bytes={MAX_BODY}") as api:
        callers = {"anonymous": {}, "admin": await api.admin(), "creator": await api.user("alice", "creator")}
        await api.user("bob")
        routes = _routes(api.srv.app)
        assert len(routes) >= 100, routes  # the walk sees the whole app
        cases: list[tuple[str, str, str, dict, str | None, bytes | None]] = []
        for method, path in routes:
            params = re.findall(r"\{(\w+)\}", path)
            urls = [_fill(path, None, None) + "%00", _fill(path, None, None) + "/%ff"]
            urls += [_fill(path, bad, name) for name in params for bad in BAD_SEGMENTS]
            for who, token in callers.items():
                if who != "anonymous" and (method, path) == ("POST", "/api/logout"):
                    continue  # it would end the session the rest of the sweep uses
                for url in urls:
                    cases.append((f"{who} {method} {url[:80]}", method, url, token, None, None))
                if method in SAFE:
                    continue
                url = _fill(path, None, None)
                for name, content_type, body in BAD_BODIES:
                    cases.append((f"{who} {method} {url} ({name})", method, url, token, content_type, body))

        failures: list[str] = []
        limit = asyncio.Semaphore(8)

        async def one(label, method, url, token, content_type, body):
            headers = dict(token)
            if content_type is not None:
                headers["Content-Type"] = content_type
            async with limit:
                try:
                    async with api.http.request(method, yarl.URL(api.srv.http_url + url, encoded=True),
                                                data=body, headers=headers, allow_redirects=False,
                                                skip_auto_headers=("Content-Type",),
                                                timeout=aiohttp.ClientTimeout(total=30)) as response:
                        if response.status >= 500:
                            failures.append(f"{label}: {response.status} {(await response.text())[:160]}")
                except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                    # Only a body the server refused unread may cut the connection.
                    if body is None or len(body) <= MAX_BODY:
                        failures.append(f"{label}: the connection broke ({type(exc).__name__})")

        await asyncio.gather(*(one(*case) for case in cases))
        assert len(cases) > 1000
        assert not failures, f"{len(failures)} of {len(cases)} requests failed:\n" + "\n".join(sorted(failures)[:60])


async def test_json_routes_refuse_a_body_that_is_not_declared_json(tmp_path):
    """Issue 18: a body with no Content-Type was parsed as JSON, so another site's page
    could register accounts through its visitors' browsers (``fetch(..., {mode:
    "no-cors"})`` sends text/plain, or nothing). Every route whose description takes a
    JSON body refuses one without ``application/json``: 415."""
    async with accounts_server(tmp_path) as api:
        admin = await api.admin()
        spec = await (await api.http.get("/api/openapi.json")).json()
        json_routes = [(method.upper(), path) for path, item in spec["paths"].items()
                       for method, op in item.items()
                       if "application/json" in op.get("requestBody", {}).get("content", {})]
        assert ("POST", "/api/users") in json_routes and len(json_routes) >= 10, json_routes
        failures = []
        for method, path in json_routes:
            url = _fill(path, None, None)
            for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
                headers = {**admin, **({"Content-Type": content_type} if content_type else {})}
                async with api.http.request(method, url, data=b'{"handle": "eve", "password": "long-password-1"}',
                                            headers=headers, skip_auto_headers=("Content-Type",)) as response:
                    # 404: a resource of the path that does not exist is looked up first.
                    if response.status != 415 and not (response.status == 404 and "{" in path):
                        failures.append(f"{method} {path} as {content_type}: {response.status} "
                                        f"{(await response.text())[:100]}")
        assert not failures, "\n".join(failures)
        # Nothing was registered by the bodies that were not JSON.
        assert (await api.http.get("/api/users/eve")).status == 404
