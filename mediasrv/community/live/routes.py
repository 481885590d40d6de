"""The creator's live over HTTP (docs/api.md, "Backstage and ending a live").

- ``GET /api/me/live``: the creator's live: ``offline``, ``private`` or ``public``, and
  URLs that play it for them (signed while private: the studio's preview);
- ``POST /api/me/live/public``: the private live becomes public at once (listed, alerts
  and webhooks, recording from now on); 409 when not live; already public: 200 with
  ``changed: false`` (a studio's retry is harmless);
- ``POST /api/me/live/end``: ends the live from the server (the publisher is
  disconnected, RTMP or WHIP), holds the stream name for ``live.end_hold_seconds`` and
  answers with the recording that now awaits save or discard; 409 when not live;
- ``PATCH /api/me/live``: who may watch the live now (``visibility``, ``mature``);
- ``GET/POST/DELETE /api/me/invites[/HANDLE]``: who is invited to the creator's private lives;
- ``GET /api/live/NAME/playback``: where to play a live; one that is not public only for
  those who may watch it (``audience``: followers, invited, the creator's team; an
  unlisted one for anyone), with a signed grant; anyone else gets the 404 of a stream that
  is not live.

The creator's stream is named after their handle (``auth.mode: accounts``, and a
creator's key in ``open``).
"""

from __future__ import annotations

from aiohttp import web

from mediasrv.community.accounts.http import handle_param, optional_user, require_user
from mediasrv.community.live import models as m
from mediasrv.community.live.grants import Grant
from mediasrv.community.live.service import LiveControl, NotLive
from mediasrv.config import STREAM_NAME_RE
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, respond
from mediasrv.httpkit.keys import ACCOUNTS, LIVE, RECORDER
from mediasrv.httpkit.models import STREAM_NAME_PARAM
from mediasrv.community.accounts.models import HANDLE_PARAM
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.urls import public_base_url, rtmp_base_url
from mediasrv.httpkit.validate import ApiError
from mediasrv.hub import Stream
from mediasrv.ports import PLAYBACK_GRANT_PARAM
from mediasrv.store import User

#: How long ``end`` waits for the recording's last segment before answering anyway.
SETTLE_TIMEOUT = 10.0
_NO_STORE = {"Cache-Control": "no-store"}


def _live(request: web.Request) -> LiveControl:
    live = request.app.get(LIVE)
    if live is None:
        raise ApiError(503, "the live control is not available yet")
    return live


def _playback(request: web.Request, live: LiveControl, stream: Stream, grant: Grant | None = None) -> dict:
    """Playback URLs of ``stream`` for someone who may play it: signed unless public."""
    base = public_base_url(request)
    urls = {"playback_url": f"{base}/live/{stream.name}/index.m3u8",
            "rtmp_playback_url": f"{rtmp_base_url(request)}/{stream.name}",
            "events_url": f"{base}/api/streams/{stream.name}/events"}
    if not stream.restricted:
        return {**urls, "grant": None, "expires_at": None, "expires_in": None}
    if grant is None:
        grant = live.grant(stream)
    carry = f"?{PLAYBACK_GRANT_PARAM}={grant.value}"
    return {**{key: url + carry for key, url in urls.items()}, "grant": grant.value, "expires_at": grant.expires_at,
            "expires_in": grant.expires_in}


async def _state(request: web.Request, live: LiveControl, user: User) -> dict:
    stream = live.current(user.handle)
    accounts = request.app.get(ACCOUNTS)
    backstage = accounts is not None and (await accounts.settings(user)).backstage
    state = {"stream": user.handle, "state": "offline", "connection": None, "started_at": None, "public_at": None,
             "backstage": backstage, "hold_seconds": round(live.hold_left(user.handle), 3), "preview": None}
    if stream is not None:
        state.update(state="private" if stream.private else "public",
                     connection="connected" if stream.publisher is not None else "reconnecting",
                     started_at=stream.started_at, public_at=stream.public_at,
                     visibility=stream.visibility, mature=stream.mature,
                     preview=_playback(request, live, stream))
    return state


