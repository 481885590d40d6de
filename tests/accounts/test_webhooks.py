"""Outgoing webhooks: signed, retried with backoff when the receiver fails, never blocking
the stream. A real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time

import pytest
from aiohttp import web

from mediasrv.httpkit.keys import WEBHOOKS
from mediasrv.community.alerts.webhooks import sign, verify
from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import go_live, wait_for

SECRET = "whsec-test-123"


class Receiver:
    """Records every POST; answers 500 to the first ``fail_first`` attempts of each
    delivery, or hangs for ``hang`` seconds."""

    def __init__(self, fail_first: int = 0, hang: float = 0.0) -> None:
        self.fail_first = fail_first
        self.hang = hang
        self.requests: list[tuple[dict, bytes, float]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body, time.monotonic()))
        if self.hang:
            await asyncio.sleep(self.hang)
        if int(request.headers["X-Mediasrv-Attempt"]) <= self.fail_first:
            return web.Response(status=500, text="try later")
        return web.Response(status=204)

    def accepted(self, event: str) -> list[dict]:
        out = []
        for headers, body, _ in self.requests:
            if headers["X-Mediasrv-Event"] == event and int(headers["X-Mediasrv-Attempt"]) > self.fail_first:
                out.append(json.loads(body))
        return out

    def attempts(self, event: str) -> list[tuple[dict, bytes, float]]:
        return [r for r in self.requests if r[0]["X-Mediasrv-Event"] == event]


@contextlib.asynccontextmanager
async def receiver(**options):
    rec = Receiver(**options)
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def hook_settings(url: str, *extra: str) -> tuple[str, ...]:
    return (f"webhooks.urls={url}", f"webhooks.secret={SECRET}", "webhooks.backoff=0.1", "webhooks.retries=3",
            "webhooks.timeout=1", "live_access.min_followers=0", *extra)


def test_signature_is_hmac_sha256_of_timestamp_and_body():
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", body) == "sha256=" + expected
    assert verify(SECRET, "1700000000", body, "sha256=" + expected)
    assert not verify(SECRET, "1700000001", body, "sha256=" + expected)
    assert not verify("other", "1700000000", body, "sha256=" + expected)


async def test_events_arrive_signed_and_are_retried_when_the_receiver_fails(tmp_path):
    async with receiver(fail_first=2) as rec:
        async with accounts_server(tmp_path, *hook_settings(rec.url)) as api:
            alice = await api.user("alice", "creator")
            await api.http.patch("/api/me/settings", headers=alice, json={"title": "Launch day"})
            publication = go_live(api.srv, "alice")
            publication.detach(clean=True)
            await wait_for(lambda: rec.accepted("stream.started") and rec.accepted("stream.ended"))
            saved_id = api.srv.app[WEBHOOKS].send("broadcast.saved", {"stream": "alice", "vod_id": 7})
            stats = api.srv.app[WEBHOOKS].stats
            # The receiver has answered before the sender counts the delivery: wait for the count.
            await wait_for(lambda: rec.accepted("broadcast.saved") and stats.delivered == 3)
            assert stats.delivered == 3 and stats.retried == 6 and stats.failed == 0

    started = rec.accepted("stream.started")[0]
    assert started["event"] == "stream.started"
    assert started["data"]["stream"] == "alice" and started["data"]["title"] == "Launch day"
    assert started["data"]["creator"]["handle"] == "alice"
    ended = rec.accepted("stream.ended")[0]["data"]
    assert ended["duration_seconds"] >= 0 and ended["ended_at"].endswith("Z")
    saved = rec.accepted("broadcast.saved")[0]
    assert saved["id"] == saved_id and saved["data"] == {"stream": "alice", "vod_id": 7}

    for event in ("stream.started", "stream.ended", "broadcast.saved"):
        attempts = rec.attempts(event)
        assert [int(h["X-Mediasrv-Attempt"]) for h, _, _ in attempts] == [1, 2, 3]
        assert len({h["X-Mediasrv-Delivery"] for h, _, _ in attempts}) == 1  # one delivery, retried
        for headers, body, _ in attempts:
            assert headers["Content-Type"] == "application/json"
            assert verify(SECRET, headers["X-Mediasrv-Timestamp"], body, headers["X-Mediasrv-Signature"])
            assert abs(int(headers["X-Mediasrv-Timestamp"]) - time.time()) < 60
        # Exponential backoff: 0.1 s, then 0.2 s.
        gaps = [b[2] - a[2] for a, b in zip(attempts, attempts[1:])]
        assert gaps[0] >= 0.09 and gaps[1] >= 0.18


async def test_a_dead_receiver_is_given_up_on_after_the_retries(tmp_path):
    async with receiver(fail_first=100) as rec:
        async with accounts_server(tmp_path, *hook_settings(rec.url)) as api:
            api.srv.app[WEBHOOKS].send("broadcast.saved", {"stream": "x"})
            stats = api.srv.app[WEBHOOKS].stats
            await wait_for(lambda: stats.failed == 1)
            assert len(rec.requests) == 4 and stats.delivered == 0  # 1 attempt + 3 retries


async def test_a_hanging_receiver_never_blocks_the_stream(tmp_path):
    async with receiver(hang=1) as rec:
        async with accounts_server(tmp_path, *hook_settings(rec.url, "webhooks.retries=0",
                                                            "webhooks.timeout=0.2")) as api:
            started = time.monotonic()
            for index in range(5):
                go_live(api.srv, f"s{index}").detach(clean=True)
            assert time.monotonic() - started < 2.0  # (units pushed too; no network wait)
            stats = api.srv.app[WEBHOOKS].stats
            await wait_for(lambda: stats.failed == 10, timeout=15)  # started + ended, 5 streams


async def test_webhooks_need_a_secret():
    from mediasrv.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="webhooks.secret"):
        load_config(None, ["webhooks.urls=http://127.0.0.1:9/x"])
    with pytest.raises(ConfigError, match=r"webhooks.urls\[0\]"):
        load_config(None, ["webhooks.urls=ftp://x", "webhooks.secret=s"])
    config = load_config(None, ["webhooks.urls=http://a/x, https://b/y", "webhooks.secret=s"])
    assert config.webhooks.urls == ("http://a/x", "https://b/y")
