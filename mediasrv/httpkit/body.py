"""Requests in and answers out through the API's models.

- ``await read_body(request, Model)``: the JSON body validated by ``Model``;
- ``read_query(request, Model)``: the query string validated by ``Model``;
- ``respond(Model, data, status=..., headers=...)``: a JSON answer built through
  ``Model``, so it is what ``/api/openapi.json`` describes.

A refused request is ``ApiError(400, "field: what is wrong")`` (``{"error": ...}`` on the
wire, like every other refusal): the message names the first wrong field.
"""

from __future__ import annotations

import json
import typing
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, RootModel, ValidationError

from mediasrv.httpkit.jsonlimits import MAX_DEPTH, too_deep
from mediasrv.httpkit.validate import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON object body, validated by ``model`` (415, 413 or 400 if not).

    The body must say it is ``application/json``: a body with no ``Content-Type`` (or a
    form's, or ``text/plain``) is refused with 415, because those are what another
    site's page may send through its visitors' browsers without a CORS preflight
    (``fetch(..., {mode: "no-cors"})``): registering accounts from their addresses."""
    if request.content_type != "application/json":
        if not request.body_exists:
            raise ApiError(400, "the request has no body: a JSON object (application/json) is expected")
        raise ApiError(415, "send the body as application/json (Content-Type: application/json)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "the request body is too large") from None
    if not raw.strip():
        raise ApiError(400, "the request body is empty: a JSON object is expected")
    if too_deep(raw):
        # Refused before parsing: the decoder recurses once per level.
        raise ApiError(400, f"the request body is nested too deeply (at most {MAX_DEPTH} levels)")
    try:
        data = json.loads(raw, parse_float=_number)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    except RecursionError:
        # A backstop to too_deep (unbalanced brackets it leaves to the parser).
        raise ApiError(400, "the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return validated(model, data)


async def read_optional_body(request: web.Request, model: type[M]) -> M:
    """Like ``read_body``, but no body at all is the model's defaults."""
    if not request.can_read_body:
        return validated(model, {})
    return await read_body(request, model)


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string validated by ``model`` (the first value of each name); a name the
    model does not know is refused, as the description says (the media routes, whose URLs
    carry cache-busting ``?v=``/``?n=``, have no query model)."""
    data: dict[str, str] = {}
    for name, value in request.query.items():
        data.setdefault(name, value)
    return validated(model, data)


def _number(text: str) -> float | int:
    # JSON (and JSON Schema) has one number type: 5.0 is the integer 5, as the schema's
    # "integer" says, so it is read as one.
    value = float(text)
    return int(value) if value.is_integer() else value


def validated(model: type[M], data: Any) -> M:
    """``model`` validating ``data``; a refusal is a 400 naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, message(model, exc)) from None


def respond(model: type[BaseModel], data: Any, *, status: int = 200,
            headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer: ``data`` (a dict or a ``model``) through ``model``."""
    value = data if isinstance(data, model) else model.model_validate(data)
    return web.json_response(value.model_dump(mode="json", exclude_unset=True), status=status, headers=headers)


# --- messages -----------------------------------------------------------------------------

_EXPECTED = {"string_type": "text", "int_type": "a whole number", "bool_type": "true or false",
             "model_type": "an object", "dict_type": "an object", "list_type": "a list",
             "float_type": "a number", "model_attributes_type": "an object"}


def message(model: type[BaseModel] | None, exc: ValidationError) -> str:
    """The first error of ``exc`` as the house's ``"field: what is wrong"``."""
    error = exc.errors(include_url=False)[0]
    loc = list(error["loc"])
    if issubclass(model, RootModel) and loc and isinstance(loc[0], str):
        # A discriminated union puts the chosen tag first ("user" in ("user", "reason")):
        # a client never sent a field named so.
        loc, model = loc[1:], None
    name = _dotted(loc)
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return f"{name}: required"
    if kind == "extra_forbidden":
        known = ", ".join(sorted(_fields_at(model, loc[:-1]))) if model is not None else ""
        if len(loc) == 1:
            return f"unknown field {loc[0]!r}" + (f" (known: {known})" if known else "")
        return f"{name}: unknown setting (known: {known})"
    if kind in _EXPECTED:
        return f"{name}: expected {_EXPECTED[kind]}, got {_kind(value)}"
    if kind == "value_error":
        # A rule across fields (a model validator) names its fields itself.
        return f"{name}: {ctx.get('error')}" if loc else str(ctx.get("error"))
    if kind == "literal_error":
        about = _description_at(model, loc)
        return f"{name}: {value!r} is not one of {ctx.get('expected', '').replace(chr(39), '')}" + (
            f" ({about})" if about else "")
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"{name}: must be {'at least ' + str(ctx['ge']) if 'ge' in ctx else 'at most ' + str(ctx['le'])}, " \
               f"got {value!r}"
    if kind == "too_long":
        return f"{name}: at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "union_tag_invalid":
        return f"{_dotted([*loc, ctx.get('discriminator', '').strip(chr(39))])}: {ctx.get('tag')!r} is not one of " \
               f"{ctx.get('expected_tags', '').replace(chr(39), '')}"
    if kind == "union_tag_not_found":
        return f"{_dotted([*loc, ctx.get('discriminator', '').strip(chr(39))])}: required"
    return f"{name}: {error['msg']}"


def _dotted(loc: list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _description_at(model: type[BaseModel] | None, loc: list) -> str:
    """The description of the field at ``loc`` (top-level fields), if any."""
    if model is None or len(loc) != 1 or not isinstance(loc[0], str):
        return ""
    field = model.model_fields.get(loc[0])
    return (field.description or "") if field is not None else ""


def _fields_at(model: type[BaseModel], loc: list) -> list[str]:
    """The field names of the (nested) model at ``loc``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = next((arg for arg in (field.annotation, *typing.get_args(field.annotation))
                        if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")
