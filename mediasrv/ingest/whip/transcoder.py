"""A WHIP session's encoder thread: decoded frames in from the event loop, ``MediaUnit``s
out to it.

aiortc decodes in its own thread and hands frames to the loop (``track.recv()``); the
session puts each into this thread's bounded ``FrameQueue`` (never waiting) and the
thread places it on the session timeline, encodes it (x264 / AAC, which release the GIL)
and passes the units to ``emit``, which the session makes thread-safe
(``loop.call_soon_threadsafe``). The event loop never encodes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import av

from mediasrv.ingest.whip.audio_encoder import RATE as AUDIO_RATE
from mediasrv.ingest.whip.audio_encoder import AacEncoder
from mediasrv.ingest.whip.frames import FrameQueue
from mediasrv.ingest.whip.timeline import SessionOrigin, TrackTimeline
from mediasrv.ingest.whip.video_encoder import EncoderError, H264Encoder
from mediasrv.media.types import MediaUnit

log = logging.getLogger("mediasrv.whip")

#: Consecutive frames that fail to encode before the session is given up.
MAX_CONSECUTIVE_ERRORS = 50


@dataclass(slots=True)
class TrackCounters:
    """One direction of a session, read by the monitor and the metrics at their pace."""

    frames_in: int = 0
    frames_dropped: int = 0
    units_out: int = 0
    bytes_out: int = 0
    errors: int = 0
    #: Timeline corrections (re-anchored after a jump, raised to stay monotonic).
    timestamp_corrections: int = 0


@dataclass(slots=True)
class TranscodeStats:
    """What a session's encoder did; ``video``/``audio`` are what the monitor reads as
    the stream's ingest stats (source-neutral: RTMP's have the same two fields)."""

    video: TrackCounters = field(default_factory=TrackCounters)
    audio: TrackCounters = field(default_factory=TrackCounters)
    #: Seconds the thread spent encoding (wall), and its own CPU time (x264's slice
    #: threads, used above 600k pixels, are not in it).
    busy_seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: Video frames scaled back to the first frame's size (the sender changed resolution).
    scaled_frames: int = 0
    width: int = 0
    height: int = 0


class SessionTranscoder:
    """Owns the thread, the queue, the timeline and both encoders of one session."""

    def __init__(
        self,
        name: str,
        *,
        emit: Callable[[list[MediaUnit]], None],
        on_failure: Callable[[str], None],
        video_bitrate: int,
        audio_bitrate: int,
        preset: str,
        keyframe_interval: float,
    ) -> None:
        """``emit`` and ``on_failure`` are called from the encoder thread."""
        self.name = name
        self.stats = TranscodeStats()
        self.queue = FrameQueue()
        origin = SessionOrigin()
        self._video_timeline = TrackTimeline(origin, 1000, strictly=True)
        self._audio_timeline = TrackTimeline(origin, AUDIO_RATE, strictly=False)
        self._video = H264Encoder(bitrate=video_bitrate, preset=preset, keyframe_interval=keyframe_interval)
        self._audio = AacEncoder(bitrate=audio_bitrate)
        self._emit = emit
        self._on_failure = on_failure
        self._thread = threading.Thread(target=self._run, name=f"whip-encode {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, kind: str, frame, arrival: float) -> None:
        """Hand a decoded frame over (from the loop; never blocks)."""
        counters = self.stats.video if kind == "video" else self.stats.audio
        counters.frames_in += 1
        self.queue.put(kind, frame, arrival)
        counters.frames_dropped = self.queue.dropped[kind]

    def stop(self) -> None:
        """Ask the thread to end (frames still queued are dropped)."""
        self.queue.close()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (blocking: call it off the loop)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug must end the session, not leave it mute
            log.exception("whip %s: encoder thread failed", self.name)
            self._on_failure(f"encoder failed: {type(exc).__name__}")

    def _loop(self) -> None:
        stats = self.stats
        failures = 0
        while True:
            item = self.queue.get()
            if item is None:
                return
            kind, frame, arrival = item
            counters = stats.video if kind == "video" else stats.audio
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                units = self._video_units(frame, arrival) if kind == "video" else self._audio_units(frame, arrival)
                failures = 0
            except EncoderError as exc:
                self._on_failure(str(exc))
                return
            except (av.FFmpegError, ValueError) as exc:
                counters.errors += 1
                failures += 1
                if failures == 1:
                    log.warning("whip %s: a %s frame failed to encode: %s", self.name, kind, exc)
                if failures >= MAX_CONSECUTIVE_ERRORS:
                    self._on_failure(f"{failures} {kind} frames in a row failed to encode")
                    return
                continue
            finally:
                stats.busy_seconds += time.perf_counter() - started
                stats.cpu_seconds += time.thread_time() - cpu
            if units:
                counters.units_out += len(units)
                counters.bytes_out += sum(len(unit.data) for unit in units)
                self._emit(units)

    def _video_units(self, frame: av.VideoFrame, arrival: float) -> list[MediaUnit]:
        timeline = self._video_timeline
        ms = timeline.place(_ticks(frame, 1000, arrival), arrival)
        self.stats.video.timestamp_corrections = timeline.corrections
        units = self._video.encode(frame, ms)
        self.stats.scaled_frames = self._video.scaled
        self.stats.width, self.stats.height = self._video.width, self._video.height
        return units

    def _audio_units(self, frame: av.AudioFrame, arrival: float) -> list[MediaUnit]:
        timeline = self._audio_timeline
        position = timeline.place(_ticks(frame, AUDIO_RATE, arrival), arrival)
        self.stats.audio.timestamp_corrections = timeline.corrections
        return self._audio.encode(frame, position)


def _ticks(frame, rate: int, arrival: float) -> int:
    """The frame's RTP-derived time in ticks of ``rate`` (its arrival if it has none)."""
    if frame.pts is None or frame.time_base is None:
        return round(arrival * rate)
    return round(frame.pts * frame.time_base * rate)
