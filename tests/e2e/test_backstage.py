"""Backstage and ending a live from the server, with real publishers (issue 17, item 5).

A creator with ``backstage`` on goes live: the broadcast is private (not listed, no
go-live alert or webhook, not recorded, playable over HLS and RTMP only by the creator,
their moderators and operators) until ``POST /api/me/live/public``, when it is listed,
alerted and recorded. ``POST /api/me/live/end`` disconnects the publisher, the recording
awaits save or discard, and a new publish with the same key is refused for
``live.end_hold_seconds`` (driven by the server's monotonic clock, passed in), then
allowed again.

The publisher is a fixture parameter, so every test runs for RTMP (the FFmpeg CLI) and
for WHIP (FFmpeg 8's ``whip`` muxer through PyAV, in a child process): the same four
methods, ``start(key)``, ``running()``, ``wait_closed()`` and ``stop()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest

from mediasrv.httpkit.keys import LIVE, NOTIFIER, PLAYBACK, RECORDER, THUMBNAILS, WEBHOOKS, WHIP_SERVER
from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import _events, wait_for
from tests.accounts.test_webhooks import hook_settings, receiver
from tests.security.support import eventually
from tests.support.clients import run_process, start_ffmpeg_push
from tests.support.tools import require_tool
from tests.support.whip_clients import dtls_pair, start_whip_push
from tests.whip.support import require_webrtc_address

pytestmark = pytest.mark.e2e

HOLD = 60.0


class RtmpPublisher:
    """The FFmpeg CLI publishing a test pattern and a tone over RTMP, in real time."""

    kind = "rtmp"

    def __init__(self, srv) -> None:
        self.srv = srv
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, key: str, *, seconds: float = 90) -> None:
        """Start publishing with the stream key ``key`` (returns at once)."""
        self.proc = await start_ffmpeg_push(self.srv.rtmp_url(key), seconds=seconds, realtime=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def wait_closed(self, timeout: float = 15) -> None:
        """Until the publisher stopped (the server closed its connection, or refused it)."""
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            await self.proc.wait()


class WhipPublisher:
    """FFmpeg 8's ``whip`` muxer (PyAV, in a child process) publishing a moving picture and
    a tone over WHIP, in real time.

    FFmpeg answers no ICE consent check, so the server drops its session after ~30 s
    (/work/shared/WHIP-INTEROP.md): a push lasts at most ``MAX_SECONDS``, which the
    longest test here (about 10 s from the start to the end) stays well within.

    FFmpeg does not exit when the server closes its session (measured with FFmpeg 8.1.3
    in PyAV 18.1: its RTP writes fail once with ECONNREFUSED, logged as "Failed to write
    packet ... ret=-111", and it carries on; at its own end ``av_write_trailer`` then
    waits in ``poll()`` for a DTLS peer that is gone). So ``wait_closed`` awaits the
    server's side (this key's session closed and out of the server, its publication
    detached) and the client's (that ECONNREFUSED: the server's socket is gone), or the
    child's exit (a refused POST: ``av.open`` raises)."""

    kind = "whip"
    MAX_SECONDS = 24.0
    #: What FFmpeg's muxer logs when the server's socket is gone (AVERROR(ECONNREFUSED)).
    REFUSED = "ret=-111"

    def __init__(self, srv) -> None:
        self.srv = srv
        self.proc: asyncio.subprocess.Process | None = None
        self.digest = b""
        self.session = None  # the server's WhipSession of this push, once answered
        self.log: list[str] = []
        self.peer_gone = asyncio.Event()  # the client saw the server's socket close
        self._tasks: list[asyncio.Task] = []

    async def start(self, key: str, *, seconds: float = MAX_SECONDS) -> None:
        """Start publishing with the stream key ``key`` (returns at once)."""
        require_webrtc_address()
        assert seconds <= self.MAX_SECONDS, "FFmpeg's WHIP session dies after ~30 s (no consent answers)"
        self.digest = hashlib.sha256(key.encode()).digest()
        pair = dtls_pair(Path(self.srv.config.data_dir))
        self.proc = await start_whip_push(f"{self.srv.http_url}/whip", key, pair, seconds=seconds, width=320,
                                          height=240, fps=15)
        self._tasks = [asyncio.create_task(self._read_log()), asyncio.create_task(self._find_session())]

    async def _read_log(self) -> None:
        while line := await self.proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            if self.REFUSED in text:
                self.peer_gone.set()

    async def _find_session(self) -> None:
        # The server's session of this key, once the POST is answered (polled: the server
        # has no event for it); the child's exit first means the POST was refused.
        whip = self.srv.app[WHIP_SERVER]
        while self.proc.returncode is None:
            mine = [s for s in whip.sessions.values() if s.key_digest == self.digest]
            if mine:
                self.session = mine[0]
                return
            await asyncio.sleep(0.02)

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def _server_closed(self) -> bool:
        session = self.session
        return (session is not None and session.closed and session.publication is None
                and self.srv.app[WHIP_SERVER].find(session.id) is None)

    async def wait_closed(self, timeout: float = 15) -> None:
        """Until the publish is over: refused (the child exited), or closed by the server
        (its session gone, and the client's writes refused)."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self._server_closed() and self.peer_gone.is_set()):
            if self.proc.returncode is not None:
                await asyncio.gather(*self._tasks)  # the whole log; the session lookup is over
                # Never answered: the POST was refused, and av.open raised. An answered
                # push that exited ended by itself (or failed): the server did not close it.
                assert self.session is None, f"the WHIP push ended without the server closing it: {self.log[-10:]}"
                assert self.proc.returncode != 0 and any("401" in line for line in self.log), self.log
                return
            assert loop.time() < deadline, (f"the WHIP push did not end within {timeout} s "
                                            f"(server side closed: {self._server_closed()}, client saw it: "
                                            f"{self.peer_gone.is_set()}); its log: {self.log[-10:]}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            await self.proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


PUBLISHERS = {"rtmp": RtmpPublisher, "whip": WhipPublisher}


@pytest.fixture(params=sorted(PUBLISHERS))
def publisher_class(request):
    return PUBLISHERS[request.param]


class Monotonic:
    """The server's monotonic clock: real time, plus what the test skips ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def _uris(playlist: str) -> list[str]:
    """Every URI a playlist lists: its URI lines and its tags' URI attributes."""
    out = []
    for line in playlist.splitlines():
        if line and not line.startswith("#"):
            out.append(line)
        elif 'URI="' in line:
            out.append(line.split('URI="', 1)[1].split('"', 1)[0])
    return out


