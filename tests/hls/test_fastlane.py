"""The HTTP fast lane (mediasrv/http/fastlane.py) over real sockets, against aiohttp itself.

The whole app (``create_app``: viewer tracker, request counter middleware, API error
middleware, every route) is served on two listeners of the same runner: the fast-lane
site mediasrv.cli uses, and aiohttp's plain ``TCPSite``. The same raw request bytes go to
both; the answers must be the same (status line, every header in order except ``Date``,
body) and so must the side effects. Which protocol answered is read from where the
connection is registered: the lane's own set, or aiohttp's server (``connections``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import pytest
from aiohttp import web

from mediasrv.http.fastlane import FastLaneProtocol, FastLaneSite
from mediasrv.delivery.routes import HLS_SERVICE
from mediasrv.observe.routes import HTTP_STATS, VIEWERS
from mediasrv.observe.viewers import client_key
from tests.hls.conftest import Publisher, hls_config, make_app, until
from tests.support.server import running_server

MEDIA = "/live/x/source/index.m3u8"
MASTER = "/live/x/index.m3u8"


@dataclass
class Answer:
    status_line: bytes
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def comparable(self) -> tuple:
        """Everything but Date; a master playlist's fresh session tokens masked."""
        body = re.sub(rb"\?s=[A-Za-z0-9_-]+", b"?s=TOKEN", self.body)
        return self.status_line, [(k, v) for k, v in self.headers if k != "Date"], body


async def read_answer(reader: asyncio.StreamReader, *, head_request: bool = False) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head[:-4].split(b"\r\n")
    headers = [tuple(line.decode("latin-1").split(": ", 1)) for line in lines[1:]]
    answer = Answer(lines[0], headers, b"")  # type: ignore[arg-type]
    length = answer.header("Content-Length")
    if not head_request and length is not None:
        answer.body = await asyncio.wait_for(reader.readexactly(int(length)), 10)
    return answer


async def closed(reader: asyncio.StreamReader) -> bool:
    """True once the server closed the connection (EOF after any remaining bytes)."""
    return await asyncio.wait_for(reader.read(), 10) == b""


