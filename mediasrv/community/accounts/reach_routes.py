"""Who may reach whom over HTTP: a user's blocks and mutes, and the operators'
suspensions of accounts. See docs/api.md (Blocks, mutes and suspensions) and
docs/security.md (Reach).

The decisions themselves are made in memory by ``Relations`` and ``Suspensions``
(``AccountService.relations``, ``.suspensions``); ending a suspended creator's live is the
composition root's ``on_suspended``.
"""

from __future__ import annotations

from aiohttp import web

from mediasrv.community.accounts import models as am
from mediasrv.community.accounts import reach_models as m
from mediasrv.community.accounts.http import account_service, require_user, target_user
from mediasrv.community.accounts.relations import TooMany
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, respond
from mediasrv.httpkit.keys import HUB
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError

_NO_STORE = {"Cache-Control": "no-store"}
#: The field of a relation answer, by kind.
_FIELD = {"block": "blocked", "mute": "muted"}




# --- blocks and mutes ---------------------------------------------------------------------

def _listing(kind: str):
    async def handler(request: web.Request) -> web.Response:
        user = await require_user(request)
        rows = await account_service(request).relations.listing(user, kind)
        return respond(m.RelationList, {"total": len(rows), "users": [
            {"user": other.to_json(), "since": since} for other, since in rows]}, headers=_NO_STORE)
    return handler


def _adder(kind: str):
    async def handler(request: web.Request) -> web.Response:
        user = await require_user(request)
        other = await target_user(request)
        if other.id == user.id:
            raise ApiError(422, f"you cannot {kind} yourself")
        try:
            changed = await account_service(request).relations.add(user, other, kind)
        except TooMany as exc:
            raise ApiError(409, str(exc)) from None
        return respond(m.RelationAnswer, {"handle": other.handle, _FIELD[kind]: True, "changed": changed})
    return handler


def _remover(kind: str):
    async def handler(request: web.Request) -> web.Response:
        user = await require_user(request)
        other = await target_user(request)
        changed = await account_service(request).relations.remove(user, other, kind)
        return respond(m.RelationAnswer, {"handle": other.handle, _FIELD[kind]: False, "changed": changed})
    return handler


# --- suspensions --------------------------------------------------------------------------

def _suspension_json(handle: str, suspension, **extra) -> dict:
    return {"handle": handle, **suspension.to_json(), **extra}


async def suspend(request: web.Request) -> web.Response:
    actor = await require_user(request, "moderator")  # the role first, before any input is read
    target = await target_user(request)
    body = await read_body(request, m.NewSuspension)
    service = account_service(request)
    if target.id == actor.id:
        raise ApiError(422, "you cannot suspend yourself")
    if target.at_least("moderator") and not actor.at_least("admin"):
        raise ApiError(403, "only an admin can suspend a moderator or an admin")
    if body.until is not None and body.until <= service.clock():
        raise ApiError(422, "until: must be in the future (leave it out to suspend until lifted)")
    was_live = request.app[HUB].get(target.handle) is not None
    suspension = await service.suspensions.suspend(target, body.reason, body.until, actor)
    ended = was_live and request.app[HUB].get(target.handle) is None
    return respond(m.Suspension, _suspension_json(target.handle, suspension, ended_live=ended), status=201)


async def lift(request: web.Request) -> web.Response:
    await require_user(request, "moderator")
    target = await target_user(request)
    return respond(m.Lifted, {"handle": target.handle, "lifted": await account_service(request).suspensions.lift(target)})


async def list_suspensions(request: web.Request) -> web.Response:
    await require_user(request, "moderator")
    service = account_service(request)
    rows = []
    for suspension in service.suspensions.current():
        user = await service.user_by_id(suspension.user_id)
        if user is not None:
            rows.append(_suspension_json(user.handle, suspension))
    return respond(m.SuspensionList, {"suspensions": rows}, headers=_NO_STORE)


def setup(app: web.Application) -> None:
    """Blocks, mutes and suspensions."""
    validate.install(app)
    handle = path_param("handle", "a user's handle (any case)", am.HANDLE_PARAM)
    tag = "reach"
    for kind, plural, effect in (
            ("block", "blocks", "They cannot watch your lives, chat in your rooms, follow you (their follow is "
                                "removed) or send you gifts, and you no longer see their chat messages anywhere."),
            ("mute", "mutes", "You no longer see their chat messages anywhere (they are not told).")):
        add_route(app, "GET", f"/api/me/{plural}", _listing(kind), op(
            f"The users you {kind}, newest first", tag=tag, auth="required", ok_schema=m.RelationList))
        add_route(app, "POST", f"/api/me/{plural}/{{handle}}", _adder(kind), op(
            f"{kind.capitalize()} a user (idempotent)", tag=tag, auth="required", params=[handle],
            ok_schema=m.RelationAnswer, errors=[400, 404, 409, 422],
            description=f"{effect} 422: yourself. 409: your list is full."))
        add_route(app, "DELETE", f"/api/me/{plural}/{{handle}}", _remover(kind), op(
            f"Un{kind} a user (idempotent)", tag=tag, auth="required", params=[handle],
            ok_schema=m.RelationAnswer, errors=[400, 404]))
    add_route(app, "GET", "/api/admin/suspensions", list_suspensions, op(
        "The accounts suspended now (operators)", tag=tag, role="moderator", ok_schema=m.SuspensionList))
    add_route(app, "POST", "/api/admin/users/{handle}/suspension", suspend, op(
        "Suspend an account (operators)", tag=tag, role="moderator", params=[handle], body=m.NewSuspension,
        ok=201, ok_schema=m.Suspension, errors=[400, 403, 404, 422],
        description="Until `until` (Unix time) or until lifted; replaces an earlier suspension. The account "
                    "cannot sign in (login answers 403 with the reason and the end), publish, chat or send "
                    "gifts; every token of theirs is revoked and their live ends at once. A moderator may "
                    "suspend viewers and creators; an admin anyone but themselves."))
    add_route(app, "DELETE", "/api/admin/users/{handle}/suspension", lift, op(
        "Lift an account's suspension (operators)", tag=tag, role="moderator", params=[handle],
        ok_schema=m.Lifted, errors=[400, 404]))
