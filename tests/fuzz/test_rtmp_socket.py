"""Fuzzed RTMP connections against a running server do not touch an unrelated stream.

While FFmpeg publishes a stream in real time, 60 connections send mutated RTMP sessions
(a valid handshake and publish, with bytes replaced, inserted, deleted or cut, from the
same seeds as the fuzz targets), some of them publishing under their own names. Each bad
connection is closed on its own; the stream being published loses no frame, and the
server still accepts a clean publish afterwards.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.fuzz.targets import seeds_connection
from tests.support.clients import ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    # Leave the handshake mostly intact now and then, so mutations reach the chunk stream.
    start = 1 + 2 * 1536 if rng.random() < 0.7 else 0
    for _ in range(rng.randint(1, 12)):
        i = rng.randrange(start, len(out) + 1)
        op = rng.randrange(4)
        if op == 0 and i < len(out):
            out[i] = rng.randrange(256)
        elif op == 1:
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            del out[i:i + rng.randint(1, 32)]
        else:
            out[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
    if rng.random() < 0.3:
        out = out[:rng.randint(0, len(out))]
    return bytes(out)


async def _send(port: int, data: bytes) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        for i in range(0, len(data), 1400):
            writer.write(data[i:i + 1400])
            await writer.drain()
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 5)  # until the server closes (or 5 s)
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()


async def test_fuzzed_connections_do_not_touch_a_live_stream(tmp_path):
    async with running_server(tmp_path, "rtmp.handshake_timeout=3", "recording.enabled=false") as srv:
        recorder = StreamRecorder(srv.hub)
        push = asyncio.create_task(ffmpeg_push(srv.rtmp_url("steady"), seconds=4, fps=25, realtime=True))
        await recorder.wait_started("steady", timeout=30)
        rng = random.Random(10)
        seed = seeds_connection()[0]
        for _ in range(6):
            await asyncio.gather(*(_send(srv.rtmp_port, _mutate(rng, seed)) for _ in range(10)))
        status, output = await push
        assert status == 0, output
        units = await recorder.wait_ended("steady", timeout=30)
        video = [u for u in units if u.kind.value == "video"]
        assert len(video) == 100, len(video)  # 4 s at 25 fps: every frame
        assert srv.rtmp.stats.protocol_errors + srv.rtmp.stats.media_errors > 0
        # The server still takes a clean publish.
        push = asyncio.create_task(ffmpeg_push(srv.rtmp_url("after"), seconds=1))
        await recorder.wait_started("after", timeout=30)
        assert (await push)[0] == 0
