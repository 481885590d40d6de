"""The cluster.* keys: defaults (a single node) and errors that name the key."""

from __future__ import annotations

import pytest

from mediasrv.config import ConfigError, load_config
from mediasrv.httpkit.keys import RTMP_SERVER
from mediasrv.app.root import create_app
from mediasrv.httpkit.keys import CLUSTER, EDGE
from mediasrv.cluster.node import advertise_url


def test_without_redis_url_nothing_of_the_cluster_runs():
    config = load_config(None, [])
    assert config.cluster.redis_url == "" and config.cluster.ingest is True
    app = create_app(config)
    assert CLUSTER not in app and EDGE not in app


@pytest.mark.parametrize("setting, key", [
    ("cluster.redis_url=http://redis:6379", "cluster.redis_url"),
    ("cluster.node_id=no spaces", "cluster.node_id"),
    ("cluster.advertise_url=ftp://x", "cluster.advertise_url"),
    ("cluster.key_prefix=a b", "cluster.key_prefix"),
    ("cluster.heartbeat=0", "cluster.heartbeat"),
    ("cluster.directory_ttl=3", "cluster.directory_ttl"),  # less than 2 x heartbeat 2
    ("cluster.edge_cache_mb=0", "cluster.edge_cache_mb"),
    ("cluster.colour=red", "cluster.colour"),
])
def test_bad_values_name_their_key(setting, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, ["cluster.redis_url=redis://127.0.0.1:6379/0", setting])


def test_a_pure_edge_needs_redis():
    with pytest.raises(ConfigError, match=r"cluster\.ingest"):
        load_config(None, ["cluster.ingest=false"])


def test_advertise_url_falls_back_to_the_public_url_then_the_listen_address():
    base = ["cluster.redis_url=redis://127.0.0.1:6379/0", "http.listen=10.0.0.5:8081"]
    assert advertise_url(load_config(None, base)) == "http://10.0.0.5:8081"
    assert advertise_url(load_config(None, [*base, "http.public_url=https://cdn.example/"])) == "https://cdn.example"
    assert advertise_url(load_config(None, [*base, "cluster.advertise_url=http://n1:8080/"])) == "http://n1:8080"


async def test_a_pure_edge_has_no_rtmp_listener(tmp_path):
    from tests.cluster.support import running_node, running_redis

    async with running_redis(tmp_path) as redis, running_node(tmp_path, redis, "edge", ingest=False) as edge:
        assert edge.app.get(RTMP_SERVER) is None
        assert edge.app[CLUSTER].nodes["edge"]["ingest"] is False
