"""Helpers of the security tests: certificates, waiting for a condition, a creator with a
stream that has been live (so recordings and chats exist)."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
from pathlib import Path
from typing import Callable

from tests.support.tools import require_tool


def self_signed(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), made with the openssl CLI."""
    openssl = require_tool("openssl")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


async def eventually(check: Callable[[], object], *, timeout: float = 20, what: str = "condition"):
    """Await ``check()`` (a coroutine function, or a plain one) until it gives something
    truthy (for state with no event to await, e.g. a row another task writes); fails after
    ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
