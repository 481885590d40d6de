"""Input validation for the JSON API: every refusal is a 4xx with ``{"error": "..."}``.

Handlers raise ``ApiError(status, message)``; the middleware installed by
``install(app)`` turns it into the JSON answer, and also turns aiohttp's own plain-text
errors under ``/api/`` (unknown path 404, wrong method 405, body too large 413) into JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

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
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


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


async def read_json(request: web.Request, *, allowed: set[str] | None = None) -> dict:
    """The request body as a JSON object; unknown fields are refused when ``allowed``."""
    if "Content-Type" in request.headers and request.content_type != "application/json":
        raise ApiError(415, "send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "the request body is too large") from None
    if not raw.strip():
        raise ApiError(400, "the request body is empty: a JSON object is expected")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(400, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return body


def text_field(body: dict, name: str, *, required: bool = False, min_len: int = 0, max_len: int = 1000,
               pattern: re.Pattern | None = None, rule: str = "", strip: bool = True) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise ApiError(400, f"{name}: required")
        return None
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: expected text, got {_kind(value)}")
    if strip:
        value = value.strip()
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise ApiError(400, f"{name}: control characters are not allowed")
    if not min_len <= len(value) <= max_len:
        raise ApiError(400, f"{name}: must be {min_len}-{max_len} characters, got {len(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ApiError(400, f"{name}: {value[:64]!r} is not valid ({rule})")
    return value


def bool_field(body: dict, name: str) -> bool | None:
    if name not in body or body[name] is None:
        return None
    if not isinstance(body[name], bool):
        raise ApiError(400, f"{name}: expected true or false, got {_kind(body[name])}")
    return body[name]


def int_field(body: dict, name: str, *, low: int, high: int) -> int | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name}: expected a whole number, got {_kind(value)}")
    if not low <= value <= high:
        raise ApiError(400, f"{name}: must be {low}-{high}, got {value}")
    return value


def choice_field(body: dict, name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise ApiError(400, f"{name}: required, one of {', '.join(choices)}")
        return None
    value = body[name]
    if value not in choices:
        raise ApiError(400, f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name}: expected a whole number, got {text[:32]!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: must be {low}-{high}, got {value}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")
