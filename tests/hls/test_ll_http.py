"""Low-Latency HLS over HTTP, in process: a real Hub fed synthetic units at real-time pace,
the HLS routes in an aiohttp test server. Blocking reload (§6.2.5.2), preload hints
(§6.2.6), delta updates, rendition reports, cache headers, and plain HLS when
``hls.low_latency`` is off. (tests/e2e/test_ll_hls_conformance.py does the same against
real RTMP publishers and players.)"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp.test_utils import TestClient, TestServer

from mediasrv.hls import names
from mediasrv.httpkit.keys import HLS_SERVICE
from tests.hls.conftest import Publisher, hls_config, make_app, parse_media_playlist, synthetic, until
from tests.hls.ll_rules import check_ll_playlist, last_part_position


@contextlib.asynccontextmanager
async def live(name="s", *, seconds=30.0, low_latency=True, renditions=("source",), **config):
    """A stream published at real-time pace for ``seconds``; yields (client, service, pusher)."""
    config.setdefault("segment_duration", 1.0)
    app, hub = make_app(hls_config(low_latency=low_latency, **config))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        pub = hub.publish(name, Publisher())
        extra = [r for r in renditions if r != "source"]
        units = synthetic(seconds, fps=25, gop=25)
        stop = asyncio.Event()

        async def push():
            started = time.monotonic()
            for unit in units:
                if stop.is_set():
                    return
                delay = unit.dts / 1000 - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing a live encoder
                pub.push(unit)
            pub.detach(clean=True)

        task = asyncio.ensure_future(push())
        await until(service, name, lambda s: s.started, timeout=5)
        stream = hub.get(name)
        for rendition in extra:  # a second rendition of the same media (as a transcoder adds)
            assert service.add_rendition(name, rendition, stream.subscribe(from_gop=True, name=rendition))
        try:
            yield client, service, pub, stop
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def get(client, path):
    started = time.monotonic()
    response = await client.get(path)
    body = await response.read()
    return response.status, body, response.headers, time.monotonic() - started


async def test_blocking_reload_answers_as_soon_as_the_next_part_is_complete():
    async with live() as (client, service, _, _):
        await until(service, "s", lambda s: len(s.segments) >= 1)
        seg = service.rendition("s", "source").segmenter
        target = seg.part_target_ms / 1000
        late = []
        waited_total = 0.0
        for _ in range(8):
            msn, part = seg.next_part()
            status, body, headers, waited = await get(client, f"/live/s/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
            answered_at = time.time()  # the service's clock (Part.created_at) is time.time
            assert status == 200
            made = next(p for p in _parts(seg) if (p.msn, p.index) == (msn, part))
            late.append(answered_at - made.created_at)
            waited_total += waited
            pl = check_ll_playlist(body.decode(), live=True)
            assert last_part_position(pl) >= (msn, part)
            assert made.uri in [p.uri for s in pl.segments for p in s.parts] + [p.uri for p in pl.partial_parts]
            assert headers["Cache-Control"] == f"public, max-age={3 * pl.target_duration}"
        # Each answer came within one part target of its part being complete (in process:
        # milliseconds), and the requests did wait for the parts.
        assert 0 <= min(late) and max(late) <= target, late
        assert waited_total >= 8 * target / 3


def _parts(seg):
    open_parts = seg._open.parts if seg._open is not None else []
    return [p for s in seg.segments for p in s.parts] + list(open_parts)


async def test_blocking_reload_error_answers():
    async with live() as (client, service, _, _):
        seg = await until(service, "s", lambda s: len(s.segments) >= 1)
        base = "/live/s/source/index.m3u8"
        msn, part = seg.last_part()
        for query in ("_HLS_part=1", "_HLS_msn=x", "_HLS_msn=1&_HLS_part=-1", "_HLS_msn=-1",
                      f"_HLS_msn={seg.last_msn + 3}", f"_HLS_msn={msn}&_HLS_part={part + 11}",
                      f"_HLS_msn={msn + 1}&_HLS_part=10"):
            status, _, headers, waited = await get(client, f"{base}?{query}")
            assert status == 400, query
            assert headers["Cache-Control"] == "no-store" and waited < 0.2
        # Already there: answered at once.
        status, _, _, waited = await get(client, f"{base}?_HLS_msn={seg.last_msn}")
        assert status == 200 and waited < 0.2
        status, _, _, waited = await get(client, f"{base}?_HLS_msn={msn}&_HLS_part={part}")
        assert status == 200 and waited < 0.2


async def test_blocking_reload_gives_503_after_three_target_durations():
    async with live() as (client, service, _, stop):
        seg = await until(service, "s", lambda s: len(s.segments) >= 1)
        stop.set()  # the encoder stalls (the stream stays live)
        await asyncio.sleep(0.1)
        msn, part = seg.next_part()
        status, _, headers, waited = await get(client, f"/live/s/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part + 1}")
        assert status == 503 and headers["Cache-Control"] == "no-store"
        assert 3 * seg.target_duration - 0.05 <= waited <= 3 * seg.target_duration + 0.5


async def test_parameters_are_ignored_once_the_playlist_has_endlist():
    async with live(seconds=2.5) as (client, service, _, _):
        await until(service, "s", lambda s: s.ended, timeout=10)
        status, body, _, waited = await get(client, "/live/s/source/index.m3u8?_HLS_msn=99&_HLS_part=5")
        assert status == 200 and waited < 0.2
        pl = check_ll_playlist(body.decode(), live=False)
        assert pl.ended and not pl.preload_hints
        status, _, _, _ = await get(client, "/live/s/source/index.m3u8?_HLS_part=5")
        assert status == 400  # still malformed


async def test_preload_hint_request_waits_for_the_whole_part():
    async with live() as (client, service, _, _):
        seg = await until(service, "s", lambda s: len(s.segments) >= 1)
        status, body, _, _ = await get(client, "/live/s/source/index.m3u8")
        hint = parse_media_playlist(body.decode()).preload_hints[0]["URI"]
        assert seg.get(hint) is None
        status, data, headers, waited = await get(client, f"/live/s/source/{hint}")
        answered_at = time.time()
        assert status == 200 and data == seg.get(hint)
        made = next(p for p in _parts(seg) if p.uri == hint)
        # It waited for the part, then got it whole within a part target of it being complete.
        assert waited > 0 and 0 <= answered_at - made.created_at <= seg.part_target_ms / 1000
        assert headers["Content-Length"] == str(len(data)) and "immutable" in headers["Cache-Control"]
        # A part beyond the hint, of another broadcast, or a name outside the naming scheme
        # (no such resource: 404, not 400): no waiting.
        msn, part = seg.next_part()
        for name, expected in ((names.part_name(seg.tag, msn, part + 1), 404),
                               (names.part_name(seg.tag, msn + 1, 0), 404),
                               (names.part_name("zz", msn, part), 404),
                               ("part_" + seg.tag + "_1.m4s", 404)):
            status, _, headers, waited = await get(client, f"/live/s/source/{name}")
            assert status == expected and waited < 0.2 and headers["Cache-Control"] == "no-store", name


async def test_delta_updates_and_rendition_reports():
    async with live(renditions=("source", "copy"), window=10) as (client, service, _, _):
        await until(service, "s", lambda s: len(s.segments) >= 8, timeout=15)
        await until(service, "s", lambda s: len(s.segments) >= 8, rendition="copy", timeout=15)
        status, full, _, _ = await get(client, "/live/s/source/index.m3u8")
        status, delta, _, _ = await get(client, "/live/s/source/index.m3u8?_HLS_skip=YES")
        full_pl, delta_pl = parse_media_playlist(full.decode()), check_ll_playlist(delta.decode(), live=True)
        assert delta_pl.skipped_segments >= 1
        assert delta_pl.media_sequence == full_pl.media_sequence
        assert [s.uri for s in delta_pl.segments] == [s.uri for s in full_pl.segments[delta_pl.skipped_segments:]]
        # Each rendition reports the other, as the other's own playlist shows it.
        for this, other in (("source", "copy"), ("copy", "source")):
            status, body, _, _ = await get(client, f"/live/s/{this}/index.m3u8")
            pl = check_ll_playlist(body.decode(), live=True)
            assert [r["URI"] for r in pl.rendition_reports] == [f"../{other}/index.m3u8"]
            status, body, _, _ = await get(client, f"/live/s/{other}/index.m3u8")
            other_last = last_part_position(parse_media_playlist(body.decode()))
            report = pl.rendition_reports[0]
            reported = (int(report["LAST-MSN"]), int(report["LAST-PART"]))
            assert reported <= other_last
            assert other_last[0] - reported[0] <= 1


async def test_plain_hls_when_low_latency_is_off():
    async with live(low_latency=False) as (client, service, _, _):
        seg = await until(service, "s", lambda s: len(s.segments) >= 1)
        status, body, headers, waited = await get(client, "/live/s/source/index.m3u8?_HLS_msn=50&_HLS_part=3")
        text = body.decode()
        assert status == 200 and waited < 0.2 and headers["Cache-Control"] == "max-age=1"
        for tag in ("#EXT-X-PART", "SERVER-CONTROL", "PRELOAD-HINT", "RENDITION-REPORT", "#EXT-X-SKIP"):
            assert tag not in text
        assert not any(names.is_part_name(n) for n in seg.file_names())
