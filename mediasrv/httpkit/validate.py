"""Refusals of the JSON API: every one is a 4xx with ``{"error": "..."}``.

Request bodies and queries are validated by their models (``httpkit.body``,
``httpkit.models``); this module is the answer's shape.

Handlers raise ``ApiError(status, message)``; the middleware installed by
``install(app)`` turns it into the JSON answer, and also turns aiohttp's own plain-text
errors under ``/api/`` (unknown path 404, wrong method 405, body too large 413) into JSON.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mediasrv.httpkit.cause import with_cause

_INSTALLED = web.AppKey("api_errors_installed", bool)


class ApiError(Exception):
    """A refusal: ``extra`` goes into the JSON body, ``headers`` (e.g. Retry-After) into
    the response."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
        self.headers = headers or {}


def error_response(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    headers = {"Cache-Control": "no-store", **(headers or {})}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="mediasrv"'
    response = web.json_response({"error": message, **extra}, status=status, headers=headers)
    if status >= 500:
        with_cause(response, message)  # logged once by observe's request middleware
    return response


def install(app: web.Application) -> None:
    """Add the error middleware once (idempotent)."""
    if app.get(_INSTALLED):
        return
    app[_INSTALLED] = True
    app.middlewares.append(_api_errors)


@web.middleware
async def _api_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400 or exc.content_type == "application/json":
            raise
        message = {404: "no such API endpoint", 405: f"method {request.method} is not allowed here",
                   413: "the request body is too large"}.get(exc.status, exc.reason)
        response = error_response(exc.status, message)
        for name in ("Allow",):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
