"""Chat moderation and reports over HTTP. See docs/chat.md.

A creator's chat is managed under ``/api/users/HANDLE/chat/...``: appointed moderators
(the creator or an admin appoints them), bans, timeouts, slow mode and followers-only (the
creator and every moderator of that chat), the creator's banned words and the moderation
log. ``/api/reports`` is the report queue: any logged-in user files a report, site
moderators and admins work through the queue.
"""

from __future__ import annotations


from aiohttp import web

from mediasrv.config import HANDLE_RE, Config
from mediasrv.httpkit import validate
from mediasrv.httpkit.keys import ACCOUNTS
from mediasrv.community.accounts.http import require_user
from mediasrv.httpkit.openapi import add_route, op, path_param, query_param, ref, register_schema
from mediasrv.httpkit.validate import ApiError
from mediasrv.community.moderation.rules import REPORT_KINDS, REPORT_STATUSES, ModerationRefused, may_moderate
from mediasrv.community.moderation.service import ModerationService, ReportRateLimited
from mediasrv.store import User
from mediasrv.httpkit.keys import MODERATION


_STATUS = {"bad_request": 400, "forbidden": 403, "not_found": 404, "conflict": 409}


def _service(request: web.Request) -> ModerationService:
    service = request.app.get(MODERATION)
    if service is None:
        raise ApiError(503, "moderation is not available yet")
    return service


async def _user(request: web.Request, param: str) -> User:
    text = request.match_info[param].lower()
    if not HANDLE_RE.fullmatch(text):
        raise ApiError(400, f"{param}: {request.match_info[param][:64]!r} is not a valid handle")
    accounts = request.app.get(ACCOUNTS)
    if accounts is None:
        raise ApiError(503, "accounts are not available yet")
    user = await accounts.get_user(text)
    if user is None:
        raise ApiError(404, "no such user" if param == "user" else "no such creator")
    return user


async def _run(coro):
    try:
        return await coro
    except ModerationRefused as refused:
        raise ApiError(_STATUS.get(refused.code, 400), refused.reason) from None


async def _staff(request: web.Request) -> tuple[ModerationService, User, User]:
    """The service, the acting user and the creator; the actor moderates that chat."""
    actor = await require_user(request)
    creator = await _user(request, "handle")
    service = _service(request)
    if not may_moderate(await service.standing_of(creator.id, actor)):
        raise ApiError(403, f"only {creator.handle} and the moderators of their chat can see or do this")
    return service, actor, creator


async def _optional_body(request: web.Request, allowed: set[str]) -> dict:
    if not request.can_read_body:
        return {}
    return await validate.read_json(request, allowed=allowed)


# --- moderators ---------------------------------------------------------------------------

async def list_moderators(request: web.Request) -> web.Response:
    creator = await _user(request, "handle")
    users = await _service(request).list_moderators(creator.id)
    return web.json_response({"creator": creator.handle, "moderators": [u.to_json() for u in users]})


async def _set_moderator(request: web.Request, appointed: bool) -> web.Response:
    actor = await require_user(request)
    creator = await _user(request, "handle")
    target = await _user(request, "user")
    service = _service(request)
    changed = await _run(service.set_moderator(creator.id, actor, target, appointed))
    users = await service.list_moderators(creator.id)
    return web.json_response({"changed": changed, "creator": creator.handle,
                              "moderators": [u.to_json() for u in users]})


async def add_moderator(request: web.Request) -> web.Response:
    return await _set_moderator(request, True)


async def remove_moderator(request: web.Request) -> web.Response:
    return await _set_moderator(request, False)


# --- bans and timeouts --------------------------------------------------------------------

async def list_bans(request: web.Request) -> web.Response:
    service, _, creator = await _staff(request)
    bans, timeouts = await service.list_bans(creator.id)
    return web.json_response({"bans": [b.to_json() for b in bans], "timeouts": [t.to_json() for t in timeouts]})


