"""Helpers of the transcoder tests: run a ``Pipeline`` in-process on encoded units and
collect what it sends, decode rung output with PyAV, small ladders."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import av

from mediasrv.config import RungConfig
from mediasrv.hls.segmenter import CUT_FRACTION
from mediasrv.media.types import MediaUnit, TrackKind
from mediasrv.transcode import protocol
from mediasrv.transcode.ladder import KeyframePlanner
from mediasrv.transcode.pipeline import Pipeline
from mediasrv.transcode.protocol import AUDIO_INDEX, AudioIn, MessageType, PacketOut, VideoIn

#: Two small rungs for a 320x240 source (a third, 480p, is taller and left out).
SMALL_LADDER = (
    RungConfig(name="480p", height=480,
               video_bitrate=1_400_000, maxrate=1_500_000, bufsize=3_000_000, max_fps=30.0, preset="veryfast"),
    RungConfig(name="240p", height=240,
               video_bitrate=400_000, maxrate=450_000, bufsize=900_000, max_fps=30.0, preset="veryfast"),
    RungConfig(name="144p", height=144,
               video_bitrate=150_000, maxrate=170_000, bufsize=340_000, max_fps=30.0, preset="veryfast"),
)


def rung_dicts(ladder) -> list[dict]:
    return [{"name": r.name, "height": r.height, "video_bitrate": r.video_bitrate, "maxrate": r.maxrate,
             "bufsize": r.bufsize, "max_fps": r.max_fps, "preset": r.preset} for r in ladder]


def track_message(track) -> dict:
    return {"codec": track.codec.value, "config": protocol.b64(track.config), "width": track.width,
            "height": track.height, "sample_rate": track.sample_rate, "channels": track.channels}


@dataclass
class Output:
    rungs: dict[int, dict] = field(default_factory=dict)
    audio: list[dict] = field(default_factory=list)
    packets: dict[int, list[PacketOut]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    failure: str | None = None

    def keyframes(self, index: int) -> list[int]:
        return [p.pts for p in self.packets[index] if p.keyframe]

    def by_name(self, name: str) -> int:
        return next(i for i, r in self.rungs.items() if r["name"] == name)


def run_pipeline(units: list[MediaUnit], ladder=SMALL_LADDER, *, live: bool = False, max_queue_seconds: float = 2.0,
                 segment: float = 1.0, audio_bitrate: int = 96_000, timeout: float = 60.0,
                 feed=None, recover_after: float = 10.0) -> Output:
    """Feed ``units`` (with aligned keyframes planned as the server plans them) through a
    Pipeline in this process; return everything it sent. ``feed(pipeline, messages)`` may
    replace the plain loop (e.g. to pace it)."""
    out = Output()
    lock = threading.Lock()

    def send(header: bytes, data: bytes = b"") -> None:
        import io

        kind, value = protocol.read_message(io.BytesIO(header + data))
        with lock:
            if kind is MessageType.RUNG:
                (out.audio.append(value) if value["index"] == AUDIO_INDEX else out.rungs.__setitem__(value["index"], value))
            elif kind is MessageType.PACKET:
                out.packets.setdefault(value.index, []).append(value)
            elif kind is MessageType.EVENT:
                out.events.append(value)

    pipeline = Pipeline({"rungs": rung_dicts(ladder), "audio_bitrate": audio_bitrate, "live": live,
                         "max_queue_seconds": max_queue_seconds, "recover_after": recover_after}, send)
    failed = threading.Event()

    def on_failure(reason: str) -> None:
        out.failure = reason
        failed.set()

    pipeline.start(on_failure)
    planner = KeyframePlanner(int(segment * 1000 * CUT_FRACTION), int(3 * segment * 1000))
    messages = []
    tracks = {}
    for unit in units:
        if tracks.get(unit.kind) != unit.track:
            tracks[unit.kind] = unit.track
            kind = MessageType.VIDEO_TRACK if unit.kind is TrackKind.VIDEO else MessageType.AUDIO_TRACK
            messages.append((kind, track_message(unit.track)))
        if unit.kind is TrackKind.VIDEO:
            force = planner.decide(unit.pts, unit.keyframe)
            if force:
                out.forced.append(unit.pts)
            messages.append((MessageType.VIDEO, VideoIn(unit.dts, unit.pts, unit.keyframe, force,
                                                        unit.discontinuity, unit.data)))
        else:
            messages.append((MessageType.AUDIO, AudioIn(unit.dts, unit.pts, unit.data)))
    messages.append((MessageType.END, None))
    if feed is None:
        for kind, value in messages:
            pipeline.submit(kind, value)
    else:
        feed(pipeline, messages)
    done = pipeline.finish(timeout)
    out.stats = pipeline.stats()
    assert out.failure is None, out.failure
    assert done, "the pipeline did not finish"
    return out


def decode_rung(out: Output, index: int) -> list[av.VideoFrame]:
    """Decode a rung's packets with PyAV (its avcC as extradata)."""
    ctx = av.CodecContext.create("h264", "r")
    ctx.extradata = protocol.unb64(out.rungs[index]["config"])
    frames = []
    for p in out.packets[index]:
        packet = av.Packet(p.data)
        packet.pts, packet.dts = p.pts, p.dts
        frames += ctx.decode(packet)
    frames += ctx.decode(None)
    return frames


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return False
