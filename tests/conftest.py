"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest_asyncio

# Greps every log record of the suite for generated tokens and stream keys (docs/security.md).
pytest_plugins = ["tests.security.log_guard"]


def pytest_configure(config):
    # Whatever started us or changes us later, run the suite (and every encoder, player
    # and browser it starts) under the normal scheduler: a real-time process that spins
    # starves the 2-core machine and everything in it (tests/support/scheduling.py).
    from tests.support.scheduling import start_guard

    start_guard()


@pytest_asyncio.fixture
async def server(tmp_path):
    """The whole server on ephemeral ports with the embedded defaults."""
    from tests.support.server import running_server

    async with running_server(tmp_path) as srv:
        yield srv


@pytest_asyncio.fixture
async def recorder(server):
    """Keeps every unit of every stream the server's hub publishes."""
    from tests.support.server import StreamRecorder

    return StreamRecorder(server.hub)
