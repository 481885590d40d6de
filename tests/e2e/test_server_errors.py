"""Every 5xx answer is logged once, with the request (method, path, never the query
string: it may carry a token) and its cause (issue 16, item 10)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mediasrv.app.root import create_app
from mediasrv.config import load_config
from mediasrv.httpkit.keys import HLS_SERVICE
from tests.support.clients import start_ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

TOKEN = "t0ken-that-must-not-be-logged"


def records_about(caplog, path: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if path in r.getMessage()]


def server_error_records(caplog) -> list[logging.LogRecord]:
    """Every record at WARNING or above, and any of aiohttp's but its access log (which
    the test server keeps and `mediasrv serve` turns off, cli.py)."""
    return [r for r in caplog.records
            if r.name != "aiohttp.access" and (r.levelno >= logging.WARNING or r.name.startswith("aiohttp"))]


def logged_text(records: list[logging.LogRecord]) -> str:
    """The records as a handler writes them, tracebacks included."""
    formatter = logging.Formatter()
    return "\n".join(formatter.format(r) for r in records)


async def test_blocking_reload_503_of_a_real_stream_is_logged_once_with_its_cause(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_server(tmp_path, "hls.segment_duration=1", "hls.low_latency=true",
                              "hls.reconnect_grace=60") as srv:
        recorder = StreamRecorder(srv.hub)
        push = await start_ffmpeg_push(srv.rtmp_url("errs"), seconds=60)
        try:
            await recorder.wait_started("errs")
            service = srv.app[HLS_SERVICE]
            assert await service.wait_ready("errs", timeout=20)
        finally:
            push.kill()  # the encoder dies: the stream waits for it (reconnect grace)
            await push.wait()
        segmenter = service.rendition("errs", "source").segmenter
        msn, part = segmenter.next_part()
        path = "/live/errs/source/index.m3u8"
        caplog.clear()
        async with aiohttp.ClientSession() as session:
            url = f"{srv.http_url}{path}?_HLS_msn={msn}&_HLS_part={part + 1}&s={TOKEN}"
            async with session.get(url) as response:
                assert response.status == 503
    about = records_about(caplog, path)
    assert len(about) == 1, [r.getMessage() for r in about]
    message = about[0].getMessage()
    assert "GET" in message and "503" in message
    assert f"segment {msn} part {part + 1} did not come within" in message
    assert TOKEN not in logged_text(server_error_records(caplog)) and "_HLS_msn" not in message


async def test_an_exception_in_a_handler_is_logged_once_with_the_request(tmp_path, caplog):
    """A handler that raises: one record (not aiohttp's path-less one as well) naming the
    request and the exception, with its traceback; the client gets a 500."""
    caplog.set_level(logging.DEBUG)
    config = load_config(None, [f"data_dir={tmp_path}", "rtmp.listen=127.0.0.1:0", "http.listen=127.0.0.1:0",
                                "transcode.enabled=false"])
    app = create_app(config)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("the disk caught fire")

    app.router.add_get("/api/broken", broken)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        caplog.clear()
        response = await client.get(f"/api/broken?token={TOKEN}")
        assert response.status == 500
        metrics = await (await client.get("/metrics")).text()
    assert 'class="5xx"' in metrics
    errors = server_error_records(caplog)
    assert len(errors) == 1, [(r.name, r.getMessage()) for r in errors]
    message = errors[0].getMessage()
    assert "GET /api/broken answered 500: RuntimeError: the disk caught fire" in message
    assert errors[0].exc_info is not None  # with the traceback
    assert TOKEN not in logged_text(errors)
