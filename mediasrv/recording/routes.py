"""Recordings over HTTP: the save-or-discard API and the VOD of saved broadcasts.

API (JSON; errors are ``{"error": "..."}`` with a 4xx status):

- ``GET /api/recordings[?stream=NAME][&state=STATE][&limit=N]``: newest first. Saved
  recordings are public (a creator's profile lists them); the others only to whoever
  ``Recorder.authorize`` lets decide them.
- ``GET /api/recordings/{id}``: one recording (404 when unknown or not visible).
- ``POST /api/recordings/{id}/save``: keep it as a VOD (200 with the recording; saving a
  saved one is a no-op). 409 while the stream is live or once discarded.
- ``POST /api/recordings/{id}/discard``: delete its files (200; also for a saved one).
  409 while live.
  Both answer 403 unless ``Recorder.authorize(request, recording)`` allows it.

VOD (saved recordings only; anything else is a 404):

- ``GET /vod/{id}/index.m3u8``: ``EXT-X-PLAYLIST-TYPE:VOD`` playlist with EXT-X-ENDLIST;
- ``GET /vod/{id}/{file}``: its init and media segments, from disk;
- ``GET /vod/{id}/download.mp4``: the broadcast as one progressive MP4 (remuxed, not
  re-encoded; made once and cached on disk).

Caching: segments and the MP4 ``public, max-age=86400, immutable`` (a recording's files
never change; the id is unguessable and never reused); the playlist ``max-age=60`` (short,
so a later discard is seen soon); errors ``no-store``.

Who may watch (issue 18): a recording keeps its live's visibility (``visibility``,
``mature``; ``PATCH /api/recordings/{id}`` lets who decides change it). A saved recording
that is not public is listed, and its VOD served, only to who may watch it (the live
control's rule, ``app[LIVE].may_watch``, with the recording's visibility) and to who
decides; its URLs then carry ``hs=EXPIRES.SIGNATURE`` over ``/vod/ID/``
(``httpkit.url_signing``, valid ``VOD_SIGNATURE_SECONDS``), which the playlist, its files
and the MP4 are checked with (404 without), all ``private, no-store``.

Who decides (``default_authorize``, until accounts replace it through
``app[RECORDER].authorize``): a request with ``Authorization: Bearer <recording.admin_token>``
(when that key is set), or a request from the loopback address that carries no
``Forwarded``/``X-Forwarded-For`` header (the operator on the machine itself; a reverse
proxy on the same host adds those headers, so proxied requests are not trusted).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time

from aiohttp import web

from mediasrv.community.accounts.http import optional_user
from mediasrv.config import Config
from mediasrv.hls import names
from mediasrv.httpkit.body import read_body, read_query, respond
from mediasrv.httpkit.keys import CONFIG, LIVE, RECORDER, URL_SIGNER
from mediasrv.httpkit.url_signing import SIGNED_URL_PARAM
from mediasrv.httpkit.urls import public_base_url
from mediasrv.httpkit.validate import ApiError
from mediasrv.recording import files as rf, models as m
from mediasrv.recording.recorder import DecisionRefused, Recorder, RecordingNotFound, _call, is_recording_id
from mediasrv.store.recordings import Recording, RecordingState








PLAYLIST_CACHE = "public, max-age=60"
FILE_CACHE = "public, max-age=86400, immutable"
ERROR_CACHE = "no-store"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, Content-Disposition",
}
CONTENT_TYPES = {"m3u8": "application/vnd.apple.mpegurl", "mp4": "video/mp4", "m4s": "video/mp4"}
MAX_LIST = m.MAX_LIST
#: How long the signed URLs of a non-public recording work: a sitting's worth (a VOD
#: playlist is loaded once); ask the API again for fresh ones.
VOD_SIGNATURE_SECONDS = 6 * 3600
RESTRICTED_CACHE = "private, no-store"


def setup(app: web.Application) -> None:
    """The recording and VOD routes; the recorder is the composition root's."""
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{id}", get_recording)
    app.router.add_patch("/api/recordings/{id}", change_audience)
    app.router.add_post("/api/recordings/{id}/save", save_recording)
    app.router.add_post("/api/recordings/{id}/discard", discard_recording)
    for path, handler in (
        ("/vod/{id}/index.m3u8", vod_playlist),
        ("/vod/{id}/download.mp4", vod_download),
        ("/vod/{id}/{file}", vod_file),
    ):
        app.router.add_get(path, handler)
        app.router.add_route("OPTIONS", path, preflight)


def default_authorize(config: Config):
    token = config.recording.admin_token

    def authorize(request: web.Request, recording: Recording) -> bool:
        header = request.headers.get("Authorization", "")
        if token and header.startswith("Bearer "):
            if hmac.compare_digest(header[7:].strip().encode(), token.encode()):
                return True
        if "Forwarded" in request.headers or "X-Forwarded-For" in request.headers:
            return False
        try:
            return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
        except ValueError:
            return False

    return authorize


