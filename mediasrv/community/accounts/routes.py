"""Accounts over HTTP: registration, login/logout, profiles, follows, roles, live access,
stream keys, go-live settings and the cover image. See docs/api.md.

Authentication is ``Authorization: Bearer TOKEN`` (``POST /api/login``). Roles are
ordered viewer < creator < moderator < admin; an endpoint that needs a role accepts any
higher one.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from mediasrv.community.accounts import models as m
from mediasrv.community.accounts.http import (_token, account_service, cover_url, optional_user, require_user,
                                              target_user)
from mediasrv.community.accounts.service import AccountSuspended
from mediasrv.httpkit import validate
from mediasrv.httpkit.body import read_body, read_query, respond
from mediasrv.httpkit.clients import viewer_address
from mediasrv.httpkit.keys import (CONFIG, HUB, LOGIN_LIMITER, MAIL_LIMITER, MODERATION, PROFILE_PARTS,
                                   REGISTRATION_LIMITER, THUMBNAILS)
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.urls import public_base_url, rtmp_base_url
from mediasrv.httpkit.validate import ApiError
from mediasrv.image_pool import PoolBusy
from mediasrv.images import ImageError
from mediasrv.ports import STREAM_KEY_PREFIX, looks_like_stream_key
from mediasrv.store import HandleTaken, User











DISPLAY_NAME_MAX = m.DISPLAY_NAME_MAX
TITLE_MAX = m.TITLE_MAX


# --- authentication helpers (also used by the discovery routes) ---------------------------















async def _profile(request: web.Request, user: User) -> dict:
    service = account_service(request)
    store = service.store
    followers, following, settings = await asyncio.gather(
        asyncio.to_thread(store.follower_count, user.id),
        asyncio.to_thread(store.following_count, user.id),
        service.settings(user),
    )
    profile = {
        **user.to_json(),
        "followers": followers,
        "following": following,
        "live": request.app[HUB].get_public(user.handle) is not None,  # a private live is nobody's business
        "cover_url": cover_url(user, settings),
    }
    for part in request.app.get(PROFILE_PARTS, ()):
        profile.update(await part(request, user))
    return profile


# --- handlers -----------------------------------------------------------------------------

def _too_many(what: str, wait: int) -> ApiError:
    return ApiError(429, f"{what}: try again in {wait} s", retry_after=wait, headers={"Retry-After": str(wait)})


async def register(request: web.Request) -> web.Response:
    service = account_service(request)
    body = await read_body(request, m.NewUser)
    actor = await optional_user(request)
    is_admin = actor is not None and actor.at_least("admin")
    if not service.config.accounts.open_registration and not is_admin:
        raise ApiError(403, "registration is closed: an admin creates accounts")
    handle, password = body.handle, body.password
    if looks_like_stream_key(handle):
        # A handle is the public name of the creator's stream; one of the stream keys' form
        # would be refused as a public name (docs/security.md).
        raise ApiError(400, f"handle: may not start with {STREAM_KEY_PREFIX!r}, the form of secret stream keys")
    display_name = body.display_name or handle
    role = body.role or "viewer"
    if role not in ("viewer", "creator") and not is_admin:
        raise ApiError(403, f"only an admin can create a {role} account")
    if body.email is not None and not service.verifies_email():
        # Well-formed, refused for what it asks: a 422 (as following yourself is).
        raise ApiError(422, "email: this server sends no email (email.enabled is false): register without one")
    if not is_admin:
        # Per address and for everyone (issue 18: a burst of fake followers). Checked
        # before the password is hashed; every attempt past this point counts.
        limiter = request.app[REGISTRATION_LIMITER]
        address = viewer_address(request)
        wait = limiter.retry_after(address)
        if wait:
            raise _too_many("too many accounts registered", wait)
        limiter.registered(address)
    base = public_base_url(request)
    try:
        user = await service.create_user(handle, password, display_name=display_name, role=role, email=body.email,
                                         verify_url=lambda token: f"{base}/api/verify-email?token={token}")
    except HandleTaken:
        raise ApiError(409, f"the handle {handle!r} is taken") from None
    return respond(m.Profile, await _profile(request, user), status=201)


async def registration(request: web.Request) -> web.Response:
    """The site facts the sign-up form shows: open registration, email verification."""
    service = account_service(request)
    return respond(m.Registration, {"open": service.config.accounts.open_registration,
                                    "email_verification": service.verifies_email()})


#: The page a browser opening a verification link lands on (mediasrv/pages): it verifies
#: through POST and says "verified" or "expired" in words, not JSON.
VERIFY_PAGE = "/verify-email"


def _wants_html(request: web.Request) -> bool:
    # A browser (a mail client's link) asks for text/html first; API clients send */* or JSON.
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


async def verify_email(request: web.Request) -> web.Response:
    """The link of a verification mail (GET, as a mail client opens it; POST too). A
    browser's GET is sent to the verification page without using the link: a mail
    scanner that fetches links runs no script, so it cannot verify on the owner's behalf."""
    token = read_query(request, m.VerifyEmail).token
    if request.method == "GET" and _wants_html(request):
        raise web.HTTPSeeOther(f"{VERIFY_PAGE}?token={token}", headers={"Cache-Control": "no-store"})
    user = await account_service(request).verify_email(token)
    if user is None:
        raise ApiError(404, "this verification link is unknown, used or expired")
    return respond(m.EmailVerified, {"handle": user.handle, "verified": True}, headers={"Cache-Control": "no-store"})


