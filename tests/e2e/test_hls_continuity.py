"""End to end: HLS continuity across a real publisher's drop and reconnect, and the end.

Real FFmpeg CLI publishers (``-re``) into the whole app; a client that polls the media
and master playlists like a player and fetches every new segment (and init segment) as
soon as it is listed, plus hls.js in headless Chromium, follow the stream throughout:

- the first publisher is SIGKILLed mid-stream (no unpublish: the TCP connection just
  dies); a second one publishes the same name within ``hls.reconnect_grace``: one
  playlist goes on with exactly one EXT-X-DISCONTINUITY, MEDIA-SEQUENCE never goes back,
  the client sees only 200s, hls.js plays across the break, and every frame the hub
  received decodes from the served segments;
- the second publisher ends cleanly (FFmpeg sends FCUnpublish/deleteStream): the stream
  ends at once, EXT-X-ENDLIST appears without waiting for the (long) grace;
- ``hls.keep_after_end`` later, the playlists and segments are 404;
- a publisher that drops and does not come back ends the stream when the grace runs out.

Polling loops on HTTP resources are paced like a player's reloads and bounded by a
deadline; everything that has an event (stream start/end, a segment being listed) is awaited.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import aiohttp
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from tests.e2e.test_hls_playback import check_every_frame, fetch, fetch_all
from tests.hls.conftest import ParsedPlaylist, check_media_playlist, check_playlist_update, until
from tests.support.browser import chromium, open_player
from tests.support.clients import ffmpeg_push, start_ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e

RELOAD = 0.25  # the polling client's reload interval (a player's pace, not synchronisation)


class PollingClient:
    """Polls the master and media playlists and fetches every segment once it is listed.

    Records every (status, path) it got; checks each playlist on its own (RFC 8216) and
    against the previous one (§6.2.1: removal only from the front, MEDIA-SEQUENCE and
    DISCONTINUITY-SEQUENCE consistent). Stops after fetching everything of a playlist
    with EXT-X-ENDLIST.
    """

    def __init__(self, session: aiohttp.ClientSession, base: str, name: str, *, fmp4: bool) -> None:
        self.session = session
        self.master_url = f"{base}/live/{name}/index.m3u8"
        self.media_url = f"{base}/live/{name}/source/index.m3u8"
        self.segment_base = f"{base}/live/{name}/source/"
        self.fmp4 = fmp4
        self.responses: list[tuple[int, str]] = []
        self.playlists: list[ParsedPlaylist] = []
        self.fetched: dict[str, int] = {}
        self.media_sequences: list[int] = []
        self.polls = 0
        self.ended_at: float | None = None
        self._changed = asyncio.Condition()
        self.task: asyncio.Task | None = None

    async def _get(self, url: str) -> tuple[int, bytes]:
        async with self.session.get(url) as response:
            body = await response.read()
        self.responses.append((response.status, url))
        return response.status, body

    async def run(self) -> None:
        while True:
            await self._get(self.master_url)
            status, body = await self._get(self.media_url)
            if status == 200:
                playlist = check_media_playlist(body.decode(), fmp4=self.fmp4)
                if self.playlists:
                    check_playlist_update(self.playlists[-1], playlist)
                self.playlists.append(playlist)
                self.media_sequences.append(playlist.media_sequence)
                for segment in playlist.segments:
                    for uri in (segment.map_uri, segment.uri):
                        if uri is not None and uri not in self.fetched:
                            self.fetched[uri] = (await self._get(self.segment_base + uri))[0]
                if playlist.ended and self.ended_at is None:
                    self.ended_at = time.monotonic()
            self.polls += 1
            async with self._changed:
                self._changed.notify_all()
            if self.ended_at is not None:
                return
            await asyncio.sleep(RELOAD)

    def start(self) -> "PollingClient":
        self.task = asyncio.ensure_future(self.run())
        return self

    async def wait(self, predicate, timeout: float = 15.0) -> None:
        """Wait (bounded) until ``predicate(self)`` holds after one of the client's polls."""
        async def wait():
            async with self._changed:
                while not predicate(self):
                    if self.task is not None and self.task.done():
                        self.task.result()  # raise what the client hit
                        raise AssertionError("the polling client stopped")
                    await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def bad_responses(self) -> list[tuple[int, str]]:
        return [(s, u) for s, u in self.responses if s != 200]


async def stream_state(session: aiohttp.ClientSession, srv, name: str) -> str | None:
    async with session.get(f"{srv.http_url}/api/streams/{name}") as response:
        if response.status != 200:
            return None
        return json.loads(await response.read())["state"]


