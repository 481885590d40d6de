"""Fault: viewers that read one byte a second.

Each slow viewer has a tiny receive buffer (SO_RCVBUF), asks for the biggest segment ten
times in a row (HTTP/1.1 pipelining) and then reads one byte a second. The server must
hold at most about one response per slow connection in user space (it writes a response
and awaits the transport's drain before it takes the next request: flow control, the
transport's high-water mark), and the other viewers must keep being served fast. When the
slow viewers hang up, their connections are gone.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import aiohttp
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from tests.hls.conftest import until
from tests.support.clients import start_ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

SLOW_VIEWERS = 8
PIPELINED = 10
SLOW_SECONDS = 6


async def wait_for(predicate, timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


def server_buffers(srv, ports: set[int]) -> dict[int, int]:
    """Bytes buffered in user space (the transport's write buffer) per connection whose
    peer port is in ``ports``."""
    out = {}
    for transport in srv.runner.server._connections.values():
        peer = transport.get_extra_info("peername")
        if peer and peer[1] in ports and not transport.is_closing():
            out[peer[1]] = transport.get_write_buffer_size()
    return out


async def slow_viewer(port: int, path: str, ready: asyncio.Event, stop: asyncio.Event, got: list[int]) -> int:
    """Connect with a tiny receive buffer, pipeline the requests, read a byte a second.
    Returns the local port (the server's peer port) once connected."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: a small window
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        got.append(sock.getsockname()[1])
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-viewer\r\n\r\n".encode()
        await loop.sock_sendall(sock, request * PIPELINED)
        ready.set()
        received = 0
        while not stop.is_set():
            received += len(await loop.sock_recv(sock, 1))
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        return received
    finally:
        sock.close()


async def test_slow_viewers_hold_one_response_each_and_others_are_served_fast(tmp_path):
    async with running_server(tmp_path, "hls.segment_duration=2") as srv, aiohttp.ClientSession() as session:
        recorder = StreamRecorder(srv.hub)
        service = srv.app[HLS_SERVICE]
        publisher = await start_ffmpeg_push(srv.rtmp_url("busy"), seconds=25, size="640x360", video_bitrate="2M")
        stop = asyncio.Event()
        slow_tasks: list[asyncio.Task] = []
        try:
            await recorder.wait_started("busy")
            await until(service, "busy", lambda s: len(s.segments) >= 2, timeout=20)
            media = f"{srv.http_url}/live/busy/source/index.m3u8"
            async with session.get(media) as response:
                text = await response.text()
            segments = [line for line in text.splitlines() if line.startswith("seg_")]
            sizes = {}
            for uri in segments:
                async with session.get(f"{srv.http_url}/live/busy/source/{uri}") as response:
                    sizes[uri] = len(await response.read())
            biggest = max(sizes, key=sizes.get)
            size = sizes[biggest]
            assert size > 200_000, sizes  # far more than the socket buffers can take

            ready = [asyncio.Event() for _ in range(SLOW_VIEWERS)]
            ports: list[int] = []
            slow_tasks = [asyncio.ensure_future(slow_viewer(srv.http_port, f"/live/busy/source/{biggest}", r, stop, ports))
                          for r in ready]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
            # Every slow connection is stuck in its first response.
            await wait_for(lambda: len(server_buffers(srv, set(ports))) == SLOW_VIEWERS
                           and all(b > 0 for b in server_buffers(srv, set(ports)).values()), 10)

            # Meanwhile a normal viewer: playlist, then the newest segment, again and again.
            latencies = []
            worst_buffered = 0
            deadline = time.monotonic() + SLOW_SECONDS
            while time.monotonic() < deadline:
                started = time.monotonic()
                async with session.get(media) as response:
                    assert response.status == 200
                    newest = [l for l in (await response.text()).splitlines() if l.startswith("seg_")][-1]
                async with session.get(f"{srv.http_url}/live/busy/source/{newest}") as response:
                    assert response.status == 200
                    await response.read()
                latencies.append(time.monotonic() - started)
                buffered = server_buffers(srv, set(ports))
                assert len(buffered) == SLOW_VIEWERS
                worst_buffered = max(worst_buffered, *buffered.values())
                await asyncio.sleep(0.1)

            # At most one response plus the transport's high-water mark (64 KiB: the tail
            # of the previous response when drain() let the next one go) in user space per
            # slow connection, not the ten responses it asked for.
            assert 0 < worst_buffered <= size + 64 * 1024 + 4096, (worst_buffered, size)
            assert len(latencies) >= 10
            assert statistics.median(latencies) < 0.25 and max(latencies) < 2.0, latencies
            print(f"\n{SLOW_VIEWERS} slow viewers, each with at most {worst_buffered} bytes buffered "
                  f"(segment {size} bytes, {PIPELINED} requested); a normal viewer's playlist+segment: "
                  f"median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
        finally:
            stop.set()
            received = await asyncio.gather(*slow_tasks, return_exceptions=True)
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()
        assert all(isinstance(r, int) for r in received), received
        # The slow viewers hung up: the server let go of their connections.
        await wait_for(lambda: not server_buffers(srv, set(ports)), 10)