async def _get(http: aiohttp.ClientSession, url: str, headers: dict | None = None) -> tuple[int, str, bytes]:
    async with http.get(url, headers=headers or {}) as response:
        return response.status, response.headers.get("Cache-Control", ""), await response.read()


async def _hls_walk(http: aiohttp.ClientSession, master_url: str, *, grant: str | None) -> list[tuple[int, str, str]]:
    """Fetch a master playlist, its first variant and every URI that lists (init, parts,
    segments, preload hint and rendition reports aside); ``(status, cache, url)`` each.
    With ``grant``, every listed URI must carry it."""
    status, cache, body = await _get(http, master_url)
    seen = [(status, cache, master_url)]
    if status != 200:
        return seen
    variant = urljoin(master_url, _uris(body.decode())[0])
    status, cache, body = await _get(http, variant)
    seen.append((status, cache, variant))
    assert status == 200, variant
    media = _uris(body.decode())
    assert media, body
    if grant is not None:
        assert all(f"pt={grant}" in uri for uri in media), media
    else:
        assert not any("pt=" in uri for uri in media), media
    files = [u for u in media if "index.m3u8" not in u and "part_" not in u]  # init and whole segments
    hinted = [u for u in media if "part_" in u][:1]  # one part listed
    for uri in [*files[:1], *files[-1:], *hinted]:
        status, cache, _ = await _get(http, urljoin(variant, uri))
        seen.append((status, cache, urljoin(variant, uri)))
    return seen


async def _status(http: aiohttp.ClientSession, path: str, status: int) -> bool:
    async with http.get(path) as response:
        return response.status == status


async def _rtmp_plays(url: str) -> bool:
    """Whether ``ffmpeg -i URL`` gets video frames of the live (RTMP play)."""
    status, output = await run_process(require_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin",
                                       "-i", url, "-frames:v", "5", "-f", "null", "-", timeout=30)
    return status == 0


