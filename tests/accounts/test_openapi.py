"""The OpenAPI description covers every API endpoint and is well-formed."""

from __future__ import annotations

import re

from aiohttp import web

from mediasrv.httpkit import openapi
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
    assert not missing, f"routes without an OpenAPI operation (register them with openapi.register_operation): {missing}"
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

    openapi.add_route(app, "GET", r"/vod/{id:\d+}/index.m3u8", handler,
                      openapi.op("A VOD playlist", tag="vod", errors=[404]))
    openapi.register_operation(app, "post", "/api/recordings/{id}/save",
                               openapi.op("Save a recording", tag="recording", role="creator"))
    openapi.register_schema(app, "Recording", {"type": "object"})
    doc = openapi.registry(app).document()
    vod = doc["paths"]["/vod/{id}/index.m3u8"]["get"]
    assert vod["parameters"][0] == {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    assert doc["paths"]["/api/recordings/{id}/save"]["post"]["security"] == [{"bearerAuth": []}]
    assert "Recording" in doc["components"]["schemas"]
