"""Layer 0 is pure: stdlib only, and no I/O, clocks, threads or logging setup."""

import ast
import pathlib
import sys

import mediasrv.media

PACKAGE = pathlib.Path(mediasrv.media.__file__).parent
FORBIDDEN = {"asyncio", "socket", "selectors", "ssl", "time", "datetime", "logging", "threading",
             "multiprocessing", "subprocess", "concurrent", "random", "os", "io"}


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_media_package_imports_only_pure_stdlib():
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("mediasrv.") and not name.startswith("mediasrv.media"):
                offenders.append((path.name, name))  # imports only point down
            elif top != "mediasrv" and (top not in sys.stdlib_module_names or top in FORBIDDEN):
                offenders.append((path.name, name))
    assert offenders == []
