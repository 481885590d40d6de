"""The OpenAPI 3 description of the HTTP API, served at ``/api/openapi.json``.

Each module describes its own operations where it adds its routes:

- ``add_route(app, "GET", "/api/x/{id}", handler, op(...))`` adds the aiohttp route and
  registers its description in one call;
- ``register_operation(app, method, path, operation)`` registers a description for a
  route added some other way; ``register_schema(app, name, schema)`` adds a reusable schema
  (refer to it as ``ref(name)``).

``op(...)`` builds an Operation Object with the house conventions: errors are
``{"error": "..."}`` (schema ``Error``), ``auth="required"`` adds the bearer security
requirement and a 401, ``role=`` documents the least role (``x-required-role``) and a 403.
The registry lives in the app (``app[OPENAPI]``), created by whichever module registers
first; ``setup(app)`` adds the route and describes the core endpoints (health, streams,
stats, broadcasts, metrics) whose modules predate it.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterable

from aiohttp import web

from mediasrv import __version__


class OpenApiRegistry:
    def __init__(self) -> None:
        self.paths: dict[str, dict[str, dict]] = {}
        self.schemas: dict[str, dict] = {"Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string", "description": "what is wrong, for a human"}},
        }}

    def add(self, method: str, path: str, operation: dict) -> None:
        method = method.lower()
        if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
            raise ValueError(f"unknown HTTP method {method!r}")
        path = normalize_path(path)
        self.paths.setdefault(path, {})[method] = _with_path_params(path, operation)

    def document(self) -> dict:
        paths = {path: dict(sorted(ops.items())) for path, ops in sorted(self.paths.items())}
        return {
            "openapi": "3.0.3",
            "info": {
                "title": "mediasrv",
                "version": __version__,
                "description": "Live streaming server: streams, accounts, follows, discovery, alerts. "
                               "Errors are JSON objects {\"error\": \"...\"} with a 4xx status.",
            },
            "paths": paths,
            "components": {
                "schemas": dict(sorted(self.schemas.items())),
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                   "description": "a token from POST /api/login"}},
            },
        }


OPENAPI = web.AppKey("openapi", OpenApiRegistry)


def registry(app: web.Application) -> OpenApiRegistry:
    existing = app.get(OPENAPI)
    if existing is None:
        existing = app[OPENAPI] = OpenApiRegistry()
    return existing


def register_operation(app: web.Application, method: str, path: str, operation: dict) -> None:
    """Describe ``method path`` (aiohttp path syntax; ``{id:\\d+}`` becomes ``{id}``)."""
    registry(app).add(method, path, operation)


def register_schema(app: web.Application, name: str, schema: dict) -> None:
    registry(app).schemas[name] = schema


def add_route(app: web.Application, method: str, path: str, handler, operation: dict, **kwargs) -> web.AbstractRoute:
    """``app.router.add_route`` plus ``register_operation`` in one call."""
    route = app.router.add_route(method.upper(), path, handler, **kwargs)
    register_operation(app, method, path, operation)
    return route


def normalize_path(path: str) -> str:
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*):[^}]*\}", r"{\1}", path)


def _with_path_params(path: str, operation: dict) -> dict:
    operation = copy.deepcopy(operation)
    params = operation.setdefault("parameters", [])
    present = {(p.get("in"), p.get("name")) for p in params}
    for name in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", path):
        if ("path", name) not in present:
            params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    if not params:
        del operation["parameters"]
    return operation


# --- builders ---------------------------------------------------------------------------

#: The schema of a ``text/event-stream`` answer: each event as a client's parser sees it
#: (WHATWG HTML §9.2 "Server-sent events"): its name and its data (JSON text here).
SSE_EVENT = {
    "type": "object", "description": "one Server-Sent Event; `data` is JSON text",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"},
                   "retry": {"type": "integer"}},
}

def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def path_param(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def query_param(name: str, description: str, schema: dict | None = None, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


_ERROR_TEXT = {
    400: "invalid input", 401: "no valid bearer token", 402: "not enough coins", 403: "the role does not allow it",
    404: "not found", 409: "conflict", 413: "too large", 415: "unsupported media type",
    422: "well-formed but unacceptable", 429: "too many attempts: wait Retry-After seconds",
}


def op(
    summary: str,
    *,
    tag: str,
    description: str = "",
    auth: str | None = None,
    role: str | None = None,
    params: Iterable[dict] = (),
    body: dict | None = None,
    body_content: dict | None = None,
    ok: int = 200,
    ok_schema: dict | None = None,
    ok_content: dict | None = None,
    ok_description: str = "OK",
    errors: Iterable[int] = (),
    operation_id: str | None = None,
) -> dict:
    """An Operation Object. ``auth``: None, ``optional`` or ``required``."""
    out: dict[str, Any] = {"summary": summary, "tags": [tag]}
    if description:
        out["description"] = description
    if operation_id:
        out["operationId"] = operation_id
    params = list(params)
    if params:
        out["parameters"] = params
    if body is not None or body_content is not None:
        out["requestBody"] = {"required": True, "content": body_content or json_content(body)}
    response: dict[str, Any] = {"description": ok_description}
    if ok_content is not None:
        response["content"] = ok_content
    elif ok_schema is not None:
        response["content"] = json_content(ok_schema)
    responses: dict[str, Any] = {str(ok): response}
    codes = set(errors)
    if auth == "required" or role:
        out["security"] = [{"bearerAuth": []}]
        codes.add(401)
    elif auth == "optional":
        out["security"] = [{}, {"bearerAuth": []}]
    if role:
        out["x-required-role"] = role
        codes.add(403)
    if body is not None:
        codes.add(400)
    for code in sorted(codes):
        responses[str(code)] = {"description": _ERROR_TEXT.get(code, "error"), "content": json_content(ref("Error"))}
    out["responses"] = responses
    return out


# --- the route and the core endpoints ---------------------------------------------------

async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(registry(request.app).document(), headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    add_route(app, "GET", "/api/openapi.json", openapi_json,
              op("This OpenAPI description", tag="meta", ok_schema={"type": "object"}))
    _describe_core(app)


_STREAM_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"}


def _describe_core(app: web.Application) -> None:
    register_schema(app, "Stream", {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "state": {"type": "string", "enum": ["live", "orphaned", "ended"]},
            "started_at": {"type": "string", "format": "date-time"},
            "tracks": {"type": "array", "items": {"type": "object"}},
            "bitrate_in_kbps": {"type": "number"}, "renditions": {"type": "array", "items": {"type": "string"}},
            "playback_url": {"type": "string"}, "rtmp_playback_url": {"type": "string"},
        },
    })
    register_schema(app, "StreamStats", {
        "type": "object",
        "properties": {name: {} for name in (
            "stream", "live", "viewers", "peak_viewers", "unique_viewers", "watch_seconds", "bytes_sent",
            "viewers_per_rendition", "bitrate_kbps", "fps", "keyframe_interval_ms", "timestamp_corrections",
            "reconnects", "reader_skips", "warnings", "average_viewers", "started_at", "analytics")},
    })
    register_schema(app, "BroadcastSummary", {
        "type": "object",
        "properties": {name: {"type": "number"} for name in (
            "id", "started_at", "ended_at", "duration_seconds", "peak_viewers", "average_viewers",
            "unique_viewers", "watch_seconds", "reconnects", "bytes_in", "bytes_out", "chat_messages",
            "peak_messages_per_minute", "unique_chatters", "gifts", "gift_coins", "new_followers")}
        | {"stream": {"type": "string"}},
    })
    name = path_param("name", "public stream name", _STREAM_NAME)
    register_operation(app, "GET", "/healthz", op(
        "Liveness", tag="meta", ok_schema={"type": "object", "properties": {
            "status": {"type": "string"}, "version": {"type": "string"},
            "uptime_seconds": {"type": "number"}, "streams": {"type": "integer"}}}))
    register_operation(app, "GET", "/metrics", op(
        "Prometheus metrics", tag="meta", ok_content={"text/plain": {"schema": {"type": "string"}}}))
    register_operation(app, "GET", "/api/streams", op(
        "Live streams (technical view)", tag="streams",
        ok_schema={"type": "object", "properties": {"streams": {"type": "array", "items": ref("Stream")}}}))
    register_operation(app, "GET", "/api/streams/{name}", op(
        "One live stream", tag="streams", params=[name], ok_schema=ref("Stream"), errors=[404]))
    register_operation(app, "GET", "/api/streams/{name}/stats", op(
        "Live statistics of a stream", tag="streams", params=[name], ok_schema=ref("StreamStats"), errors=[404]))
    register_operation(app, "GET", "/api/streams/{name}/events", op(
        "Server-Sent Events: `stats` once a second, `ended` at the end", tag="streams", params=[name],
        ok_content={"text/event-stream": {"schema": SSE_EVENT}}, errors=[404]))
    register_operation(app, "GET", "/api/broadcasts", op(
        "Summaries of ended broadcasts", tag="streams",
        params=[query_param("stream", "only this stream", _STREAM_NAME),
                query_param("limit", "at most this many (1-1000)", {"type": "integer", "minimum": 1,
                                                                      "maximum": 1000, "default": 100})],
        ok_schema={"type": "object", "properties": {"broadcasts": {"type": "array",
                                                                    "items": ref("BroadcastSummary")}}},
        errors=[400]))
