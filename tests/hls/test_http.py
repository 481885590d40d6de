"""The HLS routes over real HTTP: a real Hub fed with MediaUnits, aiohttp's test server."""

from __future__ import annotations

import asyncio
import io
import re

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.delivery.responses import parse_range
from tests.hls.conftest import Publisher, check_media_playlist, hls_config, make_app, until


@pytest.fixture
async def live(h264_aac):
    """A server with stream ``x`` published (all units pushed, stream still live)."""
    app, hub = make_app(hls_config())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        publication = hub.publish("x", Publisher())
        for unit in h264_aac.units:
            publication.push(unit)
        await until(service, "x", lambda s: len(s.segments) == 3)
        yield client, service, publication


async def test_master_playlist(live, h264_aac):
    client, _, _ = live
    response = await client.get("/live/x/index.m3u8")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert response.headers["Cache-Control"] == "max-age=1"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    lines = (await response.text()).splitlines()
    assert lines[0] == "#EXTM3U"
    inf = next(line for line in lines if line.startswith("#EXT-X-STREAM-INF:"))
    assert 'CODECS="avc1.4d400d,mp4a.40.2"' in inf
    assert "RESOLUTION=320x240" in inf and "FRAME-RATE=25.000" in inf
    bandwidth = int(re.search(r"BANDWIDTH=(\d+)", inf).group(1))
    average = int(re.search(r"AVERAGE-BANDWIDTH=(\d+)", inf).group(1))
    assert 0 < average <= bandwidth
    assert lines[lines.index(inf) + 1] == "source/index.m3u8"


