"""Per-stream health and audience, sampled once a second.

The monitor reads components' own counters (hub stream stats, the publisher's ingest
stats, viewer sessions, transcoder stats) — nothing pushes into it — and turns them into
rates, health warnings, the live SSE feed and, when a broadcast ends, its summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

from mediasrv.hub import Hub, StreamEnded, StreamStarted
from mediasrv.hub.stream import Stream
from mediasrv.media.types import TrackKind
from mediasrv.observe.analytics import LiveAnalytics
from mediasrv.observe.viewers import StreamAudience, ViewerTracker
from mediasrv.store import BroadcastSummary, Store

log = logging.getLogger("mediasrv.monitor")

#: Seconds over which "now" rates are computed.
RATE_WINDOW = 5.0


@dataclass(slots=True)
class Sample:
    at: float
    bytes_in: int
    video_units: int
    audio_units: int


@dataclass(slots=True)
class StreamHealth:
    """What the monitor knows about one broadcast (live, or ended within keep_after_end)."""

    stream: Stream
    audience: StreamAudience
    samples: deque = field(default_factory=lambda: deque(maxlen=64))
    bitrate_kbps: float = 0.0
    fps: float = 0.0
    peak_bitrate_kbps: float = 0.0
    baseline_fps: float = 0.0
    baseline_kbps: float = 0.0
    viewer_samples: int = 0
    viewer_sum: int = 0
    warnings: list[str] = field(default_factory=list)
    ended_at: float | None = None
    summary: BroadcastSummary | None = None
    subscribers: set = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.stream.name

    @property
    def average_viewers(self) -> float:
        return self.viewer_sum / self.viewer_samples if self.viewer_samples else 0.0


class StreamMonitor:
    """Hub listener + a once-a-second sampler for every stream."""

    def __init__(
        self,
        hub: Hub,
        viewers: ViewerTracker,
        store: Store,
        *,
        segment_duration: float,
        keep_after_end: float,
        ingest_stats: Callable[[str], object | None] = lambda name: None,
        transcode_stats: Callable[[str], dict] = lambda name: {},
        analytics: LiveAnalytics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.viewers = viewers
        self.store = store
        self.segment_duration = segment_duration
        self.keep_after_end = keep_after_end
        self.ingest_stats = ingest_stats
        self.transcode_stats = transcode_stats
        self.clock = clock
        self.streams: dict[str, StreamHealth] = {}
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        self.summaries_written = 0
        #: The creator's analytics: ``snapshot(stream)`` joins the live feed, ``await
        #: final(stream)`` the broadcast summary (broadcasts ended at shutdown included).
        self.analytics = analytics

    async def start(self) -> None:
        self.hub.add_listener(self._on_hub_event)
        for stream in self.hub.streams():
            self._track(stream)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="stream-monitor")

    async def stop(self) -> None:
        self.hub.remove_listener(self._on_hub_event)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # --- hub events ----------------------------------------------------------------------

    def _on_hub_event(self, event) -> None:
        if isinstance(event, StreamStarted):
            self._track(event.stream)
        elif isinstance(event, StreamEnded):
            health = self.streams.get(event.stream.name)
            if health is not None and health.stream is event.stream:
                self._finish(health)

    def _track(self, stream: Stream) -> None:
        # A new broadcast of a name: its audience starts from zero.
        self.viewers.forget(stream.name)
        health = StreamHealth(stream, self.viewers.audience(stream.name))
        self.streams[stream.name] = health

    def _finish(self, health: StreamHealth) -> None:
        now = self.clock()
        self._sample(health, now)
        health.ended_at = now
        stream = health.stream
        audience = health.audience
        summary = BroadcastSummary(
            stream=stream.name,
            started_at=stream.started_at,
            ended_at=now,
            duration_seconds=round(max(0.0, now - stream.started_at), 3),
            peak_viewers=audience.peak,
            average_viewers=round(health.average_viewers, 3),
            unique_viewers=audience.unique,
            watch_seconds=round(audience.watch_seconds, 3),
            reconnects=stream.stats.reconnects,
            bytes_in=stream.stats.bytes_in,
            bytes_out=audience.bytes_sent,
            private=stream.public_at is None,  # it never went public
        )
        health.summary = summary
        self._publish(health, ended=True)
        task = asyncio.get_running_loop().create_task(self._save(health, summary))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _save(self, health: StreamHealth, summary: BroadcastSummary) -> None:
        if self.analytics is not None:
            try:
                summary = replace(summary, **await self.analytics.final(health.stream))
            except Exception:
                log.exception("stream %s: the broadcast's analytics could not be added", summary.stream)
        try:
            ident = await asyncio.to_thread(self.store.add_broadcast, summary)
        except Exception:
            log.exception("stream %s: the broadcast summary could not be saved", summary.stream)
            return
        self.summaries_written += 1
        health.summary = BroadcastSummary(**{**summary.to_json(), "id": ident})

    # --- sampling ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)  # the sampling period, not synchronisation
            try:
                self.tick(self.clock())
            except Exception:
                log.exception("stream monitor tick failed")

    def tick(self, now: float) -> None:
        """Sample every stream, expire idle viewers and old broadcasts, feed subscribers."""
        self.viewers.sweep(now)
        for name, health in list(self.streams.items()):
            if health.ended_at is not None:
                if now - health.ended_at >= self.keep_after_end:
                    del self.streams[name]
                    if self.viewers.streams.get(name) is health.audience:
                        self.viewers.forget(name)
                continue
            self._sample(health, now)
            self._publish(health)

    def _sample(self, health: StreamHealth, now: float) -> None:
        stats = health.stream.stats
        health.samples.append(Sample(now, stats.bytes_in, stats.video_units, stats.audio_units))
        first = next((s for s in health.samples if now - s.at <= RATE_WINDOW + 0.5), health.samples[-1])
        span = now - first.at
        if span > 0:
            health.bitrate_kbps = (stats.bytes_in - first.bytes_in) * 8 / span / 1000
            health.fps = (stats.video_units - first.video_units) / span
        health.peak_bitrate_kbps = max(health.peak_bitrate_kbps, health.bitrate_kbps)
        if span >= RATE_WINDOW - 0.5:
            # Slow-moving baselines, so a collapse stands out against them.
            alpha = 0.05
            health.baseline_kbps = health.bitrate_kbps if not health.baseline_kbps else (
                (1 - alpha) * health.baseline_kbps + alpha * health.bitrate_kbps)
            health.baseline_fps = health.fps if not health.baseline_fps else (
                (1 - alpha) * health.baseline_fps + alpha * health.fps)
        if not health.stream.private:
            # The average is over the public part of a broadcast: backstage, nobody counts
            # as a viewer (delivery.routes), and its seconds are not an audience's zeros.
            health.viewer_samples += 1
            health.viewer_sum += health.audience.concurrent
        health.warnings = self.warnings(health, now)

    def warnings(self, health: StreamHealth, now: float) -> list[str]:
        """Health warnings a creator can act on."""
        out: list[str] = []
        stream = health.stream
        stats = stream.stats
        age = now - stream.started_at
        if age < RATE_WINDOW:
            return out
        if health.baseline_kbps > 50 and health.bitrate_kbps < 0.3 * health.baseline_kbps:
            out.append(f"bitrate collapsed: {health.bitrate_kbps:.0f} kbit/s, usually {health.baseline_kbps:.0f}")
        if stats.keyframe_intervals:
            interval = max(stats.keyframe_intervals[-3:]) / 1000
            if interval > self.segment_duration * 1.5:
                out.append(
                    f"keyframe interval {interval:.1f} s is too long for {self.segment_duration:g} s segments; "
                    f"set the encoder's keyframe interval to {self.segment_duration:g} s"
                )
        elif stream.has_video and stats.video_units > 0 and age > max(10.0, 3 * self.segment_duration):
            out.append("no keyframe seen after the first: set the encoder's keyframe interval")
        if health.baseline_fps > 5 and health.fps < 0.6 * health.baseline_fps:
            out.append(f"frame rate dropped: {health.fps:.1f} fps, usually {health.baseline_fps:.1f}")
        recent = [s for s in health.samples if now - s.at <= 3.5]
        if TrackKind.AUDIO not in stream.tracks:
            out.append("audio missing: the stream has no audio track")
        elif len(recent) >= 2 and recent[-1].audio_units == recent[0].audio_units:
            out.append("audio missing: no audio received for 3 s")
        for rung, speed in (self.transcode_stats(stream.name) or {}).items():
            if speed is not None and 0 < speed < 0.95:
                out.append(f"transcoder behind real time: rung {rung} at {speed:.2f}x")
        return out

    # --- the live feed -------------------------------------------------------------------

    def snapshot(self, health: StreamHealth) -> dict:
        stream = health.stream
        audience = health.audience
        ingest = self.ingest_stats(stream.name)
        corrections = None
        if ingest is not None:
            corrections = {
                "video": getattr(getattr(ingest, "video", None), "timestamp_corrections", 0),
                "audio": getattr(getattr(ingest, "audio", None), "timestamp_corrections", 0),
            }
        intervals = stream.stats.keyframe_intervals
        return {
            "stream": stream.name,
            "live": health.ended_at is None,
            "viewers": audience.concurrent,
            "peak_viewers": audience.peak,
            "unique_viewers": audience.unique,
            "watch_seconds": round(audience.watch_seconds, 1),
            "bytes_sent": audience.bytes_sent,
            "viewers_per_rendition": audience.per_rendition(),
            "bitrate_kbps": round(health.bitrate_kbps, 1),
            "fps": round(health.fps, 2),
            "keyframe_interval_ms": intervals[-1] if intervals else None,
            "timestamp_corrections": corrections,
            "reconnects": stream.stats.reconnects,
            "reader_skips": sum(r.skips for r in stream.readers),
            "warnings": list(health.warnings),
            "analytics": self.analytics.snapshot(stream) if self.analytics is not None else None,
        }

    def subscribe(self, name: str) -> asyncio.Queue | None:
        """A queue of snapshots (one a second) for ``name``; None if unknown."""
        health = self.streams.get(name)
        if health is None:
            return None
        queue: asyncio.Queue = asyncio.Queue(maxsize=8)
        health.subscribers.add(queue)
        queue.put_nowait(self.snapshot(health))
        return queue

    def unsubscribe(self, name: str, queue: asyncio.Queue) -> None:
        health = self.streams.get(name)
        if health is not None:
            health.subscribers.discard(queue)

    def _publish(self, health: StreamHealth, *, ended: bool = False) -> None:
        if not health.subscribers:
            return
        snapshot = self.snapshot(health)
        for queue in list(health.subscribers):
            _put_latest(queue, snapshot)
            if ended:
                _put_latest(queue, None)  # end of the feed


def _put_latest(queue: asyncio.Queue, item) -> None:
    """Enqueue, dropping the oldest update when full: a slow dashboard misses an update
    rather than holding memory."""
    if queue.full():
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
    queue.put_nowait(item)
