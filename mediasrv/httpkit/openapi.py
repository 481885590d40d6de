"""The OpenAPI 3.1 description of the HTTP API, served at ``/api/openapi.json``.

Each module describes its own operations where it adds its routes:

- ``add_route(app, "GET", "/api/x/{id}", handler, op(...))`` adds the aiohttp route and
  registers its description in one call;
- ``register_operation(app, method, path, operation)`` registers a description for a
  route added some other way.

Bodies, query strings and JSON answers are pydantic models (``httpkit.models``), the same
classes the handlers validate requests and build answers with: ``op(body=Model,
query=Model, ok_schema=Model)``. Their JSON Schemas become ``components/schemas`` when the
document is built (``models_json_schema``, nested definitions hoisted there too), so the
description cannot disagree with what the server accepts and sends.

``op(...)`` builds an Operation Object with the house conventions: errors are
``{"error": "..."}`` (schema ``Error``), ``auth="required"`` adds the bearer security
requirement and a 401, ``role=`` documents the least role (``x-required-role``) and a 403,
a body or a query adds the 400. The registry lives in the app (``app[OPENAPI]``), created
by whichever module registers first; ``setup(app)`` adds the route and describes the core
endpoints (health, streams, stats, broadcasts, metrics).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterable

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from mediasrv import __version__
from mediasrv.httpkit.models import Error

#: The JSON Schema mode a model is described in, by where it appears.
_REQUEST, _RESPONSE = "validation", "serialization"


class Operation(dict):
    """An Operation Object whose schemas may still be model classes (``{"schema": Model}``,
    ``{"x-query": Model}``); they become ``$ref``s when the document is built."""


class OpenApiRegistry:
    def __init__(self) -> None:
        self.paths: dict[str, dict[str, dict]] = {}

    def add(self, method: str, path: str, operation: dict) -> None:
        method = method.lower()
        if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
            raise ValueError(f"unknown HTTP method {method!r}")
        path = normalize_path(path)
        self.paths.setdefault(path, {})[method] = _with_path_params(path, operation)

    def document(self) -> dict:
        """The OpenAPI document: operations plus the JSON Schemas of every model they use."""
        used: dict[tuple[type[BaseModel], str], None] = {(Error, _RESPONSE): None}
        for ops in self.paths.values():
            for operation in ops.values():
                _collect(operation, used, _RESPONSE)
        refs, definitions = models_json_schema(list(used), ref_template="#/components/schemas/{model}")
        paths = {path: {method: _resolve(operation, refs, _RESPONSE) for method, operation in sorted(ops.items())}
                 for path, ops in sorted(self.paths.items())}
        schemas = definitions.get("$defs", {})
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "mediasrv",
                "version": __version__,
                "description": "Live streaming server: streams, accounts, follows, discovery, alerts. "
                               "Errors are JSON objects {\"error\": \"...\"} with a 4xx status.",
            },
            "paths": paths,
            "components": {
                "schemas": dict(sorted(schemas.items())),
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


def add_route(app: web.Application, method: str, path: str, handler, operation: dict, **kwargs) -> web.AbstractRoute:
    """``app.router.add_route`` plus ``register_operation`` in one call."""
    route = app.router.add_route(method.upper(), path, handler, **kwargs)
    register_operation(app, method, path, operation)
    return route


def normalize_path(path: str) -> str:
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*):[^}]*\}", r"{\1}", path)


def _collect(node: Any, used: dict, mode: str) -> None:
    """Every model class in an operation, with the mode it is described in."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "x-query":
                continue  # described as parameters, not as a schema
            if isinstance(value, type) and issubclass(value, BaseModel):
                used[(value, mode)] = None
            else:
                _collect(value, used, _REQUEST if key == "requestBody" else mode)
    elif isinstance(node, list):
        for value in node:
            _collect(value, used, mode)


