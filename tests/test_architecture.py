"""The architecture, checked rather than hoped for (docs/architecture.md).

- The import-linter contracts of ``.importlinter`` hold: the layers, the independence of
  the media features and of the community features, the pure cores' isolation.
- No module of ``mediasrv`` takes part in an import cycle.
- No import inside a function stands in for a module-level one (a lazy import on purpose
  says so in the comment right above it).
- The pure cores and every feature's pure rules import no I/O, clocks or prometheus.
- No ``exec``/``eval`` anywhere.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mediasrv"
#: Packages and modules with no I/O: they compute on what they are given (time included).
PURE = ["media", "rtmp", "hls", "community/chat/rules.py", "community/moderation/rules.py",
        "community/gifts/rules.py", "observe/analytics_rules.py", "textrules.py", "httpkit/jsonlimits.py"]
FORBIDDEN = {"asyncio", "aiohttp", "socket", "prometheus_client", "time", "av", "sqlite3", "threading",
             "selectors", "ssl", "datetime", "redis"}
# What each pure part may import from the project (imports only point down).
ALLOWED_INTERNAL = {"media": {"media"}, "rtmp": {"rtmp", "media"}, "hls": {"hls", "media"}}
#: The comment that marks a deliberate import inside a function.
LAZY_MARK = "Lazy on purpose"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_takes_part_in_an_import_cycle():
    graph = grimp.build_graph("mediasrv", exclude_type_checking_imports=True, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:  # a three-module cycle and a bystander
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, module):
            return self.edges[module]

    assert _cycles(Graph()) == [["a", "b", "c"]]


def test_no_function_imports_a_project_module_unless_it_says_why():
    offenders = []
    for path in _modules():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source, str(path))
        type_checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                         and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                         for n in ast.walk(node)}
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in type_checking:
                    continue
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if not (any(n.startswith("mediasrv") for n in names) or getattr(node, "level", 0)):
                    continue
                above = "\n".join(lines[max(0, node.lineno - 4):node.lineno - 1])
                if LAZY_MARK not in above:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "imports inside functions (move them up, or say why they are lazy): " + ", ".join(offenders)


@pytest.mark.parametrize("part", PURE)
def test_pure_parts_import_no_io(part):
    target = PACKAGE / part
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    assert files and all(f.exists() for f in files), f"mediasrv/{part} is missing"
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.relative_to(PACKAGE)} imports {name}"
            if top == "mediasrv" and part in ALLOWED_INTERNAL:
                sub = name.split(".")[1] if "." in name else ""
                assert sub in ALLOWED_INTERNAL[part], f"{path.relative_to(PACKAGE)} imports {name}"
            elif top == "mediasrv":
                assert name.endswith("rules") or ".rules" in name, f"{path.relative_to(PACKAGE)} imports {name}"


def test_no_exec_or_eval():
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("exec", "eval", "compile"):
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} calls {node.func.id}")
