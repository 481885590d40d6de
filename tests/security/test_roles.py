"""Every endpoint that changes state needs the right role.

The routes are walked from the aiohttp router of a running server (so a route added
later is walked too, with no list to update), every path parameter filled with a real
resource (a creator who has been live, her recording, a report), and every non-GET
method called: without a token (401), as a plain viewer (403), as a creator who does not
own the resource (403). Only the documented exceptions may answer otherwise.
"""

from __future__ import annotations

import re

import pytest

from mediasrv.httpkit.keys import RECORDER
from tests.accounts.support import accounts_server
from tests.security.support import eventually
from tests.support.clients import ffmpeg_push

#: Anyone may call these (docs/security.md): sign-up (an admin is needed only for roles
#: above creator and when registration is closed) and login.
PUBLIC = {("POST", "/api/users"), ("POST", "/api/login"),
          # Issue 18 (abuse-accounts): the link of a verification mail; its token is the credential.
          ("POST", "/api/verify-email")}
#: A logged-in user acting on their own account (not on anyone else's).
OWN_ACCOUNT = {
    ("POST", "/api/logout"), ("PATCH", "/api/me"), ("PUT", "/api/me/following/{handle}"),
    ("DELETE", "/api/me/following/{handle}"), ("POST", "/api/reports"), ("POST", "/api/streams/{name}/gifts"),
    ("POST", "/api/me/become-creator"),
    # Issue 18 (abuse-accounts): one's own email, verified by a mailed link.
    ("PUT", "/api/me/email"),
    # Who may reach whom (issue 18): one's own blocks and mutes, a report of a user.
    ("POST", "/api/me/blocks/{handle}"), ("DELETE", "/api/me/blocks/{handle}"),
    ("POST", "/api/me/mutes/{handle}"), ("DELETE", "/api/me/mutes/{handle}"),
    ("POST", "/api/users/{handle}/report"),
}
#: Needs the creator role for one's own channel.
OWN_CHANNEL = {("POST", "/api/me/stream-key"), ("PATCH", "/api/me/settings"), ("PUT", "/api/me/cover"),
               ("DELETE", "/api/me/cover"), ("POST", "/api/me/live-access/requests"),
               # Backstage and ending a live (issue 17): the creator's own live, never another's.
               ("POST", "/api/me/live/public"), ("POST", "/api/me/live/end"),
               # Who may watch (issue 18): the creator's own live and invitations.
               ("PATCH", "/api/me/live"), ("POST", "/api/me/invites/{handle}"),
               ("DELETE", "/api/me/invites/{handle}")}
SAFE = {"GET", "HEAD", "OPTIONS"}
#: WHIP (docs/whip.md): the credential is a stream key as a bearer token, never a login, so
#: every caller here is refused as having no stream key (401); a session is ended by its
#: unguessable URL plus that key (an unknown one is 404 before any token is looked at);
#: PATCH is never supported (405). The WHIP tests (tests/whip) check the keys themselves.
STREAM_KEY = {("POST", "/whip"): {401}, ("DELETE", "/whip/sessions/{id}"): {404},
              ("PATCH", "/whip/sessions/{id}"): {405}}


def _state_changing_routes(app) -> list[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method in SAFE or route.method == "*":
            continue
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.resource.canonical)
        out.add((route.method, path))
    return sorted(out)


async def _resources(api):
    """Alice, a creator who has been live (so she has a recording), Bob a viewer, Dave a
    creator, and a report; returns the path parameter values and the tokens."""
    alice = await api.user("alice", "creator")
    bob = await api.user("bob", "viewer")
    dave = await api.user("dave", "creator")
    await api.user("carol", "viewer")
    # Her recording must stay undecided (saved by default, it would be saved at the end).
    response = await api.http.patch("/api/me/settings", json={"save_by_default": False}, headers=alice)
    assert response.status == 200, await response.text()
    key = await api.stream_key(alice)
    status, output = await ffmpeg_push(api.srv.rtmp_url(key), seconds=1)
    assert status == 0, output
    recorder = api.srv.app[RECORDER]
    recordings = await eventually(lambda: recorder.list(stream="alice", states=None, limit=5),
                                  what="alice's recording")
    response = await api.http.post("/api/reports", json={"kind": "user", "user": "alice", "reason": "test"},
                                   headers=bob)
    assert response.status == 201, await response.text()
    report_id = (await response.json())["id"]
    return {"handle": "alice", "name": "alice", "user": "carol", "recording": recordings[0].id,
            "report": str(report_id)}, {"viewer": bob, "creator": dave}


def _url(path: str, values: dict) -> str:
    def fill(match):
        name = match.group(1)
        if name == "id":
            if path.startswith("/whip/"):
                return "no-such-session"
            return values["report"] if path.startswith("/api/reports/") else values["recording"]
        return values[name]

    return re.sub(r"\{(\w+)\}", fill, path)


@pytest.mark.e2e
async def test_every_state_changing_route_needs_the_right_role(tmp_path):
    async with accounts_server(tmp_path, "recording.enabled=true", "live_access.min_followers=0") as api:
        routes = _state_changing_routes(api.srv.app)
        assert len(routes) >= 20, routes  # the walk sees the whole API
        values, tokens = await _resources(api)
        failures = []
        for method, path in routes:
            url = _url(path, values)
            # Anonymous: 401 (log in), or 403 where the refusal does not depend on a login
            # (the recorder's rule without accounts: admin token or loopback).
            callers = [("anonymous", {}, {401, 403})]
            if (method, path) in STREAM_KEY:
                callers = [(who, headers, STREAM_KEY[method, path]) for who, headers in (
                    ("anonymous", {}), ("viewer", tokens["viewer"]), ("creator", tokens["creator"]))]
            elif (method, path) not in OWN_ACCOUNT:
                callers.append(("viewer", tokens["viewer"], {403}))
                if (method, path) not in OWN_CHANNEL:
                    callers.append(("creator", tokens["creator"], {403}))
            for who, headers, expected in callers:
                if (method, path) in PUBLIC:
                    continue
                # A plausible body: a handler must refuse on the role before it looks at input.
                response = await api.http.request(method, url, json={}, headers=headers)
                if response.status not in expected:
                    failures.append(f"{who} {method} {url}: {response.status} {(await response.text())[:120]}")
        assert not failures, "\n".join(failures)
        # The walk did not break anything it was refused: the recording is still undecided.
        recording = await api.srv.app[RECORDER].get(values["recording"])
        assert recording is not None and recording.state.value not in ("saved", "discarded")


@pytest.mark.e2e
async def test_public_routes_are_only_sign_up_and_login(tmp_path):
    """The two public routes refuse what is not theirs to give: sign-up cannot create a
    moderator or admin, and registration can be closed."""
    async with accounts_server(tmp_path, "accounts.open_registration=false") as api:
        response = await api.http.post("/api/users", json={"handle": "eve", "password": "long-password-1"})
        assert response.status == 403
        response = await api.http.post("/api/login", json={"handle": "eve", "password": "long-password-1"})
        assert response.status == 401
    async with accounts_server(tmp_path / "open") as api:
        for role in ("moderator", "admin"):
            response = await api.http.post("/api/users", json={"handle": f"eve{role}", "password": "long-password-1",
                                                               "role": role})
            assert response.status == 403, role
