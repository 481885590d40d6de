"""WHIP over HTTP (RFC 9725) on the HTTP listener.

- ``POST /whip``: ``Authorization: Bearer STREAM-KEY`` (the key RTMP takes) and an SDP
  offer (``Content-Type: application/sdp``) → ``201 Created``, the SDP answer, the
  session's ``Location`` and the ICE servers as ``Link`` headers;
- ``DELETE /whip/sessions/{id}`` (the same bearer token) ends the session: a clean
  unpublish;
- ``PATCH /whip/sessions/{id}`` is ``405``: no trickle ICE and no ICE restart (the
  answer carries every candidate; RFC 9725 §4.3.1);
- ``OPTIONS`` on both, with CORS: a page of any origin may publish. That is safe
  because the credential is the stream key the page sends itself, never a cookie
  (``Access-Control-Allow-Credentials`` is never set). ``OPTIONS /whip`` also lists the
  ICE servers (RFC 9725 §4.6): a TURN server's credentials only when the request bears
  a stream key a POST would take (checked without publishing anything), so that a client
  that sends every candidate in its offer can gather through TURN from the start.

The authorization is checked before the request's body is read. Refusals are JSON
``{"error": "..."}`` with a 4xx (``503`` + ``Retry-After`` when the server is full).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from aiohttp import web
from multidict import CIMultiDict

from mediasrv.httpkit.clients import viewer_address
from mediasrv.httpkit.keys import WHIP_SERVER
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import error_response
from mediasrv.ingest.whip.offer import OfferRefused
from mediasrv.ingest.whip.peer import NoCandidates
from mediasrv.ingest.whip.server import AddressFull, ServerFull, TakeoverRefused

log = logging.getLogger("mediasrv.whip")

ENDPOINT = "/whip"
SESSION = "/whip/sessions/{id}"
SDP = "application/sdp"
#: Longest bearer token looked at (stream keys and names are far shorter).
MAX_TOKEN = 512
#: Seconds a client told "full" should wait before it tries again.
RETRY_AFTER = 10

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Retry-After",
}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "86400",
}


def setup(app: web.Application) -> None:
    """Add the WHIP routes (always: without a WHIP server they answer 404 saying so)."""
    sdp = {SDP: {"schema": {"type": "string", "description": "an SDP offer (RFC 8866, RFC 9725)"}}}
    session_id = path_param("id", "the session's id, from the Location of its POST")
    add_route(app, "POST", ENDPOINT, post_offer, op(
        "Publish with WebRTC (WHIP, RFC 9725)", tag="whip",
        description="`Authorization: Bearer STREAM-KEY` (the key RTMP takes; the same publish authorization "
                    "under every auth.mode) and an SDP offer with one video track (VP8, or H.264 Constrained "
                    "Baseline with packetization-mode=1) and at most one audio track (Opus). Answers the SDP "
                    "answer (every candidate included: no trickle ICE) with the session's URL in `Location` and "
                    "the ICE servers in `Link` headers (`rel=\"ice-server\"`). docs/whip.md.",
        body_content=sdp, ok=201, ok_description="the SDP answer",
        ok_content={SDP: {"schema": {"type": "string", "description": "the SDP answer"}}},
        errors=[400, 401, 404, 409, 413, 415, 429, 503]))
    add_route(app, "DELETE", SESSION, delete_session, op(
        "End a WHIP session (a clean unpublish)", tag="whip",
        description="With the bearer token the session was created with.",
        params=[session_id], ok_description="ended", errors=[401, 404]))
    # Not operations of the API (like the HLS routes' preflights): the CORS preflights (the
    # endpoint's also lists the ICE servers that need no credential), and PATCH, which is
    # RFC 9725's trickle ICE and ICE restart, not done here: it gives the 405 the RFC asks for.
    app.router.add_route("OPTIONS", ENDPOINT, options_endpoint)
    app.router.add_route("OPTIONS", SESSION, options_session)
    app.router.add_route("PATCH", SESSION, patch_session)


# --- handlers ------------------------------------------------------------------------------

async def post_offer(request: web.Request) -> web.StreamResponse:
    server = request.app.get(WHIP_SERVER)
    if server is None:
        return _refuse(404, "WHIP ingest is off on this server (webrtc.enabled, or a pure edge)")
    key = _bearer(request)
    if key is None:
        server.stats.refuse("auth")
        return _refuse(401, "send the stream key as Authorization: Bearer STREAM-KEY")
    client = viewer_address(request)
    decision = await server.authorize(key, client)
    if not decision.allowed:
        return _refuse(401, decision.reason or "publish refused")
    if request.content_type != SDP:
        server.stats.refuse("content_type")
        return _refuse(415, f"send the SDP offer as Content-Type: {SDP}")
    try:
        offer = await request.read()
    except web.HTTPRequestEntityTooLarge:
        server.stats.refuse("offer")
        return _refuse(413, "the offer is too large")
    try:
        session, answer = await server.open_session(offer, name=decision.name, key=key, client=client)
    except OfferRefused as exc:
        return _refuse(400, str(exc))
    except TakeoverRefused as exc:
        return _refuse(409, str(exc))
    except AddressFull as exc:
        return _refuse(429, str(exc), headers={"Retry-After": str(RETRY_AFTER)})
    except ServerFull as exc:
        return _refuse(503, str(exc), headers={"Retry-After": str(RETRY_AFTER)})
    except NoCandidates as exc:
        log.error("whip: %s", exc)
        return _refuse(503, "the server has no network address for WebRTC; try again later",
                       headers={"Retry-After": str(RETRY_AFTER)})
    headers = CIMultiDict(CORS)
    headers["Content-Type"] = SDP
    headers["Location"] = SESSION.replace("{id}", session.id)
    headers["ETag"] = f'"{session.id}"'
    headers["Cache-Control"] = "no-store"
    for value in server.link_values(with_credentials=True):
        headers.add("Link", value)
    return web.Response(status=201, body=answer.encode(), headers=headers)


async def delete_session(request: web.Request) -> web.Response:
    server = request.app.get(WHIP_SERVER)
    session = server.find(request.match_info["id"]) if server is not None else None
    if session is None:
        return _refuse(404, "no such WHIP session (it ended, or never was)")
    key = _bearer(request)
    if key is None or not hmac.compare_digest(hashlib.sha256(key.encode()).digest(), session.key_digest):
        return _refuse(401, "send the stream key the session was created with as Authorization: Bearer")
    server.delete(session)
    return web.Response(status=200, headers={**CORS, "Cache-Control": "no-store"})


async def patch_session(request: web.Request) -> web.Response:
    # RFC 9725 §4.3.1: no trickle ICE, no ICE restart. The answer had every candidate.
    return _refuse(405, "trickle ICE and ICE restarts are not supported: the answer carries every candidate",
                   headers={"Allow": "DELETE, OPTIONS"})


async def options_endpoint(request: web.Request) -> web.Response:
    # A CORS preflight carries no Authorization header: the ICE servers that need no
    # credential. A client's own OPTIONS with the stream key (RFC 9725 §4.6) gets the TURN
    # credentials too when a POST with that key would be taken; a wrong key gets the same
    # answer as no key (204: this is not a publish, nothing to refuse).
    headers = CIMultiDict(PREFLIGHT)
    headers["Accept-Post"] = SDP
    headers["Vary"] = "Authorization"
    server = request.app.get(WHIP_SERVER)
    if server is not None:
        with_credentials = await server.key_would_publish(_bearer(request))
        if with_credentials:
            headers["Cache-Control"] = "no-store"  # credentials: kept by no cache
        for value in server.link_values(with_credentials=with_credentials):
            headers.add("Link", value)
    return web.Response(status=204, headers=headers)


async def options_session(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=PREFLIGHT)


# --- helpers -------------------------------------------------------------------------------

def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
        return None
    return token


def _refuse(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return error_response(status, message, headers={**CORS, **(headers or {})})