async def _listed(api, name: str) -> dict:
    """Where the public sees ``name`` live (anonymously)."""
    http = api.http
    live = await (await http.get("/api/live")).json()
    streams = await (await http.get("/api/streams")).json()
    status = await (await http.get(f"/api/live/{name}/status")).json()
    profile = await (await http.get(f"/api/users/{name}")).json()
    channels = await (await http.get("/api/channels")).json()
    return {
        "discovery": name in [s["name"] for s in live["streams"]],
        "streams": name in [s["name"] for s in streams["streams"]],
        "status": status["live"],
        "profile": profile["live"],
        "channels": any(c["handle"] == name and c["live"] for c in channels["channels"]),
        "stream": (await http.get(f"/api/streams/{name}")).status,
        "stats": (await http.get(f"/api/streams/{name}/stats")).status,
        "thumbnail": (await http.get(f"/api/live/{name}/thumbnail")).status,
    }


async def _people(api) -> dict[str, dict]:
    """alice (creator, backstage on, decides her recordings), her appointed moderator, a
    site moderator (operator), the admin, a follower and another creator; auth headers."""
    people = {"anonymous": {}}
    people["alice"] = await api.user("alice", "creator")
    people["mod"] = await api.user("mod")
    people["operator"] = await api.user("operator", "moderator")
    people["admin"] = await api.admin()
    people["fan"] = await api.user("fan")
    people["dave"] = await api.user("dave", "creator")
    http = api.http
    response = await http.patch("/api/me/settings", headers=people["alice"],
                                json={"backstage": True, "save_by_default": False, "title": "Soon"})
    assert response.status == 200 and (await response.json())["backstage"] is True, await response.text()
    response = await http.put("/api/users/alice/chat/moderators/mod", headers=people["alice"])
    assert response.status == 200, await response.text()
    response = await http.put("/api/me/following/alice", headers=people["fan"])
    assert response.status == 200, await response.text()
    return people


async def _broadcasts(http: aiohttp.ClientSession, headers: dict) -> list[dict]:
    """``GET /api/broadcasts?stream=alice`` as whoever ``headers`` log in."""
    async with http.get("/api/broadcasts?stream=alice", headers=headers) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["broadcasts"]


async def _plays_hls(http: aiohttp.ClientSession, answer: dict) -> bool:
    """Whether the master playlist of a playback answer opens (the grant still works)."""
    async with http.get(answer["playback_url"]) as response:
        return response.status == 200


async def _playback(http: aiohttp.ClientSession, headers: dict) -> tuple[int, dict]:
    async with http.get("/api/live/alice/playback", headers=headers) as response:
        return response.status, await response.json()


