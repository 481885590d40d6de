"""The recordings API and the VOD routes over HTTP (the whole app; media pushed straight
into its hub): visibility, who may decide, validation, cache headers, ranges."""

from __future__ import annotations

import aiohttp
import pytest

from mediasrv.httpkit.keys import RECORDER
from mediasrv.recording import files as rf
from tests.hls.conftest import encode
from tests.recording.conftest import Publisher, push, until
from tests.support.server import running_server

PROXIED = {"X-Forwarded-For": "203.0.113.7"}  # what a request from elsewhere looks like behind a proxy


@pytest.fixture(scope="module")
def media():
    return encode(seconds=4.0)


async def call(session, method, url, **kwargs):
    async with session.request(method, url, **kwargs) as response:
        body = await response.read()
        return response.status, body, response.headers


async def test_decide_and_serve_through_the_api(tmp_path, media):
    async with running_server(tmp_path, "recording.admin_token=s3cret") as srv, aiohttp.ClientSession() as session:
        base = srv.http_url
        publication = srv.hub.publish("alice", Publisher())
        await push(publication, media.units[:60])

        # The recorder registers the broadcast on its own task (title, database row): wait
        # for it to be listed.
        async def listed_recordings():
            status, body, _ = await call(session, "GET", f"{base}/api/recordings?stream=alice")
            assert status == 200
            return (await _json(body))["recordings"]

        listed = await until(listed_recordings)
        assert len(listed) == 1 and listed[0]["state"] == "recording"
        rid = listed[0]["id"]
        assert len(rid) == 16
        status, body, _ = await call(session, "POST", f"{base}/api/recordings/{rid}/save")
        assert status == 409 and "still live" in (await _json(body))["error"]

        await push(publication, media.units[60:])
        publication.detach(clean=True)

        async def pending():
            status, body, _ = await call(session, "GET", f"{base}/api/recordings/{rid}")
            data = await _json(body)
            return data if data.get("state") == "pending_decision" else None

        info = await until(pending)
        assert info["segments"] == 2 and info["video_frames"] == 100 and info["duration"] == pytest.approx(4.0, abs=0.05)
        assert info["decide_by"] == pytest.approx(info["ended_at"] + 86400)
        assert "playlist_url" not in info

        # Not the creator: no sight of an undecided recording, no say in it.
        status, body, _ = await call(session, "GET", f"{base}/api/recordings?stream=alice", headers=PROXIED)
        assert status == 200 and (await _json(body))["recordings"] == []
        assert (await call(session, "GET", f"{base}/api/recordings/{rid}", headers=PROXIED))[0] == 404
        status, body, _ = await call(session, "POST", f"{base}/api/recordings/{rid}/save", headers=PROXIED)
        assert status == 403 and "creator" in (await _json(body))["error"]
        wrong = {**PROXIED, "Authorization": "Bearer nope"}
        assert (await call(session, "POST", f"{base}/api/recordings/{rid}/discard", headers=wrong))[0] == 403
        assert (await call(session, "GET", f"{base}/vod/{rid}/index.m3u8"))[0] == 404  # not saved yet

        # The admin token decides from anywhere.
        admin = {**PROXIED, "Authorization": "Bearer s3cret"}
        status, body, _ = await call(session, "POST", f"{base}/api/recordings/{rid}/save", headers=admin)
        saved = await _json(body)
        assert status == 200 and saved["state"] == "saved" and saved["decided_by"] == "creator"
        assert saved["playlist_url"] == f"{base}/vod/{rid}/index.m3u8"
        assert saved["download_url"] == f"{base}/vod/{rid}/download.mp4"

        # Saved recordings are public (a creator's profile lists them).
        status, body, _ = await call(session, "GET", f"{base}/api/recordings?stream=alice&state=saved", headers=PROXIED)
        assert [r["id"] for r in (await _json(body))["recordings"]] == [rid]

        status, body, headers = await call(session, "GET", saved["playlist_url"])
        assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert headers["Cache-Control"] == "public, max-age=60" and headers["Access-Control-Allow-Origin"] == "*"
        playlist = body.decode()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and playlist.endswith("#EXT-X-ENDLIST\n")
        uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
        init = playlist.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
        status, data, headers = await call(session, "GET", f"{base}/vod/{rid}/{uris[0]}")
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        assert headers["Cache-Control"] == "public, max-age=86400, immutable"
        assert data == (srv.app[RECORDER].path_of(rid) / uris[0]).read_bytes()
        status, part, headers = await call(session, "GET", f"{base}/vod/{rid}/{uris[0]}", headers={"Range": "bytes=0-99"})
        assert status == 206 and part == data[:100] and headers["Content-Range"] == f"bytes 0-99/{len(data)}"
        status, _, headers = await call(session, "HEAD", f"{base}/vod/{rid}/{init}")
        assert status == 200 and int(headers["Content-Length"]) > 0
        status, _, headers = await call(session, "OPTIONS", f"{base}/vod/{rid}/{init}")
        assert status == 204 and "GET" in headers["Access-Control-Allow-Methods"]

        status, mp4, headers = await call(session, "GET", saved["download_url"])
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        assert headers["Content-Disposition"].startswith('attachment; filename="alice-')
        assert mp4.index(b"moov") < mp4.index(b"mdat")

        # Only listed files are served; names are checked before any lookup.
        for path, expected in (
            (f"/vod/{rid}/{rf.MANIFEST}", 400),
            (f"/vod/{rid}/seg_x_999.m4s", 404),
            (f"/vod/{rid}/..%2Fmediasrv.db", 400),
            ("/vod/short/index.m3u8", 400),
            (f"/vod/{'A' * 16}/index.m3u8", 404),
            (f"/vod/{'A' * 16}/download.mp4", 404),
            ("/api/recordings?state=bogus", 400),
            ("/api/recordings?stream=.hidden", 400),
            ("/api/recordings?limit=0", 400),
            ("/api/recordings?limit=x", 400),
            (f"/api/recordings/{'A' * 16}", 404),
            ("/api/recordings/nope", 404),
        ):
            assert (await call(session, "GET", base + path))[0] == expected, path
        assert (await call(session, "POST", f"{base}/api/recordings/{'A' * 16}/save"))[0] == 404

        # Discard (from this machine): every file goes, the VOD with it.
        status, body, _ = await call(session, "POST", f"{base}/api/recordings/{rid}/discard")
        assert status == 200 and (await _json(body))["state"] == "discarded"
        assert not srv.app[RECORDER].path_of(rid).exists()
        assert (await call(session, "GET", saved["playlist_url"]))[0] == 404
        assert (await call(session, "GET", f"{base}/vod/{rid}/{uris[0]}"))[0] == 404
        status, body, _ = await call(session, "POST", f"{base}/api/recordings/{rid}/save")
        assert status == 409 and "files are gone" in (await _json(body))["error"]


async def _json(body: bytes) -> dict:
    import json

    return json.loads(body)
