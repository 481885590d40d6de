"""Chat moderation and reports over HTTP. See docs/chat.md.

A creator's chat is managed under ``/api/users/HANDLE/chat/...``: appointed moderators
(the creator or an admin appoints them), bans, timeouts, slow mode and followers-only (the
creator and every moderator of that chat), the creator's banned words and the moderation
log. ``/api/reports`` is the report queue: any logged-in user files a report, site
moderators and admins work through the queue.
"""

from __future__ import annotations

from aiohttp import web

from mediasrv.community.accounts.http import require_user
from mediasrv.community.accounts.models import HANDLE_PARAM
from mediasrv.community.moderation import models as m
from mediasrv.community.moderation.rules import ModerationRefused, may_manage, may_moderate
from mediasrv.community.moderation.service import ModerationService, ReportRateLimited
from mediasrv.config import Config, HANDLE_RE
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, read_optional_body, read_query, respond
from mediasrv.httpkit.keys import ACCOUNTS, MODERATION
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError
from mediasrv.store import User






#: The models refuse malformed requests (400) before the service sees them: what the
#: service still refuses as a bad request is well-formed but not acceptable (acting on
#: yourself, reporting yourself): 422.
_STATUS = {"bad_request": 422, "forbidden": 403, "not_found": 404, "conflict": 409}


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


def _requests(request: web.Request) -> m.Requests:
    limits = _service(request).limits
    return m.request_models(limits.max_reason_chars, limits.max_timeout_minutes, limits.max_word_chars,
                            limits.max_banned_words)


# --- moderators ---------------------------------------------------------------------------

async def list_moderators(request: web.Request) -> web.Response:
    creator = await _user(request, "handle")
    users = await _service(request).list_moderators(creator.id)
    return respond(m.Moderators, {"creator": creator.handle, "moderators": [u.to_json() for u in users]})


async def _set_moderator(request: web.Request, appointed: bool) -> web.Response:
    actor = await require_user(request)
    creator = await _user(request, "handle")
    target = await _user(request, "user")
    service = _service(request)
    changed = await _run(service.set_moderator(creator.id, actor, target, appointed))
    users = await service.list_moderators(creator.id)
    return respond(m.Moderators, {"changed": changed, "creator": creator.handle,
                                  "moderators": [u.to_json() for u in users]})


async def add_moderator(request: web.Request) -> web.Response:
    return await _set_moderator(request, True)


async def remove_moderator(request: web.Request) -> web.Response:
    return await _set_moderator(request, False)


# --- bans and timeouts --------------------------------------------------------------------

async def list_bans(request: web.Request) -> web.Response:
    service, _, creator = await _staff(request)
    bans, timeouts = await service.list_bans(creator.id)
    return respond(m.ChatBans, {"bans": [b.to_json() for b in bans], "timeouts": [t.to_json() for t in timeouts]})