async def http_until(check, *, timeout: float, interval: float = 0.05) -> float:
    """Poll an HTTP resource (no event exists for it) until ``await check()`` is true;
    return the seconds it took. Bounded by ``timeout``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


@pytest.mark.parametrize("container", ["fmp4", "mpegts"])
async def test_killed_publisher_back_within_grace_continues_one_playlist(tmp_path, container):
    fmp4 = container == "fmp4"
    name = f"cont-{container}"
    keep_after_end = 3.0
    async with running_server(
        tmp_path, f"hls.format={container}", "hls.segment_duration=1", "hls.window=20",
        "hls.reconnect_grace=30", f"hls.keep_after_end={keep_after_end}",
    ) as srv, aiohttp.ClientSession() as session, chromium() as browser:
        recorder = StreamRecorder(srv.hub)
        service = srv.app[HLS_SERVICE]
        url = srv.rtmp_url(name)
        first = await start_ffmpeg_push(url, seconds=30)
        client = None
        try:
            await recorder.wait_started(name)
            await until(service, name, lambda s: len(s.segments) >= 1, timeout=15)
            client = PollingClient(session, srv.http_url, name, fmp4=fmp4).start()
            player = await open_player(browser, client.master_url)
            await until(service, name, lambda s: len(s.segments) >= 2, timeout=15)
            await client.wait(lambda c: len(c.fetched) >= 2 + fmp4)

            # The encoder dies: no FCUnpublish, no deleteStream, the TCP connection just drops.
            first.send_signal(signal.SIGKILL)
            await first.wait()
            await http_until(lambda: _is(stream_state(session, srv, name), "orphaned"), timeout=10)
            polls = client.polls
            await client.wait(lambda c: c.polls >= polls + 2)  # it keeps polling while nobody publishes
            assert "#EXT-X-ENDLIST" not in (await fetch(session, client.media_url))[1].decode()
            # The segment open when the publisher dropped closes when the next one arrives
            # (at most one GOP, 1 s here): the break lies within a second after what is listed.
            listed = sum(s.duration for s in client.playlists[-1].segments)

            # Back within the grace: the same name, a new connection (timestamps from 0
            # again). hls.js must play across the break while the stream is still live.
            second = asyncio.ensure_future(ffmpeg_push(url, seconds=4, realtime=True))
            await player.page.wait_for_function(
                "([t]) => window.playerErrors.length > 0 || document.getElementById('v').currentTime > t",
                arg=[listed + 1.5], timeout=20000,
            )
            status, output = await second
            assert status == 0, output
            pushed_at = time.monotonic()
            # A clean unpublish ends the stream at once, not after the 30 s grace.
            units = await recorder.wait_ended(name, timeout=5)
            ended_at = time.monotonic()
            await client.wait(lambda c: c.ended_at is not None, timeout=5)
            assert client.ended_at - pushed_at < 3.0
            await client.task
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
            if client is not None and client.task is not None and not client.task.done():
                client.task.cancel()

        # hls.js: past the break, no fatal error, no HTTP error, no failed request.
        errors = await player.errors()
        assert not errors["fatal"], errors
        assert not player.bad_responses(), player.bad_responses()
        # Low-Latency HLS: while nobody publishes, a blocking reload (_HLS_msn) is held by
        # the server (up to 3 target durations, then 503) and hls.js gives up on it first
        # (its own timeout, max(3 part targets, 0.8 target duration)) and asks again: an
        # aborted blocking reload is the player's choice, not a failed request.
        failures = [(text, url) for text, url in player.failures if not ("_HLS_msn=" in url and "ABORTED" in text)]
        assert not failures, player.failures
        await player.page.close()

        # The polling client: only 200s, one playlist that went on, one discontinuity.
        assert not client.bad_responses(), client.bad_responses()
        assert client.media_sequences == sorted(client.media_sequences)
        final = client.playlists[-1]
        assert final.ended and final.media_sequence == 0
        assert sum(s.discontinuity for s in final.segments) == 1
        assert not final.segments[0].discontinuity
        break_at = sum(s.duration for s in final.segments[: next(i for i, s in enumerate(final.segments) if s.discontinuity)])
        assert listed <= break_at < listed + 1.05
        assert set(client.fetched.values()) == {200}
        assert {s.uri for s in final.segments} <= set(client.fetched)
        # The playlist before the drop is a prefix of the final one (nothing was reset).
        before = next(p for p in client.playlists if len(p.segments) >= 2)
        assert [s.uri for s in before.segments] == [s.uri for s in final.segments[: len(before.segments)]]

        # Every frame the hub received (both sessions) decodes from the served segments.
        _, blobs = await fetch_all(session, client.media_url, fmp4=fmp4)
        check_every_frame(units, blobs, fmp4=fmp4)

        # Readable until keep_after_end has passed, then everything of the stream is gone.
        segment_url = client.segment_base + final.segments[0].uri
        await http_until(lambda: _status_is(session, client.media_url, 404), timeout=keep_after_end + 5)
        gone_after = time.monotonic() - ended_at
        assert keep_after_end - 0.5 <= gone_after <= keep_after_end + 2, gone_after
        for gone in (client.master_url, client.media_url, segment_url):
            assert (await fetch(session, gone))[0] == 404, gone


async def test_dropped_publisher_ends_the_stream_when_the_grace_runs_out(tmp_path):
    name = "dropped"
    grace = 1.5
    async with running_server(tmp_path, "hls.segment_duration=1", f"hls.reconnect_grace={grace}") as srv, \
            aiohttp.ClientSession() as session:
        recorder = StreamRecorder(srv.hub)
        service = srv.app[HLS_SERVICE]
        publisher = await start_ffmpeg_push(srv.rtmp_url(name), seconds=30)
        try:
            await recorder.wait_started(name)
            await until(service, name, lambda s: len(s.segments) >= 1, timeout=15)
        finally:
            publisher.send_signal(signal.SIGKILL)
            await publisher.wait()
        killed_at = time.monotonic()
        media_url = f"{srv.http_url}/live/{name}/source/index.m3u8"
        status, body, _ = await fetch(session, media_url)
        assert status == 200 and "#EXT-X-ENDLIST" not in body.decode()  # waiting for a reconnect
        await recorder.wait_ended(name, timeout=grace + 5)
        waited = time.monotonic() - killed_at
        assert grace - 0.3 <= waited <= grace + 3, waited
        await until(service, name, lambda s: s.ended, timeout=5)
        status, body, _ = await fetch(session, media_url)
        assert status == 200 and body.decode().rstrip().endswith("#EXT-X-ENDLIST")


async def _is(awaitable, value) -> bool:
    return (await awaitable) == value


async def _status_is(session: aiohttp.ClientSession, url: str, status: int) -> bool:
    return (await fetch(session, url))[0] == status
