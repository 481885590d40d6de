"""The HLS service: hub streams in, playlists and segments (in memory) out.

One ``HlsStream`` per broadcast, one ``Rendition`` per rendition of it (``source`` now; the
transcoder adds its rungs with ``add_rendition``). Each rendition has a muxer task that
reads its hub ``Reader`` and feeds the pure ``Segmenter``; each has an
``asyncio.Condition`` notified on every playlist change (every segment and, with
Low-Latency HLS, every part). ``wait_ready``, blocking playlist reloads
(``wait_playlist``: ``_HLS_msn``/``_HLS_part``) and preload-hinted part requests
(``wait_part``) all wait on that condition, never by polling.

Low-Latency HLS (``hls.low_latency``, fMP4 only): the segmenters cut parts of
``hls.part_duration``; media playlists carry EXT-X-RENDITION-REPORT lines for every other
rendition of the stream that has media (LAST-MSN/LAST-PART, read when the playlist is
served) and can be delta updates (``delta=True``).

Lifecycle: ``StreamStarted`` creates the stream (replacing what an earlier broadcast of
the same name left), a publisher reconnect within the grace continues the same reader
(the hub marks the discontinuity), ``StreamEnded`` lets the muxers drain, close the last
segment and add EXT-X-ENDLIST; ``keep_after_end`` seconds later everything of that
broadcast is freed. Hub streams whose name has a ``/`` are rendition streams of the
transcoder (``NAME/720p``) and are not served on their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from mediasrv.hls import names
from mediasrv.hls.playlist import RenditionReport, Variant, render_master_playlist, render_media_playlist
from mediasrv.hls.segmenter import Container, Segmenter
from mediasrv.hub import Hub, Reader, Stream, StreamEnded, StreamStarted
from mediasrv.hub.stream import expects_video
from mediasrv.media.types import TrackKind

log = logging.getLogger("mediasrv.hls")

SOURCE = names.SOURCE

CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "mp4": "video/mp4",
    "m4s": "video/mp4",
    "ts": "video/mp2t",
}


@dataclass(slots=True)
class HlsStats:
    """Plain counters for the metrics collector (read at scrape time)."""

    streams_started: int = 0
    streams_freed: int = 0
    renditions_started: int = 0
    segments_made: int = 0
    segment_bytes: int = 0
    discontinuities: int = 0
    muxer_errors: int = 0
    reader_skips: int = 0
    #: Time from reading the unit that completes a segment (the next keyframe) to the
    #: segment being listed, in seconds: count, sum and max.
    list_latency_count: int = 0
    list_latency_sum: float = 0.0
    list_latency_max: float = 0.0


class Rendition:
    """One rendition of a stream: its reader, segmenter, muxer task and condition."""

    def __init__(self, name: str, segmenter: Segmenter, reader: Reader) -> None:
        self.name = name
        self.segmenter = segmenter
        self.reader = reader
        self.task: asyncio.Task | None = None
        #: Notified (``notify_all``) whenever the playlist changes.
        self.changed = asyncio.Condition()
        self.done = False
        self._playlist_cache: tuple[int, str] | None = None
        #: (version, delta, rendition reports) -> encoded playlist, a few recent ones.
        self._playlist_bytes: dict[tuple, bytes] = {}
        self._seen_skips = 0

    @property
    def ready(self) -> bool:
        return bool(self.segmenter.segments)

    def playlist(self, uri_suffix: str = "", *, delta: bool = False, reports: tuple = ()) -> str:
        segmenter = self.segmenter
        if uri_suffix or delta or reports:
            return render_media_playlist(segmenter.playlist(), uri_suffix, delta=delta, rendition_reports=reports)
        cached = self._playlist_cache
        if cached is None or cached[0] != segmenter.version:
            cached = self._playlist_cache = (segmenter.version, render_media_playlist(segmenter.playlist()))
        return cached[1]

    def playlist_bytes(self, *, delta: bool = False, reports: tuple = ()) -> bytes:
        """The media playlist as UTF-8 bytes, encoded once per playlist version (and
        delta/rendition-report state)."""
        key = (self.segmenter.version, delta, reports)
        data = self._playlist_bytes.get(key)
        if data is None:
            if len(self._playlist_bytes) >= 4:
                self._playlist_bytes.clear()
            data = self._playlist_bytes[key] = self.playlist(delta=delta, reports=reports).encode()
        return data

    def report(self, uri: str) -> RenditionReport | None:
        """This rendition's EXT-X-RENDITION-REPORT (as seen from a sibling), None if empty."""
        segmenter = self.segmenter
        last = segmenter.last_part()
        if last is not None:
            return RenditionReport(uri, last[0], last[1])
        if segmenter.last_msn >= 0:
            return RenditionReport(uri, segmenter.last_msn)
        return None

    def info(self) -> dict:
        segmenter = self.segmenter
        video = segmenter.tracks.get(TrackKind.VIDEO)
        rate = segmenter.frame_rate
        return {
            "name": self.name,
            "codecs": segmenter.codecs,
            "width": video.width if video else 0,
            "height": video.height if video else 0,
            "bandwidth": segmenter.peak_bitrate,
            "average_bandwidth": segmenter.average_bitrate,
            "frame_rate": round(rate, 3) if rate else None,
            "container": segmenter.container.value,
            "playlist": f"{self.name}/{names.PLAYLIST}",
            "segments": len(segmenter.segments),
            "ended": segmenter.ended,
        }

    def variant(self) -> Variant:
        segmenter = self.segmenter
        video = segmenter.tracks.get(TrackKind.VIDEO)
        return Variant(
            uri=f"{self.name}/{names.PLAYLIST}",
            bandwidth=segmenter.peak_bitrate,
            average_bandwidth=segmenter.average_bitrate or None,
            codecs=segmenter.codecs,
            resolution=(video.width, video.height) if video else None,
            frame_rate=segmenter.frame_rate,
        )




