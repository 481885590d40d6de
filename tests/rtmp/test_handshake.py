"""Server handshake: plain and digest C1, as librtmp/FFmpeg clients check it."""

from __future__ import annotations

import pytest

from mediasrv.rtmp.errors import LocalProtocolError, RemoteProtocolError
from mediasrv.rtmp.handshake import (
    GENUINE_FMS_KEY,
    GENUINE_FP_KEY,
    HandshakeState,
    ServerHandshake,
)

from .factories import (
    FMS_KEY,
    FP_KEY,
    c0,
    c1_digest,
    c1_plain,
    seeded_random,
    split_handshake,
    verify_digest_s1s2,
)


def test_keys_match_the_published_constants():
    assert GENUINE_FP_KEY == FP_KEY
    assert GENUINE_FMS_KEY == FMS_KEY
    assert FP_KEY[:30] == b"Genuine Adobe Flash Player 001"
    assert FMS_KEY[:36] == b"Genuine Adobe Flash Media Server 001"


def run(c1: bytes, tail: bytes = b"", split: int | None = None):
    hs = ServerHandshake(seeded_random(7))
    assert hs.receive_data(c0() + c1) is None
    out = hs.data_to_send()
    assert hs.state is HandshakeState.WAIT_C2
    _, s1, _, _ = split_handshake(out)
    c2 = s1 + tail
    if split:
        assert hs.receive_data(c2[:split]) is None
        rest = hs.receive_data(c2[split:])
    else:
        rest = hs.receive_data(c2)
    assert hs.state is HandshakeState.DONE
    return hs, out, rest


def test_plain_handshake():
    c1 = c1_plain(time=1234)
    hs, out, rest = run(c1, tail=b"\x03connect...", split=100)
    s0, s1, s2, extra = split_handshake(out)
    assert s0 == b"\x03"
    assert s1[:8] == b"\x00" * 8  # time 0 (no clocks in here), zero version bytes
    assert s2 == c1  # §5.2.4: S2 echoes C1
    assert extra == b""
    assert rest == b"\x03connect..."
    assert hs.digest is False


@pytest.mark.parametrize("scheme", [0, 1])
def test_digest_handshake_verifies_like_librtmp(scheme):
    c1 = c1_digest(scheme=scheme)
    hs, out, rest = run(c1)
    assert hs.digest is True
    _, s1, s2, _ = split_handshake(out)
    assert s1[4:8] != b"\x00\x00\x00\x00"
    assert verify_digest_s1s2(c1, s1, s2) == scheme  # S1 uses the client's scheme
    assert rest == b""


def test_broken_digest_falls_back_to_plain():
    c1 = bytearray(c1_digest(scheme=0))
    c1[500] ^= 0xFF  # breaks the HMAC for both schemes
    hs, out, _ = run(bytes(c1))
    assert hs.digest is False
    assert split_handshake(out)[2] == bytes(c1)


def test_output_is_deterministic_with_injected_randomness():
    assert run(c1_digest())[1] == run(c1_digest())[1]


def test_one_byte_at_a_time():
    hs = ServerHandshake(seeded_random(7))
    data = c0() + c1_digest(scheme=1)
    for i in range(len(data)):
        assert hs.receive_data(data[i:i + 1]) is None
        if i < len(data) - 1:
            assert hs.data_to_send() == b""
    out = hs.data_to_send()
    assert len(out) == 1 + 2 * 1536
    c2 = split_handshake(out)[1] + b"xy"
    for i in range(len(c2) - 3):
        assert hs.receive_data(c2[i:i + 1]) is None
    assert hs.receive_data(c2[-3:]) == b"xy"


@pytest.mark.parametrize("first", [b"\x06", b"\x08", b"\x00", b"G", b"\x16"])
def test_bad_version_is_refused_at_once(first):
    hs = ServerHandshake()
    with pytest.raises(RemoteProtocolError, match="unsupported RTMP version"):
        hs.receive_data(first)


def test_garbage_http_request():
    with pytest.raises(RemoteProtocolError):
        ServerHandshake().receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_bad_random_source_is_a_local_error():
    hs = ServerHandshake(lambda n: b"short")
    with pytest.raises(LocalProtocolError):
        hs.receive_data(c0() + c1_plain())


def test_receive_after_done_is_a_local_error():
    hs, _, _ = run(c1_plain())
    with pytest.raises(LocalProtocolError):
        hs.receive_data(b"x")
