"""``POST /api/users/{handle}/report``: report a user (not only a message or a stream),
from the watch page (the creator) or the chat (a message's author). It files the same
``user`` report as ``POST /api/reports`` into the operators' queue (``/admin``), under the
same hourly quota."""

from __future__ import annotations

import functools

from aiohttp import web

from mediasrv.community.accounts.http import handle_param, require_user
from mediasrv.community.accounts.models import HANDLE_PARAM
from mediasrv.community.moderation import models as m
from mediasrv.community.moderation.rules import ModerationRefused
from mediasrv.community.moderation.service import ReportRateLimited
from mediasrv.config import Config
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, respond
from mediasrv.httpkit.keys import MODERATION
from mediasrv.httpkit.models import RequestModel, text
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError

_STATUS = {"bad_request": 422, "forbidden": 403, "not_found": 404, "conflict": 409}


@functools.cache
def _body_model(max_reason_chars: int) -> type[RequestModel]:
    class UserReportBody(RequestModel):
        reason: text(max_reason_chars, min_length=1, fold=True, forbid="control_or_format")

    return UserReportBody


async def report_user(request: web.Request) -> web.Response:
    reporter = await require_user(request)
    service = request.app.get(MODERATION)
    if service is None:
        raise ApiError(503, "moderation is not available yet")
    handle = handle_param(request)
    body = await read_body(request, _body_model(service.limits.max_reason_chars))
    try:
        report = await service.report(reporter, "user", user=handle, reason=body.reason)
    except ModerationRefused as refused:
        raise ApiError(_STATUS.get(refused.code, 400), refused.reason) from None
    except ReportRateLimited as limited:
        raise ApiError(429, str(limited), retry_after=round(limited.retry_after, 3)) from None
    return respond(m.Report, report.to_json(), status=201)


def setup(app: web.Application, config: Config) -> None:
    validate.install(app)
    limits = config.moderation
    add_route(app, "POST", "/api/users/{handle}/report", report_user, op(
        "Report a user", tag="moderation", auth="required", ok=201, ok_schema=m.Report,
        params=[path_param("handle", "a user's handle (any case)", HANDLE_PARAM)],
        body=_body_model(limits.max_reason_chars), errors=[400, 404, 422, 429],
        description="The same `user` report as `POST /api/reports` (into the operators' queue, under "
                    f"moderation.reports_per_hour ({limits.reports_per_hour}) an hour). 422: yourself."))