async def test_media_playlist_and_every_file_over_http(live, h264_aac):
    client, _, publication = live
    publication.detach(clean=True)  # ends: the last segment closes, ENDLIST
    await until(client.app[HLS_SERVICE], "x", lambda s: s.ended)
    response = await client.get("/live/x/source/index.m3u8")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert response.headers["Cache-Control"] == "max-age=1"
    pl = check_media_playlist(await response.text(), fmp4=True)
    assert pl.ended and len(pl.segments) == 4
    init = await client.get(f"/live/x/source/{pl.segments[0].map_uri}")
    assert init.status == 200 and init.headers["Content-Type"] == "video/mp4"
    assert init.headers["Cache-Control"] == "public, max-age=86400, immutable"
    data = await init.read()
    for s in pl.segments:
        r = await client.get(f"/live/x/source/{s.uri}")
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/mp4"
        assert "immutable" in r.headers["Cache-Control"]
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        data += await r.read()
    with av.open(io.BytesIO(data)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 100


async def test_mpegts_format():
    from tests.hls.conftest import encode

    app, hub = make_app(hls_config(format="mpegts"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        publication = hub.publish("ts", Publisher())
        for unit in encode().units:
            publication.push(unit)
        await until(app[HLS_SERVICE], "ts", lambda s: len(s.segments) >= 1)
        pl = check_media_playlist(await (await client.get("/live/ts/source/index.m3u8")).text(), fmp4=False)
        assert pl.version == 3 and pl.segments[0].uri.endswith(".ts")
        r = await client.get(f"/live/ts/source/{pl.segments[0].uri}")
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp2t"
        body = await r.read()
        assert body[0] == 0x47 and len(body) % 188 == 0


async def test_range_requests(live):
    client, service, _ = live
    seg = service.rendition("x", "source").segmenter.segments[0]
    url = f"/live/x/source/{seg.uri}"
    size = len(seg.data)
    r = await client.get(url, headers={"Range": "bytes=0-99"})
    assert r.status == 206
    assert r.headers["Content-Range"] == f"bytes 0-99/{size}"
    assert await r.read() == seg.data[:100]
    r = await client.get(url, headers={"Range": "bytes=-10"})
    assert r.status == 206 and await r.read() == seg.data[-10:]
    r = await client.get(url, headers={"Range": f"bytes=100-{size + 500}"})
    assert r.status == 206 and r.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    r = await client.get(url, headers={"Range": f"bytes={size}-"})
    assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{size}"
    # Malformed and multi-range headers may be ignored (RFC 9110 §14.2): the whole body.
    for header in ("bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=abc"):
        r = await client.get(url, headers={"Range": header})
        assert r.status == 200 and len(await r.read()) == size, header
    # If-Range with another validator: the whole body.
    r = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status == 200
    assert r.headers["Accept-Ranges"] == "bytes"


def test_parse_range_table():
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=9-", 10) == (9, 9)
    assert parse_range("bytes=-20", 10) == (0, 9)
    assert parse_range("bytes=-0", 10) == "unsatisfiable"
    assert parse_range("bytes=10-", 10) == "unsatisfiable"
    assert parse_range("bytes=3-1", 10) is None
    assert parse_range("bytes=-", 10) is None


async def test_head_etag_and_preflight(live):
    client, service, _ = live
    seg = service.rendition("x", "source").segmenter.segments[0]
    url = f"/live/x/source/{seg.uri}"
    r = await client.head(url)
    assert r.status == 200
    assert int(r.headers["Content-Length"]) == len(seg.data)
    assert await r.read() == b""
    r = await client.head("/live/x/index.m3u8")
    assert r.status == 200 and r.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    etag = (await client.get(url)).headers["ETag"]
    r = await client.get(url, headers={"If-None-Match": etag})
    assert r.status == 304
    r = await client.options(url, headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range",
    })
    assert r.status == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"].lower() == "range"


async def test_unknown_things_are_404(live):
    client, service, _ = live
    seg = service.rendition("x", "source").segmenter.segments[0]
    for path in (
        "/live/nope/index.m3u8",
        "/live/nope/source/index.m3u8",
        "/live/x/720p/index.m3u8",
        f"/live/x/720p/{seg.uri}",
        "/live/x/source/seg_zzz_0.m4s",
        "/live/x/source/seg_" + seg.uri.split("_")[1] + "_999999.m4s",
        "/live/x/source/init_zzz_0.mp4",
    ):
        r = await client.get(path)
        assert r.status == 404, path
        assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("file_name", [
    "seg_1.m4s",  # no broadcast tag
    "seg_{tag}_1.mp4",  # a segment is .m4s or .ts
    "init_{tag}_1.m4s",
    "Seg_{tag}_1.m4s",
    "seg_{TAG}_1.m4s",
    "part_{tag}_1.m4s",  # a part without its index
    "part_{tag}_1_2.ts",
    "index.m3u",
    "playlist.m3u8",
    "favicon.ico",
    "seg_{tag}_" + "1" * 11 + ".m4s",  # longer than any sequence number
])
async def test_a_file_name_outside_the_naming_scheme_is_404_not_400(live, file_name):
    """Under /live/NAME/RENDITION/ a name no muxer writes names no resource: 404 (RFC 9110
    §15.5.5), like a well-formed name that does not exist, never 400 (the request is fine)."""
    client, service, _ = live
    tag = service.rendition("x", "source").segmenter.segments[0].uri.split("_")[1]
    path = "/live/x/source/" + file_name.format(tag=tag, TAG=tag.upper())
    for method in ("GET", "HEAD"):
        r = await client.request(method, path)
        assert r.status == 404, (method, path)
        assert r.headers["Cache-Control"] == "no-store"


async def test_stream_and_rendition_names_outside_the_scheme_are_404(live):
    client, _, _ = live
    for path in ("/live/.x/index.m3u8", "/live/" + "a" * 65 + "/index.m3u8", "/live/x/Source/index.m3u8",
                 "/live/x/" + "b" * 33 + "/index.m3u8", "/live/x/Source/init_a_0.mp4", "/live/.x/source/seg_a_1.m4s"):
        r = await client.get(path)
        assert r.status == 404, path
        assert r.headers["Cache-Control"] == "no-store"


async def _raw_get(client: TestClient, target: str) -> tuple[int, bytes]:
    """Send the request line exactly as written (no client-side normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data


@pytest.mark.parametrize("target", [
    "/live/../../etc/passwd",
    "/live/x/../../../etc/passwd",
    "/live/%2e%2e/%2e%2e/etc/passwd",
    "/live/x/source/..%2F..%2F..%2Fetc%2Fpasswd",
    "/live/x/source/%2Fetc%2Fpasswd",
    "/live/x/%2e%2e/index.m3u8",
    "/live/..%2Fx/index.m3u8",
    "/live/x/source/..%5C..%5Cwin.ini",
    "/live/x/source/seg%00.m4s",
    "/live/x/source/%00",
    "/live//etc/passwd",
    "/live/x/source//etc/passwd",
    "/live/x/source/C:%5Cwindows%5Cwin.ini",
    "/live/" + "a" * 300 + "/index.m3u8",
    "/live/x/" + "b" * 300 + "/index.m3u8",
    "/live/x/source/seg_" + "1" * 300 + ".m4s",
    "/live/.x/index.m3u8",
    "/live/x/Source/index.m3u8",
    "/live/x/source/..",
    "/live/x/source/.",
    "/live/x/source/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
])
async def test_path_traversal_and_malformed_names_never_reach_outside(live, target):
    client, _, _ = live
    status, data = await _raw_get(client, target)
    assert status == 404, (target, status)
    assert b"root:" not in data and b"[fonts]" not in data


async def test_playlist_request_waits_for_the_first_segment(h264_aac):
    app, hub = make_app(hls_config())
    arrived = asyncio.Event()

    @web.middleware
    async def note_arrival(request, handler):
        arrived.set()
        return await handler(request)  # runs until the handler's first wait

    app.middlewares.append(note_arrival)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        publication = hub.publish("w", Publisher())
        request = asyncio.ensure_future(client.get("/live/w/index.m3u8"))
        # The handler is now parked on the rendition's condition: no segment exists yet,
        # so an answer now could only be a 404.
        await asyncio.wait_for(arrived.wait(), 10)
        assert not request.done()
        for unit in h264_aac.units:
            publication.push(unit)
        response = await asyncio.wait_for(request, 10)
        assert response.status == 200
        assert "#EXT-X-STREAM-INF" in await response.text()


# --- keep-alive and closing connections get the same answers ------------------------------------

_SAME = ("Content-Type", "Content-Length", "Cache-Control", "Access-Control-Allow-Origin",
         "Access-Control-Expose-Headers", "Accept-Ranges", "ETag")


async def test_keep_alive_and_closing_gets_answer_alike(h264_aac):
    """A keep-alive GET and a ``Connection: close`` GET carry the same bytes and the same
    headers, and ``on_response_prepare`` signals see every answer's headers."""
    app, hub = make_app(hls_config())
    seen = []

    async def note(request, response):
        seen.append((response, response.headers.get("Content-Type")))

    app.on_response_prepare.append(note)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        publication = hub.publish("x", Publisher())
        for unit in h264_aac.units:
            publication.push(unit)
        await until(service, "x", lambda s: len(s.segments) == 3)
        await _compare_paths(client, service.rendition("x", "source").segmenter.segments[0])
    # The on_response_prepare signal ran for both kinds and could read the headers.
    assert len(seen) == 8 and all(content_type for _, content_type in seen)


async def _compare_paths(client, seg) -> None:
    for path in ("/live/x/index.m3u8", "/live/x/source/index.m3u8", f"/live/x/source/{seg.uri}",
                 f"/live/x/source/{seg.init.uri}"):
        fast = await client.get(path)
        fast_body = await fast.read()
        slow = await client.get(path, headers={"Connection": "close"})
        slow_body = await slow.read()
        assert fast.status == slow.status == 200
        assert fast_body == slow_body and int(fast.headers["Content-Length"]) == len(fast_body)
        for name in _SAME:
            assert fast.headers.get(name) == slow.headers.get(name), (path, name)
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", fast.headers["Date"])


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    body = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), 10)
    return lines[0].encode(), headers, body