async def my_live(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    return respond(m.LiveState, await _state(request, _live(request), user), headers=_NO_STORE)


async def make_public(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")  # the role first, before anything else
    live = _live(request)
    try:
        _, changed = live.make_public(user.handle)
    except NotLive as exc:
        raise ApiError(409, str(exc)) from None
    return respond(m.LiveState, {**await _state(request, live, user), "changed": changed}, headers=_NO_STORE)


async def end_live(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    live = _live(request)
    stream = live.current(user.handle)
    recorder = request.app.get(RECORDER)
    recording_id = recorder.recording_of(stream) if recorder is not None and stream is not None else None
    try:
        stream = live.end(user.handle)
    except NotLive as exc:
        raise ApiError(409, str(exc)) from None
    hold = round(live.hold_left(user.handle), 3)
    recording = None
    if recording_id is not None:
        # The last segment is written in a moment: answer with the recording awaiting
        # its decision, so the studio can ask "save or discard" right away.
        settled = await recorder.settled(recording_id, timeout=SETTLE_TIMEOUT)
        if settled is not None:
            recording = {"id": settled.id, "state": settled.state.value, "duration": round(settled.duration, 3),
                         "decide_by": recorder.decide_by(settled)}
    return respond(m.LiveEnded, {
        "stream": stream.name, "ended_at": stream.ended_at, "was": "public" if stream.public_at is not None else "private",
        "hold_seconds": hold, "recording": recording,
    }, headers=_NO_STORE)


async def playback(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid stream name")
    live = _live(request)
    stream = live.current(name)
    grant = None
    if stream is not None:
        # Asked even of a public live: a user the creator blocked gets the 404 here too.
        user = await optional_user(request)
        if stream.restricted:
            grant = await live.grant_for(stream, user)
            if grant is None:
                stream = None  # refused exactly as a stream that is not live
        elif user is not None and not await live.may_watch(name, user):
            stream = None
    if stream is None:
        raise ApiError(404, "no such live stream")
    return respond(m.LivePlayback, {"stream": name, "state": "private" if stream.private else "public",
                                    "visibility": stream.visibility, "mature": stream.mature,
                                    **_playback(request, live, stream, grant)}, headers=_NO_STORE)


async def change_audience(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")  # the role first, before anything else
    live = _live(request)
    body = await read_body(request, m.AudienceChange)
    try:
        live.set_audience(user.handle, visibility=body.visibility, mature=body.mature)
    except NotLive as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return respond(m.LiveState, await _state(request, live, user), headers=_NO_STORE)


def _accounts(request: web.Request):
    accounts = request.app.get(ACCOUNTS)
    if accounts is None:
        raise ApiError(503, "accounts are not available yet")
    return accounts


async def list_invites(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    invites = await _accounts(request).invites(user)
    return respond(m.Invites, {"invites": [{"handle": i.handle, "display_name": i.display_name,
                                            "invited_at": i.invited_at} for i in invites]}, headers=_NO_STORE)


async def _invitee(request: web.Request, creator: User) -> User:
    other = await _accounts(request).get_user(handle_param(request))
    if other is None:
        raise ApiError(404, "no such user")
    if other.id == creator.id:
        raise ApiError(422, "you do not need an invitation to your own live")
    return other


async def invite(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    other = await _invitee(request, user)
    changed = await _accounts(request).invite(user, other)
    return respond(m.InviteAnswer, {"handle": other.handle, "invited": True, "changed": changed}, headers=_NO_STORE)


async def uninvite(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    other = await _invitee(request, user)
    changed = await _accounts(request).uninvite(user, other)
    if changed:
        # Grants already handed to them stop working at their next request; their chat too.
        _live(request).audience_changed(user.handle)
    return respond(m.InviteAnswer, {"handle": other.handle, "invited": False, "changed": changed}, headers=_NO_STORE)


def setup(app: web.Application) -> None:
    """The live-control routes; the live control is the composition root's (``app[LIVE]``)."""
    validate.install(app)
    T = "live"
    _HANDLE = path_param("handle", "a user's handle (any case)", HANDLE_PARAM)
    add_route(app, "GET", "/api/me/live", my_live, op(
        "The creator's live: offline, private (backstage) or public, and a preview that plays it", tag=T,
        role="creator", ok_schema=m.LiveState,
        description="`preview` plays the live for the creator whatever its state (a private live's URLs carry a "
                    "signed grant valid `live.grant_seconds`: ask again for a fresh one). The studio polls this "
                    "while it waits for the encoder."))
    add_route(app, "POST", "/api/me/live/public", make_public, op(
        "Make the private (backstage) live public now", tag=T, role="creator", ok_schema=m.LiveState,
        errors=[409],
        description="It is listed, followers' go-live alerts and the `stream.started` webhook go out, and recording "
                    "starts, now (as they would have at the start without the backstage). 409 when the creator has "
                    "no live broadcast. A live that is public already: 200 with `changed: false`, nothing sent again."))
    add_route(app, "POST", "/api/me/live/end", end_live, op(
        "End the creator's live from the server", tag=T, role="creator", ok_schema=m.LiveEnded, errors=[409],
        description="The publisher (RTMP or WHIP) is disconnected and the broadcast ends at once (viewers' "
                    "players get the end of the playlist; the chat's `stream-ended` says the creator ended it). "
                    "A new publish of this stream (the same key) is refused for `live.end_hold_seconds` rather "
                    "than silently restarting the live. `recording` is the broadcast's recording, waiting for "
                    "`POST /api/recordings/{id}/save` or `/discard` (already saved when the creator saves by "
                    "default). 409 when the creator has no live broadcast."))
    add_route(app, "PATCH", "/api/me/live", change_audience, op(
        "Change who may watch the live now (visibility, 18+)", tag=T, role="creator", body=m.AudienceChange,
        ok_schema=m.LiveState, errors=[400, 409],
        description="Applies at once: the grants handed out under the old visibility are revoked (viewers who "
                    "may still watch get a fresh one from `GET /api/live/{name}/playback`; the watch page does "
                    "so by itself). The next broadcasts follow the saved setting (`PATCH /api/me/settings`). "
                    "400 for a visibility the site does not allow (`live.visibility_allowed`); 409 when not live."))
    add_route(app, "GET", "/api/me/invites", list_invites, op(
        "The people invited to the creator's private lives", tag=T, role="creator", ok_schema=m.Invites))
    add_route(app, "POST", "/api/me/invites/{handle}", invite, op(
        "Invite a user to the creator's private lives", tag=T, role="creator", params=[_HANDLE],
        ok_schema=m.InviteAnswer, errors=[400, 404, 422],
        description="They may watch every live of the creator whose visibility is `private` (unless the creator "
                    "blocked them). 404: no such user; 422: the creator themselves."))
    add_route(app, "DELETE", "/api/me/invites/{handle}", uninvite, op(
        "Withdraw an invitation", tag=T, role="creator", params=[_HANDLE], ok_schema=m.InviteAnswer,
        errors=[400, 404, 422],
        description="The live's grants are revoked: the user loses a private live at their next playlist "
                    "reload (and the media within `hls.url_signing_seconds`)."))
    add_route(app, "GET", "/api/live/{name}/playback", playback, op(
        "Where to play a live, for who may watch it", tag=T,
        auth="optional", params=[path_param("name", "public stream name", STREAM_NAME_PARAM)],
        ok_schema=m.LivePlayback, errors=[400, 404],
        description="A public live: its URLs, to anyone (but a user the creator blocked). A live that is not "
                    "public (docs/security.md, \"Who may watch\"): signed URLs for who may watch it "
                    "(followers-only: signed-in followers; unlisted: anyone; private: invited users; always the "
                    "creator, the moderators they appointed and the site's moderators and admins; a backstage: "
                    "only those last); anyone else gets the 404 of a stream that is not live."))


__all__ = ["setup"]
