"""A light RTMP publisher over asyncio streams: plain handshake, the commands FFmpeg
sends, then FLV tags (e.g. from ``tests.media.samples.video``) as RTMP messages.

For tests that need many publishers (load) or that must stop a publisher at an exact
byte (faults): no encoder process, no thread, a few KB per publisher.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct

from tests.media.samples import FlvTag, video
from tests.rtmp.factories import Client

CHUNK_SIZE = 4096


@functools.lru_cache(maxsize=None)
def tiny_clip(frames: int = 30) -> tuple[FlvTag, ...]:
    """H.264 (64x64, 30 fps, keyframe first) + AAC tags, encoded once per process."""
    return video("h264", 64, 64, frames=frames, audio_frames=frames * 3 // 2).tags


class RawPublisher:
    """One publishing RTMP connection. ``await RawPublisher.open(port, name)``, then
    ``send_tags``/``send_raw``, then ``close()`` (clean: FCUnpublish + deleteStream) or
    ``reset()`` (an RST, as when the encoder's machine drops off the network)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: Client) -> None:
        self.reader, self.writer, self.client = reader, writer, client
        self.name = ""
        self._drain_task: asyncio.Task | None = None

    @classmethod
    async def open(cls, port: int, name: str, *, app: str = "live", timeout: float = 10.0,
                   local_host: str | None = None) -> "RawPublisher":
        """``local_host``: the source address to connect from (another loopback address,
        127.0.0.2 ..., is another client to the server)."""
        local_addr = (local_host, 0) if local_host else None
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=local_addr),
                                                timeout)
        client = Client(chunk_size=128)
        self = cls(reader, writer, client)
        self.name = name
        try:
            writer.write(client.c0c1())
            s0s1s2 = await asyncio.wait_for(reader.readexactly(1 + 1536 + 1536), timeout)
            writer.write(client.c2(s0s1s2) + client.set_chunk_size(CHUNK_SIZE) + client.connect(app=app))
            received = bytearray()
            await self._until(received, b"NetConnection.Connect.Success", timeout)
            writer.write(client.release_stream(name) + client.fc_publish(name) + client.create_stream())
            await self._until(received, b"\x02\x00\x07_result\x00\x40\x10", timeout)  # _result of transaction 4
            writer.write(client.publish(1, name))
            await self._until(received, b"NetStream.Publish.Start", timeout)
        except BaseException:
            writer.transport.abort()
            raise
        # Keep reading what the server sends (acknowledgements, pings) so it never waits on us.
        self._drain_task = asyncio.get_running_loop().create_task(self._drain())
        return self

    async def _until(self, received: bytearray, marker: bytes, timeout: float) -> None:
        async def read() -> None:
            while marker not in received:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"the server closed the connection before {marker!r}: {bytes(received)[-200:]!r}")
                received.extend(chunk)
            del received[: received.index(marker) + len(marker)]

        await asyncio.wait_for(read(), timeout)

    async def _drain(self) -> None:
        try:
            while await self.reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass

    def tag_bytes(self, tags, offset_ms: int = 0) -> bytes:
        """The RTMP messages of ``tags`` (audio on csid 4, video on csid 6) shifted by ``offset_ms``."""
        out = []
        for tag in tags:
            if tag.type == 9:
                out.append(self.client.video(1, tag.timestamp + offset_ms, tag.body))
            elif tag.type == 8:
                out.append(self.client.audio(1, tag.timestamp + offset_ms, tag.body))
        return b"".join(out)

    async def send_tags(self, tags, offset_ms: int = 0) -> None:
        self.writer.write(self.tag_bytes(tags, offset_ms))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        """Unpublish as FFmpeg does, then close the socket."""
        try:
            self.writer.write(self.client.fc_unpublish(self.name) + self.client.delete_stream(1))
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        self.writer.close()
        await self._stop_drain()

    async def reset(self) -> None:
        """Close with an RST (SO_LINGER 0): no FIN, no unpublish — the peer just vanished."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        await self._stop_drain()

    async def _stop_drain(self) -> None:
        if self._drain_task is not None:
            self._drain_task.cancel()
            try:
                await self._drain_task
            except asyncio.CancelledError:
                pass
            self._drain_task = None


async def churn_publisher(port: int, name: str, *, clean: bool, timeout: float = 30.0) -> None:
    """One publisher of a churn: connect, publish ``tiny_clip(30)`` (about a second), then
    leave cleanly (FCUnpublish, deleteStream) or vanish with an RST."""
    publisher = await RawPublisher.open(port, name, timeout=timeout)
    await publisher.send_tags(tiny_clip(30))
    if clean:
        await publisher.close()
    else:
        await publisher.reset()