async def test_pipelined_requests_get_their_answers_in_order(live):
    client, service, _ = live
    segmenter = service.rendition("x", "source").segmenter
    playlist = service.media_playlist("x", "source").encode()
    paths = ["/live/x/source/index.m3u8", f"/live/x/source/{segmenter.segments[1].uri}",
             "/live/x/source/seg_zzz_1.m4s", "/live/x/source/index.m3u8", f"/live/x/source/{segmenter.segments[0].uri}"]
    expected = [playlist, segmenter.segments[1].data, None, playlist, segmenter.segments[0].data]
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
        await writer.drain()
        for want in expected:
            status, headers, body = await _read_response(reader)
            if want is None:
                assert status == b"HTTP/1.1 404 Not Found"
            else:
                assert status == b"HTTP/1.1 200 OK" and body == want
    finally:
        writer.close()


async def test_lowercase_range_and_validator_headers_are_honoured(live):
    """Header names are case-insensitive (proxies speaking HTTP/2 upstream send them
    lowercase): ``range`` and ``if-none-match`` are honoured whatever their case."""
    client, service, _ = live
    seg = service.rendition("x", "source").segmenter.segments[0]
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(
            f"GET /live/x/source/{seg.uri} HTTP/1.1\r\nhost: x\r\nrange: bytes=0-9\r\n\r\n"
            f"GET /live/x/source/{seg.uri} HTTP/1.1\r\nhost: x\r\nif-none-match: \"{seg.uri}\"\r\n"
            "content-length: 0\r\n\r\n".encode())
        await writer.drain()
        status, headers, body = await _read_response(reader)
        assert status == b"HTTP/1.1 206 Partial Content" and body == seg.data[:10]
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 304")
    finally:
        writer.close()