async def add_ban(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    body = await read_optional_body(request, _requests(request).ban)
    changed = await _run(service.ban(creator.id, actor, target, body.reason))
    return respond(m.BanResult, {"banned": True, "changed": changed, "user": target.handle})


async def remove_ban(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    changed = await _run(service.unban(creator.id, actor, target))
    return respond(m.BanResult, {"banned": False, "changed": changed, "user": target.handle})


async def add_timeout(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    body = await read_body(request, _requests(request).timeout)
    until = await _run(service.timeout(creator.id, actor, target, body.minutes))
    return respond(m.TimedOut, {"user": target.handle, "until": until})


async def remove_timeout(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    target = await _user(request, "user")
    changed = await _run(service.untimeout(creator.id, actor, target))
    return respond(m.TimeoutEnded, {"user": target.handle, "changed": changed})


async def set_modes(request: web.Request) -> web.Response:
    service, actor, creator = await _staff(request)
    body = await read_body(request, m.ModesChange)
    if body.slow_mode_seconds is not None:
        await _run(service.set_slow_mode(creator.id, actor, body.slow_mode_seconds))
    if body.followers_only is not None:
        await _run(service.set_followers_only(creator.id, actor, body.followers_only))
    return respond(m.Modes, await service.modes(creator.id))


# --- banned words and the log -------------------------------------------------------------

async def get_banned_words(request: web.Request) -> web.Response:
    service, _, creator = await _staff(request)
    return respond(m.BannedWords, {"words": list(await service.banned_words(creator.id)),
                                   "max_words": service.limits.max_banned_words})


async def put_banned_words(request: web.Request) -> web.Response:
    actor = await require_user(request)
    creator = await _user(request, "handle")
    service = _service(request)
    # Who may, before what: a viewer learns they may not, not what a body should hold.
    if not may_manage(await service.standing_of(creator.id, actor)):
        raise ApiError(403, "only the creator (or an admin) sets the chat's banned words")
    body = await read_body(request, _requests(request).words)
    words = await _run(service.set_banned_words(creator.id, actor, body.words))
    return respond(m.BannedWords, {"words": list(words), "max_words": service.limits.max_banned_words})


async def moderation_log(request: web.Request) -> web.Response:
    service, _, creator = await _staff(request)
    query = read_query(request, m.LogQuery)
    entries = await service.log_entries(creator.id, query.limit, query.before or None)
    return respond(m.ModerationLog, {"creator": creator.handle, "entries": [e.to_json() for e in entries]})


# --- reports ------------------------------------------------------------------------------

async def file_report(request: web.Request) -> web.Response:
    reporter = await require_user(request)
    service = _service(request)
    body = (await read_body(request, _requests(request).report)).root
    try:
        report = await _run(service.report(reporter, body.kind, stream=getattr(body, "stream", None),
                                           message_id=getattr(body, "message_id", None),
                                           user=getattr(body, "user", None), reason=body.reason))
    except ReportRateLimited as limited:
        raise ApiError(429, str(limited), retry_after=round(limited.retry_after, 3)) from None
    return respond(m.Report, report.to_json(), status=201)


async def list_reports(request: web.Request) -> web.Response:
    await require_user(request, "moderator")
    query = read_query(request, m.ReportQuery)
    reports, total = await _service(request).list_reports(None if query.status == "all" else query.status,
                                                          query.limit, query.offset)
    return respond(m.ReportList, {"total": total, "reports": [r.to_json() for r in reports]})


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
    return respond(m.Report, report.to_json())


async def resolve_report(request: web.Request) -> web.Response:
    operator = await require_user(request, "moderator")
    body = await read_body(request, _requests(request).resolve)
    report = await _run(_service(request).resolve(_report_id(request), operator, body.status, body.resolution))
    return respond(m.Report, report.to_json())


# --- wiring -------------------------------------------------------------------------------

def setup(app: web.Application, config: Config) -> None:
    """The moderation routes; the moderation service is the composition root's."""
    validate.install(app)
    _routes(app, config)


def _routes(app: web.Application, config: Config) -> None:
    limits = config.moderation
    requests = m.request_models(limits.max_reason_chars, limits.max_timeout_minutes, limits.max_word_chars,
                                limits.max_banned_words)
    handle = path_param("handle", "the creator's handle (their chat)", HANDLE_PARAM)
    user = path_param("user", "the handle of the user acted on", HANDLE_PARAM)
    staff = ("The creator, the moderators they appointed, site moderators and admins "
             "(a moderator acts only on users they outrank; nobody acts on the creator; 422: on yourself).")
    T = "moderation"
    base = "/api/users/{handle}/chat"

    add_route(app, "GET", f"{base}/moderators", list_moderators, op(
        "The creator's appointed chat moderators", tag=T, params=[handle], ok_schema=m.Moderators,
        errors=[400, 404]))
    for method, handler, summary in (("PUT", add_moderator, "Appoint a chat moderator (idempotent)"),
                                     ("DELETE", remove_moderator, "Remove a chat moderator (idempotent)")):
        add_route(app, method, f"{base}/moderators/{{user}}", handler, op(
            summary, tag=T, auth="required", params=[handle, user], ok_schema=m.Moderators,
            errors=[400, 403, 404, 409, 422],
            description="The creator or an admin. Appointed moderators get the `moderator` badge and can "
                        "delete, time out and ban in this creator's chat. 422: the creator themselves."))
    add_route(app, "GET", f"{base}/bans", list_bans, op(
        "Banned and timed-out users of the creator's chat", tag=T, auth="required", params=[handle],
        description=staff, ok_schema=m.ChatBans, errors=[400, 403, 404]))
    add_route(app, "PUT", f"{base}/bans/{{user}}", add_ban, op(
        "Ban a user from the creator's chats", tag=T, auth="required", params=[handle, user],
        ok_schema=m.BanResult,
        description=staff + " The body is optional. The user's open chat connections are closed (code 1008 "
                            "after an `error` frame `banned`), their messages removed, new connections refused "
                            "with 403; persisted.",
        body=requests.ban, body_required=False, errors=[403, 404, 422]))
    add_route(app, "DELETE", f"{base}/bans/{{user}}", remove_ban, op(
        "Lift a ban", tag=T, auth="required", params=[handle, user], description=staff, ok_schema=m.BanResult,
        errors=[400, 403, 404, 422]))
    add_route(app, "PUT", f"{base}/timeouts/{{user}}", add_timeout, op(
        "Time a user out of the creator's chats", tag=T, auth="required", params=[handle, user], description=staff,
        body=requests.timeout, ok_schema=m.TimedOut, errors=[403, 404, 422]))
    add_route(app, "DELETE", f"{base}/timeouts/{{user}}", remove_timeout, op(
        "End a timeout early", tag=T, auth="required", params=[handle, user], description=staff,
        ok_schema=m.TimeoutEnded, errors=[400, 403, 404, 422]))
    add_route(app, "PATCH", f"{base}/modes", set_modes, op(
        "Slow mode and followers-only", tag=T, auth="required", params=[handle], description=staff,
        body=m.ModesChange, ok_schema=m.Modes, errors=[403, 404]))
    add_route(app, "GET", f"{base}/banned-words", get_banned_words, op(
        "The creator's own banned words (on top of chat.banned_words)", tag=T, auth="required", params=[handle],
        description=staff, ok_schema=m.BannedWords, errors=[400, 403, 404]))
    add_route(app, "PUT", f"{base}/banned-words", put_banned_words, op(
        "Replace the creator's banned words", tag=T, auth="required", params=[handle], ok_schema=m.BannedWords,
        description="The creator or an admin. Case- and accent-insensitive, whole words or phrases.",
        body=requests.words, errors=[403, 404]))
    add_route(app, "GET", f"{base}/moderation-log", moderation_log, op(
        "Every moderation action in the creator's chat (newest first)", tag=T, auth="required",
        params=[handle], query=m.LogQuery, description=staff, errors=[400, 403, 404], ok_schema=m.ModerationLog))

    add_route(app, "POST", "/api/reports", file_report, op(
        "Report a chat message, a user or a stream", tag=T, auth="required", ok=201, ok_schema=m.Report,
        description=f"Any logged-in user, at most moderation.reports_per_hour ({limits.reports_per_hour}) an hour "
                    "(429 with `retry_after` beyond). A message is given by `stream` and `message_id` and must be "
                    "in that chat's recent history; its text is kept with the report. 422: reporting yourself.",
        body=requests.report, errors=[404, 422, 429]))
    add_route(app, "GET", "/api/reports", list_reports, op(
        "The report queue", tag=T, role="moderator",
        description="Open reports oldest first; resolved, dismissed or all newest first.",
        query=m.ReportQuery, ok_schema=m.ReportList, errors=[400]))
    report_id = path_param("id", "report id", {"type": "string", "pattern": "^[0-9]+$"})
    add_route(app, "GET", r"/api/reports/{id:\d+}", get_report, op(
        "One report", tag=T, role="moderator", params=[report_id], ok_schema=m.Report, errors=[404]))
    add_route(app, "POST", r"/api/reports/{id:\d+}/resolve", resolve_report, op(
        "Close a report as resolved or dismissed", tag=T, role="moderator", params=[report_id],
        ok_schema=m.Report, errors=[404, 409], body=requests.resolve))


__all__ = ["setup"]
