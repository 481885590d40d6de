"""Fault: viewers that stop taking their answer are closed after ``http.send_timeout``.

The sweep's rule is checked on its own with a clock passed in (no waiting), then end to
end: real sockets with a tiny receive buffer ask for a segment and never read; the server
closes exactly those connections after the timeout and counts them, while a normal viewer
goes on being served.
"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from mediasrv.httpkit.send_timeout import SendTimeout
from mediasrv.httpkit.keys import HTTP_STATS
from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.httpkit.stats import HttpStats
from tests.faults.test_slow_viewer import server_buffers, wait_for
from tests.hls.conftest import until
from tests.support.clients import start_ffmpeg_push
from tests.support.server import StreamRecorder, running_server


class FakeTransport:
    """What the sweep reads of a transport: its write buffer, whether it is closing."""

    def __init__(self, buffered: int) -> None:
        self.buffered = buffered
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.aborted

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 40000) if name == "peername" else None

    def abort(self) -> None:
        self.aborted = True


def test_only_a_buffer_that_stays_the_same_for_the_timeout_is_closed():
    now = [100.0]
    stuck, reading, idle = FakeTransport(500_000), FakeTransport(500_000), FakeTransport(0)
    stats = HttpStats()
    sweeper = SendTimeout(lambda: [stuck, reading, idle, None], 10.0, stats=stats, clock=lambda: now[0])
    for _ in range(9):  # 9 s: nothing yet, though the reader took a few bytes only
        assert sweeper.sweep() == 0
        now[0] += 1.0
        reading.buffered -= 100
    assert not stuck.aborted
    now[0] += 1.0  # 10 s of the same 500,000 bytes waiting
    assert sweeper.sweep() == 1
    assert stuck.aborted and not reading.aborted and not idle.aborted
    assert sweeper.closed == 1 and stats.send_timeouts == 1
    # The slow reader stops too: its own 10 s start when its buffer stopped moving.
    stopped_at = now[0]
    while not reading.aborted:
        now[0] += 1.0
        sweeper.sweep()
    assert now[0] - stopped_at == pytest.approx(10.0, abs=1.0)
    assert sweeper.closed == 2 and stats.send_timeouts == 2


def test_a_connection_that_drains_and_fills_again_starts_a_new_count():
    now = [0.0]
    transport = FakeTransport(1000)
    sweeper = SendTimeout(lambda: [transport], 5.0, clock=lambda: now[0])
    sweeper.sweep()
    now[0] = 4.0
    transport.buffered = 0  # everything taken; a new answer of the same size later
    sweeper.sweep()
    now[0] = 4.5
    transport.buffered = 1000
    sweeper.sweep()
    now[0] = 9.0  # 9 s after the first sighting, 4.5 s after the second
    assert sweeper.sweep() == 0 and not transport.aborted
    now[0] = 9.6
    assert sweeper.sweep() == 1 and transport.aborted


@pytest.mark.e2e
async def test_viewers_that_never_read_are_closed_after_the_send_timeout(tmp_path):
    timeout = 2.0
    async with running_server(tmp_path, f"http.send_timeout={timeout:g}", "hls.segment_duration=2") as srv, \
            aiohttp.ClientSession() as session:
        recorder = StreamRecorder(srv.hub)
        service = srv.app[HLS_SERVICE]
        publisher = await start_ffmpeg_push(srv.rtmp_url("stall"), seconds=30, size="640x360", video_bitrate="3M")
        socks: list[socket.socket] = []
        try:
            await recorder.wait_started("stall")
            await until(service, "stall", lambda s: len(s.segments) >= 2, timeout=20)
            media = f"{srv.http_url}/live/stall/source/index.m3u8"
            async with session.get(media) as response:
                uris = [line for line in (await response.text()).splitlines() if line.startswith("seg_")]
            sizes = {}
            for uri in uris:
                async with session.get(f"{srv.http_url}/live/stall/source/{uri}") as response:
                    sizes[uri] = len(await response.read())
            uri = max(sizes, key=sizes.get)
            path = f"/live/stall/source/{uri}"
            loop = asyncio.get_running_loop()
            ports = set()
            for _ in range(3):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: a small window
                sock.setblocking(False)
                socks.append(sock)
                await loop.sock_connect(sock, ("127.0.0.1", srv.http_port))
                ports.add(sock.getsockname()[1])
                request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: stalled\r\n\r\n".encode()
                # Ten answers: more than the kernel's buffers take, so the rest waits in
                # the server's user space (what the sweep watches).
                await loop.sock_sendall(sock, request * 10)
            # Each is stuck in its first answer...
            await wait_for(lambda: len(server_buffers(srv, ports)) == 3
                           and all(b > 0 for b in server_buffers(srv, ports).values()), 10)
            stuck_at = time.monotonic()
            # ...while a normal viewer is served as usual, until the server lets them go.
            served = 0
            while server_buffers(srv, ports):
                assert time.monotonic() - stuck_at < timeout + 10, server_buffers(srv, ports)
                async with session.get(f"{srv.http_url}{path}") as response:
                    assert response.status == 200
                    await response.read()
                served += 1
                await asyncio.sleep(0.1)  # a player's pace between requests
            assert time.monotonic() - stuck_at >= timeout - 0.5
            assert served >= 5
            assert srv.app[HTTP_STATS].send_timeouts == 3
            metrics = await (await session.get(f"{srv.http_url}/metrics")).text()
            assert "mediasrv_http_send_timeouts_total 3.0" in metrics
            # The clients see their connections closed.
            for sock in socks:
                with pytest.raises((ConnectionResetError, AssertionError)):
                    while True:
                        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
                        assert data, "closed"
        finally:
            for sock in socks:
                sock.close()
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()
