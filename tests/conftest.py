"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest_asyncio


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
