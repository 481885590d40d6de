"""The worker process through its real pipes: a whole run, and that it never outlives
the server (stdin closed, parent killed) or swallows garbage."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from mediasrv.transcode.service import WorkerProcess
from mediasrv.transcode import protocol
from mediasrv.transcode.protocol import MessageType
from tests.hls.conftest import encode
from tests.transcode.conftest import SMALL_LADDER, process_alive, rung_dicts, track_message, wait_gone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_a_whole_run_through_the_pipes():
    encoded = encode(seconds=2.0)
    messages = []
    worker = WorkerProcess("t", lambda kind, value: messages.append((kind, value)))
    await worker.start({"rungs": rung_dicts(SMALL_LADDER), "audio_bitrate": 64000, "live": False,
                        "max_queue_seconds": 2.0})
    try:
        worker.send(protocol.json_message(MessageType.VIDEO_TRACK, track_message(encoded.video)))
        worker.send(protocol.json_message(MessageType.AUDIO_TRACK, track_message(encoded.audio)))
        first = True
        for unit in encoded.units:
            if unit.track is encoded.video:
                worker.send(protocol.video_message(unit.dts, unit.pts, unit.data, keyframe=unit.keyframe,
                                                   force_keyframe=unit.keyframe and first))
                first = first and not unit.keyframe
            else:
                worker.send(protocol.audio_message(unit.dts, unit.pts, unit.data))
        worker.send(protocol.frame(MessageType.END))
        status = await asyncio.wait_for(worker.exited, 60)
    finally:
        await worker.stop()
    assert status == 0, list(worker.stderr_tail)
    rungs = {v["name"]: v for k, v in messages if k is MessageType.RUNG}
    assert set(rungs) == {"240p", "144p", "audio"}
    packets = [v for k, v in messages if k is MessageType.PACKET]
    per_index = {}
    for p in packets:
        per_index[p.index] = per_index.get(p.index, 0) + 1
    assert per_index[rungs["240p"]["index"]] == 50 and per_index[rungs["144p"]["index"]] == 50
    assert per_index[255] >= 90
    stats = [v for k, v in messages if k is MessageType.STATS]
    assert stats and stats[-1]["frames_decoded"] == 50


async def test_worker_exits_when_its_stdin_closes():
    ready = asyncio.get_running_loop().create_future()  # its first heartbeat: running, reading stdin

    def on_message(kind, value) -> None:
        if kind is MessageType.STATS and not ready.done():
            ready.set_result(None)

    worker = WorkerProcess("t", on_message)
    await worker.start({"rungs": [], "live": True})
    await asyncio.wait_for(ready, 30)
    worker.close_stdin()
    status = await asyncio.wait_for(worker.exited, 10)
    assert status == 0


async def test_worker_refuses_garbage():
    worker = WorkerProcess("t", lambda kind, value: None)
    await worker.start({"rungs": [], "live": True})
    worker.send(b"\x00\x00\x00\x00\x00garbage")
    status = await asyncio.wait_for(worker.exited, 10)
    assert status == 2


CHILD = """
import asyncio, sys
from mediasrv.transcode.service import WorkerProcess
async def main():
    w = WorkerProcess("orphan-test", lambda k, v: None)
    await w.start({"rungs": [], "live": True})
    print(w.pid, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


def test_worker_dies_with_a_killed_server():
    server = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT})
    try:
        line = server.stdout.readline()
        assert line.strip(), "the child did not start a worker"
        pid = int(line)
        assert process_alive(pid)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert wait_gone(pid, 10), f"worker {pid} outlived its server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
