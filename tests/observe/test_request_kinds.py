"""Request kinds used as metric labels."""

from __future__ import annotations

import pytest

from mediasrv.observe.routes import kind_of_path


@pytest.mark.parametrize("path, kind", [
    ("/live/{name}/index.m3u8", "master"),
    ("/live/{name}/{rendition}/index.m3u8", "playlist"),
    ("/live/{name}/{rendition}/{file}", "segment"),
    ("/live/a/source/init_x_1.mp4", "init"),
    ("/live/a/source/part_x_3.2.m4s", "part"),
    ("/live/{name}/chat", "chat"),
    ("/vod/{id}/index.m3u8", "vod"),
    ("/metrics", "metrics"),
    ("/api/streams", "api"),
    ("/hls-seen/live/{name}/{rendition}/{file}", "media_seen"),
    ("/", "other"),
])
def test_kinds(path, kind):
    assert kind_of_path(path) == kind
