"""Server side of the RTMP handshake, plain and Flash-style "digest" (complex).

Plain handshake, Adobe RTMP spec 2012 §5.2: C0 (version 3) + C1 (1536 bytes: time,
zero, 1528 random bytes) → S0 + S1 + S2 → C2.

The digest handshake is not in the public spec; Flash Player introduced it and librtmp
(OBS's RTMP client descends from it), FFmpeg and nginx-rtmp implement it. A digest C1
carries a non-zero client version in bytes 4..7 and, at an offset derived from four
bytes of the packet, an HMAC-SHA256 of the rest of the packet keyed by the first 30
bytes of the "Genuine Adobe Flash Player 001" key. Two layouts ("schemes") exist: the
offset bytes at 8..11 (digest within bytes 12..771) or at 772..775 (digest within
776..1535). Clients that sent a digest C1 may verify the server's answer:

* S1: non-zero server version, digest (same scheme) keyed by the first 36 bytes of the
  "Genuine Adobe Flash Media Server 001" key;
* S2: 1504 random bytes followed by HMAC-SHA256(S2[:1504]) keyed by
  HMAC-SHA256(C1 digest) keyed by the full 68-byte FMS key.

C2 is read but not validated (servers do not, and clients differ in what they put there).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from enum import Enum, IntEnum
from typing import Callable

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "RTMP_VERSION",
    "HANDSHAKE_SIZE",
    "DIGEST_SIZE",
    "GENUINE_FP_KEY",
    "GENUINE_FMS_KEY",
    "SERVER_VERSION",
    "DigestScheme",
    "HandshakeState",
    "digest_offset",
    "compute_digest",
    "find_digest",
    "make_digest_s1",
    "make_digest_s2",
    "ServerHandshake",
]

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536
DIGEST_SIZE = 32

# The 32 bytes shared by both keys after their text parts.
_KEY_TAIL = bytes.fromhex(
    "f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae"
)
#: "Genuine Adobe Flash Player 001" + tail (62 bytes); the client digest uses the first 30.
GENUINE_FP_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
#: "Genuine Adobe Flash Media Server 001" + tail (68 bytes); the S1 digest uses the first
#: 36, the S2 key derivation all 68.
GENUINE_FMS_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
_FP_KEY_TEXT = GENUINE_FP_KEY[:30]
_FMS_KEY_TEXT = GENUINE_FMS_KEY[:36]

#: Version bytes we put in a digest S1. Must be non-zero: librtmp falls back to the plain
#: handshake when S1 byte 4 is zero, and FFmpeg only verifies the server when it is >= 3.
SERVER_VERSION = bytes((3, 5, 1, 1))


class DigestScheme(IntEnum):
    """Where the digest offset is stored in a digest C1/S1."""

    OFFSET_AT_8 = 0  # offset bytes 8..11, digest in 12..771 (librtmp "scheme 0", FFmpeg)
    OFFSET_AT_772 = 1  # offset bytes 772..775, digest in 776..1535 (librtmp FP10 client)


def digest_offset(packet: bytes | bytearray, scheme: DigestScheme) -> int:
    """Offset of the 32-byte digest in a 1536-byte C1/S1 for ``scheme``.

    The sum of four bytes modulo 728, past those four bytes: always leaves room for the
    digest inside the scheme's half of the packet.
    """
    base = 8 if scheme == DigestScheme.OFFSET_AT_8 else 772
    return sum(packet[base:base + 4]) % 728 + base + 4


def compute_digest(packet: bytes | bytearray, offset: int, key: bytes) -> bytes:
    """HMAC-SHA256 of ``packet`` without its 32 digest bytes at ``offset``."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(packet[:offset])
    mac.update(packet[offset + DIGEST_SIZE:])
    return mac.digest()


def find_digest(c1: bytes | bytearray, key: bytes = _FP_KEY_TEXT) -> tuple[DigestScheme, int] | None:
    """Find a valid digest in ``c1`` (either scheme); ``(scheme, offset)`` or ``None``."""
    for scheme in (DigestScheme.OFFSET_AT_8, DigestScheme.OFFSET_AT_772):
        offset = digest_offset(c1, scheme)
        expected = compute_digest(c1, offset, key)
        if hmac.compare_digest(expected, bytes(c1[offset:offset + DIGEST_SIZE])):
            return scheme, offset
    return None


def make_digest_s1(random_bytes: Callable[[int], bytes], scheme: DigestScheme) -> bytes:
    """A complex S1: time 0, :data:`SERVER_VERSION`, random bytes, FMS digest."""
    s1 = bytearray(b"\x00\x00\x00\x00" + SERVER_VERSION + _random(random_bytes, HANDSHAKE_SIZE - 8))
    offset = digest_offset(s1, scheme)
    s1[offset:offset + DIGEST_SIZE] = compute_digest(s1, offset, _FMS_KEY_TEXT)
    return bytes(s1)


