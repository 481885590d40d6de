"""The composition root (mediasrv/app): what starts when, what a failed start leaves."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from aiohttp import web

from mediasrv.app.root import COMPONENTS, create_app
from mediasrv.config import load_config
from mediasrv.httpkit.keys import (
    ACCOUNTS,
    CHAT,
    CLIENT_SESSION,
    GIFTS,
    MODERATION,
    MONITOR,
    RECORDER,
    RTMP_SERVER,
    STARTED_AT,
    STORE,
    WHIP_SERVER,
)


def _config(tmp_path, *overrides):
    return load_config(None, [f"data_dir={tmp_path}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0",
                              "transcode.enabled=false", "auth.mode=accounts", *overrides])


async def test_every_service_starts_before_the_ingests(tmp_path):
    app = create_app(_config(tmp_path))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        order = list(app[COMPONENTS].started)
        # The ingests are the last things started (the RTMP listener, then WHIP, which
        # the HTTP listener started after the app serves): a publisher can only meet
        # services that are ready (accounts decide its key, the recorder and the chat
        # follow it).
        assert order[-2:] == [RTMP_SERVER, WHIP_SERVER]
        for key in (STORE, MONITOR, ACCOUNTS, RECORDER, CHAT, MODERATION, GIFTS):
            assert order.index(key) < order.index(RTMP_SERVER), key
        assert order.index(STORE) < order.index(ACCOUNTS)
        assert all(app[key] is component for key, component in app[COMPONENTS].started.items())
    finally:
        await runner.cleanup()
    assert app[CLIENT_SESSION].closed


async def test_a_failed_start_stops_what_had_started(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        app = create_app(_config(tmp_path, f"rtmp.listen=127.0.0.1:{port}"))
        runner = web.AppRunner(app)
        with pytest.raises(OSError):
            await runner.setup()  # the RTMP port is taken: the last step fails
    finally:
        taken.close()
    started = app[COMPONENTS].started
    assert RTMP_SERVER not in started
    assert started[CLIENT_SESSION].closed
    with pytest.raises(sqlite3.ProgrammingError):  # the store was closed again
        started[STORE].get_user_by_handle("nobody")


def test_the_clock_given_to_the_root_is_the_one_read(tmp_path):
    app = create_app(_config(tmp_path), clock=lambda: 1234.5)
    assert app[STARTED_AT] == 1234.5
