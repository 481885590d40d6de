"""Refusals and bad input: each closes its own connection and nothing else."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from tests.support.clients import ffmpeg_push, ffmpeg_push_args, run_process
from tests.support.rawrtmp import chunk_fmt0, handshake, read_until_closed
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e


async def test_wrong_key_is_refused_and_never_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    secret, wrong = "s3cr3t-key-abc", "wr0ng-key-xyz"
    async with running_server(tmp_path, "auth.mode=keys", f"auth.keys.{secret}=alice") as srv:
        recorder = StreamRecorder(srv.hub)
        status, output = await ffmpeg_push(srv.rtmp_url(wrong), seconds=1)
        assert status != 0
        assert srv.rtmp.stats.publish_refused == 1
        assert srv.hub.streams() == []
        # The right key publishes under its public name.
        status, output = await ffmpeg_push(srv.rtmp_url(secret), seconds=1)
        assert status == 0, output
        units = await recorder.wait_ended("alice")
        assert len(units) > 0
    text = caplog.text
    assert "refused" in text
    assert secret not in text and wrong not in text


async def test_second_publisher_takes_over_and_stale_one_is_closed(server, recorder):
    first = asyncio.create_task(
        run_process(*ffmpeg_push_args(server.rtmp_url("same"), seconds=20, realtime=True), timeout=40)
    )
    await recorder.wait_started("same")
    status, output = await ffmpeg_push(server.rtmp_url("same"), seconds=1)
    assert status == 0, output
    first_status, _ = await asyncio.wait_for(first, 30)
    assert first_status != 0, "the stale publisher should have been closed"
    assert server.rtmp.stats.takeovers == 1
    await recorder.wait_ended("same")
    # One broadcast: the takeover continued it (one start), with a discontinuity marked.
    units = recorder.units["same"]
    assert sum(1 for u in units if u.discontinuity) == 1
    dts = [u.dts for u in units if u.kind.value == "video"]
    assert dts == sorted(dts)


async def _other_stream_survives(server, recorder, bad):
    """Run ``bad`` while a good publisher streams; the good stream must not notice."""
    good = asyncio.create_task(ffmpeg_push(server.rtmp_url("good"), seconds=3, realtime=True))
    await recorder.wait_started("good")
    await bad()
    status, output = await good
    assert status == 0, output
    units = await recorder.wait_ended("good")
    assert len([u for u in units if u.kind.value == "video"]) == 75


async def test_garbage_bytes_close_only_that_connection(server, recorder):
    async def bad():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.rtmp_port)
        writer.write(os.urandom(4096))
        await read_until_closed(reader)
        writer.close()
    await _other_stream_survives(server, recorder, bad)
    assert server.rtmp.stats.protocol_errors == 1


async def test_chunk_size_with_high_bit_is_refused(server, recorder):
    async def bad():
        reader, writer = await handshake("127.0.0.1", server.rtmp_port)
        writer.write(chunk_fmt0(2, 1, (1 << 31).to_bytes(4, "big")))
        await read_until_closed(reader)
        writer.close()
    await _other_stream_survives(server, recorder, bad)
    assert server.rtmp.stats.protocol_errors == 1


async def test_huge_chunk_size_is_fine_but_message_over_limit_is_not(tmp_path):
    async with running_server(tmp_path, "rtmp.max_message_size=65536") as srv:
        reader, writer = await handshake("127.0.0.1", srv.rtmp_port)
        # A peer may set any chunk size up to 2^31-1: that alone is allowed ...
        writer.write(chunk_fmt0(2, 1, (0x7FFFFFFF).to_bytes(4, "big")))
        # ... but a message longer than the limit closes the connection.
        writer.write(chunk_fmt0(4, 9, b"", length=65537))
        await read_until_closed(reader)
        writer.close()
        assert srv.rtmp.stats.protocol_errors == 1


async def test_handshake_timeout_closes_silent_connections(tmp_path):
    async with running_server(tmp_path, "rtmp.handshake_timeout=0.3") as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.rtmp_port)
        await read_until_closed(reader, timeout=5)
        writer.close()
        assert srv.rtmp.stats.handshake_timeouts == 1
        assert srv.rtmp.stats.connections_open == 0


async def test_connection_limit(tmp_path):
    async with running_server(tmp_path, "rtmp.max_connections=1") as srv:
        r1, w1 = await handshake("127.0.0.1", srv.rtmp_port)
        r2, w2 = await asyncio.open_connection("127.0.0.1", srv.rtmp_port)
        await read_until_closed(r2, timeout=5)
        assert srv.rtmp.stats.refused_over_limit == 1
        w1.close()
        w2.close()


async def test_unknown_app_is_refused(server):
    url = f"rtmp://127.0.0.1:{server.rtmp_port}/otherapp/key"
    status, _ = await ffmpeg_push(url, seconds=1)
    assert status != 0
    assert server.rtmp.stats.errors_by_kind.get("unknown_app") == 1


async def test_idle_publisher_is_closed_and_its_stream_ends_after_the_grace(tmp_path):
    """A publisher that goes silent (a frozen encoder, a half-open TCP connection) is
    closed after rtmp.idle_timeout; the stream then ends when the grace runs out."""
    from tests.rtmp.factories import Client

    async with running_server(tmp_path, "rtmp.idle_timeout=0.5", "hls.reconnect_grace=0.3") as srv:
        recorder = StreamRecorder(srv.hub)
        client = Client(chunk_size=4096)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.rtmp_port)
        writer.write(client.c0c1())
        s0s1s2 = await reader.readexactly(1 + 1536 + 1536)
        writer.write(client.c2(s0s1s2) + client.set_chunk_size(4096) + client.connect())
        assert await asyncio.wait_for(reader.read(65536), 10)  # connect's _result, as clients wait for it
        writer.write(client.create_stream() + client.publish(1, "silent"))
        await recorder.wait_started("silent", timeout=10)
        await read_until_closed(reader, timeout=10)  # we send nothing more
        writer.close()
        assert srv.rtmp.stats.idle_timeouts == 1
        await recorder.wait_ended("silent", timeout=10)
        assert srv.hub.get("silent") is None
