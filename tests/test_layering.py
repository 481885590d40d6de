"""Layers 0 and 1 are sans-IO: they import no asyncio, sockets, clocks, aiohttp or prometheus."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mediasrv"
PURE = ["media", "rtmp", "hls", "live"]
FORBIDDEN = {"asyncio", "aiohttp", "socket", "prometheus_client", "time", "av", "sqlite3", "threading",
             "selectors", "ssl", "datetime"}
# What each layer may import from the project (imports only point down).
ALLOWED_INTERNAL = {"media": {"media"}, "rtmp": {"rtmp", "media"}, "hls": {"hls", "media"}, "live": {"live"}}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_io(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"mediasrv/{layer} has no modules"
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.relative_to(PACKAGE)} imports {name}"
            if top == "mediasrv":
                sub = name.split(".")[1] if "." in name else ""
                assert sub in ALLOWED_INTERNAL[layer], f"{path.relative_to(PACKAGE)} imports {name}"
