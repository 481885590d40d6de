"""The asyncio side in-process: hub → TranscodeService (real worker processes) → HlsService.

Units of a real encoded stream are published into the hub at the pace of their
timestamps, as a live publisher would; no HTTP here (tests/e2e/test_transcode.py has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time


from mediasrv.config import build_config
from mediasrv.hub import Hub
from mediasrv.media.types import TrackKind
from mediasrv.transcode import service as transcode_module
from mediasrv.delivery.hls_service import HlsService
from mediasrv.transcode.service import TranscodeService
from tests.hls.conftest import Publisher, encode
from tests.transcode.conftest import process_alive, wait_gone

LADDER = [
    {"name": "240p", "height": 240, "video_bitrate": 400000, "maxrate": 450000, "bufsize": 900000},
    {"name": "144p", "height": 144, "video_bitrate": 150000, "maxrate": 170000, "bufsize": 340000},
]


@contextlib.asynccontextmanager
async def services(**hls):
    config = build_config({"hls": {"segment_duration": 1.0, "window": 30, **hls},
                           "transcode": {"ladder": LADDER, "max_queue_seconds": 3.0}})
    hub = Hub(reconnect_grace=0)
    service = HlsService(config, hub)
    await service.start()
    transcoder = TranscodeService(config, hub, service)
    await transcoder.start()
    try:
        yield hub, service, transcoder
    finally:
        pids = transcoder.worker_pids()
        hub.close()
        await transcoder.stop()
        await service.stop()
        for pid in pids:
            assert wait_gone(pid, 5), f"worker {pid} left behind"


async def publish(hub, name: str, units, *, start: float | None = None, until_ms: float | None = None):
    """Push ``units`` paced by their DTS; returns the publication (still attached)."""
    publication = hub.publish(name, Publisher())
    await push(publication, units, start=start, until_ms=until_ms)
    return publication


async def push(publication, units, *, start: float | None = None, until_ms: float | None = None):
    start = time.monotonic() if start is None else start
    for unit in units:
        if until_ms is not None and unit.dts >= until_ms:
            break
        ahead = unit.dts / 1000 - (time.monotonic() - start)
        if ahead > 0:
            await asyncio.sleep(ahead)  # pacing a live publisher
        publication.push(unit)


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def boundaries(service, name: str, rendition: str, pts_of_dts: dict[int, int] | None = None) -> list[tuple[int, float]]:
    """(start time in presentation ms, EXTINF) of every segment a rendition made."""
    segmenter = service.rendition(name, rendition).segmenter
    out = []
    for s in list(segmenter.removed) + list(segmenter.segments):
        start = pts_of_dts[s.start_dts] if pts_of_dts is not None else s.start_dts
        out.append((start, round(s.duration, 3)))
    return out


async def test_rungs_are_served_with_the_segment_boundaries_of_the_source():
    encoded = encode(seconds=6.0, fps=25, gop=25)
    units = list(encoded.units)
    async with services() as (hub, service, transcoder):
        publication = await publish(hub, "s", units)
        publication.detach(clean=True)
        for rendition in ("240p", "144p"):
            await wait_for(lambda r=rendition: (x := service.rendition("s", r)) is not None and x.done, 30,
                           f"rendition {rendition} to end")
        master = service.master_playlist("s")
        assert master.count("#EXT-X-STREAM-INF") == 3
        assert "RESOLUTION=320x240" in master and "RESOLUTION=192x144" in master
        infos = {r["name"]: r for r in service.renditions("s")}
        assert infos["240p"]["codecs"].startswith("avc1.") and infos["240p"]["codecs"].endswith(",mp4a.40.2")
        assert (infos["144p"]["width"], infos["144p"]["height"]) == (192, 144)
        pts_of = {u.dts: u.pts for u in units if u.kind is TrackKind.VIDEO and u.keyframe}
        source = boundaries(service, "s", "source", pts_of)
        assert len(source) == 6
        assert boundaries(service, "s", "240p") == source
        assert boundaries(service, "s", "144p") == source
        for rendition in ("240p", "144p"):
            assert service.media_playlist("s", rendition).rstrip().endswith("#EXT-X-ENDLIST")
        await wait_for(lambda: not transcoder.sessions(), 10, "the session to finish")


async def test_a_killed_worker_is_restarted_while_source_plays_on():
    units = list(encode(seconds=10.0, fps=25, gop=25).units)
    async with services() as (hub, service, transcoder):
        start = time.monotonic()
        publication = hub.publish("k", Publisher())
        feeder = asyncio.ensure_future(push(publication, units, start=start))
        await wait_for(lambda: (r := service.rendition("k", "240p")) is not None and len(r.segmenter.segments) >= 2,
                       20, "the 240p rung")
        session = transcoder.session("k")
        pid = session.worker.pid
        source_before = len(service.rendition("k", "source").segmenter.segments)
        rung_before = len(service.rendition("k", "240p").segmenter.segments)
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: session.stats.restarts == 1, 10, "the restart")
        assert session.stats.crashes == 1 and "SIGKILL" in session.stats.last_exit
        assert all(r.restarts == 1 for r in session.stats.rungs.values())
        await wait_for(lambda: session.worker is not None and session.worker.pid != pid, 10, "a new worker")
        await wait_for(lambda: len(service.rendition("k", "240p").segmenter.segments) >= rung_before + 2, 20,
                       "the rung to come back")
        await feeder
        publication.detach(clean=True)
        assert len(service.rendition("k", "source").segmenter.segments) >= source_before + 3
        assert not process_alive(pid)
        playlist = service.media_playlist("k", "240p")
        assert "#EXT-X-DISCONTINUITY" in playlist  # the rung's gap is declared
        # Once back, the rung cuts where the source cuts again.
        pts_of = {u.dts: u.pts for u in units if u.kind is TrackKind.VIDEO and u.keyframe}
        source_starts = {start for start, _ in boundaries(service, "k", "source", pts_of)}
        rung = boundaries(service, "k", "240p")
        assert {start for start, _ in rung} <= source_starts


async def test_a_hung_worker_is_killed_and_restarted(monkeypatch):
    monkeypatch.setattr(transcode_module, "HANG_TIMEOUT", 1.5)
    units = list(encode(seconds=9.0, fps=25, gop=25).units)
    async with services() as (hub, service, transcoder):
        publication = hub.publish("h", Publisher())
        feeder = asyncio.ensure_future(push(publication, units))
        await wait_for(lambda: service.rendition("h", "240p") is not None, 20, "the 240p rung")
        session = transcoder.session("h")
        pid = session.worker.pid
        os.kill(pid, signal.SIGSTOP)  # hangs: no heartbeat, no output
        try:
            await wait_for(lambda: session.stats.hangs == 1, 10, "the hang to be noticed")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        await wait_for(lambda: not process_alive(pid), 5, "the hung worker to be gone")
        await wait_for(lambda: session.worker is not None and session.worker.pid != pid, 10, "a new worker")
        await feeder
        publication.detach(clean=True)
        assert session.stats.restarts == 1


async def test_a_source_smaller_than_every_rung_is_not_decoded():
    units = list(encode(seconds=3.0, width=160, height=120).units)
    async with services() as (hub, service, transcoder):
        publication = await publish(hub, "tiny", units)
        session = transcoder.session("tiny")
        publication.detach(clean=True)
        await wait_for(lambda: service.rendition("tiny", "source").done, 10, "the source to end")
        await wait_for(lambda: session.stats.units_not_sent == len(units), 5, "every unit to be read")
        assert session.stats.units_sent == 0
        assert service.master_playlist("tiny").count("#EXT-X-STREAM-INF") == 1


async def test_stopping_the_service_kills_live_workers():
    units = list(encode(seconds=4.0, fps=25, gop=25).units)
    async with services() as (hub, service, transcoder):
        publication = hub.publish("x", Publisher())
        feeder = asyncio.ensure_future(push(publication, units))
        await wait_for(lambda: transcoder.worker_pids(), 10, "a worker")
        pid = transcoder.worker_pids()[0]
        await transcoder.stop()
        assert not process_alive(pid)
        await feeder


async def test_a_publisher_reconnect_continues_the_rungs():
    first = list(encode(seconds=3.0, fps=25, gop=25).units)
    config = build_config({"hls": {"segment_duration": 1.0, "window": 30},
                           "transcode": {"ladder": LADDER}})
    hub = Hub(reconnect_grace=5.0)
    service = HlsService(config, hub)
    await service.start()
    transcoder = TranscodeService(config, hub, service)
    await transcoder.start()
    try:
        publication = await publish(hub, "r", first)
        publication.detach(clean=False)  # dropped: the hub waits for the reconnect
        await asyncio.sleep(0.3)  # the encoder is away a moment (the scenario, not a wait for anything)
        again = hub.publish("r", Publisher())
        await push(again, first)  # its timestamps start at 0 again: the hub rebases them
        again.detach(clean=True)
        await wait_for(lambda: (r := service.rendition("r", "240p")) is not None and r.done, 30, "the rung to end")
        playlist = service.media_playlist("r", "240p")
        assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
        assert transcoder.sessions_started == 1
        segments = service.rendition("r", "240p").segmenter.segments
        assert len(segments) >= 5
    finally:
        hub.close()
        await transcoder.stop()
        await service.stop()


async def test_transcoding_off_builds_no_transcoder(tmp_path):
    from aiohttp import web

    from mediasrv.app.root import create_app
    from mediasrv.httpkit.keys import MONITOR, TRANSCODE_SERVICE

    config = build_config({"transcode": {"enabled": False}, "data_dir": str(tmp_path),
                           "rtmp": {"listen": "127.0.0.1:0"}})
    runner = web.AppRunner(create_app(config))
    await runner.setup()  # starts every component
    try:
        assert MONITOR in runner.app and TRANSCODE_SERVICE not in runner.app
    finally:
        await runner.cleanup()
