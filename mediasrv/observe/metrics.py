"""Prometheus exposition, collected at scrape time from components' own counters.

Components never import prometheus_client (docs/architecture.md, rule 7): they keep plain
numbers, and ``MediasrvCollector`` reads them when /metrics is scraped. Series of a stream
go away when the monitor forgets it (``hls.keep_after_end`` after the end), so cardinality
stays bounded by the live streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mediasrv.httpkit.stats import HttpStats


@dataclass(slots=True)
class Sources:
    """Where the collector reads from; each getter may return None when absent."""

    monitor: Callable[[], object | None]
    rtmp: Callable[[], object | None]
    hls: Callable[[], object | None]
    http: Callable[[], HttpStats | None]
    transcode: Callable[[], object | None] = lambda: None
    #: ``(ClusterBus, OriginFetcher)`` in a cluster (docs/cluster.md), else None.
    cluster: Callable[[], tuple | None] = lambda: None
    #: The WHIP server (``ingest/whip``), absent when off.
    whip: Callable[[], object | None] = lambda: None


class MediasrvCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Metric]:
        yield from self._streams()
        yield from self._rtmp()
        yield from self._whip()
        yield from self._hls()
        yield from self._http()
        yield from self._transcode()
        yield from self._cluster()

    def _streams(self) -> Iterable[Metric]:
        monitor = self.sources.monitor()
        live = GaugeMetricFamily("mediasrv_stream_live", "1 while the stream is live, 0 after it ended", labels=["stream"])
        viewers = GaugeMetricFamily("mediasrv_stream_viewers", "Viewers watching now (clients: address + user agent, with an open session)", labels=["stream"])
        peak = GaugeMetricFamily("mediasrv_stream_viewers_peak", "Most viewers watching at once in this broadcast (clients, as mediasrv_stream_viewers)", labels=["stream"])
        unique = GaugeMetricFamily("mediasrv_stream_viewers_unique", "Distinct viewers of this broadcast (clients); never below the peak", labels=["stream"])
        per_rendition = GaugeMetricFamily("mediasrv_stream_rendition_viewers", "Viewers watching now per rendition (clients)",
                                          labels=["stream", "rendition"])
        watch = CounterMetricFamily("mediasrv_stream_watch_seconds", "Total watch time of this broadcast", labels=["stream"])
        sent = CounterMetricFamily("mediasrv_stream_sent_bytes", "HLS bytes sent to viewers", labels=["stream"])
        received = CounterMetricFamily("mediasrv_stream_ingest_bytes", "Media bytes received from the publisher",
                                       labels=["stream"])
        bitrate = GaugeMetricFamily("mediasrv_stream_ingest_rate_bytes_per_second",
                                    "Ingest rate over the last 5 s (bytes per second)", labels=["stream"])
        fps = GaugeMetricFamily("mediasrv_stream_video_frames_per_second", "Ingest frame rate over the last 5 s",
                                labels=["stream"])
        keyint = GaugeMetricFamily("mediasrv_stream_keyframe_interval_seconds", "Last interval between video keyframes",
                                   labels=["stream"])
        corrections = CounterMetricFamily("mediasrv_stream_timestamp_corrections",
                                          "Timestamps corrected on ingest (wraps, non-monotonic, jumps)",
                                          labels=["stream", "track"])
        reconnects = CounterMetricFamily("mediasrv_stream_reconnects", "Publisher reconnects within the grace",
                                         labels=["stream"])
        skips = CounterMetricFamily("mediasrv_stream_reader_skips", "Times a reader fell behind and skipped to a keyframe",
                                    labels=["stream"])
        warnings = GaugeMetricFamily("mediasrv_stream_health_warnings", "Health warnings active now", labels=["stream"])
        if monitor is not None:
            for name, health in list(monitor.streams.items()):
                snap = monitor.snapshot(health)
                stream = health.stream
                live.add_metric([name], 1.0 if snap["live"] else 0.0)
                viewers.add_metric([name], snap["viewers"])
                peak.add_metric([name], snap["peak_viewers"])
                unique.add_metric([name], snap["unique_viewers"])
                for rendition, count in sorted(snap["viewers_per_rendition"].items()):
                    per_rendition.add_metric([name, rendition], count)
                watch.add_metric([name], health.audience.watch_seconds)
                sent.add_metric([name], health.audience.bytes_sent)
                received.add_metric([name], stream.stats.bytes_in)
                bitrate.add_metric([name], snap["bitrate_kbps"] * 1000 / 8)
                fps.add_metric([name], snap["fps"])
                if snap["keyframe_interval_ms"] is not None:
                    keyint.add_metric([name], snap["keyframe_interval_ms"] / 1000)
                for track, value in (snap["timestamp_corrections"] or {}).items():
                    corrections.add_metric([name, track], value)
                reconnects.add_metric([name], snap["reconnects"])
                skips.add_metric([name], snap["reader_skips"])
                warnings.add_metric([name], len(snap["warnings"]))
        yield from (live, viewers, peak, unique, per_rendition, watch, sent, received, bitrate, fps, keyint,
                    corrections, reconnects, skips, warnings)

    def _rtmp(self) -> Iterable[Metric]:
        server = self.sources.rtmp()
        if server is None:
            return
        stats = server.stats
        yield GaugeMetricFamily("mediasrv_rtmp_connections", "Open RTMP connections", value=stats.connections_open)
        yield CounterMetricFamily("mediasrv_rtmp_connections", "RTMP connections accepted", value=stats.connections_total)
        yield CounterMetricFamily("mediasrv_rtmp_publishes", "Publishes accepted", value=stats.publishes)
        yield CounterMetricFamily("mediasrv_rtmp_publish_refusals", "Publishes refused", value=stats.publish_refused)
        yield CounterMetricFamily("mediasrv_rtmp_plays", "RTMP plays accepted", value=stats.plays)
        yield CounterMetricFamily("mediasrv_rtmp_takeovers", "Publishes that took over a live stream", value=stats.takeovers)
        errors = CounterMetricFamily("mediasrv_rtmp_errors", "RTMP connections closed for a reason, by kind", labels=["kind"])
        for kind, value in sorted(stats.errors_by_kind.items()):
            errors.add_metric([kind], value)
        yield errors

    def _whip(self) -> Iterable[Metric]:
        server = self.sources.whip()
        if server is None:
            return
        stats = server.stats
        yield GaugeMetricFamily("mediasrv_whip_sessions_open", "Open WHIP sessions (setting up or live)",
                                value=stats.sessions_open)
        yield GaugeMetricFamily("mediasrv_whip_sessions_live", "WHIP sessions publishing into a stream",
                                value=stats.sessions_live)
        yield CounterMetricFamily("mediasrv_whip_sessions_answered", "WHIP offers answered (201)", value=stats.sessions_total)
        yield CounterMetricFamily("mediasrv_whip_publishes", "WHIP sessions whose media reached the hub",
                                  value=stats.publishes)
        yield CounterMetricFamily("mediasrv_whip_takeovers", "WHIP publishes that took over a live stream",
                                  value=stats.takeovers)
        refused = CounterMetricFamily("mediasrv_whip_refusals", "WHIP requests refused, by reason",
                                      labels=["reason"])
        for reason, value in sorted(stats.refused.items()):
            refused.add_metric([reason], value)
        yield refused
        yield CounterMetricFamily("mediasrv_whip_reaped", "WHIP sessions reaped without media within "
                                                          "webrtc.setup_timeout", value=stats.reaped)
        yield CounterMetricFamily("mediasrv_whip_failures", "WHIP sessions whose ICE or DTLS never completed, "
                                                            "and encoder failures", value=stats.failures)
        yield CounterMetricFamily("mediasrv_whip_lost", "Live WHIP sessions whose client went without a DELETE "
                                                        "(stream orphaned)", value=stats.lost)
        yield CounterMetricFamily("mediasrv_whip_idle_timeouts", "Live WHIP sessions closed after "
                                  "webrtc.idle_timeout without media (stream orphaned)", value=stats.idle_timeouts)
        yield CounterMetricFamily("mediasrv_whip_deletes", "WHIP sessions ended by the client's DELETE",
                                  value=stats.deleted)

    def _hls(self) -> Iterable[Metric]:
        service = self.sources.hls()
        if service is None:
            return
        stats = service.stats
        for attr, name, doc in (
            ("segments", "mediasrv_hls_segments", "HLS segments made"),
            ("segment_bytes", "mediasrv_hls_segment_bytes", "Bytes of HLS segments made"),
        ):
            if hasattr(stats, attr):
                yield CounterMetricFamily(name, doc, value=getattr(stats, attr))
        if hasattr(service, "memory_bytes"):
            yield GaugeMetricFamily("mediasrv_hls_memory_bytes", "Bytes of playlists and segments held in memory",
                                    value=service.memory_bytes())

    def _http(self) -> Iterable[Metric]:
        stats = self.sources.http()
        if stats is None:
            return
        requests = CounterMetricFamily("mediasrv_http_requests", "HTTP requests by kind", labels=["kind"])
        for kind, value in sorted(stats.requests.items()):
            requests.add_metric([kind], value)
        errors = CounterMetricFamily("mediasrv_http_errors", "HTTP error answers by kind and class",
                                     labels=["kind", "class"])
        for (kind, klass), value in sorted(stats.errors.items()):
            errors.add_metric([kind, klass], value)
        yield requests
        yield errors
        yield CounterMetricFamily("mediasrv_http_blocking_reload_waits", "Blocking playlist reloads that waited",
                                  value=stats.blocking_waits)
        yield CounterMetricFamily("mediasrv_http_blocking_reload_wait_seconds", "Time blocking playlist reloads waited",
                                  value=stats.blocking_wait_seconds)
        yield CounterMetricFamily("mediasrv_http_send_timeouts",
                                  "Connections closed because the client took none of its answer for http.send_timeout",
                                  value=stats.send_timeouts)

    def _transcode(self) -> Iterable[Metric]:
        service = self.sources.transcode()
        if service is None or not hasattr(service, "metrics_snapshot"):
            return
        speed = GaugeMetricFamily("mediasrv_transcode_speed_ratio", "Encode speed as a multiple of real time",
                                  labels=["stream", "rendition"])
        delay = GaugeMetricFamily("mediasrv_transcode_queue_delay_seconds", "Input queue delay of the worker",
                                  labels=["stream"])
        dropped = CounterMetricFamily("mediasrv_transcode_dropped_frames", "Frames dropped to keep real time",
                                      labels=["stream", "rendition"])
        restarts = CounterMetricFamily("mediasrv_transcode_worker_restarts", "Transcoder worker restarts",
                                       labels=["stream"])
        for name, snap in service.metrics_snapshot().items():
            delay.add_metric([name], snap.get("queue_delay_seconds", 0.0))
            restarts.add_metric([name], snap.get("restarts", 0))
            for rung, values in snap.get("rungs", {}).items():
                speed.add_metric([name, rung], values.get("speed", 0.0))
                dropped.add_metric([name, rung], values.get("dropped_frames", 0))
        yield from (speed, delay, dropped, restarts)


    def _cluster(self) -> Iterable[Metric]:
        parts = self.sources.cluster()
        if parts is None:
            return
        bus, edge = parts
        totals = GaugeMetricFamily("mediasrv_cluster_stream_viewers",
                                   "Viewer sessions of a stream on every node of the cluster", labels=["stream"])
        names = set(bus.remote_viewers)
        local = bus.local_viewers()
        for name in sorted(names | set(local)):
            totals.add_metric([name], bus.total_viewers(name, local.get(name, 0)))
        yield totals
        yield GaugeMetricFamily("mediasrv_cluster_nodes", "Live nodes of the cluster", value=len(bus.nodes))
        yield GaugeMetricFamily("mediasrv_cluster_remote_streams", "Streams ingested by other nodes",
                                value=len(bus.remote_streams()))
        yield CounterMetricFamily("mediasrv_cluster_heartbeats", "Heartbeats written to Redis", value=bus.heartbeats)
        yield CounterMetricFamily("mediasrv_cluster_heartbeat_failures", "Heartbeats that failed",
                                  value=bus.heartbeat_failures)
        yield CounterMetricFamily("mediasrv_cluster_messages_dropped", "Commands and messages to Redis lost",
                                  value=bus.dropped)
        yield CounterMetricFamily("mediasrv_edge_origin_requests", "Requests this node made to origin nodes",
                                  value=edge.origin_requests)
        yield CounterMetricFamily("mediasrv_edge_origin_errors", "Origin requests that failed", value=edge.origin_errors)
        yield CounterMetricFamily("mediasrv_edge_cache_hits", "Edge answers from the file or playlist cache",
                                  value=edge.cache_hits)
        yield CounterMetricFamily("mediasrv_edge_coalesced", "Edge requests that waited on another's origin request",
                                  value=edge.coalesced)
        yield GaugeMetricFamily("mediasrv_edge_cache_bytes", "Bytes of files cached from origin nodes",
                                value=edge.memory_bytes())


def make_registry(sources: Sources) -> CollectorRegistry:
    """A registry of our own (not the process-global one) holding the collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MediasrvCollector(sources))
    return registry
