"""Live access on request: a creator below the follower threshold asks, an operator grants
or refuses with a reason, the creator is told (``live-access.decided`` on their alerts
feed); the operator sets the threshold for their community (kept in the store, over the
configuration's). See docs/api.md (Live access requests)."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from mediasrv.community.accounts import access_models as m
from mediasrv.community.accounts.http import account_service, require_user
from mediasrv.community.accounts.service import AccessRequestRefused
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, read_optional_body, read_query, respond
from mediasrv.httpkit.keys import ALERTS, CONFIG
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError
from mediasrv.store.accounts import AccessRequest

#: The alert a creator gets when an operator decides their request.
DECIDED_EVENT = "live-access.decided"



def _json(row: AccessRequest) -> dict:
    return {**asdict(row), "user": row.user.to_json()}


async def request_access(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    body = await read_body(request, m.NewAccessRequest)
    try:
        row = await account_service(request).request_live_access(user, body.message)
    except AccessRequestRefused as exc:
        raise ApiError(exc.status, exc.message) from None
    return respond(m.AccessRequest, _json(row), status=201)


async def my_requests(request: web.Request) -> web.Response:
    user = await require_user(request)
    rows = await account_service(request).access_requests(user=user, limit=20)
    return respond(m.AccessRequestList, {"requests": [_json(r) for r in rows]}, headers={"Cache-Control": "no-store"})


async def list_requests(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    query = read_query(request, m.AccessRequestQuery)
    rows = await account_service(request).access_requests(status=None if query.status == "all" else query.status,
                                                   limit=query.limit)
    return respond(m.AccessRequestList, {"requests": [_json(r) for r in rows]}, headers={"Cache-Control": "no-store"})


async def grant(request: web.Request) -> web.Response:
    return await _decide(request, True, m.Grant)


async def refuse(request: web.Request) -> web.Response:
    return await _decide(request, False, m.Refusal)


async def _decide(request: web.Request, granted: bool, model) -> web.Response:
    actor = await require_user(request, "admin")  # the role first, before any input is read
    request_id = _request_id(request)
    body = await read_optional_body(request, model) if granted else await read_body(request, model)
    try:
        row = await account_service(request).decide_access_request(request_id, granted, body.reason, actor)
    except AccessRequestRefused as exc:
        raise ApiError(exc.status, exc.message) from None
    alerts = request.app.get(ALERTS)
    if alerts is not None:  # the creator's open pages hear of it at once
        alerts.deliver([row.user.id], DECIDED_EVENT, {"id": row.id, "status": row.status, "reason": row.reason})
    return respond(m.AccessRequest, _json(row))


def _request_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(404, "no such request")
    return int(text)


async def _settings_json(request: web.Request) -> dict:
    configured = request.app[CONFIG].live_access.min_followers
    in_force = await account_service(request).min_followers()
    stored = await account_service(request).store_has_min_followers()
    return {"live_access_min_followers": in_force, "configured_min_followers": configured,
            "source": "admin" if stored else "config"}


async def get_settings(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    return respond(m.SiteSettings, await _settings_json(request), headers={"Cache-Control": "no-store"})


async def update_settings(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    body = await read_body(request, m.SiteSettingsChange)
    await account_service(request).set_min_followers(body.live_access_min_followers)
    return respond(m.SiteSettings, await _settings_json(request))


def setup(app: web.Application) -> None:
    """The live-access request routes and the operator's site settings."""
    validate.install(app)
    tag = "live access"
    add_route(app, "POST", "/api/me/live-access/requests", request_access, op(
        "Ask the operators for live access", tag=tag, auth="required", ok=201, body=m.NewAccessRequest,
        ok_schema=m.AccessRequest, errors=[403, 409],
        description="For a creator below the follower threshold. 409: live access already held, revoked by an "
                    "operator, or an earlier request still waiting."))
    add_route(app, "GET", "/api/me/live-access/requests", my_requests, op(
        "My live-access requests, newest first", tag=tag, auth="required", ok_schema=m.AccessRequestList))
    add_route(app, "GET", "/api/live-access/requests", list_requests, op(
        "The operators' queue of live-access requests", tag=tag, role="admin", query=m.AccessRequestQuery,
        ok_schema=m.AccessRequestList, errors=[400]))
    request_id = path_param("id", "the request's id", {"type": "string", "pattern": "^[0-9]{1,18}$"})
    add_route(app, "POST", "/api/live-access/requests/{id}/grant", grant, op(
        "Grant a request: live access from now on", tag=tag, role="admin", body=m.Grant, ok_schema=m.AccessRequest,
        params=[request_id], errors=[404, 409],
        description="The same override as `PUT /api/users/HANDLE/live-access` `granted`; the body (an optional "
                    "`reason`) may be left out. The creator gets `live-access.decided` on `GET /api/me/events`. "
                    "409: already decided."))
    add_route(app, "POST", "/api/live-access/requests/{id}/refuse", refuse, op(
        "Refuse a request, saying why", tag=tag, role="admin", body=m.Refusal, ok_schema=m.AccessRequest,
        params=[request_id], errors=[404, 409],
        description="The creator sees the reason in their studio and on `GET /api/me/events` "
                    "(`live-access.decided`). 409: already decided."))
    add_route(app, "GET", "/api/admin/settings", get_settings, op(
        "The operator's site settings", tag=tag, role="admin", ok_schema=m.SiteSettings))
    add_route(app, "PATCH", "/api/admin/settings", update_settings, op(
        "Change the site settings (kept in the database, over the configuration)", tag=tag, role="admin",
        body=m.SiteSettingsChange, ok_schema=m.SiteSettings))
