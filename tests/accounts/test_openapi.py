"""The OpenAPI description covers every API endpoint and is well-formed."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from aiohttp import web

from mediasrv.app.root import create_app
from mediasrv.config import load_config
from mediasrv.httpkit import openapi
from mediasrv.httpkit.body import validated
from mediasrv.httpkit.models import RequestModel, ResponseModel, text
from mediasrv.httpkit.validate import ApiError
from tests.accounts.support import accounts_server

METHODS = {"get", "put", "post", "delete", "patch"}


def _walk_refs(node, out: set):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                out.add(value)
            else:
                _walk_refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _walk_refs(value, out)


async def test_every_api_route_is_described(tmp_path):
    async with accounts_server(tmp_path) as api:
        response = await api.http.get("/api/openapi.json")
        assert response.status == 200
        doc = await response.json()
        routes, all_routes = set(), set()
        for resource in api.srv.app.router.resources():
            info = resource.get_info()
            path = openapi.normalize_path(info.get("formatter") or info.get("path") or "")
            for route in resource:
                method = route.method.lower()
                if method in METHODS:
                    all_routes.add((method, path))
                    if path.startswith("/api/") or path in ("/healthz", "/metrics"):
                        routes.add((method, path))
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    missing = sorted(routes - described)
    assert not missing, f"routes without an OpenAPI operation (register them with openapi.add_route): {missing}"
    assert not sorted(described - all_routes), "described operations without a route"


async def test_document_is_well_formed(tmp_path):
    async with accounts_server(tmp_path) as api:
        doc = await (await api.http.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] and doc["info"]["version"]
    schemes = doc["components"]["securitySchemes"]
    operation_ids = []
    for path, ops in doc["paths"].items():
        assert path.startswith("/")
        placeholders = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in ops.items():
            assert method in METHODS, (path, method)
            assert operation["summary"] and operation["tags"], (method, path)
            assert operation["responses"], (method, path)
            for code, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", code) and response["description"], (method, path, code)
                if code.startswith("4") and not path.startswith("/vod/"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)
                elif code.startswith("4"):  # media routes answer 400/404 in plain text, like HLS
                    assert set(response["content"]) <= {"application/json", "text/plain"}, (method, path, code)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == placeholders, (method, path)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in ("path", "query", "header") and "schema" in parameter
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes)
            if "x-required-role" in operation:
                assert "401" in operation["responses"] and "403" in operation["responses"]
            if "requestBody" in operation:
                assert operation["requestBody"]["content"]
            operation_ids.append(operation.get("operationId"))
    refs: set[str] = set()
    _walk_refs(doc, refs)
    for target in refs:
        assert target.startswith("#/components/schemas/") and target.rsplit("/", 1)[1] in doc["components"]["schemas"]
    assert doc["paths"]["/api/me/stream-key"]["post"]["x-required-role"] == "creator"
    assert "bearerAuth" in doc["paths"]["/api/live/following"]["get"]["security"][0]


def test_other_modules_register_their_operations():
    app = web.Application()

    async def handler(request):  # pragma: no cover - never called
        return web.Response()

    class Thing(ResponseModel):
        name: str

    class ThingChange(RequestModel):
        name: text(10, min_length=1)

    openapi.add_route(app, "GET", r"/vod/{id:\d+}/index.m3u8", handler,
                      openapi.op("A VOD playlist", tag="vod", errors=[404]))
    openapi.register_operation(app, "post", "/api/recordings/{id}/save",
                               openapi.op("Save a recording", tag="recording", role="creator",
                                          body=ThingChange, ok_schema=Thing))
    doc = openapi.registry(app).document()
    vod = doc["paths"]["/vod/{id}/index.m3u8"]["get"]
    assert vod["parameters"][0] == {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    save = doc["paths"]["/api/recordings/{id}/save"]["post"]
    assert save["security"] == [{"bearerAuth": []}]
    assert save["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingChange"}
    assert save["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert "400" in save["responses"]  # a body can be refused
    schemas = doc["components"]["schemas"]
    assert schemas["Thing"]["properties"]["name"]["type"] == "string" and "Error" in schemas


def _validator(doc: dict, name: str):
    """A JSON Schema validator (the one schemathesis uses) for one component schema; its
    ``$ref``s resolve in the document's components."""
    return jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                               "components": doc["components"]})