def _resolve(node: Any, refs: dict, mode: str) -> Any:
    """``node`` with model classes replaced by their ``$ref``s and a query model by its
    parameters."""
    if isinstance(node, list):
        return [_resolve(value, refs, mode) for value in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "x-query":
            continue
        if isinstance(value, type) and issubclass(value, BaseModel):
            out[key] = refs[(value, mode)]
        else:
            out[key] = _resolve(value, refs, _REQUEST if key == "requestBody" else mode)
    if "x-query" in node:
        out["parameters"] = [*out.get("parameters", []), *query_parameters(node["x-query"])]
    return out


def query_parameters(model: type[BaseModel]) -> list[dict]:
    """The query parameters a query model validates, one per field."""
    schema = model.model_json_schema(mode=_REQUEST)
    if "$defs" in schema:
        raise ValueError(f"{model.__name__}: a query model holds plain values only")
    required = set(schema.get("required", ()))
    params = []
    for name, field in schema["properties"].items():
        field = dict(field)
        field.pop("title", None)
        description = field.pop("description", "")
        param = {"name": name, "in": "query", "required": name in required, "schema": field}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _with_path_params(path: str, operation: dict) -> dict:
    operation = Operation(copy.deepcopy(operation))
    params = operation.setdefault("parameters", [])
    present = {(p.get("in"), p.get("name")) for p in params}
    for name in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", path):
        if ("path", name) not in present:
            params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    if not params:
        del operation["parameters"]
    return operation


# --- builders ---------------------------------------------------------------------------

Schema = type[BaseModel] | dict


def path_param(name: str, description: str, schema: dict | None = None) -> dict:
    """A path parameter; ``schema`` says exactly which values the handler takes."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def json_content(schema: Schema) -> dict:
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
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    body_content: dict | None = None,
    ok: int = 200,
    ok_schema: Schema | None = None,
    ok_content: dict | None = None,
    ok_description: str = "OK",
    ok_also: Iterable[int] = (),
    errors: Iterable[int] = (),
    operation_id: str | None = None,
) -> Operation:
    """An Operation Object. ``auth``: None, ``optional`` or ``required``. ``query`` and
    ``body`` are the request models the handler validates with, ``ok_schema`` the model
    it answers with (also under the statuses ``ok_also``)."""
    out = Operation({"summary": summary, "tags": [tag]})
    if description:
        out["description"] = description
    if operation_id:
        out["operationId"] = operation_id
    params = list(params)
    if params:
        out["parameters"] = params
    if query is not None:
        out["x-query"] = query
    if body is not None or body_content is not None:
        out["requestBody"] = {"required": body_required, "content": body_content or json_content(body)}
    response: dict[str, Any] = {"description": ok_description}
    if ok_content is not None:
        response["content"] = ok_content
    elif ok_schema is not None:
        response["content"] = json_content(ok_schema)
    responses: dict[str, Any] = {str(ok): response}
    for code in ok_also:  # the same answer with another success status (e.g. a replay's 200)
        responses[str(code)] = dict(response)
    codes = set(errors)
    if auth == "required" or role:
        out["security"] = [{"bearerAuth": []}]
        codes.add(401)
    elif auth == "optional":
        out["security"] = [{}, {"bearerAuth": []}]
    if role:
        out["x-required-role"] = role
        codes.add(403)
    if body is not None or query is not None:
        codes.add(400)
    if body is not None:
        codes.add(415)  # a body not declared application/json (httpkit.body.read_body)
    for code in sorted(codes):
        responses[str(code)] = {"description": _ERROR_TEXT.get(code, "error"), "content": json_content(Error)}
    out["responses"] = responses
    return out


# --- the route --------------------------------------------------------------------------

async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(registry(request.app).document(), headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    add_route(app, "GET", "/api/openapi.json", openapi_json,
              op("This OpenAPI description", tag="meta", ok_content={"application/json": {"schema": {
                  "type": "object", "description": "an OpenAPI 3.1 document"}}}))