# --- API ------------------------------------------------------------------------------------------

def vod_prefix(recording_id: str) -> str:
    return f"/vod/{recording_id}/"


def signed_query(request: web.Request, recording: Recording) -> str:
    """``?hs=...`` for the VOD URLs of a recording that is not public ("" for a public one)."""
    signer = request.app.get(URL_SIGNER)
    if recording.visibility == "public" or signer is None:
        return ""
    return f"?{SIGNED_URL_PARAM}={signer.sign_prefix(vod_prefix(recording.id), VOD_SIGNATURE_SECONDS)}"


async def may_view(request: web.Request, recording: Recording) -> bool:
    """Whether the asker may watch ``recording`` (saved): anyone when it is public; else who
    may watch a live of its visibility (the live control's rule) or who decides about it."""
    if recording.visibility == "public":
        return True
    live = request.app.get(LIVE)
    if live is not None and request.app[CONFIG].auth.mode == "accounts":
        try:
            user = await optional_user(request)
        except ApiError:
            user = None
        if await live.may_watch(recording.stream, user, visibility=recording.visibility):
            return True
    return await _allowed(request, request.app[RECORDER], recording)


async def may_list(request: web.Request, recording: Recording) -> bool:
    """Whether a saved recording is listed for the asker: who may watch it, but an unlisted
    one only for who decides about it (the others need its link)."""
    if recording.visibility == "unlisted":
        return await _allowed(request, request.app[RECORDER], recording)
    return await may_view(request, recording)


def _signed(request: web.Request, recording: Recording) -> bool:
    """Whether this VOD request carries a valid signature of the recording (not public)."""
    signer = request.app.get(URL_SIGNER)
    value = request.query.get(SIGNED_URL_PARAM, "")
    return signer is not None and bool(value) and signer.valid_prefix(vod_prefix(recording.id), value)


def recording_json(request: web.Request, recorder: Recorder, recording: Recording) -> dict:
    data = recording.to_json()
    data["duration"] = round(recording.duration, 3)
    data["decide_by"] = recorder.decide_by(recording)
    if recording.state is RecordingState.SAVED:
        base = _base_url(request)
        query = signed_query(request, recording)
        data["playlist_url"] = f"{base}/vod/{recording.id}/index.m3u8{query}"
        data["download_url"] = f"{base}/vod/{recording.id}/download.mp4{query}"
    return data


async def list_recordings(request: web.Request) -> web.Response:
    recorder = request.app[RECORDER]
    try:
        query = read_query(request, m.RecordingQuery)
    except ApiError as exc:
        return _json_error(exc.status, exc.message)
    states = None if query.state is None else (RecordingState(query.state),)
    rows = await recorder.list(stream=query.stream, states=states, limit=query.limit)
    visible = []
    for recording in rows:
        if (recording.state is RecordingState.SAVED and await may_list(request, recording)
                or await _allowed(request, recorder, recording)):
            visible.append(recording_json(request, recorder, recording))
    return respond(m.RecordingList, {"recordings": visible}, headers={"Cache-Control": "no-store"})


async def get_recording(request: web.Request) -> web.Response:
    recorder = request.app[RECORDER]
    recording = await _lookup(request, recorder)
    if recording is None or not (
            recording.state is RecordingState.SAVED and await may_view(request, recording)
            or await _allowed(request, recorder, recording)):
        return _json_error(404, "no such recording")
    return respond(m.Recording, recording_json(request, recorder, recording), headers={"Cache-Control": "no-store"})


async def change_audience(request: web.Request) -> web.Response:
    """``PATCH /api/recordings/{id}`` ``{visibility, mature}``: who decides about it only."""
    recorder = request.app[RECORDER]
    recording = await _lookup(request, recorder)
    if recording is None:
        return _json_error(404, "no such recording")
    if not await _allowed(request, recorder, recording):  # the right first, before the body
        return _json_error(403, "only the stream's creator (or an administrator) may change who watches it")
    try:
        body = await read_body(request, m.AudienceChange)
    except ApiError as exc:
        return _json_error(exc.status, exc.message)
    allowed = request.app[CONFIG].live.visibility_allowed
    if body.visibility is not None and body.visibility not in allowed:
        return _json_error(400, f"visibility {body.visibility!r} is not allowed on this site")
    try:
        recording = await recorder.set_audience(recording.id, visibility=body.visibility, mature=body.mature)
    except RecordingNotFound:
        return _json_error(404, "no such recording")
    except DecisionRefused as exc:
        return _json_error(409, str(exc))
    return respond(m.Recording, recording_json(request, recorder, recording), headers={"Cache-Control": "no-store"})


