#!/usr/bin/env python3
"""The ingest hot path replayed in one process: µs of CPU per RTMP media message.

``benchmarks/ingest.py`` measures the server as a whole (reads, event loop, everything);
this isolates the per-message Python that the server runs for every audio and video
message of a publisher, so that a change to it can be judged in seconds and without the
noise of a shared machine:

    RtmpConnection.receive_data (chunk parsing, events)
      → FlvIngest.video/audio (FLV tag, clock, MediaUnit)
        → Publication.push (hub: stats, GOP cache, a keyframes-only reader as the
          thumbnailer has)

as ``mediasrv/server/rtmp.py`` drives them. The input is the FLV that
``benchmarks/ingest.py`` publishes (made by it, cached in the temp dir), looped
``--loops`` times with continuing timestamps and chunked as FFmpeg sends it (4096-byte
chunks, video on chunk stream 6 and audio on 4, fmt 1 headers after the first), then fed
in ``--read-size`` pieces (what one socket read holds with ``rtmp.read_batch_ms``). Each
repetition starts a fresh connection, ingest and hub; the best of ``--repeat`` is shown
(the least disturbed by other work on the machine), with the median.

CPU time on a busy shared machine scatters by ±30 %; a count of instructions does not.
Where the CPU has no performance counters (a VM), count them with valgrind, twice, and
take the difference per message (the rest of the process is the same in both):

    .venv/bin/python benchmarks/ingest_replay.py [--repeat 7]
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        .venv/bin/python benchmarks/ingest_replay.py --cache-bytes --repeat 1 --loops 1   # then --loops 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))  # this checkout's mediasrv (and tests.rtmp.factories)

from mediasrv.hub import Hub  # noqa: E402
from mediasrv.media.ingest import FlvIngest  # noqa: E402
from mediasrv.rtmp import events as ev  # noqa: E402
from mediasrv.rtmp.connection import RtmpConnection  # noqa: E402
from tests.rtmp.factories import Client, seeded_random  # noqa: E402

CHUNK_SIZE = 4096


def flv_tags(path: Path) -> list[tuple[int, int, bytes]]:
    """(type, timestamp ms, body) of every audio/video tag of an FLV file."""
    data = path.read_bytes()
    if data[:3] != b"FLV":
        raise SystemExit(f"{path}: not an FLV file")
    pos = int.from_bytes(data[5:9], "big") + 4
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11:pos + 11 + size]
        if kind in (8, 9) and len(body) == size:
            tags.append((kind, ts, body))
        pos += 11 + size + 4
    return tags


class _Publisher:
    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        pass


def setup() -> tuple[RtmpConnection, Client]:
    """A connection past connect, createStream and publish (accepted), as FFmpeg does it."""
    conn = RtmpConnection(random_bytes=seeded_random(1))
    client = Client(chunk_size=128)
    conn.receive_data(client.c0c1())
    s0s1s2 = conn.data_to_send()
    events = conn.receive_data(client.c2(s0s1s2) + client.set_chunk_size(CHUNK_SIZE) + client.connect(app="live"))
    assert any(isinstance(e, ev.ConnectRequest) for e in events), events
    conn.accept_connect()
    conn.receive_data(client.release_stream("s") + client.fc_publish("s") + client.create_stream())
    events = conn.receive_data(client.publish(1, "s"))
    publish = next(e for e in events if isinstance(e, ev.PublishRequest))
    conn.accept_publish(publish.stream_id)
    conn.data_to_send()
    return conn, client


def media_bytes(client: Client, tags: list[tuple[int, int, bytes]], loops: int) -> tuple[bytes, int]:
    span = tags[-1][1] + 40
    out = []
    count = 0
    for loop in range(loops):
        for kind, ts, body in tags:
            t = ts + loop * span
            out.append(client.video(1, t, body) if kind == 9 else client.audio(1, t, body))
            count += 1
    return b"".join(out), count


def cached_media_bytes(client: Client, tags, loops: int, cache: Path | None) -> tuple[bytes, int]:
    """:func:`media_bytes`, kept in ``cache`` (the same bytes for the same input and
    loops): building them is Python work of the size of what is measured, which an
    instruction count of the whole process (``valgrind``) should not include."""
    if cache is None:
        return media_bytes(client, tags, loops)
    path = cache.with_name(f"{cache.name}-{loops}.bin")
    if not path.exists():
        blob, messages = media_bytes(client, tags, loops)
        path.write_bytes(messages.to_bytes(8, "big") + blob)
    data = path.read_bytes()
    return data[8:], int.from_bytes(data[:8], "big")


def run_once(tags, loops: int, read_size: int, cache: Path | None = None) -> tuple[float, int, int]:
    conn, client = setup()
    blob, messages = cached_media_bytes(client, tags, loops, cache)
    hub = Hub()
    publication = hub.publish("s", _Publisher())
    reader = publication.stream.subscribe(name="thumbnails", keyframes_only=True)
    ingest = FlvIngest()
    video, audio = ingest.video, ingest.audio
    push = publication.push
    pieces = [blob[i:i + read_size] for i in range(0, len(blob), read_size)]
    start = time.process_time()
    feed(conn, pieces, reader, video, audio, push)
    elapsed = time.process_time() - start
    return elapsed, messages, publication.stream.stats.units_in


def feed(conn, pieces, reader, video, audio, push) -> None:
    VideoData, AudioData = ev.VideoData, ev.AudioData
    for piece in pieces:
        for event in conn.receive_data(piece):
            # mediasrv/server/rtmp.py RtmpSession._handle / _media, the media cases.
            if isinstance(event, VideoData):
                unit = video(event.timestamp, event.payload)
            elif isinstance(event, AudioData):
                unit = audio(event.timestamp, event.payload)
            else:
                continue
            if unit is not None:
                push(unit)
        conn.data_to_send()
        while reader.read_nowait() is not None:
            pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path,
                   default=Path(tempfile.gettempdir()) / "mediasrv-bench" / "ingest-720p30-3M-bframes-25s.flv",
                   help="FLV to replay (default: benchmarks/ingest.py's cached input; made if missing)")
    p.add_argument("--loops", type=int, default=8, help="times the input is looped per repetition (default 8)")
    p.add_argument("--read-size", type=int, default=28 * 1024, help="bytes per receive_data (default 28 KiB)")
    p.add_argument("--repeat", type=int, default=7, help="repetitions (default 7)")
    p.add_argument("--cache-bytes", action="store_true",
                   help="keep the chunked input next to the input file (for instruction counts "
                        "of the whole process under valgrind: see the module docstring)")
    args = p.parse_args(argv)
    if not args.input.exists():
        from ingest import make_input
        args.input = make_input(args.input.parent)
    tags = flv_tags(args.input)
    cache = args.input.with_suffix(".replay") if args.cache_bytes else None
    run_once(tags, 1, args.read_size, cache)  # warm up
    results = []
    for _ in range(args.repeat):
        elapsed, messages, units = run_once(tags, args.loops, args.read_size, cache)
        results.append(elapsed / messages * 1e6)
    import mediasrv
    print(f"mediasrv from {Path(mediasrv.__file__).parent}; {messages} media messages "
          f"({units} units) per repetition, {args.read_size} bytes per read")
    print(f"µs per media message: best {min(results):.2f}, median {statistics.median(results):.2f} "
          f"({', '.join(f'{r:.2f}' for r in results)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
