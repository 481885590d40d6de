"""HlsService lifecycle with a real Hub: reconnects, end, keep_after_end, replacement,
extra renditions, readers that fall behind, memory."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer

from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.media.types import TrackKind
from tests.hls.conftest import (
    Publisher,
    check_media_playlist,
    check_playlist_update,
    hls_config,
    make_app,
    until,
)


def first_seconds(encoded, ms):
    return [u for u in encoded.units if u.dts < ms]


async def test_reconnect_within_grace_continues_one_playlist(h264_aac):
    app, hub = make_app(hls_config())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        pub = hub.publish("r", Publisher())
        for unit in first_seconds(h264_aac, 2500):
            pub.push(unit)
        await until(service, "r", lambda s: len(s.segments) >= 2)

        statuses: list[int] = []
        playlists: list[str] = []
        stop = asyncio.Event()
        polled = asyncio.Event()

        async def poll():  # a player polling throughout (the sleep paces it)
            while not stop.is_set():
                for path in ("/live/r/index.m3u8", "/live/r/source/index.m3u8"):
                    r = await client.get(path)
                    statuses.append(r.status)
                    if path.endswith("source/index.m3u8") and r.status == 200:
                        playlists.append(await r.text())
                polled.set()
                await asyncio.sleep(0.005)

        poller = asyncio.ensure_future(poll())
        pub.detach(clean=False)  # the connection dropped: the stream waits for the grace
        for _ in range(3):  # the player polls a few times while the publisher is away
            polled.clear()
            await asyncio.wait_for(polled.wait(), 5)
        pub2 = hub.publish("r", Publisher())  # reconnect: timestamps start over at 0
        for unit in h264_aac.units:
            pub2.push(unit)
        await until(service, "r", lambda s: any(seg.discontinuity for seg in s.segments) and len(s.segments) >= 5)
        pub2.detach(clean=True)
        await until(service, "r", lambda s: s.ended)
        stop.set()
        await poller

        assert statuses and set(statuses) == {200}, "a player saw an error during the reconnect"
        parsed = [check_media_playlist(text, fmp4=True) for text in playlists]
        for old, new in zip(parsed, parsed[1:]):
            check_playlist_update(old, new)
        final = check_media_playlist(await (await client.get("/live/r/source/index.m3u8")).text(), fmp4=True)
        assert final.ended
        assert sum(s.discontinuity for s in final.segments) + final.discontinuity_sequence == 1
        # One sequence: numbers never restarted.
        seg = service.rendition("r", "source").segmenter
        assert [s.msn for s in seg.segments] == list(range(seg.media_sequence, seg.media_sequence + len(seg.segments)))
        assert service.stats.discontinuities == 1


async def test_end_keep_after_end_then_everything_is_freed(h264_aac):
    app, hub = make_app(hls_config(keep_after_end=0.2))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        freed = asyncio.Event()
        original = service._free

        def free(hls_stream):
            original(hls_stream)
            freed.set()

        service._free = free
        pub = hub.publish("e", Publisher())
        for unit in h264_aac.units:
            pub.push(unit)
        pub.detach(clean=True)  # the stop button: ends at once
        await until(service, "e", lambda s: s.ended)
        text = await (await client.get("/live/e/source/index.m3u8")).text()
        pl = check_media_playlist(text, fmp4=True)
        assert pl.ended
        uri = pl.segments[0].uri
        assert (await client.get(f"/live/e/source/{uri}")).status == 200
        assert service.memory_bytes() > 0
        await asyncio.wait_for(freed.wait(), 5)
        for path in ("/live/e/index.m3u8", "/live/e/source/index.m3u8", f"/live/e/source/{uri}"):
            assert (await client.get(path)).status == 404
        assert service.memory_bytes() == 0 and service.stream_names() == []


async def test_a_new_broadcast_replaces_the_ended_one(h264_aac):
    app, hub = make_app(hls_config())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        pub = hub.publish("n", Publisher())
        for unit in h264_aac.units:
            pub.push(unit)
        pub.detach(clean=True)
        old = await until(service, "n", lambda s: s.ended)
        old_uri = old.segments[0].uri
        pub = hub.publish("n", Publisher())
        assert (await client.get(f"/live/n/source/{old_uri}")).status == 404
        for unit in h264_aac.units:
            pub.push(unit)
        new = await until(service, "n", lambda s: len(s.segments) >= 1)
        assert new is not old and new.tag != old.tag
        text = await (await client.get("/live/n/source/index.m3u8")).text()
        pl = check_media_playlist(text, fmp4=True)
        assert not pl.ended and old_uri not in text


async def test_add_rendition_and_renditions_info(h264_aac):
    app, hub = make_app(hls_config())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        pub = hub.publish("m", Publisher())
        low = hub.publish("m/low", Publisher())  # how the transcoder publishes a rung
        assert service.stream_names() == ["m"]  # rendition streams are not served alone
        assert service.add_rendition("m", "low", hub.get("m/low").subscribe(name="hls:m/low"))
        assert not service.add_rendition("m", "low", hub.get("m/low").subscribe())  # taken
        assert not service.add_rendition("nope", "low", hub.get("m/low").subscribe())
        assert not service.add_rendition("m", "../x", hub.get("m/low").subscribe())
        for unit in h264_aac.units:
            pub.push(unit)
            low.push(unit)
        await until(service, "m", lambda s: len(s.segments) >= 2)
        await until(service, "m", lambda s: len(s.segments) >= 2, rendition="low")
        master = await (await client.get("/live/m/index.m3u8")).text()
        uris = [line for line in master.splitlines() if line and not line.startswith("#")]
        assert uris == ["source/index.m3u8", "low/index.m3u8"]
        r = await client.get("/live/m/low/index.m3u8")
        assert r.status == 200
        info = service.renditions("m")
        json.dumps(info)
        assert [i["name"] for i in info] == ["source", "low"]
        assert info[0]["codecs"] == "avc1.4d400d,mp4a.40.2"
        assert (info[0]["width"], info[0]["height"]) == (320, 240)
        assert info[0]["bandwidth"] >= info[0]["average_bandwidth"] > 0
        assert info[0]["frame_rate"] == 25.0 and info[0]["container"] == "fmp4"


async def test_a_reader_that_falls_behind_gives_a_discontinuity(h264_aac):
    app, hub = make_app(hls_config(), reader_queue_units=16)
    async with TestClient(TestServer(app, host="127.0.0.1")):
        service = app[HLS_SERVICE]
        pub = hub.publish("s", Publisher())
        units = h264_aac.units
        cut = next(i for i, u in enumerate(units) if u.dts >= 1500)
        for unit in units[:cut]:
            pub.push(unit)
            await asyncio.sleep(0)  # a publisher the muxer keeps up with
        await until(service, "s", lambda s: len(s.segments) >= 1)
        resume = next(i for i, u in enumerate(units) if u.dts >= 3000)
        for unit in units[cut:resume]:  # a burst the muxer cannot see: its queue overflows
            pub.push(unit)
        for unit in units[resume:]:  # the reader resumes at the keyframe at 3 s
            pub.push(unit)
            await asyncio.sleep(0)
        pub.detach(clean=True)
        seg = await until(service, "s", lambda s: s.ended)
        assert service.stats.reader_skips >= 1
        assert any(s.discontinuity for s in seg.segments)


async def test_counters_and_shutdown(h264_aac):
    app, hub = make_app(hls_config(format="mpegts"))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    service = app[HLS_SERVICE]
    pub = hub.publish("c", Publisher())
    for unit in h264_aac.units:
        pub.push(unit)
    seg = await until(service, "c", lambda s: len(s.segments) >= 3)
    rendition = service.rendition("c", "source")
    stats = service.stats
    assert stats.segments_made >= 3 and stats.segment_bytes > 0
    assert stats.list_latency_count >= 3 and 0 <= stats.list_latency_max < 1
    assert seg.tracks[TrackKind.VIDEO].codec_string == "avc1.4d400d"
    await client.close()  # cleanup_ctx stops the service
    assert rendition.task.done()
    assert service.stream_names() == [] and service.memory_bytes() == 0


async def test_audio_only_stream_announced_by_metadata():
    from tests.hls.conftest import encode

    encoded = encode(video=False, seconds=3.0)
    app, hub = make_app(hls_config(segment_duration=1.0))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        service = app[HLS_SERVICE]
        pub = hub.publish("radio", Publisher())
        pub.set_metadata({"audiocodecid": 10, "audiosamplerate": 48000})
        for unit in encoded.units:
            pub.push(unit)
        seg = await until(service, "radio", lambda s: len(s.segments) >= 2)
        # Announced audio-only: no wait for video, the first segment starts with the first frame.
        assert seg.segments[0].start_dts == encoded.units[0].dts
        master = await (await client.get("/live/radio/index.m3u8")).text()
        assert 'CODECS="mp4a.40.2"' in master and "RESOLUTION" not in master
