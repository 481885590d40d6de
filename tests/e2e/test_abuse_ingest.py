"""Abuse paths around ingest (issue 18): a hijack of a live name in open mode from another
address, and one address holding every RTMP slot (or every WHIP session).

Another client is another loopback address: the attacker binds 127.0.0.2 as its source
address, the streamer publishes from 127.0.0.1 (Linux routes all of 127/8 to lo).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from tests.support.clients import ffmpeg_push, start_ffmpeg_push
from tests.support.rawpublisher import RawPublisher
from tests.support.rawrtmp import read_until_closed
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

ATTACKER = "127.0.0.2"


async def _until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds (a deadline, not a sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


async def test_open_mode_takeover_only_from_the_publishers_address(tmp_path):
    async with running_server(tmp_path, "auth.mode=open", "hls.reconnect_grace=2") as srv:
        recorder = StreamRecorder(srv.hub)
        streamer = await start_ffmpeg_push(srv.rtmp_url("same"), seconds=30)
        try:
            await recorder.wait_started("same", timeout=30)
            stream = srv.hub.get("same")
            publisher = stream.publisher

            # Another address publishing the live name is refused with BadName ...
            with pytest.raises(ConnectionError) as refused:
                await RawPublisher.open(srv.rtmp_port, "same", local_host=ATTACKER)
            assert b"NetStream.Publish.BadName" in str(refused.value).encode() or \
                "BadName" in str(refused.value), refused.value
            assert srv.rtmp.stats.takeovers_refused == 1
            assert srv.rtmp.stats.takeovers == 0
            # ... and the streamer keeps publishing: same publisher, media still arriving.
            assert srv.hub.get("same") is stream and stream.publisher is publisher
            before = len(recorder.units["same"])
            await _until(lambda: len(recorder.units["same"]) >= before + 25, what="more media from the streamer")
            assert streamer.returncode is None

            # WHIP from that address is refused too, with a reason (409).
            connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.post(f"{srv.http_url}/whip", data=b"v=0\r\n",
                                     headers={"Authorization": "Bearer same",
                                              "Content-Type": "application/sdp"}) as response:
                    assert response.status == 409, await response.text()
                    assert "another address" in (await response.json())["error"]
            assert srv.hub.get("same").publisher is publisher

            # The streamer's own address (an encoder reconnecting) still takes over.
            again = await RawPublisher.open(srv.rtmp_port, "same")
            try:
                assert srv.rtmp.stats.takeovers == 1
                assert srv.hub.get("same") is stream and stream.publisher is not publisher
                await asyncio.wait_for(streamer.wait(), 20)  # the stale connection was closed
            finally:
                await again.close()
        finally:
            await _stop(streamer)


def _refusal_lines(caplog, address: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.getMessage()
               and address in r.getMessage())


async def test_one_address_cannot_hold_every_rtmp_slot(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "mediasrv")
    async with running_server(tmp_path, "rtmp.max_connections=4", "rtmp.max_connections_per_address=3",
                              "rtmp.max_handshakes_per_address=2", "rtmp.handshake_timeout=30") as srv:
        recorder = StreamRecorder(srv.hub)
        stats = srv.rtmp.stats
        idle = []
        try:
            # Idle sockets (no handshake) up to the cap of handshakes in progress ...
            for _ in range(2):
                idle.append(await asyncio.open_connection("127.0.0.1", srv.rtmp_port, local_addr=(ATTACKER, 0)))
            await _until(lambda: stats.connections_open == 2, what="2 idle connections open")
            # ... one more from that address is closed at once.
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.rtmp_port, local_addr=(ATTACKER, 0))
            assert await read_until_closed(reader, timeout=5) == b""
            writer.close()
            assert stats.refused_handshakes_per_address == 1
            # A connection past its handshake (publishing) leaves the handshake count: with
            # one idle socket left, two publishers from that address are taken (3
            # connections, its cap); a third is refused though it would be a publisher.
            idle.pop()[1].close()
            await _until(lambda: stats.connections_open == 1, what="an idle connection closed")
            squatters = [await RawPublisher.open(srv.rtmp_port, f"squat{i}", local_host=ATTACKER) for i in range(2)]
            try:
                with pytest.raises((ConnectionError, OSError, asyncio.IncompleteReadError)):
                    await RawPublisher.open(srv.rtmp_port, "squat2", local_host=ATTACKER)
                assert stats.refused_per_address == 1
                assert stats.connections_open == 3
                assert stats.refused_over_limit == 0
                # Two refusals of that address within the minute: one warning, one counted
                # for the next (ingest/refusal_log.py).
                assert _refusal_lines(caplog, ATTACKER) == 1
                assert srv.rtmp.refusals.suppressed(ATTACKER) == 1

                # The last slot is still there for a publisher from another address.
                status, output = await ffmpeg_push(srv.rtmp_url("real"), seconds=1)
                assert status == 0, output
                units = await recorder.wait_ended("real", timeout=30)
                assert any(u.kind.value == "video" for u in units)
            finally:
                for squatter in squatters:
                    await squatter.close()
        finally:
            for _, w in idle:
                w.close()


async def test_one_address_cannot_take_every_whip_session(tmp_path):
    """``webrtc.max_sessions_per_address``: WHIP offers (answered, never connecting) from one
    address up to the cap; the next is 429 with the reason, while another address is
    still answered."""
    from tests.whip.offers import offer
    from tests.whip.support import post_offer, whip_of, whip_server

    async with whip_server(tmp_path, "webrtc.max_sessions=8", "webrtc.max_sessions_per_address=2") as srv, \
            aiohttp.ClientSession() as http:
        for _ in range(2):
            status, _, text = await post_offer(http, srv, offer())
            assert status == 201, text
        status, headers, text = await post_offer(http, srv, offer())
        assert status == 429, text
        assert int(headers["Retry-After"]) > 0
        assert "from your address" in text
        assert whip_of(srv).stats.refused.get("address") == 1
        # Warned once a minute per address: a second refusal is only counted.
        status, _, _ = await post_offer(http, srv, offer())
        assert status == 429
        assert whip_of(srv).refusals.suppressed("127.0.0.1") == 1
        connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            status, _, text = await post_offer(other, srv, offer())
            assert status == 201, text
        assert len(whip_of(srv).sessions) == 3