async def save_recording(request: web.Request) -> web.Response:
    return await _decide(request, "save")


async def discard_recording(request: web.Request) -> web.Response:
    return await _decide(request, "discard")


async def _decide(request: web.Request, action: str) -> web.Response:
    recorder = request.app[RECORDER]
    recording = await _lookup(request, recorder)
    if recording is None:
        return _json_error(404, "no such recording")
    if not await _allowed(request, recorder, recording):
        return _json_error(403, "only the stream's creator (or an administrator) may decide about its recording")
    try:
        if action == "save":
            recording = await recorder.save(recording.id)
        else:
            recording = await recorder.discard(recording.id)
    except RecordingNotFound:
        return _json_error(404, "no such recording")
    except DecisionRefused as exc:
        return _json_error(409, str(exc))
    return respond(m.Recording, recording_json(request, recorder, recording), headers={"Cache-Control": "no-store"})


async def _lookup(request: web.Request, recorder: Recorder) -> Recording | None:
    recording_id = request.match_info["id"]
    if not is_recording_id(recording_id):
        return None
    return await recorder.get(recording_id)


async def _allowed(request: web.Request, recorder: Recorder, recording: Recording) -> bool:
    try:
        return bool(await _call(recorder.authorize, request, recording))
    except Exception:
        return False


# --- VOD ------------------------------------------------------------------------------------------

async def vod_playlist(request: web.Request) -> web.StreamResponse:
    if not is_recording_id(request.match_info["id"]):
        return _error(400)
    index = await _vod(request)
    if index is None:
        return _error(404)
    if index.recording.visibility != "public":
        if not _signed(request, index.recording):
            return _error(404)  # as for no such recording: a refusal tells nothing
        # Every URI it lists carries a fresh signature (a player resolves them without
        # the playlist's query).
        query = signed_query(request, index.recording)
        lines = [line + query if line and not line.startswith("#") else
                 re.sub(r'URI="([^"]+)"', lambda m: f'URI="{m.group(1)}{query}"', line)
                 for line in index.playlist.decode().split("\n")]
        return web.Response(body="\n".join(lines).encode(), headers={
            **CORS, "Content-Type": CONTENT_TYPES["m3u8"], "Cache-Control": RESTRICTED_CACHE})
    return web.Response(body=index.playlist, headers={
        **CORS, "Content-Type": CONTENT_TYPES["m3u8"], "Cache-Control": PLAYLIST_CACHE,
    })


async def vod_file(request: web.Request) -> web.StreamResponse:
    file_name = request.match_info["file"]
    if not (is_recording_id(request.match_info["id"]) and names.is_file_name(file_name)):
        return _error(400)
    index = await _vod(request)
    if index is None or file_name not in index.files:
        return _error(404)
    restricted = index.recording.visibility != "public"
    if restricted and not _signed(request, index.recording):
        return _error(404)
    path = request.app[RECORDER].path_of(index.recording.id) / file_name
    return web.FileResponse(path, headers={
        **CORS, "Content-Type": CONTENT_TYPES[file_name.rsplit(".", 1)[1]],
        "Cache-Control": RESTRICTED_CACHE if restricted else FILE_CACHE,
    })


async def vod_download(request: web.Request) -> web.StreamResponse:
    recorder = request.app[RECORDER]
    if not is_recording_id(request.match_info["id"]):
        return _error(400)
    index = await _vod(request)
    if index is None:
        return _error(404)
    restricted = index.recording.visibility != "public"
    if restricted and not _signed(request, index.recording):
        return _error(404)
    try:
        path = await recorder.mp4(index.recording.id)
    except RecordingNotFound:
        return _error(404)
    except rf.RemuxError as exc:
        return _json_error(409, f"no MP4 for this recording: {exc}")
    except OSError as exc:
        return _json_error(503, f"the MP4 could not be made: {exc.strerror or exc}")
    recording = index.recording
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(recording.started_at))
    return web.FileResponse(path, headers={
        **CORS,
        "Content-Type": "video/mp4",
        "Cache-Control": RESTRICTED_CACHE if restricted else FILE_CACHE,
        "Content-Disposition": f'attachment; filename="{recording.stream}-{stamp}.mp4"',
    })


async def preflight(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers={
        **CORS,
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "Range",
        "Access-Control-Max-Age": "86400",
    })


async def _vod(request: web.Request):
    recording_id = request.match_info["id"]
    if not is_recording_id(recording_id):
        return None
    return await request.app[RECORDER].vod(recording_id)


def _error(status: int) -> web.Response:
    reason = {400: "bad request", 404: "not found"}[status]
    return web.Response(status=status, text=reason + "\n", headers={**CORS, "Cache-Control": ERROR_CACHE})


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": ERROR_CACHE})


def _base_url(request: web.Request) -> str:

    return public_base_url(request)