def make_digest_s2(c1_digest: bytes, random_bytes: Callable[[int], bytes]) -> bytes:
    """A complex S2: random bytes signed with a key derived from the client's digest."""
    key = hmac.new(GENUINE_FMS_KEY, c1_digest, hashlib.sha256).digest()
    body = _random(random_bytes, HANDSHAKE_SIZE - DIGEST_SIZE)
    return body + hmac.new(key, body, hashlib.sha256).digest()


def _random(random_bytes: Callable[[int], bytes], n: int) -> bytes:
    data = bytes(random_bytes(n))
    if len(data) != n:
        raise LocalProtocolError(f"random_bytes({n}) returned {len(data)} bytes")
    return data


class HandshakeState(Enum):
    """Server handshake states (RTMP spec §5.2.6 "Uninitialized/Version Sent/Ack Sent/
    Handshake Done", collapsed to what a server waits for)."""

    WAIT_C0C1 = "wait C0+C1"
    WAIT_C2 = "wait C2"
    DONE = "done"


class _Input(Enum):
    C0C1 = "C0+C1"
    C2 = "C2"


# The whole state machine. Anything not here is an error.
_TRANSITIONS: dict[tuple[HandshakeState, _Input], HandshakeState] = {
    (HandshakeState.WAIT_C0C1, _Input.C0C1): HandshakeState.WAIT_C2,
    (HandshakeState.WAIT_C2, _Input.C2): HandshakeState.DONE,
}


class ServerHandshake:
    """Sans-IO server handshake.

    Feed bytes with :meth:`receive_data`; it returns ``None`` until C2 is complete, then
    the bytes that followed C2 (the start of the chunk stream; often ``connect``).
    S0+S1+S2 are queued as soon as C0+C1 are in: :meth:`data_to_send`.
    """

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random_bytes = random_bytes
        self._buf = bytearray()
        self._out = bytearray()
        self._state = HandshakeState.WAIT_C0C1
        self._digest = False

    @property
    def state(self) -> HandshakeState:
        """The current :class:`HandshakeState`."""
        return self._state

    @property
    def digest(self) -> bool:
        """True when the client sent a digest ("complex") C1."""
        return self._digest

    def _advance(self, event: _Input) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, event)]
        except KeyError:
            raise LocalProtocolError(f"handshake: {event.value} in state {self._state.value}") from None

    def receive_data(self, data: bytes) -> bytes | None:
        """Consume handshake bytes. Returns ``None`` while the handshake is incomplete,
        else the bytes received after C2. Raises :class:`RemoteProtocolError` for an
        unsupported version in C0."""
        if self._state is HandshakeState.DONE:
            raise LocalProtocolError("handshake already complete")
        self._buf += data
        if self._state is HandshakeState.WAIT_C0C1:
            # Check C0 as soon as it arrives, so garbage (an HTTP request, TLS hello) is
            # refused at once instead of after 1537 bytes (§5.2.2: version 3; 6/8 are
            # RTMPE, which we do not offer).
            if self._buf and self._buf[0] != RTMP_VERSION:
                raise RemoteProtocolError(
                    f"unsupported RTMP version {self._buf[0]} in C0 (expected {RTMP_VERSION})")
            if len(self._buf) < 1 + HANDSHAKE_SIZE:
                return None
            c1 = bytes(self._buf[1:1 + HANDSHAKE_SIZE])
            del self._buf[:1 + HANDSHAKE_SIZE]
            self._answer(c1)
            self._advance(_Input.C0C1)
        if len(self._buf) < HANDSHAKE_SIZE:
            return None
        rest = bytes(self._buf[HANDSHAKE_SIZE:])
        self._buf = bytearray()
        self._advance(_Input.C2)
        return rest

    def _answer(self, c1: bytes) -> None:
        found = find_digest(c1)
        if found is None:
            # Plain handshake (§5.2.3-5.2.4): S1 = time 0, zero, random; S2 echoes C1.
            s1 = b"\x00" * 8 + _random(self._random_bytes, HANDSHAKE_SIZE - 8)
            s2 = c1
        else:
            scheme, offset = found
            self._digest = True
            s1 = make_digest_s1(self._random_bytes, scheme)
            s2 = make_digest_s2(c1[offset:offset + DIGEST_SIZE], self._random_bytes)
        self._out += bytes((RTMP_VERSION,)) + s1 + s2

    def data_to_send(self) -> bytes:
        """Drain the queued S0+S1+S2 (empty until C0+C1 were received)."""
        out = bytes(self._out)
        self._out.clear()
        return out