class HlsStream:
    """What the service holds for one broadcast."""

    def __init__(self, stream: Stream, tag: str) -> None:
        self.stream = stream
        self.name = stream.name
        self.tag = tag
        self.renditions: dict[str, Rendition] = {}
        self.ended_at: float | None = None
        self.free_handle: asyncio.TimerHandle | None = None
        #: (versions of the ready renditions, master playlist bytes), see master_bytes().
        self.master_cache: tuple[tuple, bytes] | None = None


class HlsService:
    """Packages every hub stream as HLS, in memory.

    ``config`` is the server config (its ``hls`` section is used) or the ``hls`` section
    itself: any object with ``format``, ``segment_duration``, ``window``,
    ``keep_after_end``. ``clock`` gives wall-clock seconds (PROGRAM-DATE-TIME, retention).
    With ``enabled`` false (``hls.enabled``) it never listens to the hub: no stream is
    packaged, every lookup finds nothing (the routes answer 404 at once).
    """

    def __init__(self, config: Any, hub: Hub, *, clock: Callable[[], float] = time.time) -> None:
        hls = getattr(config, "hls", config)
        self.enabled = bool(getattr(hls, "enabled", True))
        self.format = Container(getattr(hls, "format", "fmp4"))
        self.segment_duration = float(getattr(hls, "segment_duration", 2.0))
        self.window = int(getattr(hls, "window", 6))
        self.keep_after_end = float(getattr(hls, "keep_after_end", 300.0))
        #: Low-Latency HLS: parts, blocking reload, preload hints, rendition reports,
        #: delta updates. It needs fMP4 (MPEG-TS playlists stay plain HLS).
        self.low_latency = bool(getattr(hls, "low_latency", False)) and self.format is Container.FMP4
        self.part_duration = float(getattr(hls, "part_duration", 0.25))
        self.hub = hub
        self.clock = clock
        self.stats = HlsStats()
        self._streams: dict[str, HlsStream] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the hub (and pick up streams already live); nothing when disabled."""
        if self._started or not self.enabled:
            return
        self._loop = asyncio.get_running_loop()
        self._started = True
        self.hub.add_listener(self._on_hub_event)
        for stream in self.hub.streams():
            if stream.name not in self._streams:
                self._on_hub_event(StreamStarted(stream))

    async def stop(self) -> None:
        """Stop every muxer and free everything."""
        if not self._started:
            return
        self._started = False
        try:
            self.hub.remove_listener(self._on_hub_event)
        except ValueError:
            pass
        tasks = []
        for hls_stream in list(self._streams.values()):
            tasks += self._discard(hls_stream)
        self._streams.clear()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_hub_event(self, event) -> None:
        stream = event.stream
        if not names.is_stream_name(stream.name):
            return  # rendition streams (NAME/720p) come in through add_rendition
        if isinstance(event, StreamStarted):
            self._stream_started(stream)
        elif isinstance(event, StreamEnded):
            self._stream_ended(stream)

    def _stream_started(self, stream: Stream) -> None:
        old = self._streams.pop(stream.name, None)
        if old is not None:
            self._discard(old)
        tag = names.make_tag(int(stream.started_at * 1000))
        if old is not None and old.tag == tag:
            tag += "x"
        hls_stream = HlsStream(stream, tag)
        self._streams[stream.name] = hls_stream
        self.stats.streams_started += 1
        reader = stream.subscribe(from_gop=True, name=f"hls:{stream.name}/{SOURCE}")
        self._add(hls_stream, SOURCE, reader, expect_video=expects_video(stream))
        if stream.ended:
            self._stream_ended(stream)

    def _stream_ended(self, stream: Stream) -> None:
        hls_stream = self._streams.get(stream.name)
        if hls_stream is None or hls_stream.stream is not stream or hls_stream.ended_at is not None:
            return
        hls_stream.ended_at = self.clock()
        assert self._loop is not None
        hls_stream.free_handle = self._loop.call_later(self.keep_after_end, self._free, hls_stream)

    def _free(self, hls_stream: HlsStream) -> None:
        if self._streams.get(hls_stream.name) is hls_stream:
            del self._streams[hls_stream.name]
        self._discard(hls_stream)

    def _discard(self, hls_stream: HlsStream) -> list[asyncio.Task]:
        if hls_stream.free_handle is not None:
            hls_stream.free_handle.cancel()
            hls_stream.free_handle = None
        tasks = []
        for rendition in hls_stream.renditions.values():
            rendition.reader.close()
            if rendition.task is not None and not rendition.task.done():
                rendition.task.cancel()
                tasks.append(rendition.task)
        hls_stream.renditions.clear()
        self.stats.streams_freed += 1
        return tasks

    # --- renditions ----------------------------------------------------------------------

    def add_rendition(self, stream_name: str, rendition: str, reader: Reader, *, expect_video: bool | None = True) -> bool:
        """Serve ``reader``'s units as rendition ``rendition`` of live stream ``stream_name``.

        For the transcoder: its rungs must cut at the source's keyframe times (same
        DTS) so segment boundaries align across renditions. Returns False (and closes the
        reader) when the stream is unknown or ended, or the name is taken or invalid.
        """
        hls_stream = self._streams.get(stream_name)
        if (
            hls_stream is None
            or hls_stream.ended_at is not None
            or not names.is_rendition_name(rendition)
            or rendition in hls_stream.renditions
        ):
            reader.close()
            return False
        self._add(hls_stream, rendition, reader, expect_video=expect_video)
        return True

    def _add(self, hls_stream: HlsStream, name: str, reader: Reader, *, expect_video: bool | None) -> Rendition:
        segmenter = Segmenter(
            segment_duration=self.segment_duration,
            window=self.window,
            container=self.format,
            tag=hls_stream.tag,
            expect_video=expect_video,
            part_duration=self.part_duration if self.low_latency else None,
        )
        rendition = Rendition(name, segmenter, reader)
        hls_stream.renditions[name] = rendition
        assert self._loop is not None
        rendition.task = self._loop.create_task(self._mux(rendition), name=f"hls-mux:{hls_stream.name}/{name}")
        self.stats.renditions_started += 1
        return rendition

    async def _mux(self, rendition: Rendition) -> None:
        reader = rendition.reader
        segmenter = rendition.segmenter
        stats = self.stats
        errors = 0
        try:
            while True:
                unit = await reader.read()
                if unit is None:
                    break
                if segmenter.expect_video is None and not segmenter.started:
                    segmenter.expect_video = expects_video(reader.stream)
                if reader.skips != rendition._seen_skips:
                    stats.reader_skips += reader.skips - rendition._seen_skips
                    rendition._seen_skips = reader.skips
                    segmenter.mark_gap()
                started = time.perf_counter()
                version = segmenter.version
                try:
                    made = segmenter.push(unit, self.clock())
                except Exception:
                    errors += 1
                    stats.muxer_errors += 1
                    if errors <= 3:
                        log.exception("hls %s: a unit could not be packaged", rendition.reader.name)
                    segmenter.mark_gap()
                    continue
                if segmenter.version != version:  # a new part or segment
                    async with rendition.changed:
                        rendition.changed.notify_all()
                if made:
                    self._account(made)
                    latency = time.perf_counter() - started
                    stats.list_latency_count += 1
                    stats.list_latency_sum += latency
                    stats.list_latency_max = max(stats.list_latency_max, latency)
        finally:
            if reader.skips != rendition._seen_skips:
                stats.reader_skips += reader.skips - rendition._seen_skips
                rendition._seen_skips = reader.skips
            reader.close()
            if not segmenter.ended:
                try:
                    self._account(segmenter.finish(self.clock()))
                except Exception:
                    stats.muxer_errors += 1
                    log.exception("hls %s: closing the last segment failed", rendition.reader.name)
            rendition.done = True
            async with rendition.changed:
                rendition.changed.notify_all()

    def _account(self, segments) -> None:
        for segment in segments:
            self.stats.segments_made += 1
            self.stats.segment_bytes += len(segment.data)
            if segment.discontinuity:
                self.stats.discontinuities += 1

    # --- lookups ---------------------------------------------------------------------------

    def stream_names(self) -> list[str]:
        return list(self._streams)

    def has_stream(self, stream_name: str) -> bool:
        return stream_name in self._streams

    def rendition(self, stream_name: str, rendition: str) -> Rendition | None:
        hls_stream = self._streams.get(stream_name)
        return None if hls_stream is None else hls_stream.renditions.get(rendition)

    def renditions(self, stream_name: str) -> list[dict]:
        """JSON-ready facts of each rendition that has segments: name, codecs, width,
        height, bandwidth (peak bit/s), average_bandwidth, frame_rate, container,
        playlist (relative to ``/live/NAME/``), segments (listed), ended."""
        hls_stream = self._streams.get(stream_name)
        if hls_stream is None:
            return []
        return [r.info() for r in self._ordered(hls_stream) if r.ready]

    def master_playlist(self, stream_name: str, uri_suffix: str = "") -> str | None:
        """The master playlist, or None if the stream is unknown or has no segment yet."""
        hls_stream = self._streams.get(stream_name)
        if hls_stream is None:
            return None
        variants = [r.variant() for r in self._ordered(hls_stream) if r.ready]
        if not variants:
            return None
        independent = all(r.segmenter.playlist().independent_segments for r in hls_stream.renditions.values() if r.ready)
        return render_master_playlist(variants, uri_suffix, independent_segments=independent)

    def master_playlist_bytes(self, stream_name: str) -> bytes | None:
        """``master_playlist(stream_name)`` encoded, rendered again only when a rendition's
        playlist changed (bandwidths and codecs follow the segments)."""
        hls_stream = self._streams.get(stream_name)
        if hls_stream is None:
            return None
        key = tuple((r.name, r.segmenter.version) for r in hls_stream.renditions.values() if r.ready)
        cached = hls_stream.master_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        text = self.master_playlist(stream_name)
        if text is None:
            return None
        data = text.encode()
        hls_stream.master_cache = (key, data)
        return data

    def broadcast(self, stream_name: str) -> Stream | None:
        """The hub's stream whose HLS is served under ``stream_name`` (live, or ended and
        kept for ``hls.keep_after_end``): who may play it is decided on it."""
        hls_stream = self._streams.get(stream_name)
        return hls_stream.stream if hls_stream is not None else None

    def media_playlist_bytes(self, stream_name: str, rendition: str, *, delta: bool = False,
                             require_segment: bool = True, uri_suffix: str = "") -> bytes | None:
        """``media_playlist`` as bytes, encoded once per playlist version (with the
        rendition reports of its siblings under Low-Latency HLS). ``delta``: a Playlist
        Delta Update. ``require_segment=False`` also answers while only parts exist.
        ``uri_suffix`` (a private stream's grant, ``?pt=...``) goes on every URI listed;
        such a playlist is one viewer's, rendered for them."""
        hls_stream = self._streams.get(stream_name)
        if hls_stream is None:
            return None
        r = hls_stream.renditions.get(rendition)
        if r is None:
            return None
        segmenter = r.segmenter
        if not segmenter.segments and (require_segment or segmenter.last_part() is None):
            return None
        reports = self._reports(hls_stream, r) if self.low_latency and not segmenter.ended else ()
        if uri_suffix:
            return r.playlist(uri_suffix, delta=delta and self.low_latency, reports=reports).encode()
        return r.playlist_bytes(delta=delta and self.low_latency, reports=reports)

    def _reports(self, hls_stream: HlsStream, rendition: Rendition) -> tuple[RenditionReport, ...]:
        reports = []
        for other in self._ordered(hls_stream):
            if other is not rendition:
                report = other.report(f"../{other.name}/{names.PLAYLIST}")
                if report is not None:
                    reports.append(report)
        return tuple(reports)

    async def wait_playlist(self, stream_name: str, rendition: str, msn: int, part: int | None,
                            *, timeout: float) -> bool:
        """Blocking playlist reload (§6.2.5.2): wait until the rendition holds segment
        ``msn`` (or part ``part`` of it, or anything later), it ended, or it went away.
        False when ``timeout`` passed first (the caller answers 503)."""
        r = self.rendition(stream_name, rendition)
        if r is None:
            return True
        segmenter = r.segmenter

        def reached() -> bool:
            return segmenter.ended or r.done or segmenter.has_reached(msn, part)

        if reached():
            return True
        try:
            async with asyncio.timeout(timeout):
                async with r.changed:
                    await r.changed.wait_for(reached)
        except TimeoutError:
            return False
        return True

    async def wait_part(self, stream_name: str, rendition: str, file_name: str, *, timeout: float) -> bytes | None:
        """A part's bytes; for the part being built (the preload hint) wait, up to
        ``timeout``, until it is complete. None for any other unknown part."""
        hls_stream = self._streams.get(stream_name)
        r = hls_stream.renditions.get(rendition) if hls_stream is not None else None
        if r is None:
            return None
        segmenter = r.segmenter
        data = segmenter.get(file_name)
        if data is not None:
            return data
        parsed = names.parse_part_name(file_name)
        if (
            not self.low_latency
            or parsed is None
            or parsed[0] != hls_stream.tag
            or segmenter.ended
            or (parsed[1], parsed[2]) != segmenter.next_part()
        ):
            return None

        def done() -> bool:
            return segmenter.get(file_name) is not None or segmenter.ended or r.done

        try:
            async with asyncio.timeout(timeout):
                async with r.changed:
                    await r.changed.wait_for(done)
        except TimeoutError:
            return None
        return segmenter.get(file_name)

    def media_playlist(self, stream_name: str, rendition: str, uri_suffix: str = "") -> str | None:
        """A rendition's media playlist, or None if unknown or still without a segment."""
        r = self.rendition(stream_name, rendition)
        if r is None or not r.ready:
            return None
        return r.playlist(uri_suffix)

    def get_file(self, stream_name: str, rendition: str, file_name: str) -> bytes | None:
        """Bytes of an init segment or a (listed or still retained) media segment."""
        r = self.rendition(stream_name, rendition)
        if r is None:
            return None
        return r.segmenter.get(file_name)

    def is_starting(self, stream_name: str, rendition: str = SOURCE) -> bool:
        """The rendition is live but lists no segment yet: its first one is being made
        (it closes at the encoder's second keyframe, however far apart they are)."""
        r = self.rendition(stream_name, rendition)
        return r is not None and not r.ready and not r.done and not r.segmenter.ended

    async def wait_ready(self, stream_name: str, rendition: str = SOURCE, *, timeout: float) -> bool:
        """Wait (bounded) until the rendition lists its first segment; False if it does not
        exist, ends without any, or ``timeout`` passes."""
        r = self.rendition(stream_name, rendition)
        if r is None:
            return False
        if r.ready:
            return True
        try:
            async with r.changed:
                await asyncio.wait_for(r.changed.wait_for(lambda: r.ready or r.done), timeout)
        except asyncio.TimeoutError:
            return False
        return r.ready

    def memory_bytes(self) -> int:
        """Bytes of segments and init segments held (all streams)."""
        total = 0
        for hls_stream in self._streams.values():
            for r in hls_stream.renditions.values():
                total += sum(len(r.segmenter.get(n) or b"") for n in r.segmenter.file_names())
        return total

    @staticmethod
    def _ordered(hls_stream: HlsStream) -> list[Rendition]:
        renditions = list(hls_stream.renditions.values())
        renditions.sort(key=lambda r: r.name != SOURCE)
        return renditions