async def my_email(request: web.Request) -> web.Response:
    user = await require_user(request)
    service = account_service(request)
    email, verified = await service.email_status(user)
    return respond(m.EmailStatus, {"email": email, "verified": verified, "verification": service.verifies_email()},
                   headers={"Cache-Control": "no-store"})


async def change_email(request: web.Request) -> web.Response:
    """Give (or change) the account's email: a verification link is mailed there. For
    accounts made before email.enabled, or whose link expired."""
    user = await require_user(request)
    service = account_service(request)
    body = await read_body(request, m.EmailChange)
    if not service.verifies_email():
        raise ApiError(422, "email: this server sends no email (email.enabled is false)")
    limiter = request.app[MAIL_LIMITER]
    wait = limiter.retry_after(user.id)
    if wait:
        raise _too_many("too many verification mails asked for", wait)
    limiter.asked(user.id)
    base = public_base_url(request)
    sent = await service.send_verification(user, body.email, lambda token: f"{base}/api/verify-email?token={token}")
    email, verified = await service.email_status(user)
    return respond(m.EmailStatus, {"email": email, "verified": verified, "verification": True, "sent": sent},
                   status=202, headers={"Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    service = account_service(request)
    body = await read_body(request, m.Login)
    handle, password = body.handle, body.password

    limiter = request.app[LOGIN_LIMITER]
    address = viewer_address(request)
    # Refused before the password is checked: a limited client learns nothing and costs
    # no scrypt work (docs/security.md).
    wait = limiter.retry_after(address, handle)
    if wait:
        raise _too_many("too many failed logins", wait)
    try:
        result = await service.login(handle, password)
    except AccountSuspended as suspended:
        # Only after the right password: the reason is the account owner's to read.
        s = suspended.suspension
        until = "until an operator lifts it" if s.until is None else (
            "until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(s.until)))
        raise ApiError(403, f"this account is suspended {until}: {s.reason}", code="suspended",
                       reason=s.reason, until=s.until) from None
    if result is None:
        limiter.failed(address, handle)
        raise ApiError(401, "wrong handle or password")
    token, expires, user = result
    return respond(m.LoginAnswer, {"token": token, "token_type": "Bearer", "expires_at": expires,
                                   "user": user.to_json()}, headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.Response:
    await require_user(request)
    await account_service(request).logout(_token(request, query=False))
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    user = await require_user(request)
    return respond(m.Profile, await _profile(request, user), headers={"Cache-Control": "no-store"})


async def update_me(request: web.Request) -> web.Response:
    user = await require_user(request)
    service = account_service(request)
    body = await read_body(request, m.MeUpdate)
    display_name, new_password, current = body.display_name, body.new_password, body.current_password
    if new_password is not None:
        # A current-password check is a password guess like a login: the same limiter
        # (per account and address, with ceilings), so a stolen token cannot be used to
        # guess the password without limit (issue 18).
        limiter = request.app[LOGIN_LIMITER]
        address = viewer_address(request)
        wait = limiter.retry_after(address, user.handle)
        if wait:
            raise _too_many("too many wrong current passwords", wait)
        # The session asking stays logged in; every other one ends (a stolen token or a
        # forgotten login elsewhere stops working with the old password).
        ended = await service.change_password(user, current, new_password, keep_token=_token(request, query=False))
        if ended is None:
            limiter.failed(address, user.handle)
            raise ApiError(403, "current_password is wrong")
    if display_name is not None:
        await asyncio.to_thread(service.store.set_display_name, user.id, display_name)
    fresh = await asyncio.to_thread(service.store.get_user, user.id)
    return respond(m.Profile, await _profile(request, fresh))


async def become_creator(request: web.Request) -> web.Response:
    user = await require_user(request)
    service = account_service(request)
    if not user.at_least("creator") and not service.creators_may_register():
        raise ApiError(403, "on this server an admin makes creators: ask an admin for the creator role")
    fresh = await service.become_creator(user)
    return respond(m.Profile, await _profile(request, fresh), headers={"Cache-Control": "no-store"})


async def user_profile(request: web.Request) -> web.Response:
    return respond(m.Profile, await _profile(request, await target_user(request)))


async def search_users(request: web.Request) -> web.Response:
    """Moderators and admins: users by the start of their handle, paged; ``only=waiting``
    lists those whose live-access request waits (the /admin queue decides them)."""
    await require_user(request, "moderator")  # the role first, before any input is read
    query = read_query(request, m.UserSearch)
    rows, total = await asyncio.to_thread(account_service(request).store.search_users, query.prefix,
                                          query.only == "waiting", query.limit, query.offset)
    end = query.offset + len(rows)
    return respond(m.UserSearchAnswer, {
        "total": total,
        "users": [{**user.to_json(), "followers": followers, "waiting_for_access": waiting}
                  for user, followers, waiting in rows],
        "next_offset": end if end < total and rows else None,
    }, headers={"Cache-Control": "no-store"})


def _page(request: web.Request) -> tuple[int, int]:
    page = read_query(request, m.Page)
    return page.limit, page.offset


async def followers(request: web.Request) -> web.Response:
    user = await target_user(request)
    limit, offset = _page(request)
    store = account_service(request).store
    rows, total = await asyncio.gather(asyncio.to_thread(store.list_followers, user.id, limit, offset),
                                       asyncio.to_thread(store.follower_count, user.id))
    return respond(m.UserList, {"total": total, "users": [u.to_json() for u in rows]})


async def following(request: web.Request) -> web.Response:
    user = await target_user(request)
    limit, offset = _page(request)
    store = account_service(request).store
    rows, total = await asyncio.gather(asyncio.to_thread(store.list_following, user.id, limit, offset),
                                       asyncio.to_thread(store.following_count, user.id))
    return respond(m.UserList, {"total": total, "users": [u.to_json() for u in rows]})


async def follow(request: web.Request) -> web.Response:
    user = await require_user(request)
    target = await target_user(request)
    if target.id == user.id:
        raise ApiError(422, "you cannot follow yourself")
    if account_service(request).relations.blocks(target.id, user.id):
        raise ApiError(403, f"{target.handle} blocked you: you cannot follow them")
    store = account_service(request).store
    added = await asyncio.to_thread(store.follow, user.id, target.id, time.time())
    count = await asyncio.to_thread(store.follower_count, target.id)
    return respond(m.FollowAnswer, {"following": True, "changed": added, "handle": target.handle, "followers": count})


async def unfollow(request: web.Request) -> web.Response:
    user = await require_user(request)
    target = await target_user(request)
    store = account_service(request).store
    removed = await asyncio.to_thread(store.unfollow, user.id, target.id)
    count = await asyncio.to_thread(store.follower_count, target.id)
    return respond(m.FollowAnswer, {"following": False, "changed": removed, "handle": target.handle,
                                    "followers": count})


async def set_role(request: web.Request) -> web.Response:
    actor = await require_user(request, "admin")
    target = await target_user(request)
    role = (await read_body(request, m.RoleChange)).role
    if target.id == actor.id and role != "admin":
        raise ApiError(422, "an admin cannot demote themselves (ask another admin)")
    user = await account_service(request).set_role(target, role)
    return respond(m.Profile, await _profile(request, user))


async def revoke_tokens(request: web.Request) -> web.Response:
    actor = await require_user(request)
    target = await target_user(request)
    if target.id != actor.id and not actor.at_least("admin"):
        raise ApiError(403, "only an admin can revoke another user's tokens")
    count = await account_service(request).revoke_tokens(target)
    return respond(m.Revoked, {"revoked": count})


async def my_live_access(request: web.Request) -> web.Response:
    user = await require_user(request)
    access = await account_service(request).live_access(user)
    return respond(m.LiveAccess, {"handle": user.handle, **access.to_json()}, headers={"Cache-Control": "no-store"})


async def user_live_access(request: web.Request) -> web.Response:
    actor = await require_user(request)
    target = await target_user(request)
    if target.id != actor.id and not actor.at_least("moderator"):
        raise ApiError(403, "only moderators and admins can see another user's live access")
    access = await account_service(request).live_access(target)
    return respond(m.LiveAccess, {"handle": target.handle, **access.to_json()})


async def set_live_access(request: web.Request) -> web.Response:
    actor = await require_user(request, "admin")
    target = await target_user(request)
    choice = (await read_body(request, m.LiveAccessChange)).access
    access = await account_service(request).set_live_access(target, None if choice == "rule" else choice, actor)
    stopped = False
    if not access.allowed and request.app[HUB].get(target.handle) is not None:
        # Revoked while live: the broadcast is taken off the air.
        stopped = request.app[HUB].stop(target.handle)
    return respond(m.LiveAccessChanged, {"handle": target.handle, **access.to_json(), "stopped_live_stream": stopped})


async def _key_json(request: web.Request, user: User, key: str) -> dict:

    server = rtmp_base_url(request)
    return {
        "stream_key": key,
        "server": server,
        "url": f"{server}/{key}",
        "public_name": user.handle,
        "playback_url": f"{public_base_url(request)}/live/{user.handle}/index.m3u8",
        "auth_mode": request.app[CONFIG].auth.mode,
        # The first picture a viewer gets waits for the encoder's second keyframe.
        "keyframe_interval": request.app[CONFIG].hls.segment_duration,
    }


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def get_stream_key(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    key = await account_service(request).stream_key(user)
    return respond(m.StreamKey, await _key_json(request, user, key), headers=_NO_STORE)


async def rotate_stream_key(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    key = await account_service(request).rotate_stream_key(user)
    return respond(m.StreamKey, await _key_json(request, user, key), headers=_NO_STORE)


def _settings_json(user: User, settings, audience: tuple[str, bool], allowed: list[str],
                   hide_viewer_count: bool) -> dict:
    return {"title": settings.title, "cover_url": cover_url(user, settings), "chat": settings.chat,
            "save_by_default": settings.save_by_default, "backstage": settings.backstage,
            "visibility": audience[0], "mature": audience[1], "visibility_allowed": list(allowed),
            "updated_at": settings.updated_at, "hide_viewer_count": hide_viewer_count}


async def get_settings(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    service = account_service(request)
    return respond(m.GoLiveSettings, _settings_json(user, await service.settings(user), await service.audience(user),
                                                    service.config.live.visibility_allowed,
                                                    service.privacy.hidden(user.handle)))


async def update_settings(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    service = account_service(request)
    body = await read_body(request, m.SettingsChange)
    values: dict = {}
    if body.title is not None:
        values["title"] = body.title
    if body.save_by_default is not None:
        values["save_by_default"] = body.save_by_default
    if body.backstage is not None:
        values["backstage"] = body.backstage
    allowed = service.config.live.visibility_allowed
    if body.visibility is not None and body.visibility not in allowed:
        raise ApiError(400, f"visibility {body.visibility!r} is not allowed on this site (allowed: {', '.join(allowed)})")
    if body.visibility is not None or body.mature is not None:  # who may watch (issue 18)
        await service.set_audience(user, visibility=body.visibility, mature=body.mature)
    if body.chat is not None:
        merged = dict((await service.settings(user)).chat)
        merged.update(body.chat.model_dump(exclude_none=True))
        values["chat"] = merged
    settings = await service.update_settings(user, **values)
    if body.hide_viewer_count is not None:
        await service.privacy.set_hidden(user, body.hide_viewer_count)
    if "chat" in values:

        moderation = request.app.get(MODERATION)
        if moderation is not None:  # on/off, slow mode, followers-only: applied to the open chat at once
            await moderation.settings_changed(user.id, user, settings.chat)
    return respond(m.GoLiveSettings, _settings_json(user, settings, await service.audience(user), allowed,
                                                    service.privacy.hidden(user.handle)))


async def _read_form_file(request: web.Request, limit: int) -> bytes:
    """The ``cover`` part of a multipart form, at most ``limit`` bytes (else 413). The form
    has that one part, as its OpenAPI description says; any other part is a 400."""
    reader = await request.multipart()
    source = await reader.next()
    if source is None:
        raise ApiError(400, "the form has no cover part")
    if source.name != "cover":
        raise ApiError(400, f"the form may have one part, named cover (not {str(source.name)[:64]!r})")
    data = bytearray()
    while True:
        chunk = await source.read_chunk(64 * 1024)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ApiError(413, f"the image is larger than {limit} bytes")
    if await reader.next() is not None:
        raise ApiError(400, "the form may have one part, named cover")
    return bytes(data)


async def _read_upload(request: web.Request, limit: int) -> bytes:
    """The uploaded file: the raw body, or the first file part of a multipart form. Never
    reads more than ``limit`` + 1 bytes."""
    length = request.content_length
    if length is not None and length > limit + 64 * 1024:
        raise ApiError(413, f"the image is larger than {limit} bytes")
    if request.content_type == "multipart/form-data":
        try:
            return await _read_form_file(request, limit)
        except (ValueError, HttpProcessingError) as exc:
            # aiohttp's multipart reader: no or a wrong boundary, a broken part header
            # (found by tests/security/test_schemathesis.py: both were a 500).
            raise ApiError(400, f"the multipart form is malformed ({type(exc).__name__})") from None
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise ApiError(413, f"the image is larger than {limit} bytes")
    return bytes(data)


async def upload_cover(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    service = account_service(request)
    limit = service.config.uploads.max_cover_bytes
    data = await _read_upload(request, limit)
    try:
        settings, image = await service.set_cover(user, data)
    except ImageError as exc:
        raise ApiError(exc.status, exc.message) from None
    except PoolBusy as busy:
        # Every decoder busy and the queue full (images.*): come back soon.
        raise ApiError(503, str(busy), retry_after=busy.retry_after,
                       headers={"Retry-After": str(busy.retry_after)}) from None
    return respond(m.CoverAnswer, {"cover_url": cover_url(user, settings), "width": image.width,
                                   "height": image.height, "bytes": len(image.jpeg)})


async def delete_cover(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    await account_service(request).remove_cover(user)
    return web.Response(status=204)


async def cover_image(request: web.Request) -> web.StreamResponse:
    """The cover; without one, the live thumbnail (short cache), else 404."""

    service = account_service(request)
    user = await target_user(request)
    settings = await service.settings(user)
    path = service.cover_path(settings)
    if path is not None:
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            data = None
        if data is not None:
            return web.Response(body=data, content_type="image/jpeg", headers={
                "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
    thumbnails = request.app.get(THUMBNAILS)
    # Never the picture of a private (backstage) live.
    public = request.app[HUB].get_public(user.handle) is not None
    thumb = thumbnails.get(user.handle) if thumbnails is not None and public else None
    if thumb is None:
        raise ApiError(404, "no cover, and no live thumbnail")
    return web.Response(body=thumb.jpeg, content_type="image/jpeg", headers={
        "Cache-Control": "public, max-age=5", "X-Content-Type-Options": "nosniff"})


# --- wiring -------------------------------------------------------------------------------

def setup(app: web.Application) -> None:
    """The accounts routes; their service, login limiter and profile parts are the
    composition root's (``mediasrv.app``)."""
    validate.install(app)
    _routes(app)


def _routes(app: web.Application) -> None:
    handle = path_param("handle", "a user's handle (any case)", m.HANDLE_PARAM)
    T = "accounts"

    add_route(app, "POST", "/api/users", register, op(
        "Create an account", tag=T, auth="optional", ok=201, ok_schema=m.Profile, errors=[403, 409, 422, 429],
        description="Open to anyone when accounts.open_registration (roles viewer or creator); "
                    "an admin may create any role. The handle is stored lower-case. Limited per client "
                    "address (`accounts.registrations_per_address` per `accounts.registration_window`) and "
                    "for everyone (`accounts.registrations_per_minute`): 429 with Retry-After (admins are "
                    "not limited). With `email.enabled`, an `email` gets a verification link (without it, an "
                    "`email` is a 422).",
        body=m.NewUser))
    add_route(app, "GET", "/api/registration", registration, op(
        "What the sign-up form shows: open registration, email verification", tag=T, ok_schema=m.Registration))
    for method in ("GET", "POST"):  # GET: the link as a mail client opens it
        add_route(app, method, "/api/verify-email", verify_email, op(
            "Verify an email address (the link of a verification mail)", tag=T, query=m.VerifyEmail,
            ok_schema=m.EmailVerified, errors=[400, 404],
            description="The token of the link mailed at registration (`email.enabled`): valid once, for "
                        "`email.link_lifetime` seconds. 404 for an unknown, used or expired link. A browser's GET "
                        "(`Accept` with `text/html`) is a 303 to the page `/verify-email?token=...`, which verifies "
                        "with POST and says the outcome in words."))
    add_route(app, "GET", "/api/me/email", my_email, op(
        "The logged-in user's email and whether it is verified", tag=T, auth="required",
        ok_schema=m.EmailStatus))
    add_route(app, "PUT", "/api/me/email", change_email, op(
        "Give or change one's email: a verification link is mailed there", tag=T, auth="required", ok=202,
        ok_schema=m.EmailStatus, body=m.EmailChange, errors=[422, 429],
        description="With `email.enabled` (else 422). The address counts (followers toward live access) once "
                    "its link is opened. At most `email.mails_per_hour` mails per account (429 + Retry-After)."))
    add_route(app, "POST", "/api/login", login, op(
        "Log in: returns a bearer token", tag=T, errors=[401, 403, 429], body=m.Login, ok_schema=m.LoginAnswer,
        description="403 (`code: suspended`, with `reason` and `until`): the password is right but an operator "
                    "suspended the account."))
    add_route(app, "POST", "/api/logout", logout, op(
        "Revoke the token used for this request", tag=T, auth="required", ok=204, ok_description="revoked"))
    add_route(app, "GET", "/api/me", me, op("The logged-in user", tag=T, auth="required", ok_schema=m.Profile))
    add_route(app, "PATCH", "/api/me", update_me, op(
        "Change display name or password", tag=T, auth="required", ok_schema=m.Profile, errors=[403, 429],
        description="`new_password` needs `current_password` (400 without it, 403 when it is wrong). "
                    "Changing the password ends every other session: all the user's tokens but the one "
                    "used for this request are revoked.",
        body=m.MeUpdate))
    add_route(app, "POST", "/api/me/become-creator", become_creator, op(
        "Become a creator (a viewer who wants to stream)", tag=T, auth="required", ok_schema=m.Profile,
        errors=[403],
        description="Allowed when anyone may sign up as a creator (`accounts.open_registration`); "
                    "otherwise 403: an admin sets the role (`PUT /api/users/{handle}/role`). The account "
                    "gets a stream key; going live still needs live access. A creator (or above) is "
                    "answered with their profile, unchanged."))
    add_route(app, "GET", "/api/me/live-access", my_live_access, op(
        "Where the logged-in creator stands with the live-access rule", tag=T, auth="required",
        ok_schema=m.LiveAccess))
    add_route(app, "GET", "/api/me/stream-key", get_stream_key, op(
        "The creator's secret stream key and RTMP server", tag=T, role="creator", ok_schema=m.StreamKey))
    add_route(app, "POST", "/api/me/stream-key", rotate_stream_key, op(
        "Rotate the stream key", tag=T, role="creator", ok_schema=m.StreamKey,
        description="The old key stops working for new publishes at once; a stream live on it goes on."))
    add_route(app, "GET", "/api/me/settings", get_settings, op(
        "Go-live settings", tag=T, role="creator", ok_schema=m.GoLiveSettings))
    add_route(app, "PATCH", "/api/me/settings", update_settings, op(
        "Change go-live settings (applies at once, also while live)", tag=T, role="creator",
        description="`backstage` applies to the next broadcast: the one live now keeps its state "
                    "(`POST /api/me/live/public` makes it public).",
        ok_schema=m.GoLiveSettings, body=m.SettingsChange))
    image = {"schema": {"type": "string", "format": "binary"}}
    upload = {"schema": {"type": "string", "format": "binary", "minLength": 1}}  # empty: 400
    add_route(app, "PUT", "/api/me/cover", upload_cover, op(
        "Upload the cover image", tag=T, role="creator", errors=[400, 413, 415, 422, 503],
        description="JPEG, PNG or WebP as the raw body (or the file part of a multipart form), at most "
                    "uploads.max_cover_bytes and uploads.max_cover_pixels. It is decoded and re-encoded to "
                    "JPEG (at most 1920x1080): no metadata of the upload survives. Decoding is bounded: "
                    "a picture needing more than images.max_decode_mb decoded is a 422, and when every "
                    "decoder (images.decode_workers) is busy and images.decode_queue wait, a 503 with "
                    "Retry-After.",
        body_content={"image/jpeg": upload, "image/png": upload, "image/webp": upload, "multipart/form-data": {
            "schema": {"type": "object", "required": ["cover"], "additionalProperties": False,
                       "properties": {"cover": upload["schema"]}}}},
        ok_schema=m.CoverAnswer))
    add_route(app, "DELETE", "/api/me/cover", delete_cover, op(
        "Remove the cover image", tag=T, role="creator", ok=204, ok_description="removed"))
    add_route(app, "GET", "/api/users", search_users, op(
        "Look users up by the start of their handle (operators)", tag=T, role="moderator", query=m.UserSearch,
        ok_schema=m.UserSearchAnswer, errors=[400],
        description="By handle, paged (`limit`, `offset`; `next_offset` is null on the last page). "
                    "`only=waiting`: the creators whose live-access request waits for a decision "
                    "(`GET /api/live-access/requests`, admins)."))
    add_route(app, "GET", "/api/users/{handle}", user_profile, op(
        "A user's public profile", tag=T, params=[handle], ok_schema=m.Profile, errors=[400, 404]))
    add_route(app, "GET", "/api/users/{handle}/cover", cover_image, op(
        "A creator's cover (JPEG); falls back to the live thumbnail", tag=T, params=[handle],
        ok_content={"image/jpeg": image}, errors=[400, 404]))
    add_route(app, "GET", "/api/users/{handle}/followers", followers, op(
        "Who follows this user (newest first)", tag=T, params=[handle], query=m.Page, ok_schema=m.UserList,
        errors=[400, 404]))
    add_route(app, "GET", "/api/users/{handle}/following", following, op(
        "Whom this user follows (newest first)", tag=T, params=[handle], query=m.Page, ok_schema=m.UserList,
        errors=[400, 404]))
    add_route(app, "PUT", "/api/me/following/{handle}", follow, op(
        "Follow a user (idempotent)", tag=T, auth="required", params=[handle], ok_schema=m.FollowAnswer,
        errors=[400, 403, 404, 422], description="422: you cannot follow yourself. 403: they blocked you."))
    add_route(app, "DELETE", "/api/me/following/{handle}", unfollow, op(
        "Unfollow a user (idempotent)", tag=T, auth="required", params=[handle], ok_schema=m.FollowAnswer,
        errors=[400, 404]))
    add_route(app, "PUT", "/api/users/{handle}/role", set_role, op(
        "Set a user's role", tag=T, role="admin", params=[handle], ok_schema=m.Profile, errors=[404, 422],
        description="422: an admin cannot demote themselves.", body=m.RoleChange))
    add_route(app, "GET", "/api/users/{handle}/live-access", user_live_access, op(
        "A user's live access (themselves, moderators, admins)", tag=T, auth="required", params=[handle],
        ok_schema=m.LiveAccess, errors=[400, 403, 404]))
    add_route(app, "PUT", "/api/users/{handle}/live-access", set_live_access, op(
        "Grant or revoke live access by hand, or return to the rule", tag=T, role="admin", params=[handle],
        description="Revoking stops the user's live stream, if any.", errors=[404],
        body=m.LiveAccessChange, ok_schema=m.LiveAccessChanged))
    add_route(app, "DELETE", "/api/users/{handle}/tokens", revoke_tokens, op(
        "Revoke all of a user's tokens (themselves or an admin)", tag=T, auth="required", params=[handle],
        ok_schema=m.Revoked, errors=[400, 403, 404]))


__all__ = ["setup"]