def get(path: str, *lines: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    return "\r\n".join([f"{method} {path} {version}", "Host: test", *lines, "", ""]).encode()


async def lane_and_plain(server, units) -> tuple[FastLaneSite, web.TCPSite]:
    """The server's lane site and a plain aiohttp site of the same runner, with stream
    ``x`` live from ``units``."""
    plain = web.TCPSite(server.runner, "127.0.0.1", 0)
    await plain.start()
    publication = server.hub.publish("x", Publisher())
    for unit in units:
        publication.push(unit)
    await until(server.app[HLS_SERVICE], "x", lambda s: len(s.segments) >= 1)
    site = next(s for s in server.runner.sites if isinstance(s, FastLaneSite))
    assert site.lane is not None, "the lane must apply to the real app (a new middleware? see lane_for)"
    return site, plain


@pytest.fixture
async def both(tmp_path, h264_aac):
    """(server, lane site, lane port, plain aiohttp port) with stream ``x`` live."""
    async with running_server(tmp_path) as server:
        site, plain = await lane_and_plain(server, h264_aac.units)
        yield server, site, server.http_port, plain.port


def lane_has(site, server, count: int) -> bool:
    """``count`` connections are in the lane and aiohttp has none of them."""
    return len(site.lane.connections) == count and not server.runner.server.connections


async def ask(port: int, data: bytes, count: int = 1, *, head_request: bool = False):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answers = [await read_answer(reader, head_request=head_request) for _ in range(count)]
    return answers, reader, writer


SAME = [
    pytest.param(get(MEDIA), id="plain"),
    pytest.param(get(MEDIA + "?s=Tok-en_1"), id="session"),
    pytest.param(get(MEDIA, "Origin: https://player.example"), id="origin"),
    pytest.param(get(MEDIA, 'If-None-Match: "x"', "Range: bytes=0-9"), id="conditional-range"),
    pytest.param(get(MEDIA, "User-Agent: \t Player/1.0 (x)  ", "Connection: Keep-Alive"), id="ows-keepalive"),
    pytest.param(get(MEDIA, "Connection: close"), id="close"),
    pytest.param(get(MEDIA, version="HTTP/1.0"), id="http10"),
    pytest.param(get(MEDIA, "Connection: keep-alive", version="HTTP/1.0"), id="http10-keepalive"),
    pytest.param(get(MASTER), id="master"),
    pytest.param(get("/live/.x/source/index.m3u8"), id="bad-name"),
    pytest.param(get(MEDIA + "?_HLS_msn=0"), id="blocking-reload"),
    pytest.param(get(MEDIA + "?_HLS_part=1"), id="bad-reload"),
    pytest.param(get("/live/x/source/index.m3u8?s=" + "t" * 65), id="long-token"),
    pytest.param(get("/api/streams/x/stats"), id="api"),
]


@pytest.mark.parametrize("data", SAME)
async def test_same_answer_as_aiohttp(both, data):
    server, site, lane_port, plain_port = both
    (mine,), lane_reader, lane_writer = await ask(lane_port, data)
    (theirs,), plain_reader, plain_writer = await ask(plain_port, data)
    assert mine.comparable() == theirs.comparable()
    assert mine.header("Date") is not None
    if theirs.header("Connection") == "close" or b"HTTP/1.0" in data and b"keep-alive" not in data:
        assert await closed(lane_reader) and await closed(plain_reader)
    for writer in (lane_writer, plain_writer):
        writer.close()


async def test_head_is_the_same(both):
    server, site, lane_port, plain_port = both
    (mine,), _, w1 = await ask(lane_port, get(MEDIA, method="HEAD"), head_request=True)
    (theirs,), _, w2 = await ask(plain_port, get(MEDIA, method="HEAD"), head_request=True)
    assert mine.comparable() == theirs.comparable() and mine.status == 200
    w1.close(), w2.close()


async def test_plain_playlist_gets_stay_in_the_lane(both):
    server, site, lane_port, _ = both
    answers, reader, writer = await ask(lane_port, get(MEDIA) + get(MASTER) + get(MEDIA + "?s=abc"), 3)
    assert [a.status for a in answers] == [200, 200, 200]
    assert lane_has(site, server, 1)
    writer.close()


async def test_keep_alive_mixes_lane_and_aiohttp(both):
    server, site, lane_port, plain_port = both
    reader, writer = await asyncio.open_connection("127.0.0.1", lane_port)
    expected = (await ask(plain_port, get(MEDIA)))[0][0]
    for _ in range(2):
        writer.write(get(MEDIA))
        assert (await read_answer(reader)).comparable() == expected.comparable()
    assert lane_has(site, server, 1)
    writer.write(get(MEDIA, method="HEAD"))  # not the lane's: the connection goes to aiohttp
    head = await read_answer(reader, head_request=True)
    assert head.status == 200 and head.header("Content-Length") == expected.header("Content-Length")
    assert not site.lane.connections and len(server.runner.server.connections) == 1
    writer.write(get(MEDIA))  # aiohttp answers it now, the same
    assert (await read_answer(reader)).comparable() == expected.comparable()
    writer.close()


async def test_pipelined_requests_answered_in_order(both):
    server, site, lane_port, plain_port = both
    requests = [get(MEDIA), get(MEDIA + "?s=t1"), get(MASTER), get(MEDIA, method="OPTIONS"),
                get("/live/x/source/index.m3u8?_HLS_msn=0"), get(MEDIA), get(MASTER)]
    mine, _, w1 = await ask(lane_port, b"".join(requests), len(requests))
    theirs, _, w2 = await ask(plain_port, b"".join(requests), len(requests))
    assert [a.comparable() for a in mine] == [a.comparable() for a in theirs]
    assert [a.status for a in mine] == [200, 200, 200, 204, 200, 200, 200]
    w1.close(), w2.close()


async def test_heads_split_anywhere(both):
    server, site, lane_port, plain_port = both
    expected = (await ask(plain_port, get(MEDIA, "User-Agent: split")))[0][0]
    reader, writer = await asyncio.open_connection("127.0.0.1", lane_port)
    for request in range(2):
        for byte in get(MEDIA, "User-Agent: split"):
            writer.write(bytes([byte]))
            await writer.drain()
        assert (await read_answer(reader)).comparable() == expected.comparable()
    assert lane_has(site, server, 1)  # every prefix of a playlist GET waits in the lane
    writer.close()


async def test_viewer_sessions_and_request_counts_are_exact(both):
    server, site, lane_port, plain_port = both
    viewers, stats = server.app[VIEWERS], server.app[HTTP_STATS]
    audience = viewers.audience("x")
    requests_before, playlists_before = audience.requests, stats.requests.get("playlist", 0)
    masters_before, sessions_before = stats.requests.get("master", 0), audience.sessions_total
    token = "SessionTok3n"
    mine, _, w1 = await ask(lane_port, get(MEDIA + f"?s={token}") * 5 + get(MEDIA, "User-Agent: ua") * 2
                            + get(MASTER, "User-Agent: ua"), 8)
    theirs, _, w2 = await ask(plain_port, get(MEDIA + f"?s={token}") * 3 + get(MEDIA, "User-Agent: ua") * 2, 5)
    assert lane_has(site, server, 1) is False  # the plain port's connection is aiohttp's
    assert len(site.lane.connections) == 1
    size = len(mine[0].body)
    assert audience.requests - requests_before == 5 + 2 + 1 + 3 + 2
    assert stats.requests["playlist"] - playlists_before == 5 + 2 + 3 + 2
    assert stats.requests["master"] - masters_before == 1
    session = audience.sessions[token]
    assert session.requests == 8 and session.bytes_sent == 8 * size and session.rendition == "source"
    # No token: the lane and aiohttp key the viewer the same way (address + User-Agent).
    by_client = audience.sessions["c-" + client_key("127.0.0.1", "ua")]
    assert by_client.requests == 4
    # The master playlist opened one session of its own, under the token it handed out.
    handed = re.search(rb"\?s=([A-Za-z0-9_-]+)", mine[7].body).group(1).decode()
    assert audience.sessions[handed].requests == 1
    assert audience.sessions_total - sessions_before == 3
    w1.close(), w2.close()


async def test_blocking_reload_is_aiohttps(both):
    server, site, lane_port, _ = both
    (answer,), _, writer = await ask(lane_port, get(MEDIA + "?_HLS_msn=0"))
    assert answer.status == 200 and answer.header("Cache-Control").startswith("public, max-age=")
    assert not site.lane.connections and len(server.runner.server.connections) == 1
    writer.close()


@pytest.mark.parametrize("bad", [
    get(MEDIA, "X-Huge: " + "h" * 9000),
    b"\x00\x01\x02 garbage\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
    b"GET " + b"/x" * 5000 + b" HTTP/1.1\r\n\r\n",
])
async def test_bad_heads_get_aiohttps_error_and_close_only_their_connection(both, bad):
    server, site, lane_port, plain_port = both
    (good,), good_reader, good_writer = await ask(lane_port, get(MEDIA))
    (mine,), reader, writer = await ask(lane_port, bad)
    (theirs,), plain_reader, plain_writer = await ask(plain_port, bad)
    assert mine.comparable() == theirs.comparable() and 400 <= mine.status < 500
    assert await closed(reader)
    good_writer.write(get(MEDIA))  # the other connection is still served by the lane
    assert (await read_answer(good_reader)).body == good.body
    assert len(site.lane.connections) == 1
    for w in (good_writer, writer, plain_writer):
        w.close()


@pytest.fixture
async def bare(h264_aac):
    """The HLS routes alone on a fast-lane site with a short keep-alive timeout."""
    app, hub = make_app(hls_config())
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=0.5)
    await runner.setup()
    site = FastLaneSite(runner, "127.0.0.1", 0)
    await site.start()
    publication = hub.publish("x", Publisher())
    for unit in h264_aac.units:
        publication.push(unit)
    await until(app[HLS_SERVICE], "x", lambda s: len(s.segments) >= 1)
    try:
        yield runner, site
    finally:
        await runner.cleanup()