async def _revocations(api, people: dict, grants: dict, stream) -> None:
    """Who may watch changes: the creator removes her moderator, an admin demotes a site
    moderator. Every grant handed out before stops working at once (HLS, and an RTMP play
    under way is stopped); whoever still may watch gets a fresh one that works, the others
    the 404 of a stream that is not live."""
    http, srv = api.http, api.srv
    # The moderator is playing over RTMP when she is removed.
    rtmp_play = await asyncio.create_subprocess_exec(
        require_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-i", grants["mod"]["rtmp_playback_url"], "-f", "null", "-",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_for(lambda: any(r.name.startswith("rtmp-play") for r in stream.readers), timeout=20)
        assert await _plays_hls(http, grants["mod"]) and await _plays_hls(http, grants["alice"])

        response = await http.delete("/api/users/alice/chat/moderators/mod", headers=people["alice"])
        assert response.status == 200 and (await response.json())["changed"] is True, await response.text()
        assert not await _plays_hls(http, grants["mod"])
        assert not await _plays_hls(http, grants["alice"])  # every grant of her live: she asks again
        await asyncio.wait_for(rtmp_play.wait(), 15)  # stopped within a second of media
        assert srv.hub.get("alice") is stream and not stream.ended  # the live goes on
        assert (await _playback(http, people["mod"]))[0] == 404
        status, fresh = await _playback(http, people["alice"])
        assert status == 200 and await _plays_hls(http, fresh)

        # A site moderator demoted: every private live's grants are void.
        status, operator = await _playback(http, people["operator"])
        assert status == 200 and await _plays_hls(http, operator)
        response = await http.put("/api/users/operator/role", headers=people["admin"], json={"role": "viewer"})
        assert response.status == 200, await response.text()
        assert not await _plays_hls(http, operator) and not await _plays_hls(http, fresh)
        assert (await _playback(http, people["operator"]))[0] == 404
        status, again = await _playback(http, people["alice"])
        assert status == 200 and await _plays_hls(http, again)
        grants["alice"] = again
    finally:
        if rtmp_play.returncode is None:
            rtmp_play.kill()
        await rtmp_play.wait()


ALLOWED = ("alice", "mod", "operator", "admin")
REFUSED = ("anonymous", "fan", "dave")


async def test_backstage_then_public_then_end(tmp_path, publisher_class):
    clock = Monotonic()
    async with receiver() as hooks, accounts_server(
            tmp_path, *hook_settings(hooks.url), "recording.enabled=true", "hls.segment_duration=1",
            f"live.end_hold_seconds={HOLD}", monotonic=clock) as api:
        srv, http = api.srv, api.http
        people = await _people(api)
        alice = people["alice"]
        key = await api.stream_key(alice)

        # The follower's go-live feed, open before anything happens.
        feed = await http.get("/api/me/events", headers=people["fan"])
        alerts: asyncio.Queue = asyncio.Queue()
        reading = asyncio.create_task(_events(feed, alerts))
        assert (await asyncio.wait_for(alerts.get(), 10))[0] == "ready"

        publisher = publisher_class(srv)
        try:
            await publisher.start(key)
            stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            assert stream.private

            # --- private: the studio sees it, the public does not -------------------------
            state = await (await http.get("/api/me/live", headers=alice)).json()
            assert state["state"] == "private" and state["connection"] == "connected", state
            assert state["backstage"] is True and state["public_at"] is None and state["hold_seconds"] == 0
            preview = state["preview"]
            assert preview["grant"] and f"?pt={preview['grant']}" in preview["playback_url"], preview
            assert await _listed(api, "alice") == {
                "discovery": False, "streams": False, "status": False, "profile": False, "channels": False,
                "stream": 404, "stats": 404, "thumbnail": 404}
            # The studio's health figures and warnings open with the grant.
            stats = await http.get(f"/api/streams/alice/stats?pt={preview['grant']}")
            assert stats.status == 200 and (await stats.json())["stream"] == "alice"
            assert (await http.get(f"/api/streams/alice?pt={preview['grant']}")).status == 200
            assert (await http.get("/api/streams/alice/events")).status == 404
            assert preview["events_url"].endswith(f"/api/streams/alice/events?pt={preview['grant']}")
            async with http.get(preview["events_url"]) as events:
                assert events.status == 200 and events.content_type == "text/event-stream"
                first = await asyncio.wait_for(events.content.readline(), 10)
                assert first == b"event: stats\n", first
            # Not recorded, nothing sent: the listeners decided at the start (synchronously).
            recorder = srv.app[RECORDER]
            assert recorder.recording_of(stream) is None and await recorder.list(stream="alice") == []
            assert srv.app[WEBHOOKS].stats.queued == 0 and not srv.app[NOTIFIER]._tasks

            # Who may play it: a playback answer (with a grant) for the creator, her
            # moderator, operators; the 404 of a stream that is not live for the others.
            grants = {}
            for who in ALLOWED:
                response = await http.get("/api/live/alice/playback", headers=people[who])
                assert response.status == 200, (who, await response.text())
                answer = await response.json()
                assert answer["state"] == "private" and answer["grant"], answer
                grants[who] = answer
            for who in REFUSED:
                response = await http.get("/api/live/alice/playback", headers=people[who])
                assert response.status == 404, (who, await response.text())
                assert (await response.json())["error"] == "no such live stream"
            assert (await http.get("/api/live/nobody/playback")).status == 404  # the same answer

            # HLS with a grant: every playlist, init segment, segment and part, for one viewer.
            for who in ALLOWED:
                walk = await _hls_walk(http, grants[who]["playback_url"], grant=grants[who]["grant"])
                assert [s for s, _, _ in walk] == [200] * len(walk) and len(walk) >= 4, (who, walk)
                assert all(cache == "private, no-store" for _, cache, _ in walk[1:]), walk
            # Without one (or a forged or another stream's grant): 404 on every URL.
            master = f"{srv.http_url}/live/alice/index.m3u8"
            listed = [url.split("?")[0] for _, _, url in walk]
            forged = grants["mod"]["grant"][:-2] + ("AA" if not grants["mod"]["grant"].endswith("AA") else "BB")
            gate = srv.app[PLAYBACK]
            other = gate.grants.issue("dave", scope=gate.scope(stream)).value  # another name's
            for suffix in ("", f"?pt={forged}", f"?pt={other}", "?pt="):
                for url in [master, *listed[1:]]:
                    status, cache, _ = await _get(http, url + suffix)
                    assert (status, cache) == (404, "no-store"), (url + suffix, status)
            # A real player follows the grant through the playlists.
            status, output = await run_process(
                require_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin",
                "-i", grants["mod"]["playback_url"], "-frames:v", "5", "-f", "null", "-", timeout=60)
            assert status == 0, output
            # RTMP play: with the grant of the playback answer, and not without.
            plays = await asyncio.gather(
                _rtmp_plays(grants["mod"]["rtmp_playback_url"]), _rtmp_plays(srv.rtmp_url("alice")),
                _rtmp_plays(srv.rtmp_url(f"alice?pt={forged}")))
            assert plays == [True, False, False]
            assert srv.app[THUMBNAILS].taken == 0  # no picture of the backstage, ever
            await _revocations(api, people, grants, stream)

            # --- public: listed, alerted, webhooks, recorded, anyone plays -----------------
            response = await http.post("/api/me/live/public", headers=alice)
            assert response.status == 200, await response.text()
            state = await response.json()
            assert state["state"] == "public" and state["changed"] is True and state["public_at"], state
            public_at = state["public_at"]
            again = await (await http.post("/api/me/live/public", headers=alice)).json()
            assert again["state"] == "public" and again["changed"] is False

            event, data = await asyncio.wait_for(alerts.get(), 10)  # the first since "ready"
            assert event == "stream.started" and data["stream"] == "alice" and data["title"] == "Soon", data
            assert data["started_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(public_at))
            await wait_for(lambda: hooks.accepted("stream.started"))
            assert len(hooks.accepted("stream.started")) == 1
            assert hooks.accepted("stream.started")[0]["data"]["started_at"] == data["started_at"]
            recording_id = recorder.recording_of(stream)
            assert recording_id is not None
            assert (await recorder.get(recording_id)).started_at == public_at
            listed_now = await _listed(api, "alice")
            assert {k: v for k, v in listed_now.items() if k != "thumbnail"} == {
                "discovery": True, "streams": True, "status": True, "profile": True, "channels": True,
                "stream": 200, "stats": 200}
            await eventually(lambda: _status(http, "/api/live/alice/thumbnail", 200), what="a public thumbnail")
            walk = await _hls_walk(http, master, grant=None)
            assert [s for s, _, _ in walk] == [200] * len(walk), walk
            assert "immutable" in walk[-2][1]  # segments are shared by caches again
            assert await _rtmp_plays(srv.rtmp_url("alice"))
            # A grant handed out while it was private still plays (a player in the middle).
            walk = await _hls_walk(http, grants["mod"]["playback_url"], grant=None)
            assert [s for s, _, _ in walk] == [200] * len(walk), walk

            # --- end: the publisher is disconnected, the recording awaits a decision -------
            # (Still publishing: a WHIP push lasts WhipPublisher.MAX_SECONDS at most.)
            assert publisher.running() and srv.hub.get("alice") is stream, "the publisher stopped before the end"
            response = await http.post("/api/me/live/end", headers=alice)
            assert response.status == 200, await response.text()
            ended = await response.json()
            assert ended["stream"] == "alice" and ended["was"] == "public" and HOLD - 1 < ended["hold_seconds"] <= HOLD, ended
            assert ended["recording"]["id"] == recording_id and ended["recording"]["state"] == "pending_decision"
            assert ended["recording"]["duration"] > 0 and ended["recording"]["decide_by"] > ended["ended_at"]
            await publisher.wait_closed()
            assert srv.hub.get("alice") is None
            await wait_for(lambda: hooks.accepted("stream.ended"))
            mine = await (await http.get(f"/api/recordings/{recording_id}", headers=alice)).json()
            assert mine["state"] == "pending_decision", mine
            state = await (await http.get("/api/me/live", headers=alice)).json()
            assert state["state"] == "offline" and 0 < state["hold_seconds"] <= HOLD, state
            again = await http.post("/api/me/live/end", headers=alice)
            assert again.status == 409 and "not live" in (await again.json())["error"]

            # The same key within the hold is refused (no silent restart) ...
            refused = srv.app[LIVE].refused_held
            retry = publisher_class(srv)
            await retry.start(key)
            await retry.wait_closed()
            assert srv.app[LIVE].refused_held == refused + 1 and srv.hub.get("alice") is None
            # ... and accepted once the hold is over (backstage still on: private again).
            clock.offset += HOLD
            later = publisher_class(srv)
            try:
                await later.start(key)
                stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
                assert stream.private and srv.app[LIVE].refused_held == refused + 1
            finally:
                await later.stop()
            # The decision waits for the creator: saving works.
            saved = await http.post(f"/api/recordings/{recording_id}/save", headers=alice)
            assert saved.status == 200 and (await saved.json())["state"] == "saved"
        finally:
            await publisher.stop()
            reading.cancel()
            feed.close()


async def test_ending_a_private_live_and_the_refusals(tmp_path, publisher_class):
    """409 with a reason when there is no live; a private live ended before going public
    leaves nothing behind: no recording, no webhook or alert, ``was: private``. With the
    hold at 0 the same key publishes again at once."""
    async with receiver() as hooks, accounts_server(
            tmp_path, *hook_settings(hooks.url), "recording.enabled=true", "live.end_hold_seconds=0") as api:
        srv, http = api.srv, api.http
        alice = await api.user("alice", "creator")
        for path in ("/api/me/live/public", "/api/me/live/end"):
            response = await http.post(path, headers=alice)
            assert response.status == 409, await response.text()
            body = await response.json()
            assert "not live" in body["error"], body
        assert (await (await http.get("/api/me/live", headers=alice)).json())["state"] == "offline"
        assert (await (await http.get("/api/me/settings", headers=alice)).json())["backstage"] is False  # default
        response = await http.patch("/api/me/settings", headers=alice, json={"backstage": True})
        assert (await response.json())["backstage"] is True
        assert (await (await http.get("/api/me/settings", headers=alice)).json())["backstage"] is True

        key = await api.stream_key(alice)
        publisher = publisher_class(srv)
        try:
            await publisher.start(key)
            stream = await wait_for(lambda: srv.hub.get("alice"), timeout=20)
            assert stream.private
            response = await http.post("/api/me/live/end", headers=alice)
            assert response.status == 200, await response.text()
            ended = await response.json()
            assert ended["was"] == "private" and ended["recording"] is None and ended["hold_seconds"] == 0, ended
            await publisher.wait_closed()
            assert srv.hub.get("alice") is None and stream.ended
            # Nothing was ever sent or recorded for it (the listeners decide synchronously).
            assert srv.app[WEBHOOKS].stats.queued == 0 and not srv.app[NOTIFIER]._tasks and not hooks.requests
            assert await srv.app[RECORDER].list(stream="alice") == []
            # Its HLS, kept a while after the end, stays private.
            assert (await http.get("/live/alice/index.m3u8")).status == 404
            # Its summary is the creator's (and operators') only.
            mine = await eventually(lambda: _broadcasts(http, alice), what="the private broadcast's summary")
            assert [(b["stream"], b["private"]) for b in mine] == [("alice", True)], mine
            assert await _broadcasts(http, await api.admin()) == mine
            for outsider in ({}, await api.user("fan"), await api.user("dave", "creator")):
                assert await _broadcasts(http, outsider) == [], outsider

            again = publisher_class(srv)
            try:
                await again.start(key)
                assert (await wait_for(lambda: srv.hub.get("alice"), timeout=20)).private
            finally:
                await again.stop()
        finally:
            await publisher.stop()
