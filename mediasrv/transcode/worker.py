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

import os
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
    """Serialised writes of framed messages to stdout; a closed pipe ends the process."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, header: bytes, data: bytes = b"") -> None:
        try:
            with self._lock:
                self._stream.write(header)
                if data:
                    self._stream.write(data)
                self._stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            os._exit(0)  # the server is gone


def main() -> int:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the server's to handle

    from mediasrv.transcode import protocol
    from mediasrv.transcode.pipeline import Pipeline
    from mediasrv.transcode.protocol import MessageType

    stdin = sys.stdin.buffer
    output = _Output(sys.stdout.buffer)
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
                sys.stderr.flush()
                os._exit(EXIT_STALLED)
            send_stats()
        if failed.is_set():
            output.send(protocol.json_message(MessageType.EVENT, {"level": "error", "message": reasons[0]}))
            send_stats()
            sys.stderr.flush()
            os._exit(EXIT_FAILED)

    stats_thread = threading.Thread(target=heartbeat, name="stats", daemon=True)
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
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
