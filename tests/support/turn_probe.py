"""A TURN server that only listens: it proves a WebRTC client gathered through it with the
credentials it was given, without relaying anything.

A TURN client's first Allocate request carries no credentials; the server answers
``401`` with a realm and a nonce (RFC 8656 §7.2, RFC 8489 §9.2), and the client sends the
Allocate again with its ``USERNAME`` and a ``MESSAGE-INTEGRITY`` made with its password.
This probe records every request's method and username, answers the first with that
``401`` and the authenticated one with ``403 Forbidden``, so the client gives the server up
at once (its ICE gathering completes without a relay candidate, nothing waits on a
timeout). The integrity is checked against the expected password: a client that sent the
username with another password is recorded as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import AsyncIterator

MAGIC = 0x2112A442
ALLOCATE_REQUEST, ALLOCATE_ERROR = 0x0003, 0x0113
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, REALM, NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
PROBE_REALM, PROBE_NONCE = b"mediasrv-test", b"0123456789abcdef"


@dataclass(frozen=True)
class TurnRequest:
    method: int
    username: str | None
    #: The MESSAGE-INTEGRITY matched the expected password (None: the request had none).
    integrity_ok: bool | None


def _attributes(body: bytes) -> list[tuple[int, int, bytes]]:
    """(offset in the message, type, value) of each attribute."""
    out, at = [], 0
    while at + 4 <= len(body):
        kind, length = struct.unpack_from("!HH", body, at)
        out.append((20 + at, kind, body[at + 4: at + 4 + length]))
        at += 4 + (length + 3) // 4 * 4
    return out


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _error(transaction: bytes, code: int, reason: bytes, *, challenge: bool) -> bytes:
    body = _attribute(ERROR_CODE, struct.pack("!HBB", 0, code // 100, code % 100) + reason)
    if challenge:
        body += _attribute(REALM, PROBE_REALM) + _attribute(NONCE, PROBE_NONCE)
    return struct.pack("!HHI", ALLOCATE_ERROR, len(body), MAGIC) + transaction + body


class TurnProbe(asyncio.DatagramProtocol):
    """The listening TURN server (``url``: its ``turn:`` URL once started)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        # RFC 8489 §9.2.2: the long-term key is MD5(username ":" realm ":" password).
        self.key = hashlib.md5(f"{username}:{PROBE_REALM.decode()}:{password}".encode()).digest()
        self.requests: list[TurnRequest] = []
        self.authenticated = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None
        self.url = ""

    def connection_made(self, transport) -> None:
        self.transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.url = f"turn:{host}:{port}?transport=udp"

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) < 20:
            return
        kind, length, magic = struct.unpack_from("!HHI", data)
        if magic != MAGIC or kind & 0xC000:
            return
        transaction = data[8:20]
        username, integrity = None, None
        for offset, attr, value in _attributes(data[20:20 + length]):
            if attr == USERNAME:
                username = value.decode(errors="replace")
            elif attr == MESSAGE_INTEGRITY:
                # The HMAC covers the message up to this attribute, its length field set
                # as if the message ended right after it (RFC 8489 §14.5).
                signed = bytearray(data[:offset])
                struct.pack_into("!H", signed, 2, offset - 20 + 24)
                integrity = hmac.compare_digest(hmac.new(self.key, bytes(signed), hashlib.sha1).digest(), value)
        self.requests.append(TurnRequest(kind, username, integrity))
        if kind != ALLOCATE_REQUEST:
            return
        if username is None:
            self.transport.sendto(_error(transaction, 401, b"Unauthorized", challenge=True), addr)
        else:
            if username == self.username and integrity:
                self.authenticated.set()
            self.transport.sendto(_error(transaction, 403, b"Forbidden", challenge=False), addr)


@contextlib.asynccontextmanager
async def turn_probe(username: str, password: str) -> AsyncIterator[TurnProbe]:
    """A ``TurnProbe`` on 127.0.0.1 (an ephemeral UDP port) for the block."""
    loop = asyncio.get_running_loop()
    transport, probe = await loop.create_datagram_endpoint(lambda: TurnProbe(username, password),
                                                           local_addr=("127.0.0.1", 0))
    try:
        yield probe
    finally:
        transport.close()
