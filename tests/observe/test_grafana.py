"""The Grafana dashboard only queries metrics that mediasrv exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mediasrv.ingest.whip.server import WhipStats
from mediasrv.observe.metrics import HttpStats, MediasrvCollector, Sources

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "mediasrv-dashboard.json"


def _exported_names() -> set[str]:
    """Every family the collector produces, given components with no streams."""
    from types import SimpleNamespace

    rtmp = SimpleNamespace(stats=SimpleNamespace(connections_open=0, connections_total=0, publishes=0,
                                                 publish_refused=0, plays=0, takeovers=0, errors_by_kind={}))
    transcode = SimpleNamespace(metrics_snapshot=lambda: {})
    monitor = SimpleNamespace(streams={})
    whip = SimpleNamespace(stats=WhipStats())
    collector = MediasrvCollector(Sources(monitor=lambda: monitor, rtmp=lambda: rtmp, hls=lambda: None,
                                          http=lambda: HttpStats(), transcode=lambda: transcode,
                                          whip=lambda: whip))
    names = set()
    for family in collector.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_query_uses_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported_names()
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\bmediasrv_[a-z_]+", target["expr"]))
    assert used, "the dashboard queries nothing"
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"
