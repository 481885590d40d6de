"""Connects the recorder to the people around a stream: who decides, the creator's
default, the ``broadcast.saved`` webhook, alerts to the creator, and the OpenAPI text of
the recording and VOD routes.

The composition root gives the recorder ``creator_hooks(...)``; ``setup`` adds the
creator's saved VODs to their profile and describes the recording routes.
"""

from __future__ import annotations

from aiohttp import web

from mediasrv.community.accounts.http import optional_user
from mediasrv.community.accounts.service import AccountService
from mediasrv.community.alerts.service import AlertHub
from mediasrv.community.alerts.webhooks import WebhookSender
from mediasrv.config import Config
from mediasrv.httpkit import openapi
from mediasrv.httpkit.keys import PROFILE_PARTS, RECORDER
from mediasrv.httpkit.urls import configured_base_url
from mediasrv.recording import models
from mediasrv.recording.recorder import RecordingHooks
from mediasrv.recording.routes import default_authorize, may_list, signed_query
from mediasrv.store.recordings import RecordingState





#: Saved VODs listed on a profile, newest first (the full list: ``GET /api/recordings``).
PROFILE_VODS = 50


def setup(app: web.Application, config: Config) -> None:
    """Describe the recording routes and add the creator's saved VODs to their profile."""
    _describe(app)
    base = configured_base_url(config)

    async def saved_vods(request: web.Request, user) -> dict:
        # A creator's public stream name is their handle: their saved recordings are
        # the VODs of that stream (issue 7: "listed on the creator's profile").
        recorder = request.app.get(RECORDER)
        rows = [] if recorder is None else await recorder.list(
            stream=user.handle, states=(RecordingState.SAVED,), limit=PROFILE_VODS)
        # A recording that is not public: only for who may watch it, with signed URLs.
        return {"vods": [vod_json(r, base, fallback_title=user.display_name, query=signed_query(request, r))
                         for r in rows if await may_list(request, r)]}

    app[PROFILE_PARTS].append(saved_vods)


def vod_json(recording, base: str, *, fallback_title: str, query: str = "") -> dict:
    """A saved recording as listed on its creator's profile (``query``: its signature)."""
    return {
        "id": recording.id,
        "title": recording.title or fallback_title,
        "duration": round(recording.duration, 3),
        "started_at": recording.started_at,
        "ended_at": recording.ended_at,
        "playback_url": f"{base}/vod/{recording.id}/index.m3u8{query}",
        "download_url": f"{base}/vod/{recording.id}/download.mp4{query}",
    }


def creator_hooks(config: Config, *, accounts: AccountService | None, alerts: AlertHub,
                  webhooks: WebhookSender) -> RecordingHooks:
    """The recorder's hooks on a platform: who may decide (the creator or an admin with
    accounts, else ``recording.admin_token`` or this machine), the creator's "save by
    default" and go-live title, the ``broadcast.saved`` webhook and the creator's alerts."""
    fallback = default_authorize(config)
    base = configured_base_url(config)

    async def authorize(request: web.Request, recording) -> bool:
        # With accounts, the creator whose stream it was (its public name is their
        # handle) or an admin decides; otherwise the recorder's own rule (admin
        # token, or loopback with no proxy in between).
        if config.auth.mode == "accounts":
            user = await optional_user(request)
            return user is not None and (user.handle == recording.stream or user.at_least("admin"))
        return bool(fallback(request, recording))

    async def default_save(stream: str) -> bool:
        if accounts is None:
            return False
        return bool(await accounts.save_by_default(stream))

    async def title_of(stream: str) -> str:
        # The go-live title the creator set (with accounts; otherwise none).
        user = None if accounts is None else await accounts.get_user(stream)
        return "" if user is None else (await accounts.settings(user)).title

    async def tell_creator(recording, event: str) -> None:
        if accounts is None:
            return
        user = await accounts.get_user(recording.stream)
        if user is not None:
            alerts.deliver([user.id], event, _recording_event(recording, base))

    async def on_saved(recording) -> None:
        webhooks.send("broadcast.saved", _recording_event(recording, base))
        await tell_creator(recording, "recording.saved")

    async def on_ended(recording) -> None:
        await tell_creator(recording, "recording.pending")

    async def on_failed(recording) -> None:
        await tell_creator(recording, "recording.failed")

    return RecordingHooks(authorize=authorize, default_save=default_save, on_saved=on_saved, on_ended=on_ended,
                          on_failed=on_failed, title_of=title_of)


