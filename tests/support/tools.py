"""External tools the tests drive. Locally a missing tool skips with the reason;
with ``CI=true`` a missing tool fails the test (no silent skips in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """Return the path of executable ``name``; skip locally / fail in CI when missing."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (run `make test` to install the test tools)")
    return path


def require_gst_element(name: str) -> None:
    """Require a GStreamer element (e.g. ``rtmp2sink``)."""
    require_tool("gst-launch-1.0")
    inspect = require_tool("gst-inspect-1.0")
    result = subprocess.run([inspect, "--exists", name], capture_output=True)
    if result.returncode != 0:
        missing(f"GStreamer element {name} is not installed")


def require_path(path: str, what: str) -> str:
    if not os.path.exists(path):
        missing(f"{what} ({path}) is not installed")
    return path


def missing(reason: str) -> None:
    """A required tool or feature is absent: skip locally with ``reason``, fail in CI."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)