async def test_idle_connections_close_after_the_keepalive_timeout(bare):
    runner, site = bare
    (answer,), reader, writer = await ask(site.port, get(MEDIA))
    assert answer.status == 200 and len(site.lane.connections) == 1
    quiet, quiet_writer = await asyncio.open_connection("127.0.0.1", site.port)  # never sends a byte
    started = asyncio.get_running_loop().time()
    assert await closed(reader) and await closed(quiet)
    assert asyncio.get_running_loop().time() - started >= 0.3
    assert not site.lane.connections and not runner.server.connections
    writer.close(), quiet_writer.close()


async def test_shutdown_closes_lane_connections(bare):
    runner, site = bare
    (answer,), reader, writer = await ask(site.port, get(MEDIA))
    assert answer.status == 200
    await runner.cleanup()
    assert await closed(reader)
    writer.close()


async def test_unknown_middleware_turns_the_lane_off(h264_aac):
    app, hub = make_app(hls_config())
    seen = []

    @web.middleware
    async def spy(request, handler):
        seen.append(request.path)
        return await handler(request)

    app.middlewares.append(spy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = FastLaneSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert site.lane is None
        publication = hub.publish("x", Publisher())
        for unit in h264_aac.units:
            publication.push(unit)
        await until(app[HLS_SERVICE], "x", lambda s: len(s.segments) >= 1)
        (answer,), _, writer = await ask(site.port, get(MEDIA))
        assert answer.status == 200 and seen == [MEDIA]
        writer.close()
    finally:
        await runner.cleanup()


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.protocol = None
        self.closing = False
        #: Call pause_writing on the protocol once this many writes were made.
        self.full_after: int | None = None

    def write(self, data) -> None:
        self.written.append(bytes(data))
        if self.full_after is not None and len(self.written) >= self.full_after:
            self.full_after = None
            self.protocol.pause_writing()  # as a transport over its high-water mark does

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name, default=None):
        return ("192.0.2.7", 4000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


class Recorder(asyncio.Protocol):
    """Stands in for aiohttp's RequestHandler: what the lane hands over, in order."""

    def __init__(self) -> None:
        self.events: list = []

    def connection_made(self, transport) -> None:
        self.events.append(("made", transport))

    def data_received(self, data) -> None:
        self.events.append(("data", data))

    def pause_writing(self) -> None:
        self.events.append(("pause",))


async def test_a_client_that_stops_reading_is_handed_to_aiohttp_flow_control(bare):
    runner, site = bare
    recorder = Recorder()
    site.lane.server = lambda: recorder
    transport = FakeTransport()
    protocol = site.lane()
    assert isinstance(protocol, FastLaneProtocol)
    protocol.connection_made(transport)
    half = get(MEDIA)[:10]
    protocol.data_received(get(MEDIA) + get(MEDIA) + half)
    assert len(transport.written) == 1 and transport.written[0].count(b"HTTP/1.1 200 OK") == 2
    protocol.pause_writing()  # the transport's buffer is over its high-water mark
    assert transport.protocol is recorder
    assert recorder.events == [("made", transport), ("pause",), ("data", half)]
    protocol.data_received(b"rest")  # a late callback is forwarded, never answered here
    assert recorder.events[-1] == ("data", b"rest") and len(transport.written) == 1
    assert protocol not in site.lane.connections
    protocol.connection_lost(None)


async def test_behind_a_trusted_proxy_the_viewer_is_the_forwarded_client(tmp_path, h264_aac):
    async with running_server(tmp_path, "http.trusted_proxies=127.0.0.1/32") as server:
        site, plain = await lane_and_plain(server, h264_aac.units)
        request = get(MEDIA, "User-Agent: ua", "X-Forwarded-For: 203.0.113.9, 127.0.0.1")
        _, _, w1 = await ask(server.http_port, request * 2, 2)
        _, _, w2 = await ask(plain.port, request, 1)
        assert len(site.lane.connections) == 1
        sessions = server.app[VIEWERS].audience("x").sessions
        assert sessions["c-" + client_key("203.0.113.9", "ua")].requests == 3
        assert list(sessions) == ["c-" + client_key("203.0.113.9", "ua")]
        w1.close(), w2.close()


async def test_an_access_log_turns_the_lane_off():
    app, _ = make_app(hls_config())
    runner = web.AppRunner(app, access_log=logging.getLogger("test.access"))
    await runner.setup()
    site = FastLaneSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert site.lane is None
    finally:
        await runner.cleanup()


async def test_a_write_over_the_high_water_mark_before_a_foreign_request(bare):
    """The answers before a request the lane does not take fill the buffer: the connection
    goes to aiohttp once, with that request."""
    runner, site = bare
    made = []

    def factory():
        recorder = Recorder()
        made.append(recorder)
        return recorder

    site.lane.server = factory
    transport = FakeTransport()
    protocol = site.lane()
    transport.protocol = protocol
    transport.full_after = 1
    protocol.connection_made(transport)
    head = get(MEDIA, method="HEAD")
    protocol.data_received(get(MEDIA) + head)
    assert len(made) == 1 and transport.protocol is made[0]
    assert made[0].events == [("made", transport), ("pause",), ("data", head)]
    assert transport.written[0].startswith(b"HTTP/1.1 200 OK") and len(transport.written) == 1
    protocol.connection_lost(None)
