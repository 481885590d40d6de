"""Secrets are compared in constant time.

An audit of the source: every ``==``/``!=`` whose operand is named like a secret (token,
secret, password, signature, digest, stream key, HMAC) is a finding, unless it compares
with a literal (``== ""``, ``is None``) which reveals nothing. Secrets are compared with
``hmac.compare_digest`` or looked up by their SHA-256 (tokens and stream keys: the store
indexes the hash, so the lookup time says nothing about the secret).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mediasrv

PACKAGE = Path(mediasrv.__file__).parent
SECRET_NAME = re.compile(r"(token|secret|password|passwd|signature|digest|stream_key|hmac|mac\b)", re.I)
#: Names that match the pattern but hold no secret (documented why).
NOT_SECRET = {
    "token_type",  # the literal "Bearer"
    "SESSION_PARAM",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    if isinstance(node, ast.Call):
        return _name(node.func)
    return ""


def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, (ast.Tuple, ast.List, ast.Set))
                                              and all(isinstance(e, ast.Constant) for e in node.elts))


def findings() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:]):
                if not isinstance(op, (ast.Eq, ast.NotEq)):
                    continue
                if _is_literal(left) or _is_literal(right):
                    continue
                names = [_name(left), _name(right)]
                if any(n and SECRET_NAME.search(n) and n not in NOT_SECRET for n in names):
                    out.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    return out


def test_no_secret_is_compared_with_eq():
    assert findings() == []


def test_the_audit_finds_a_plain_comparison(tmp_path, monkeypatch):
    """The audit itself works: a token compared with ``==`` is found."""
    (tmp_path / "bad.py").write_text("def check(token, expected_token):\n    return token == expected_token\n")
    import sys

    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert findings() == ["bad.py:2: token == expected_token"]


def test_known_secret_checks_use_compare_digest():
    """Where a secret is checked against a configured value, ``hmac.compare_digest`` does it."""
    for module in ("ingest/publish_auth.py", "community/accounts/service.py", "community/alerts/webhooks.py", "recording/routes.py",
                   "rtmp/handshake.py"):
        assert "compare_digest" in (PACKAGE / module).read_text(), module
