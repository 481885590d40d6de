"""Properties of the HTTP fast lane's request-head parser (``mediasrv.http.fastlane.parse_head``).

The lane may only answer a head that aiohttp would read as the same plain request: every
head it accepts is checked against aiohttp's own parser (the one its protocol uses) — same
method, target, version, persistence, no body, same User-Agent / X-Forwarded-For values,
same session parameter as aiohttp's query decoding gives the handler — and the lane's
consumed length must be where aiohttp's next request starts. Heads come from a grammar
with the mistakes that matter (odd methods, versions, targets, field names, bare LF,
obs-fold, control bytes, duplicate or framing fields) and from plain random bytes. Every
prefix of an accepted head must read as incomplete (a head may arrive in any split), and
nothing is accepted beyond the size limit.

Set ``MEDIASRV_FUZZ_EXAMPLES`` to run more examples locally.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from unittest import mock

import pytest
from aiohttp.http_parser import HttpRequestParser
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from mediasrv.cluster.routes import EDGE_HEADER
from mediasrv.http.fastlane import FOREIGN, INCOMPLETE, MAX_HEAD, PlaylistRequest, parse_head

EXAMPLES = int(os.environ.get("MEDIASRV_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=max(50, EXAMPLES * 2), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

TARGETS = [
    "/live/x/source/index.m3u8", "/live/bench/720p/index.m3u8", "/live/a.b-c_d/index.m3u8",
    "/live/x/source/index.m3u8?s=Ab-_9", "/live/x/source/index.m3u8?s=" + "t" * 64,
    "/live/x/source/index.m3u8?s=" + "t" * 65, "/live/x/source/index.m3u8?s=", "/live/x/source/index.m3u8?",
    "/live/x/source/index.m3u8?_HLS_msn=3", "/live/x/source/index.m3u8?s=a&_HLS_msn=3",
    "/live/x/source/seg_abc_1.m4s", "/live/x/source/part_abc_1_0.m4s", "/api/streams", "/",
    "/live/x/../y/index.m3u8", "/live/%78/index.m3u8", "/live/x/source/index.m3u8#f", "//live/x/index.m3u8",
    "http://h/live/x/index.m3u8", "*", "/live/x/Source/index.m3u8", "/live/.x/index.m3u8",
    "/live/x/a/b/index.m3u8", "/live/x\x00/index.m3u8", "/live/x/index.m3u8 extra",
]
METHODS = ["GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "get", "GET\t", "PRI", "G"]
VERSIONS = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.10", "HTTP/1.1 "]
NAMES = ["Host", "host", "HOST", "User-Agent", "user-agent", "X-Forwarded-For", "Connection", "Content-Length",
         "Transfer-Encoding", "Upgrade", "Expect", "Origin", "If-None-Match", "Range", "Accept", EDGE_HEADER,
         "Keep-Alive", "X-Empty", "Bad Name", "Bad:Name", "", "Ünicode", "Host ", " Host"]
VALUES = st.one_of(
    st.sampled_from(["", "a", "keep-alive", "Keep-Alive", "close", "keep-alive, Upgrade", "keep-alive,close",
                     "0", "5", "chunked", "100-continue", "websocket", "  spaced  ", "\tt\t", "1.2.3.4, 5.6.7.8",
                     "Mozilla/5.0 (X11; Linux x86_64)", "a\x00b", "a\x80b", "a\rb", "a\nb", "é"]),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x7f), max_size=24),
)


@st.composite
def request_heads(draw) -> bytes:
    """A request head (often a playlist GET) with field lines drawn from NAMES × VALUES;
    sometimes a bare LF, an obs-fold line, another request after it, or a cut."""
    eol = draw(st.sampled_from(["\r\n"] * 8 + ["\n", "\r"]))
    lines = [f"{draw(st.sampled_from(METHODS))} {draw(st.sampled_from(TARGETS))} {draw(st.sampled_from(VERSIONS))}"]
    if draw(st.integers(0, 4)):
        lines.append("Host: example.com")
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(NAMES))
        lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{draw(VALUES)}")
    if draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(1, len(lines))), " folded")
    text = "\r\n".join(lines[:1]) + "".join(draw(st.sampled_from(["\r\n", eol])) + line for line in lines[1:])
    data = (text + "\r\n\r\n").encode("utf-8")
    if draw(st.booleans()):
        data += b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\n\r\n"
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


_LOOP = asyncio.new_event_loop()


def aiohttp_reads(data: bytes):
    """What aiohttp's server parser makes of ``data``: (messages, tail) or None when it
    refuses the bytes (it then answers 400)."""
    parser = HttpRequestParser(mock.Mock(), _LOOP, 2**16, max_line_size=8190, max_field_size=8190, max_headers=128)
    try:
        messages, _upgraded, tail = parser.feed_data(data)
    except HttpProcessingError:
        return None
    return messages, tail


def check(data: bytes) -> None:
    result = parse_head(data)
    assert result in (INCOMPLETE, FOREIGN) or isinstance(result, PlaylistRequest)
    if result == INCOMPLETE:
        assert len(data) < MAX_HEAD and b"\r\n\r\n" not in data
        return
    if result == FOREIGN:
        return
    assert result.end <= MAX_HEAD and data[result.end - 4:result.end] == b"\r\n\r\n"
    # aiohttp reads exactly the same request out of exactly these bytes.
    read = aiohttp_reads(data[:result.end])
    assert read is not None, "the lane accepted a head aiohttp refuses"
    messages, tail = read
    assert len(messages) == 1 and tail == b""
    message, payload = messages[0]
    assert message.method == "GET" and message.version == (1, 1)
    assert not message.should_close and not message.upgrade and not message.chunked
    assert payload.at_eof() and not payload.total_bytes
    url = URL(message.path)
    segments = url.path.split("/")
    assert segments[:2] == ["", "live"] and segments[-1] == "index.m3u8"
    assert segments[2] == result.name
    assert (segments[3] if len(segments) == 5 else None) == result.rendition
    assert url.query.get("s") == result.token
    assert set(url.query) <= {"s"} and (result.token is not None) == bool(url.query_string)
    assert message.headers.get("User-Agent", "") == result.user_agent
    assert message.headers.get("X-Forwarded-For") == result.forwarded_for
    assert EDGE_HEADER not in message.headers
    # Any split: every proper prefix of an accepted head waits for more.
    for cut in range(result.end):
        assert parse_head(data[:cut]) == INCOMPLETE, cut
    # The next request starts where aiohttp's would (``start`` is honoured).
    assert parse_head(b"xx" + data, 2) == dataclasses.replace(result, end=result.end + 2)


@SETTINGS
@given(request_heads())
@example(b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nUser-Agent:  a b \t\r\n\r\n")
@example(b"GET /live/x/index.m3u8 HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n")
def test_accepted_heads_are_what_aiohttp_reads(data):
    check(data)


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes(data):
    check(data)
    check(b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\n" + data)


@given(st.integers(0, 2 * MAX_HEAD), st.booleans())
@settings(max_examples=60, deadline=None, database=None)
def test_size_limit(size, terminated):
    """A head of MAX_HEAD bytes or more is never the lane's, complete or not."""
    head = b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * size
    data = head + (b"\r\n\r\n" if terminated else b"")
    result = parse_head(data)
    if len(head) + 4 > MAX_HEAD:
        assert result == FOREIGN
    elif terminated:
        assert isinstance(result, PlaylistRequest) and result.end == len(data)
    else:
        assert result == INCOMPLETE


@pytest.mark.parametrize("data", [
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nX: a\x80\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.1\nHost: h\r\n\r\n",
    b"GET /live/x/source/index.m3u8 HTTP/1.0\r\nHost: h\r\n\r\n",
    b"HEAD /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /live/x/source/index.m3u8?_HLS_msn=4 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\nGET /live/x/source/index.m3u8 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /live/x",
])
def test_left_to_aiohttp(data):
    assert parse_head(data) == FOREIGN
