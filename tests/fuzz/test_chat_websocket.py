"""The chat WebSocket of a running server under generated requests.

Three connections to a creator's chat (the creator, a viewer, an anonymous reader) send
generated frames: requests of every type with fields of every JSON type, broken JSON,
other text and binary frames. After each batch a sentinel request is sent and its error
frame awaited, so every frame before it was handled. The connections must stay open
(a handler that raised would close them), every frame the server sends must be a JSON
object, and no server log record may carry an exception.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.accounts.support import accounts_server

pytestmark = pytest.mark.e2e

TYPES = ["message", "pin", "unpin", "delete", "timeout", "untimeout", "ban", "unban", "slow_mode",
         "followers_only", "report", "gift", "nope", ""]
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
              st.text(max_size=40), st.sampled_from(["carol", "alice", "", "x" * 600, "\u202e\u200b"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
requests = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.one_of(st.sampled_from(TYPES), st.text(max_size=8)),
    st.dictionaries(st.sampled_from(["text", "id", "user", "minutes", "reason", "seconds", "on", "kind", "gift_id"]),
                    json_values, max_size=4),
)
frames = st.one_of(
    requests.map(lambda r: ("text", json.dumps(r))),
    st.text(max_size=60).map(lambda t: ("text", t)),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.binary(max_size=40).map(lambda b: ("binary", b)),
)


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(f"{record.name}: {record.getMessage()}")


def test_chat_websocket_survives_generated_requests(tmp_path):
    errors = Errors()
    logging.getLogger().addHandler(errors)
    with asyncio.Runner() as runner:
        context = accounts_server(tmp_path)
        api = runner.run(context.__aenter__())
        try:
            async def connect():
                alice = (await api.user("alice", "creator"))["Authorization"].split()[1]
                bob = (await api.user("bob", "viewer"))["Authorization"].split()[1]
                await api.user("carol", "viewer")
                return [await api.http.ws_connect(f"/live/alice/chat?access_token={alice}"),
                        await api.http.ws_connect(f"/live/alice/chat?access_token={bob}"),
                        await api.http.ws_connect("/live/alice/chat")]

            sockets = runner.run(connect())
            sentinel = [0]

            async def exchange(batch):
                for who, (kind, data) in batch:
                    ws = sockets[who]
                    await (ws.send_str(data) if kind == "text" else ws.send_bytes(data))
                for ws in sockets:
                    sentinel[0] += 1
                    mark = f"sentinel-{sentinel[0]}"
                    await ws.send_str(json.dumps({"type": mark}))
                    while True:
                        frame = await asyncio.wait_for(ws.receive(), 20)
                        assert frame.type is aiohttp.WSMsgType.TEXT, (frame.type, frame.data, ws.close_code)
                        payload = json.loads(frame.data)
                        assert isinstance(payload, dict)
                        if payload.get("type") == "error" and mark in payload.get("reason", ""):
                            break

            @settings(max_examples=60, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(st.lists(st.tuples(st.integers(0, 2), frames), min_size=1, max_size=8))
            def run(batch):
                runner.run(exchange(batch))

            run()
            assert sentinel[0] >= 3 * 60  # every example ran its exchange
            assert errors.records == []
            for ws in sockets:
                runner.run(ws.close())
        finally:
            runner.run(context.__aexit__(None, None, None))
            logging.getLogger().removeHandler(errors)