def _recording_event(recording, base: str) -> dict:
    data = {"id": recording.id, "stream": recording.stream, "state": str(recording.state)}
    error = getattr(recording, "error", None)
    if error:
        data["error"] = error
    if str(recording.state) in ("saved", "RecordingState.SAVED"):
        data["vod_url"] = f"{base}/vod/{recording.id}/index.m3u8"
        data["download_url"] = f"{base}/vod/{recording.id}/download.mp4"
    return data


def _describe(app: web.Application) -> None:
    rid = openapi.path_param("id", "the recording's id (16 url-safe characters)")
    tag = "recordings"
    who = ("with accounts: the stream's creator or an admin; otherwise the configured "
           "recording.admin_token, or a request from this machine")
    openapi.register_operation(app, "GET", "/api/recordings", openapi.op(
        "List recordings (saved ones for everyone; others for whoever may decide them)", tag=tag, auth="optional",
        query=models.RecordingQuery, ok_schema=models.RecordingList, errors=[400]))
    openapi.register_operation(app, "GET", "/api/recordings/{id}", openapi.op(
        "One recording", tag=tag, auth="optional", params=[rid], ok_schema=models.Recording, errors=[403, 404]))
    for action, summary in (("save", "Keep it as a VOD (playlist and MP4 download)"),
                            ("discard", "Delete its files; nothing is left on disk")):
        openapi.register_operation(app, "POST", f"/api/recordings/{{id}}/{action}", openapi.op(
            summary, tag=tag, auth="optional", description=f"Who may decide: {who}.", params=[rid],
            ok_schema=models.Recording, errors=[403, 404, 409]))
    openapi.register_operation(app, "PATCH", "/api/recordings/{id}", openapi.op(
        "Change who may watch a recording (visibility, 18+)", tag=tag, auth="optional",
        description=f"Who may: {who}. A recording keeps its live's visibility until changed here; 400 for a "
                    "visibility the site does not allow; 409 while it is still being recorded (change the live's).",
        params=[rid], body=models.AudienceChange, ok_schema=models.Recording, errors=[400, 403, 404, 409]))
    playlist = {"application/vnd.apple.mpegurl": {"schema": {"type": "string"}}}
    vid = openapi.path_param("id", "the recording's id (16 url-safe characters)",
                             {"type": "string", "pattern": "^[A-Za-z0-9_-]{16}$"})
    openapi.register_operation(app, "GET", "/vod/{id}/index.m3u8", _plain_errors(openapi.op(
        "VOD playlist of a saved recording (EXT-X-PLAYLIST-TYPE:VOD)", tag="vod", params=[vid],
        ok_content=playlist, errors=[400, 404])))
    openapi.register_operation(app, "GET", "/vod/{id}/download.mp4", _plain_errors(openapi.op(
        "The recording as one MP4 (remuxed, not re-encoded)", tag="vod", params=[vid],
        ok_content={"video/mp4": {"schema": {"type": "string", "format": "binary"}}}, errors=[400, 404, 409])))


def _plain_errors(operation: dict) -> dict:
    """The media routes answer 400 and 404 in plain text, like the HLS routes (players
    show it; there is no API client to read JSON)."""
    for code in ("400", "404"):
        if code in operation["responses"]:
            operation["responses"][code]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return operation
