"""A minimal raw RTMP client over asyncio streams, for feeding a live server bad input."""

from __future__ import annotations

import asyncio
import os
import struct


def chunk_fmt0(csid: int, msg_type: int, payload: bytes, *, timestamp: int = 0, stream_id: int = 0,
               length: int | None = None) -> bytes:
    """One fmt-0 chunk (csid 2..63) carrying ``payload`` whole (no splitting)."""
    assert 2 <= csid <= 63
    length = len(payload) if length is None else length
    return (
        bytes([csid])
        + min(timestamp, 0xFFFFFF).to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + bytes([msg_type])
        + struct.pack("<I", stream_id)
        + payload
    )


async def handshake(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and complete a plain handshake."""
    reader, writer = await asyncio.open_connection(host, port)
    c1 = bytes(8) + os.urandom(1528)
    writer.write(b"\x03" + c1)
    s0s1s2 = await asyncio.wait_for(reader.readexactly(1 + 1536 + 1536), 10)
    assert s0s1s2[0] == 3
    writer.write(s0s1s2[1:1537])  # C2 echoes S1
    await writer.drain()
    return reader, writer


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    """Read until the server closes the connection (raises on timeout)."""
    data = bytearray()
    async def _read():
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return
            if not chunk:
                return
            data.extend(chunk)
    await asyncio.wait_for(_read(), timeout)
    return bytes(data)