#: (component schema, body): bodies near the edges of the rules, valid and not.
BODIES = [
    ("NewUser", {"handle": "Alice", "password": "password-1"}),  # any case: stored lower-case
    ("NewUser", {"handle": "al", "password": "password-1"}),
    ("NewUser", {"handle": "alice", "password": "password-1", "display_name": ""}),  # display_name: 1-64
    ("NewUser", {"handle": "alice", "password": "password-1", "display_name": "   "}),
    ("NewUser", {"handle": "alice", "password": "password-1", "display_name": " A "}),
    ("NewUser", {"handle": "alice", "password": "password-1", "display_name": "x" * 65}),
    ("NewUser", {"handle": "alice", "password": "password-1", "display_name": "a\nb"}),
    ("NewUser", {"handle": "alice", "password": "password-1", "display_name": None}),
    ("NewUser", {"handle": "alice", "password": "short"}),
    ("NewUser", {"handle": "alice", "password": "password-1", "role": "god"}),
    ("NewUser", {"handle": "alice", "password": "password-1", "extra": 1}),
    ("MeUpdate", {"new_password": "password-2"}),  # needs current_password
    ("MeUpdate", {"new_password": "password-2", "current_password": "password-1"}),
    ("MeUpdate", {"current_password": None}),
    ("SettingsChange", {"chat": {"slow_mode_seconds": 3600}}),
    ("SettingsChange", {"chat": {"slow_mode_seconds": 3601}}),
    ("SettingsChange", {"chat": {"enabled": 1}}),
    ("SettingsChange", {"title": "  x  "}),
    ("NewReport", {"kind": "message", "stream": "alice", "message_id": "m1", "reason": "rude"}),
    ("NewReport", {"kind": "message", "stream": "alice", "reason": "rude"}),  # no message_id
    ("NewReport", {"kind": "user", "user": "Bob", "reason": " \u00a0 "}),  # a blank reason
    ("NewReport", {"kind": "user", "user": "bob", "reason": "zero\u200bwidth"}),  # a format character
]


@pytest.mark.parametrize("name, body", BODIES)
async def test_the_schema_and_the_server_agree(tmp_path, name, body):
    """The served description accepts exactly the bodies the server's models accept:
    one source, so a request the schema allows is never a 400, nor one it forbids accepted."""
    config = load_config(None, ["auth.mode=accounts"])
    doc = create_app(config)[openapi.OPENAPI].document()
    by_name = {}
    for ops in doc["paths"].values():
        for operation in ops.values():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                by_name[content["schema"]["$ref"].rsplit("/", 1)[1]] = content
    assert name in by_name
    schema_says = _validator(doc, name).is_valid(body)
    model = _models(config)[name]
    try:
        validated(model, body)
        server_says = True
    except ApiError as refused:
        assert refused.status == 400 and refused.message
        server_says = False
    assert schema_says == server_says, (name, body, schema_says)


def _models(config) -> dict:
    from mediasrv.community.accounts import models as accounts
    from mediasrv.community.moderation import models as moderation

    limits = config.moderation
    requests = moderation.request_models(limits.max_reason_chars, limits.max_timeout_minutes,
                                         limits.max_word_chars, limits.max_banned_words)
    return {"NewUser": accounts.NewUser, "MeUpdate": accounts.MeUpdate, "SettingsChange": accounts.SettingsChange,
            "NewReport": requests.report}


async def test_a_body_the_model_refuses_is_a_400_naming_the_field(tmp_path):
    async with accounts_server(tmp_path) as api:
        doc = await (await api.http.get("/api/openapi.json")).json()
        body = {"handle": "alice", "password": "password-1", "display_name": "   "}
        assert not _validator(doc, "NewUser").is_valid(body)
        assert "display_name" in await api.error(await api.http.post("/api/users", json=body), 400)
        body["display_name"] = " Alice "
        assert _validator(doc, "NewUser").is_valid(body)
        response = await api.http.post("/api/users", json={**body, "handle": "ALICE"})
        assert response.status == 201
        profile = await response.json()
        assert profile["handle"] == "alice" and profile["display_name"] == "Alice"
        stats = doc["components"]["schemas"]["StreamStats"]
        assert {"viewers", "bitrate_kbps", "fps", "warnings"} <= set(stats["properties"])
