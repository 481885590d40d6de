"""A private stream's HLS, in process: with two renditions (as the transcoder's ladder adds)
and Low-Latency HLS, every URI of the master and of each rendition's playlists (init
segments, segments, parts, the preload hint, rendition reports, blocking reloads and
delta updates) carries the viewer's grant, and nothing answers without a valid one.
(tests/e2e/test_backstage.py does this with real publishers, players and accounts.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urljoin

from aiohttp.test_utils import TestClient, TestServer

from mediasrv.community.live.gate import GrantGate
from mediasrv.community.live.grants import PlaybackGrants
from mediasrv.httpkit.keys import HLS_SERVICE, PLAYBACK, VIEWERS
from mediasrv.observe.viewers import ViewerTracker
from tests.hls.conftest import Publisher, hls_config, make_app, synthetic, until


@contextlib.asynccontextmanager
async def private_live(*, gate: bool = True, viewers: ViewerTracker | None = None):
    """A private stream ``p`` with renditions ``source`` and ``copy``, published at real-time
    pace; yields (client, service, gate, hub): ``gate`` issues grants (installed as the
    app's playback gate when ``gate``). ``viewers``: the app's viewer tracker, if any."""
    app, hub = make_app(hls_config(low_latency=True, segment_duration=1.0))
    grant_gate = GrantGate(PlaybackGrants("test-key", ttl=600))
    if gate:
        app[PLAYBACK] = grant_gate
    if viewers is not None:
        app[VIEWERS] = viewers
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        hub.set_backstage("p", True)
        pub = hub.publish("p", Publisher())
        units = synthetic(20.0, fps=25, gop=25)

        async def push():
            started = time.monotonic()
            for unit in units:
                delay = unit.dts / 1000 - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing a live encoder
                pub.push(unit)

        task = asyncio.ensure_future(push())
        await until(service, "p", lambda s: s.started, timeout=5)
        assert service.add_rendition("p", "copy", hub.get("p").subscribe(from_gop=True, name="copy"))
        try:
            await until(service, "p", lambda s: len(s.segments) >= 2, timeout=15)
            await until(service, "p", lambda s: len(s.segments) >= 2, rendition="copy", timeout=15)
            yield client, service, grant_gate, hub
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _uris(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            out.append(line)
        elif 'URI="' in line:
            out.append(line.split('URI="', 1)[1].split('"', 1)[0])
    return out


async def test_every_uri_carries_the_grant_and_nothing_answers_without_it():
    async with private_live() as (client, service, gate, hub):
        stream = hub.get("p")
        grant = gate.issue(stream).value
        master = await client.get(f"/live/p/index.m3u8?pt={grant}")
        assert master.status == 200 and master.headers["Cache-Control"] == "private, no-store"
        variants = _uris(await master.text())
        assert len(variants) == 2 and all(v.endswith(f"?pt={grant}") for v in variants), variants
        base = "/live/p/index.m3u8"
        fetched = []
        for variant in variants:
            url = urljoin(base, variant)
            for query in ("", "&_HLS_skip=YES"):  # a whole playlist, a delta update
                response = await client.get(url + query)
                assert response.status == 200 and response.headers["Cache-Control"] == "private, no-store"
                text = await response.text()
                uris = _uris(text)
                kinds = {"init": "init_", "segment": "seg_", "part": "part_", "report": "index.m3u8"}
                for kind, mark in kinds.items():
                    assert any(mark in u for u in uris), (kind, text)
                assert all(u.endswith(f"?pt={grant}") for u in uris), text
                fetched += [urljoin(url, u) for u in uris if "index.m3u8" not in u]
            # A blocking reload for the next part: its answer carries the grant too.
            last_msn = service.rendition("p", url.split("/")[-2]).segmenter.last_msn
            response = await client.get(f"{url}&_HLS_msn={last_msn + 1}&_HLS_part=0")
            assert response.status == 200 and response.headers["Cache-Control"] == "private, no-store"
            assert all(u.endswith(f"?pt={grant}") for u in _uris(await response.text()))
        for url in dict.fromkeys(fetched):
            if "part_" in url and url == fetched[-1]:
                continue  # the preload hint: answered once it is complete (tested elsewhere)
            response = await client.get(url)
            assert response.status == 200, url
            assert response.headers["Cache-Control"] == "private, no-store", url
            bare = await client.get(url.split("?")[0])
            assert bare.status == 404 and bare.headers["Cache-Control"] == "no-store", url

        scope = gate.scope(stream)
        expired = PlaybackGrants("test-key", ttl=600, clock=lambda: time.time() - 3600).issue("p", scope=scope).value
        other = gate.grants.issue("q", scope=scope).value
        for query in ("", "?pt=", f"?pt={expired}", f"?pt={other}", f"?pt={grant}x"):
            for path in ("/live/p/index.m3u8", "/live/p/source/index.m3u8", "/live/p/copy/index.m3u8",
                         "/live/p/source/index.m3u8?_HLS_msn=1"):
                sep = "&" if "?" in path and query else ""
                url = path + (sep + query.lstrip("?") if sep else query)
                response = await client.get(url)
                assert response.status == 404, url


async def test_without_a_gate_a_private_stream_is_nobodys():
    async with private_live(gate=False) as (client, _, gate, hub):
        grant = gate.issue(hub.get("p")).value
        for path in ("/live/p/index.m3u8", f"/live/p/index.m3u8?pt={grant}", "/live/p/source/index.m3u8"):
            assert (await client.get(path)).status == 404, path


async def _play_everything(client, master_url: str) -> int:
    """What a player does once: the master, each variant and every file they list; the
    number of requests made."""
    response = await client.get(master_url)
    assert response.status == 200, master_url
    count = 1
    for variant in _uris(await response.text()):
        url = urljoin(master_url, variant)
        playlist = await client.get(url)
        assert playlist.status == 200, url
        count += 1
        for uri in _uris(await playlist.text())[:3]:  # init, a segment or a part
            if "index.m3u8" not in uri:
                assert (await client.get(urljoin(url, uri))).status == 200, uri
                count += 1
    return count


async def test_backstage_players_are_not_counted_as_viewers_until_the_live_is_public():
    """The creator's and her moderators' players of a private live are not its audience:
    no session, no viewer, peak or unique, no bytes. Once the live is public, the same
    player (still presenting its grant) counts like any other."""
    viewers = ViewerTracker(idle_timeout=30)
    async with private_live(viewers=viewers) as (client, service, gate, hub):
        grant = gate.issue(hub.get("p")).value
        requests = await _play_everything(client, f"/live/p/index.m3u8?pt={grant}")
        assert requests >= 5
        audience = viewers.audience("p")
        assert (audience.concurrent, audience.peak, audience.unique, audience.requests, audience.bytes_sent,
                audience.sessions_total) == (0, 0, 0, 0, 0, 0)

        assert hub.make_public("p")
        await _play_everything(client, f"/live/p/index.m3u8?pt={grant}")
        audience = viewers.audience("p")
        assert (audience.concurrent, audience.peak, audience.unique) == (1, 1, 1)
        assert audience.requests > 0 and audience.bytes_sent > 0
