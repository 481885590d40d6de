"""Who may watch (issue 18), the columns of the table that need a broadcast of their own:
go-live alerts and webhooks (decided at a live's start) and the recording (which keeps
the live's visibility). One short push per visibility, against a real server.

- alerts (the follower's ``/api/me/events``) and the ``stream.started`` webhook: sent for
  a public and a followers-only live (``visibility`` in the payload), never for an
  unlisted or a private one;
- the recording (saved by default): ``GET /api/recordings/ID``, its VOD playlist and a
  segment, for the eight viewers of the live table; a recording that is not public is
  served only with the signed URLs its API answer gives who may watch it (404 unsigned);
- the creator changes a recording's visibility (``PATCH /api/recordings/ID``)."""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin

import pytest

from mediasrv.httpkit.keys import NOTIFIER, RECORDER
from mediasrv.store.recordings import RecordingState
from tests.accounts.support import accounts_server
from tests.accounts.test_discovery import _events
from tests.accounts.test_webhooks import hook_settings, receiver
from tests.e2e.test_backstage import _uris
from tests.e2e.test_visibility import WATCH, WHO, _people, _status
from tests.security.support import eventually
from tests.support.clients import ffmpeg_push

pytestmark = pytest.mark.e2e

ALERTED = {"public": True, "followers": True, "unlisted": False, "private": False}


async def _vod_row(http, headers: dict, recording_id: str) -> bool:
    """Whether this viewer gets the recording: its API answer, its playlist, a segment."""
    async with http.get(f"/api/recordings/{recording_id}", headers=headers) as response:
        if response.status == 404:
            return False
        assert response.status == 200, await response.text()
        playlist_url = (await response.json())["playlist_url"]
    async with http.get(playlist_url) as response:
        assert response.status == 200, playlist_url
        uris = _uris(await response.text())
    segment = urljoin(playlist_url, [u for u in uris if "seg_" in u][0])
    assert await _status(http, segment) == 200, segment
    return True


async def test_alerts_webhooks_and_recordings_follow_the_visibility(tmp_path):
    async with receiver() as hooks, accounts_server(
            tmp_path, *hook_settings(hooks.url), "recording.enabled=true", "live_access.min_followers=0",
            "hls.segment_duration=1") as api:
        srv, http = api.srv, api.http
        people = await _people(api)
        alice = people["creator"]
        async with http.post("/api/me/blocks/troll", headers=alice) as response:
            assert response.status in (200, 201, 204), await response.text()
        response = await http.patch("/api/me/settings", headers=alice, json={"save_by_default": True})
        assert response.status == 200
        key = await api.stream_key(alice)
        recorder = srv.app[RECORDER]

        feed = await http.get("/api/me/events", headers=people["follower"])
        alerts: asyncio.Queue = asyncio.Queue()
        reading = asyncio.create_task(_events(feed, alerts))
        try:
            assert (await asyncio.wait_for(alerts.get(), 10))[0] == "ready"
            recordings: dict[str, str] = {}
            for visibility in ("public", "followers", "unlisted", "private"):
                response = await http.patch("/api/me/settings", headers=alice, json={"visibility": visibility})
                assert response.status == 200 and (await response.json())["visibility"] == visibility
                hooks_before = len(hooks.accepted("stream.started"))
                status, output = await ffmpeg_push(srv.rtmp_url(key), seconds=3)
                assert status == 0, output[-2000:]
                await eventually(lambda: _count_saved(recorder, len(recordings) + 1), what="this recording saved")
                saved = await recorder.list(stream="alice", states=(RecordingState.SAVED,), limit=10)
                newest = max(saved, key=lambda r: r.started_at)
                assert newest.visibility == visibility
                recordings[visibility] = newest.id
                if ALERTED[visibility]:
                    event, data = await asyncio.wait_for(alerts.get(), 10)
                    assert event == "stream.started" and data["visibility"] == visibility, data
                    await eventually(lambda: _more(hooks, hooks_before), what="the stream.started webhook")
                    assert hooks.accepted("stream.started")[-1]["data"]["visibility"] == visibility
                else:
                    # Decided synchronously at the start: nothing was even scheduled.
                    assert not srv.app[NOTIFIER]._tasks
                    assert alerts.empty() and len(hooks.accepted("stream.started")) == hooks_before

            failures = []
            for visibility, recording_id in recordings.items():
                for who in WHO:
                    got = await _vod_row(http, people[who], recording_id)
                    want = who in WATCH[visibility] or visibility == "public"
                    if got != want:
                        failures.append(f"{visibility} × recording × {who}: got {got}, expected {want}")
                unsigned = await _status(http, f"/vod/{recording_id}/index.m3u8")
                if unsigned != (200 if visibility == "public" else 404):
                    failures.append(f"{visibility} × unsigned VOD playlist: {unsigned}")
            assert not failures, "\n".join(failures)
            # Listed (the profile, GET /api/recordings): what the asker may watch, but an
            # unlisted recording only for its creator (the others need its link).
            for who, expected in (("anonymous", {"public"}), ("follower", {"public", "followers"}),
                                  ("invited", {"public", "private"}),
                                  ("creator", {"public", "followers", "unlisted", "private"})):
                listed = await (await http.get("/api/recordings?stream=alice", headers=people[who])).json()
                ids = {r["id"] for r in listed["recordings"]}
                assert ids == {recordings[v] for v in expected}, who
                profile = await (await http.get("/api/users/alice", headers=people[who])).json()
                assert {v["id"] for v in profile["vods"]} == {recordings[v] for v in expected}, who

            # The creator makes the private recording public; a stranger may not change it.
            private = recordings["private"]
            response = await http.patch(f"/api/recordings/{private}", headers=people["stranger"],
                                        json={"visibility": "public"})
            assert response.status == 403
            response = await http.patch(f"/api/recordings/{private}", headers=alice, json={"visibility": "public"})
            assert response.status == 200 and (await response.json())["visibility"] == "public"
            assert await _vod_row(http, {}, private)
            assert await _status(http, f"/vod/{private}/index.m3u8") == 200
        finally:
            reading.cancel()
            feed.close()


async def _count_saved(recorder, count: int) -> bool:
    return len(await recorder.list(stream="alice", states=(RecordingState.SAVED,), limit=10)) >= count


async def _more(hooks, before: int) -> bool:
    return len(hooks.accepted("stream.started")) > before