async def add_ban(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    body = await _optional_body(request, {"reason"})
    changed = await _run(service.ban(creator.id, actor, target, body.get("reason")))
    return web.json_response({"banned": True, "changed": changed, "user": target.handle})


async def remove_ban(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    changed = await _run(service.unban(creator.id, actor, target))
    return web.json_response({"banned": False, "changed": changed, "user": target.handle})


async def add_timeout(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    body = await validate.read_json(request, allowed={"minutes"})
    if "minutes" not in body:
        raise ApiError(400, "minutes: required")
    until = await _run(service.timeout(creator.id, actor, target, body["minutes"]))
    return web.json_response({"user": target.handle, "until": until})


async def remove_timeout(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    changed = await _run(service.untimeout(creator.id, actor, target))
    return web.json_response({"user": target.handle, "changed": changed})


async def set_modes(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    body = await validate.read_json(request, allowed={"slow_mode_seconds", "followers_only"})
    if "slow_mode_seconds" in body:
        await _run(service.set_slow_mode(creator.id, actor, body["slow_mode_seconds"]))
    if "followers_only" in body:
        await _run(service.set_followers_only(creator.id, actor, body["followers_only"]))
    return web.json_response(await service.modes(creator.id))


# --- banned words and the log -------------------------------------------------------------

async def get_banned_words(request: web.Request) -> web.Response:
    service, _, creator = await _staff(request)
    return web.json_response({"words": list(await service.banned_words(creator.id)),
                              "max_words": service.limits.max_banned_words})


async def put_banned_words(request: web.Request) -> web.Response:
    actor = await require_user(request)
    creator = await _user(request, "handle")
    service = _service(request)
    body = await validate.read_json(request, allowed={"words"})
    words = await _run(service.set_banned_words(creator.id, actor, body.get("words")))
    return web.json_response({"words": list(words), "max_words": service.limits.max_banned_words})


async def moderation_log(request: web.Request) -> web.Response:
    service, _, creator = await _staff(request)
    limit = validate.query_int(request, "limit", 50, low=1, high=500)
    before = validate.query_int(request, "before", 0, low=0, high=1 << 62) or None
    entries = await service.log_entries(creator.id, limit, before)
    return web.json_response({"creator": creator.handle, "entries": [e.to_json() for e in entries]})


# --- reports ------------------------------------------------------------------------------

async def file_report(request: web.Request) -> web.Response:
    reporter = await require_user(request)
    service = _service(request)
    body = await validate.read_json(request, allowed={"kind", "stream", "message_id", "user", "reason"})
    try:
        report = await _run(service.report(reporter, body.get("kind"), stream=body.get("stream"),
                                           message_id=body.get("message_id"), user=body.get("user"),
                                           reason=body.get("reason")))
    except ReportRateLimited as limited:
        raise ApiError(429, str(limited), retry_after=round(limited.retry_after, 3)) from None
    return web.json_response(report.to_json(), status=201)


async def list_reports(request: web.Request) -> web.Response:
    await require_user(request, "moderator")
    status = request.query.get("status", "open")
    if status not in (*REPORT_STATUSES, "all"):
        raise ApiError(400, f"status: one of {', '.join(REPORT_STATUSES)}, all")
    limit = validate.query_int(request, "limit", 50, low=1, high=500)
    offset = validate.query_int(request, "offset", 0, low=0, high=10_000_000)
    reports, total = await _service(request).list_reports(None if status == "all" else status, limit, offset)
    return web.json_response({"total": total, "reports": [r.to_json() for r in reports]})


#: SQLite's largest INTEGER: a larger id cannot exist (and would overflow the driver;
#: found by tests/security/test_schemathesis.py, it was a 500).
_MAX_ROW_ID = (1 << 63) - 1


def _report_id(request: web.Request) -> int:
    report_id = int(request.match_info["id"])  # the route only matches digits
    if report_id > _MAX_ROW_ID:
        raise ApiError(404, "no such report")
    return report_id


async def get_report(request: web.Request) -> web.Response:
    await require_user(request, "moderator")
    report = await _service(request).get_report(_report_id(request))
    if report is None:
        raise ApiError(404, "no such report")
    return web.json_response(report.to_json())


async def resolve_report(request: web.Request) -> web.Response:
    operator = await require_user(request, "moderator")
    body = await validate.read_json(request, allowed={"status", "resolution"})
    report = await _run(_service(request).resolve(_report_id(request), operator, body.get("status"),
                                                  body.get("resolution")))
    return web.json_response(report.to_json())


# --- wiring -------------------------------------------------------------------------------

def setup(app: web.Application, config: Config) -> None:
    """The moderation routes; the moderation service is the composition root's."""
    validate.install(app)
    _routes(app, config)


def _routes(app: web.Application, config: Config) -> None:
    limits = config.moderation
    register_schema(app, "ChatBans", {"type": "object", "properties": {
        "bans": {"type": "array", "items": {"type": "object", "properties": {
            "user": {"type": "string"}, "display_name": {"type": "string"}, "by": {"type": "string", "nullable": True},
            "reason": {"type": "string"}, "at": {"type": "number"}}}},
        "timeouts": {"type": "array", "items": {"type": "object", "properties": {
            "user": {"type": "string"}, "display_name": {"type": "string"}, "by": {"type": "string", "nullable": True},
            "until": {"type": "number", "description": "Unix time the timeout ends"}}}}}})
    register_schema(app, "ModerationLogEntry", {"type": "object", "properties": {
        "id": {"type": "integer"},
        "action": {"type": "string", "enum": ["delete", "timeout", "untimeout", "ban", "unban", "slow_mode",
                                              "followers_only", "banned_words", "add_moderator", "remove_moderator",
                                              "chat_enabled"]},
        "by": {"type": "string", "nullable": True}, "target": {"type": "string", "nullable": True},
        "message_id": {"type": "string", "nullable": True}, "detail": {"type": "object"}, "at": {"type": "number"}}})
    register_schema(app, "Report", {"type": "object", "properties": {
        "id": {"type": "integer"}, "reporter": {"type": "string"},
        "kind": {"type": "string", "enum": list(REPORT_KINDS)},
        "target": {"type": "string", "description": "message id, user handle or stream name"},
        "target_user": {"type": "string", "nullable": True}, "stream": {"type": "string"},
        "excerpt": {"type": "string", "description": "the reported message's text, kept with the report"},
        "reason": {"type": "string"}, "status": {"type": "string", "enum": list(REPORT_STATUSES)},
        "resolved_by": {"type": "string", "nullable": True}, "resolution": {"type": "string"},
        "created_at": {"type": "number"}, "resolved_at": {"type": "number", "nullable": True}}})
    moderators = {"type": "object", "properties": {
        "changed": {"type": "boolean"}, "creator": {"type": "string"},
        "moderators": {"type": "array", "items": ref("User")}}}
    handle_schema = {"type": "string", "pattern": "^" + HANDLE_RE.pattern + "$"}
    handle = path_param("handle", "the creator's handle (their chat)", handle_schema)
    user = path_param("user", "the handle of the user acted on", handle_schema)
    reason = {"type": "string", "maxLength": limits.max_reason_chars}
    staff = ("The creator, the moderators they appointed, site moderators and admins "
             "(a moderator acts only on users they outrank; nobody acts on the creator).")
    T = "moderation"
    base = "/api/users/{handle}/chat"

    add_route(app, "GET", f"{base}/moderators", list_moderators, op(
        "The creator's appointed chat moderators", tag=T, params=[handle], ok_schema=moderators, errors=[400, 404]))
    for method, handler, summary in (("PUT", add_moderator, "Appoint a chat moderator (idempotent)"),
                                     ("DELETE", remove_moderator, "Remove a chat moderator (idempotent)")):
        add_route(app, method, f"{base}/moderators/{{user}}", handler, op(
            summary, tag=T, auth="required", params=[handle, user], ok_schema=moderators, errors=[400, 403, 404, 409],
            description="The creator or an admin. Appointed moderators get the `moderator` badge and can "
                        "delete, time out and ban in this creator's chat."))
    add_route(app, "GET", f"{base}/bans", list_bans, op(
        "Banned and timed-out users of the creator's chat", tag=T, auth="required", params=[handle],
        description=staff, ok_schema=ref("ChatBans"), errors=[400, 403, 404]))
    ban_result = {"type": "object", "properties": {"banned": {"type": "boolean"}, "changed": {"type": "boolean"},
                                                   "user": {"type": "string"}}}
    add_route(app, "PUT", f"{base}/bans/{{user}}", add_ban, op(
        "Ban a user from the creator's chats", tag=T, auth="required", params=[handle, user], ok_schema=ban_result,
        description=staff + " The body is optional. The user's open chat connections are closed (code 1008 "
                            "after an `error` frame `banned`), their messages removed, new connections refused "
                            "with 403; persisted.",
        body={"type": "object", "additionalProperties": False, "properties": {"reason": reason}},
        errors=[403, 404]))
    add_route(app, "DELETE", f"{base}/bans/{{user}}", remove_ban, op(
        "Lift a ban", tag=T, auth="required", params=[handle, user], description=staff, ok_schema=ban_result,
        errors=[400, 403, 404]))
    add_route(app, "PUT", f"{base}/timeouts/{{user}}", add_timeout, op(
        "Time a user out of the creator's chats", tag=T, auth="required", params=[handle, user], description=staff,
        body={"type": "object", "required": ["minutes"], "additionalProperties": False, "properties": {
            "minutes": {"type": "integer", "minimum": 1, "maximum": limits.max_timeout_minutes}}},
        ok_schema={"type": "object", "properties": {"user": {"type": "string"}, "until": {"type": "number"}}},
        errors=[403, 404]))
    add_route(app, "DELETE", f"{base}/timeouts/{{user}}", remove_timeout, op(
        "End a timeout early", tag=T, auth="required", params=[handle, user], description=staff,
        ok_schema={"type": "object", "properties": {"user": {"type": "string"}, "changed": {"type": "boolean"}}},
        errors=[400, 403, 404]))
    modes = {"type": "object", "properties": {"slow_mode_seconds": {"type": "integer", "minimum": 0, "maximum": 3600},
                                              "followers_only": {"type": "boolean"}}}
    add_route(app, "PATCH", f"{base}/modes", set_modes, op(
        "Slow mode and followers-only", tag=T, auth="required", params=[handle], description=staff,
        body={**modes, "additionalProperties": False}, ok_schema=modes, errors=[403, 404]))
    words = {"type": "object", "properties": {"words": {"type": "array", "items": {
        "type": "string", "maxLength": limits.max_word_chars}, "maxItems": limits.max_banned_words},
        "max_words": {"type": "integer"}}}
    add_route(app, "GET", f"{base}/banned-words", get_banned_words, op(
        "The creator's own banned words (on top of chat.banned_words)", tag=T, auth="required", params=[handle],
        description=staff, ok_schema=words, errors=[400, 403, 404]))
    add_route(app, "PUT", f"{base}/banned-words", put_banned_words, op(
        "Replace the creator's banned words", tag=T, auth="required", params=[handle], ok_schema=words,
        description="The creator or an admin. Case- and accent-insensitive, whole words or phrases.",
        body={"type": "object", "required": ["words"], "additionalProperties": False,
              "properties": {"words": words["properties"]["words"]}}, errors=[403, 404]))
    add_route(app, "GET", f"{base}/moderation-log", moderation_log, op(
        "Every moderation action in the creator's chat (newest first)", tag=T, auth="required",
        params=[handle, query_param("limit", "page size (1-500)", {"type": "integer", "minimum": 1,
                                                                     "maximum": 500, "default": 50}),
                query_param("before", "only entries with a smaller id (paging)", {"type": "integer"})],
        description=staff, errors=[400, 403, 404],
        ok_schema={"type": "object", "properties": {"creator": {"type": "string"},
                                                    "entries": {"type": "array", "items": ref("ModerationLogEntry")}}}))

    add_route(app, "POST", "/api/reports", file_report, op(
        "Report a chat message, a user or a stream", tag=T, auth="required", ok=201, ok_schema=ref("Report"),
        description=f"Any logged-in user, at most moderation.reports_per_hour ({limits.reports_per_hour}) an hour "
                    "(429 with `retry_after` beyond). A message is given by `stream` and `message_id` and must be "
                    "in that chat's recent history; its text is kept with the report.",
        body={"type": "object", "required": ["kind", "reason"], "additionalProperties": False, "properties": {
            "kind": {"type": "string", "enum": list(REPORT_KINDS)}, "stream": {"type": "string"},
            "message_id": {"type": "string"}, "user": {"type": "string"}, "reason": reason}},
        errors=[404, 429]))
    add_route(app, "GET", "/api/reports", list_reports, op(
        "The report queue", tag=T, role="moderator",
        description="Open reports oldest first; resolved, dismissed or all newest first.",
        params=[query_param("status", "open (default), resolved, dismissed or all",
                            {"type": "string", "enum": [*REPORT_STATUSES, "all"], "default": "open"}),
                query_param("limit", "page size (1-500)", {"type": "integer", "minimum": 1, "maximum": 500}),
                query_param("offset", "rows to skip", {"type": "integer", "minimum": 0})],
        ok_schema={"type": "object", "properties": {"total": {"type": "integer"},
                                                    "reports": {"type": "array", "items": ref("Report")}}},
        errors=[400]))
    report_id = path_param("id", "report id", {"type": "integer"})
    add_route(app, "GET", r"/api/reports/{id:\d+}", get_report, op(
        "One report", tag=T, role="moderator", params=[report_id], ok_schema=ref("Report"), errors=[404]))
    add_route(app, "POST", r"/api/reports/{id:\d+}/resolve", resolve_report, op(
        "Close a report as resolved or dismissed", tag=T, role="moderator", params=[report_id],
        ok_schema=ref("Report"), errors=[404, 409],
        body={"type": "object", "required": ["status", "resolution"], "additionalProperties": False,
              "properties": {"status": {"type": "string", "enum": ["resolved", "dismissed"]},
                             "resolution": reason}}))


__all__ = ["MODERATION", "setup"]
