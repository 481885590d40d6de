"""Secret stream keys, bearer tokens and passwords never reach a log line.

One flow makes and uses every kind of secret: sign-up and login (a password, a token),
the creator's stream key, a publish with it (ffmpeg), a failed login, a publish refused
with an unknown key, a key rotation and a publish refused with the old key, the chat
WebSocket with ``?access_token=``, a request with a forged token, logout. It runs twice:
against the server in this process with every logger at DEBUG (caplog), and against a
real ``mediasrv serve`` process with ``log.level=debug`` (its stdout and stderr). Neither
output may contain any of the secrets, and both must show the flow happened (so the test
cannot pass by logging nothing).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys

import aiohttp
import pytest

from tests.security.support import eventually
from tests.support.clients import ffmpeg_push
from tests.support.server import running_server

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "admin-Pa55word-secret"
PASSWORD = "alice-Pa55word-secret"
WRONG_PASSWORD = "wrong-Pa55word-secret"
FORGED_TOKEN = "msv_forged-token-secret-0123456789"
UNKNOWN_KEY = "sk_unknown-key-secret-0123456789"
SETTINGS = ["auth.mode=accounts", "live_access.min_followers=0", "recording.enabled=false",
            "transcode.enabled=false"]


async def secret_flow(http: str, rtmp: str, streams_ended) -> list[str]:
    """Run the flow against ``http`` (base URL) and ``rtmp`` (rtmp://HOST:PORT/live);
    return every secret value it created or sent."""
    secrets = [ADMIN_PASSWORD, PASSWORD, WRONG_PASSWORD, FORGED_TOKEN, UNKNOWN_KEY]
    async with aiohttp.ClientSession(http) as session:
        response = await session.post("/api/users", json={"handle": "alice", "password": PASSWORD,
                                                           "role": "creator"})
        assert response.status == 201, await response.text()
        response = await session.post("/api/login", json={"handle": "alice", "password": PASSWORD})
        token = (await response.json())["token"]
        secrets.append(token)
        auth = {"Authorization": f"Bearer {token}"}
        response = await session.post("/api/login", json={"handle": "admin", "password": ADMIN_PASSWORD})
        assert response.status == 200, await response.text()
        secrets.append((await response.json())["token"])
        response = await session.post("/api/login", json={"handle": "alice", "password": WRONG_PASSWORD})
        assert response.status == 401
        response = await session.get("/api/me", headers={"Authorization": f"Bearer {FORGED_TOKEN}"})
        assert response.status == 401
        key = (await (await session.get("/api/me/stream-key", headers=auth)).json())["stream_key"]
        secrets.append(key)

        status, output = await ffmpeg_push(f"{rtmp}/{key}", seconds=1)
        assert status == 0, output
        await streams_ended()
        status, _ = await ffmpeg_push(f"{rtmp}/{UNKNOWN_KEY}", seconds=1)
        assert status != 0  # refused

        response = await session.post("/api/me/stream-key", headers=auth)
        assert response.status == 200, await response.text()
        new_key = (await response.json())["stream_key"]
        assert new_key != key
        secrets.append(new_key)
        status, _ = await ffmpeg_push(f"{rtmp}/{key}", seconds=1)
        assert status != 0  # the old key no longer works

        async with session.ws_connect(f"/live/alice/chat?access_token={token}") as ws:
            await ws.send_json({"type": "message", "text": "hello"})
            async for frame in ws:
                if frame.type is aiohttp.WSMsgType.TEXT and frame.json().get("type") == "message":
                    break

        response = await session.post("/api/logout", headers=auth)
        assert response.status == 204
    return secrets


def assert_no_secrets(text: str, secrets: list[str]) -> None:
    assert "alice" in text, "the log shows nothing of the flow"
    for secret in secrets:
        assert secret and secret not in text, f"a secret ({secret[:6]}…) appears in the log"
        # Nor a recognisable part of it (a key cut at 16 characters is still a leak).
        assert secret[-16:] not in text, f"the end of a secret ({secret[:6]}…) appears in the log"


async def test_in_process_debug_logs_hold_no_secret(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_server(tmp_path, *SETTINGS, f"accounts.admin_password={ADMIN_PASSWORD}") as srv:
        from mediasrv.hub import StreamEnded

        ended = asyncio.Event()
        srv.hub.add_listener(lambda event: ended.set() if isinstance(event, StreamEnded) else None)

        async def streams_ended():
            await asyncio.wait_for(ended.wait(), 30)

        secrets = await secret_flow(srv.http_url, f"rtmp://127.0.0.1:{srv.rtmp_port}/live", streams_ended)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    # The publish was logged (by public name), and so were the refusals.
    assert re.search(r"publishing stream alice", text), text[-2000:]
    assert "refused" in text
    assert_no_secrets(text, secrets)


async def test_serve_process_output_holds_no_secret(tmp_path):
    args = [sys.executable, "-m", "mediasrv.cli", "serve", "--set", "rtmp.listen=127.0.0.1:0",
            "--set", "http.listen=127.0.0.1:0", "--set", f"data_dir={tmp_path}", "--set", "log.level=debug"]
    for setting in SETTINGS:
        args += ["--set", setting]
    # The admin password comes from the environment, as docs/security.md recommends.
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MEDIASRV_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    stderr = bytearray()

    async def drain():
        while chunk := await proc.stderr.read(65536):
            stderr.extend(chunk)

    drainer = asyncio.create_task(drain())
    try:
        lines = []
        while not any("API:" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "server exited before printing its banner: " + stderr.decode()
            lines.append(line.decode())
        banner = "".join(lines)
        rtmp = re.search(r"Server:\s+(rtmp://127\.0\.0\.1:\d+/live)", banner).group(1)
        http = re.search(r"Watch:\s+(http://127\.0\.0\.1:\d+)/live", banner).group(1)

        async def streams_ended():
            await eventually(lambda: _no_live_streams(http), what="the stream to end")

        secrets = await secret_flow(http, rtmp, streams_ended)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await drainer
        stdout = await proc.stdout.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = banner + stdout.decode(errors="replace") + stderr.decode(errors="replace")
    assert "publishing stream alice" in text, text[-2000:]
    assert_no_secrets(text, secrets)


async def _no_live_streams(http: str) -> bool:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{http}/api/streams") as response:
            return (await response.json())["streams"] == []


def test_the_suite_log_guard_catches_a_logged_token():
    """The guard of tests/security/log_guard.py (on for every test) recognises a token."""
    from tests.security.log_guard import GUARD

    start = len(GUARD.leaks)
    logging.getLogger("mediasrv.test").warning("leak %s", "msv_" + "A" * 43)
    assert len(GUARD.leaks) == start + 1
    del GUARD.leaks[start:]  # planted on purpose: do not fail this test
