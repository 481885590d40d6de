"""The transcode worker process: ``python -m mediasrv.transcode.worker``.

One per transcoded stream. Reads ``protocol`` messages on stdin (CONFIG first, then
tracks and compressed units), writes rung tracks, compressed packets, STATS (also the
heartbeat, every ``STATS_INTERVAL`` s) and EVENTs on stdout; stderr is for tracebacks.

It never outlives the server: it exits when stdin reaches end of file (the server
closed the pipe or died), and on Linux it also asks for SIGKILL when its parent dies.
Exit status: 0 after END was drained, 0 on end of file, 3 when a thread failed, 4
when the pipeline stalled for ``STALL_SECONDS`` with work queued, 2 on a protocol error.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sys
import threading
import time

STATS_INTERVAL = 0.5
STALL_SECONDS = 15.0
END_TIMEOUT = 30.0

EXIT_FAILED = 3
EXIT_STALLED = 4
EXIT_PROTOCOL = 2


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class _Output:
    """Framed messages to stdout from any thread, written by one writer thread that
    takes everything queued at once and flushes once (few syscalls when busy, no delay
    when idle). A closed pipe ends the process: the server is gone."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="output", daemon=True)
        self._thread.start()

    def send(self, header: bytes, data: bytes = b"") -> None:
        self._queue.put((header, data))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything sent so far is written."""
        done = threading.Event()
        self._queue.put((None, done))
        done.wait(timeout)

    def _run(self) -> None:
        stream = self._stream
        q = self._queue
        try:
            while True:
                items = [q.get()]
                while True:
                    try:
                        items.append(q.get_nowait())
                    except queue.Empty:
                        break
                marks = []
                for header, data in items:
                    if header is None:
                        marks.append(data)
                        continue
                    stream.write(header)
                    if data:
                        stream.write(data)
                stream.flush()
                for mark in marks:
                    mark.set()
        except (BrokenPipeError, ValueError, OSError):
            os._exit(0)


def main() -> int:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the server's to handle

    # Lazy on purpose (not a cycle): a worker whose server already died exits above
    # without loading PyAV and the codecs.
    from mediasrv.transcode import pipeline, protocol

    Pipeline, MessageType = pipeline.Pipeline, protocol.MessageType

    stdin = sys.stdin.buffer
    output = _Output(sys.stdout.buffer)
    # Everything imported so far lives for the whole process: keep the collector off it,
    # and let it run less often (the per-frame objects are freed by reference counting).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        first = protocol.read_message(stdin)
    except protocol.ProtocolError as exc:
        print(f"transcode worker: {exc}", file=sys.stderr)
        return EXIT_PROTOCOL
    if first is None:
        return 0
    kind, config = first
    if kind is not MessageType.CONFIG:
        print(f"transcode worker: expected CONFIG first, got {kind!r}", file=sys.stderr)
        return EXIT_PROTOCOL

    failed = threading.Event()
    reasons: list[str] = []

    def on_failure(reason: str) -> None:
        reasons.append(reason)
        failed.set()

    pipeline = Pipeline(config, output.send)
    pipeline.start(on_failure)
    stop_stats = threading.Event()

    def send_stats() -> None:
        output.send(protocol.json_message(MessageType.STATS, pipeline.stats()))

    def heartbeat() -> None:
        while not stop_stats.wait(STATS_INTERVAL):
            if failed.is_set():
                break
            stalled = pipeline.stalled(time.monotonic(), STALL_SECONDS)
            if stalled:
                output.send(protocol.json_message(MessageType.EVENT, {
                    "level": "error", "message": f"{stalled} made no progress for {STALL_SECONDS:g} s"}))
                output.flush()
                sys.stderr.flush()
                os._exit(EXIT_STALLED)
            send_stats()
        if failed.is_set():
            output.send(protocol.json_message(MessageType.EVENT, {"level": "error", "message": reasons[0]}))
            send_stats()
            output.flush()
            sys.stderr.flush()
            os._exit(EXIT_FAILED)

    stats_thread = threading.Thread(target=heartbeat, name="stats", daemon=True)
    send_stats()  # the first heartbeat: started and ready for input
    stats_thread.start()

    while True:
        try:
            message = protocol.read_message(stdin)
        except protocol.ProtocolError as exc:
            print(f"transcode worker: {exc}", file=sys.stderr)
            os._exit(EXIT_PROTOCOL)
        if message is None:  # the server closed our stdin (or died): stop now
            os._exit(0)
        kind, value = message
        pipeline.submit(kind, value)
        if kind is MessageType.END:
            break

    if not pipeline.finish(END_TIMEOUT):
        os._exit(EXIT_STALLED)
    stop_stats.set()
    stats_thread.join(2.0)
    if failed.is_set():
        os._exit(EXIT_FAILED)
    send_stats()
    output.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