async def test_http_1_0_and_head_take_the_regular_path(live):
    client, service, _ = live
    seg = service.rendition("x", "source").segmenter.segments[0]
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(f"GET /live/x/source/{seg.uri} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)  # HTTP/1.0 without keep-alive: closed after
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and body == seg.data
    r = await client.head("/live/x/source/index.m3u8")
    assert r.status == 200 and await r.read() == b""
    assert int(r.headers["Content-Length"]) == len(service.media_playlist("x", "source").encode())


async def test_live_stream_without_a_segment_is_a_retryable_503_not_a_404(h264_aac):
    """A stream that is live but whose first segment is not made yet (a long keyframe
    interval) answers 503 with Retry-After, which players retry; a 404 means no such
    stream, and a request for one answers at once."""
    app, hub = make_app(hls_config(segment_duration=0.4))  # waits max(2, 5 × 0.4) = 2 s
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        publication = hub.publish("w", Publisher())
        await until(service, "w", lambda s: True)  # the stream's rendition exists
        for path in ("/live/w/index.m3u8", "/live/w/source/index.m3u8"):
            response = await client.get(path)
            assert response.status == 503, path
            assert response.headers["Retry-After"] == "1"
            assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
            assert response.headers["Cache-Control"] == "no-store"
        # Never published: a 404.
        response = await client.get("/live/nobody/index.m3u8")
        assert response.status == 404 and "Retry-After" not in response.headers
        assert not service.rendition("w", "source").ready
        # The first segment comes: the same request now gets the playlist.
        for unit in h264_aac.units:
            publication.push(unit)
        response = await client.get("/live/w/index.m3u8")
        assert response.status == 200 and "#EXT-X-STREAM-INF" in await response.text()
        # Ended without any segment is gone, not "try again".
        empty = hub.publish("e", Publisher())
        await until(service, "e", lambda s: True)
        empty.detach(clean=True)
        await until(service, "e", lambda s: s.ended)
        response = await client.get("/live/e/index.m3u8")
        assert response.status == 404
