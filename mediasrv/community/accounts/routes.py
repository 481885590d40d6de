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

from mediasrv.config import HANDLE_RE, HANDLE_RULE
from mediasrv.httpkit import validate
from mediasrv.httpkit.keys import CONFIG, HUB
from mediasrv.httpkit.openapi import add_route, op, path_param, query_param, ref, register_schema
from mediasrv.httpkit.validate import ApiError
from mediasrv.community.accounts.service import PASSWORD_MAX, PASSWORD_MIN, AccountService
from mediasrv.images import ImageError
from mediasrv.store import ROLES, HandleTaken, User
from mediasrv.httpkit.clients import viewer_address
from mediasrv.httpkit.keys import MODERATION
from mediasrv.httpkit.keys import THUMBNAILS
from mediasrv.httpkit.urls import public_base_url, rtmp_base_url
from mediasrv.community.accounts.http import _token, cover_url, optional_user, require_user
from mediasrv.httpkit.keys import ACCOUNTS, LOGIN_LIMITER, PROFILE_PARTS


DISPLAY_NAME_MAX = 64
TITLE_MAX = 140



# --- authentication helpers (also used by the discovery routes) ---------------------------







def _service(request: web.Request) -> AccountService:
    service = request.app.get(ACCOUNTS)
    if service is None:
        raise ApiError(503, "accounts are not available yet")
    return service


def _handle_of(request: web.Request) -> str:
    handle = request.match_info["handle"].lower()
    if not HANDLE_RE.fullmatch(handle):
        raise ApiError(400, f"handle: {request.match_info['handle'][:64]!r} is not valid ({HANDLE_RULE})")
    return handle


async def _target(request: web.Request) -> User:
    user = await _service(request).get_user(_handle_of(request))
    if user is None:
        raise ApiError(404, "no such user")
    return user




async def _profile(request: web.Request, user: User) -> dict:
    service = _service(request)
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
        "live": request.app[HUB].get(user.handle) is not None,
        "cover_url": cover_url(user, settings),
    }
    for part in request.app.get(PROFILE_PARTS, ()):
        profile.update(await part(request, user))
    return profile


# --- handlers -----------------------------------------------------------------------------

async def register(request: web.Request) -> web.Response:
    service = _service(request)
    body = await validate.read_json(request, allowed={"handle", "password", "display_name", "role"})
    actor = await optional_user(request)
    is_admin = actor is not None and actor.at_least("admin")
    if not service.config.accounts.open_registration and not is_admin:
        raise ApiError(403, "registration is closed: an admin creates accounts")
    handle = validate.text_field(body, "handle", required=True, min_len=3, max_len=32)
    handle = handle.lower()
    if not HANDLE_RE.fullmatch(handle):
        raise ApiError(400, f"handle: {handle[:64]!r} is not valid ({HANDLE_RULE})")
    password = validate.text_field(body, "password", required=True, min_len=PASSWORD_MIN, max_len=PASSWORD_MAX,
                                   strip=False)
    display_name = validate.text_field(body, "display_name", min_len=1, max_len=DISPLAY_NAME_MAX) or handle
    role = validate.choice_field(body, "role", ROLES) or "viewer"
    if role not in ("viewer", "creator") and not is_admin:
        raise ApiError(403, f"only an admin can create a {role} account")
    try:
        user = await service.create_user(handle, password, display_name=display_name, role=role)
    except HandleTaken:
        raise ApiError(409, f"the handle {handle!r} is taken") from None
    return web.json_response(await _profile(request, user), status=201)


async def login(request: web.Request) -> web.Response:
    service = _service(request)
    body = await validate.read_json(request, allowed={"handle", "password"})
    handle = validate.text_field(body, "handle", required=True, min_len=1, max_len=64).lower()
    password = validate.text_field(body, "password", required=True, min_len=1, max_len=PASSWORD_MAX, strip=False)

    limiter = request.app[LOGIN_LIMITER]
    address = viewer_address(request)
    # Refused before the password is checked: a limited client learns nothing and costs
    # no scrypt work (docs/security.md).
    wait = limiter.retry_after(address, handle)
    if wait:
        raise ApiError(429, f"too many failed logins: try again in {wait} s", retry_after=wait,
                       headers={"Retry-After": str(wait)})
    result = await service.login(handle, password)
    if result is None:
        limiter.failed(address, handle)
        raise ApiError(401, "wrong handle or password")
    token, expires, user = result
    return web.json_response({"token": token, "token_type": "Bearer", "expires_at": expires, "user": user.to_json()},
                             headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.Response:
    await require_user(request)
    await _service(request).logout(_token(request, query=False))
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    user = await require_user(request)
    return web.json_response(await _profile(request, user), headers={"Cache-Control": "no-store"})


async def update_me(request: web.Request) -> web.Response:
    user = await require_user(request)
    service = _service(request)
    body = await validate.read_json(request, allowed={"display_name", "current_password", "new_password"})
    display_name = validate.text_field(body, "display_name", min_len=1, max_len=DISPLAY_NAME_MAX)
    new_password = validate.text_field(body, "new_password", min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, strip=False)
    current = validate.text_field(body, "current_password", min_len=1, max_len=PASSWORD_MAX, strip=False)
    if new_password is not None:
        if current is None:
            raise ApiError(400, "current_password: required to change the password")
        if not await service.change_password(user, current, new_password):
            raise ApiError(403, "current_password is wrong")
    if display_name is not None:
        await asyncio.to_thread(service.store.set_display_name, user.id, display_name)
    fresh = await asyncio.to_thread(service.store.get_user, user.id)
    return web.json_response(await _profile(request, fresh))


async def user_profile(request: web.Request) -> web.Response:
    return web.json_response(await _profile(request, await _target(request)))


def _page(request: web.Request) -> tuple[int, int]:
    return (validate.query_int(request, "limit", 50, low=1, high=500),
            validate.query_int(request, "offset", 0, low=0, high=10_000_000))


async def followers(request: web.Request) -> web.Response:
    user = await _target(request)
    limit, offset = _page(request)
    store = _service(request).store
    rows, total = await asyncio.gather(asyncio.to_thread(store.list_followers, user.id, limit, offset),
                                       asyncio.to_thread(store.follower_count, user.id))
    return web.json_response({"total": total, "users": [u.to_json() for u in rows]})


async def following(request: web.Request) -> web.Response:
    user = await _target(request)
    limit, offset = _page(request)
    store = _service(request).store
    rows, total = await asyncio.gather(asyncio.to_thread(store.list_following, user.id, limit, offset),
                                       asyncio.to_thread(store.following_count, user.id))
    return web.json_response({"total": total, "users": [u.to_json() for u in rows]})


async def follow(request: web.Request) -> web.Response:
    user = await require_user(request)
    target = await _target(request)
    if target.id == user.id:
        raise ApiError(400, "you cannot follow yourself")
    store = _service(request).store
    added = await asyncio.to_thread(store.follow, user.id, target.id, time.time())
    count = await asyncio.to_thread(store.follower_count, target.id)
    return web.json_response({"following": True, "changed": added, "handle": target.handle, "followers": count})


async def unfollow(request: web.Request) -> web.Response:
    user = await require_user(request)
    target = await _target(request)
    store = _service(request).store
    removed = await asyncio.to_thread(store.unfollow, user.id, target.id)
    count = await asyncio.to_thread(store.follower_count, target.id)
    return web.json_response({"following": False, "changed": removed, "handle": target.handle, "followers": count})


async def set_role(request: web.Request) -> web.Response:
    actor = await require_user(request, "admin")
    target = await _target(request)
    body = await validate.read_json(request, allowed={"role"})
    role = validate.choice_field(body, "role", ROLES, required=True)
    if target.id == actor.id and role != "admin":
        raise ApiError(400, "an admin cannot demote themselves (ask another admin)")
    user = await _service(request).set_role(target, role)
    return web.json_response(await _profile(request, user))


async def revoke_tokens(request: web.Request) -> web.Response:
    actor = await require_user(request)
    target = await _target(request)
    if target.id != actor.id and not actor.at_least("admin"):
        raise ApiError(403, "only an admin can revoke another user's tokens")
    count = await _service(request).revoke_tokens(target)
    return web.json_response({"revoked": count})


async def my_live_access(request: web.Request) -> web.Response:
    user = await require_user(request)
    access = await _service(request).live_access(user)
    return web.json_response({"handle": user.handle, **access.to_json()}, headers={"Cache-Control": "no-store"})


async def user_live_access(request: web.Request) -> web.Response:
    actor = await require_user(request)
    target = await _target(request)
    if target.id != actor.id and not actor.at_least("moderator"):
        raise ApiError(403, "only moderators and admins can see another user's live access")
    access = await _service(request).live_access(target)
    return web.json_response({"handle": target.handle, **access.to_json()})


async def set_live_access(request: web.Request) -> web.Response:
    actor = await require_user(request, "admin")
    target = await _target(request)
    body = await validate.read_json(request, allowed={"access"})
    choice = validate.choice_field(body, "access", ("granted", "revoked", "rule"), required=True)
    access = await _service(request).set_live_access(target, None if choice == "rule" else choice, actor)
    stopped = False
    if not access.allowed and request.app[HUB].get(target.handle) is not None:
        # Revoked while live: the broadcast is taken off the air.
        stopped = request.app[HUB].stop(target.handle)
    return web.json_response({"handle": target.handle, **access.to_json(), "stopped_live_stream": stopped})


async def _key_json(request: web.Request, user: User, key: str) -> dict:

    server = rtmp_base_url(request)
    return {
        "stream_key": key,
        "server": server,
        "url": f"{server}/{key}",
        "public_name": user.handle,
        "playback_url": f"{public_base_url(request)}/live/{user.handle}/index.m3u8",
        "auth_mode": request.app[CONFIG].auth.mode,
    }


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def get_stream_key(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    key = await _service(request).stream_key(user)
    return web.json_response(await _key_json(request, user, key), headers=_NO_STORE)


async def rotate_stream_key(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    key = await _service(request).rotate_stream_key(user)
    return web.json_response(await _key_json(request, user, key), headers=_NO_STORE)


def _settings_json(user: User, settings) -> dict:
    return {"title": settings.title, "cover_url": cover_url(user, settings), "chat": settings.chat,
            "save_by_default": settings.save_by_default, "updated_at": settings.updated_at}


async def get_settings(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    return web.json_response(_settings_json(user, await _service(request).settings(user)))


async def update_settings(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    service = _service(request)
    body = await validate.read_json(request, allowed={"title", "chat", "save_by_default"})
    values: dict = {}
    title = validate.text_field(body, "title", min_len=0, max_len=TITLE_MAX)
    if title is not None:
        values["title"] = title
    save = validate.bool_field(body, "save_by_default")
    if save is not None:
        values["save_by_default"] = save
    if body.get("chat") is not None:
        chat = body["chat"]
        if not isinstance(chat, dict):
            raise ApiError(400, "chat: expected an object")
        unknown = sorted(set(chat) - {"enabled", "slow_mode_seconds", "followers_only"})
        if unknown:
            raise ApiError(400, f"chat.{unknown[0]}: unknown setting (known: enabled, followers_only, slow_mode_seconds)")
        current = (await service.settings(user)).chat
        merged = dict(current)
        for name in ("enabled", "followers_only"):
            value = validate.bool_field(chat, name)
            if value is not None:
                merged[name] = value
        slow = validate.int_field(chat, "slow_mode_seconds", low=0, high=3600)
        if slow is not None:
            merged["slow_mode_seconds"] = slow
        values["chat"] = merged
    settings = await service.update_settings(user, **values)
    if "chat" in values:

        moderation = request.app.get(MODERATION)
        if moderation is not None:  # on/off, slow mode, followers-only: applied to the open chat at once
            await moderation.settings_changed(user.id, user, settings.chat)
    return web.json_response(_settings_json(user, settings))


async def _read_form_file(request: web.Request, limit: int) -> bytes:
    """The first file part of a multipart form, at most ``limit`` bytes (else 413)."""
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            raise ApiError(400, "the form has no file part")
        if getattr(part, "filename", None) is not None or part.name in ("cover", "file"):
            source = part
            break
    data = bytearray()
    while True:
        chunk = await source.read_chunk(64 * 1024)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ApiError(413, f"the image is larger than {limit} bytes")
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
    service = _service(request)
    limit = service.config.uploads.max_cover_bytes
    data = await _read_upload(request, limit)
    try:
        settings, image = await service.set_cover(user, data)
    except ImageError as exc:
        raise ApiError(exc.status, exc.message) from None
    return web.json_response({"cover_url": cover_url(user, settings), "width": image.width, "height": image.height,
                              "bytes": len(image.jpeg)})


async def delete_cover(request: web.Request) -> web.Response:
    user = await require_user(request, "creator")
    await _service(request).remove_cover(user)
    return web.Response(status=204)


async def cover_image(request: web.Request) -> web.StreamResponse:
    """The cover; without one, the live thumbnail (short cache), else 404."""

    service = _service(request)
    user = await _target(request)
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
    thumb = thumbnails.get(user.handle) if thumbnails is not None else None
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
    register_schema(app, "User", {"type": "object", "properties": {
        "handle": {"type": "string"}, "display_name": {"type": "string"},
        "role": {"type": "string", "enum": list(ROLES)}, "created_at": {"type": "number"}}})
    register_schema(app, "Profile", {"allOf": [ref("User"), {"type": "object", "properties": {
        "followers": {"type": "integer"}, "following": {"type": "integer"}, "live": {"type": "boolean"},
        "cover_url": {"type": "string", "nullable": True},
        "vods": {"type": "array", "items": ref("Vod"),
                 "description": "the user's saved broadcasts, newest first (at most 50)"}}}]})
    register_schema(app, "UserList", {"type": "object", "properties": {
        "total": {"type": "integer"}, "users": {"type": "array", "items": ref("User")}}})
    register_schema(app, "LiveAccess", {"type": "object", "properties": {
        "handle": {"type": "string"}, "allowed": {"type": "boolean"},
        "reason": {"type": "string", "example": "live access requires 1000 followers, you have 12"},
        "followers": {"type": "integer"}, "min_followers": {"type": "integer"},
        "override": {"type": "string", "enum": ["granted", "revoked"], "nullable": True}}})
    register_schema(app, "StreamKey", {"type": "object", "properties": {
        "stream_key": {"type": "string", "description": "secret; shown only to its owner"},
        "server": {"type": "string"}, "url": {"type": "string"}, "public_name": {"type": "string"},
        "playback_url": {"type": "string"}, "auth_mode": {"type": "string"}}})
    chat = {"type": "object", "additionalProperties": False, "properties": {
        "enabled": {"type": "boolean"}, "followers_only": {"type": "boolean"},
        "slow_mode_seconds": {"type": "integer", "minimum": 0, "maximum": 3600}}}
    register_schema(app, "GoLiveSettings", {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": TITLE_MAX}, "cover_url": {"type": "string", "nullable": True},
        "chat": chat, "save_by_default": {"type": "boolean"}, "updated_at": {"type": "number"}}})
    register_schema(app, "Follow", {"type": "object", "properties": {
        "following": {"type": "boolean"}, "changed": {"type": "boolean"}, "handle": {"type": "string"},
        "followers": {"type": "integer"}}})

    handle = path_param("handle", "a user's handle", {"type": "string", "pattern": "^" + HANDLE_RE.pattern + "$"})
    page = [query_param("limit", "page size (1-500)", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            query_param("offset", "rows to skip", {"type": "integer", "minimum": 0, "default": 0})]
    T = "accounts"

    add_route(app, "POST", "/api/users", register, op(
        "Create an account", tag=T, auth="optional", ok=201, ok_schema=ref("Profile"), errors=[403, 409],
        description="Open to anyone when accounts.open_registration (roles viewer or creator); "
                    "an admin may create any role.",
        body={"type": "object", "required": ["handle", "password"], "additionalProperties": False, "properties": {
            "handle": {"type": "string", "pattern": "^" + HANDLE_RE.pattern + "$", "description": HANDLE_RULE},
            "password": {"type": "string", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX},
            "display_name": {"type": "string", "maxLength": DISPLAY_NAME_MAX},
            "role": {"type": "string", "enum": list(ROLES), "default": "viewer"}}}))
    add_route(app, "POST", "/api/login", login, op(
        "Log in: returns a bearer token", tag=T, errors=[401, 429],
        body={"type": "object", "required": ["handle", "password"], "additionalProperties": False,
              "properties": {"handle": {"type": "string"}, "password": {"type": "string"}}},
        ok_schema={"type": "object", "properties": {"token": {"type": "string"}, "token_type": {"type": "string"},
                                                    "expires_at": {"type": "number"}, "user": ref("User")}}))
    add_route(app, "POST", "/api/logout", logout, op(
        "Revoke the token used for this request", tag=T, auth="required", ok=204, ok_description="revoked"))
    add_route(app, "GET", "/api/me", me, op("The logged-in user", tag=T, auth="required", ok_schema=ref("Profile")))
    add_route(app, "PATCH", "/api/me", update_me, op(
        "Change display name or password", tag=T, auth="required", ok_schema=ref("Profile"), errors=[403],
        body={"type": "object", "additionalProperties": False, "properties": {
            "display_name": {"type": "string", "maxLength": DISPLAY_NAME_MAX},
            "current_password": {"type": "string"},
            "new_password": {"type": "string", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}}}))
    add_route(app, "GET", "/api/me/live-access", my_live_access, op(
        "Where the logged-in creator stands with the live-access rule", tag=T, auth="required",
        ok_schema=ref("LiveAccess")))
    add_route(app, "GET", "/api/me/stream-key", get_stream_key, op(
        "The creator's secret stream key and RTMP server", tag=T, role="creator", ok_schema=ref("StreamKey")))
    add_route(app, "POST", "/api/me/stream-key", rotate_stream_key, op(
        "Rotate the stream key", tag=T, role="creator", ok_schema=ref("StreamKey"),
        description="The old key stops working for new publishes at once; a stream live on it goes on."))
    add_route(app, "GET", "/api/me/settings", get_settings, op(
        "Go-live settings", tag=T, role="creator", ok_schema=ref("GoLiveSettings")))
    add_route(app, "PATCH", "/api/me/settings", update_settings, op(
        "Change go-live settings (applies at once, also while live)", tag=T, role="creator",
        ok_schema=ref("GoLiveSettings"),
        body={"type": "object", "additionalProperties": False, "properties": {
            "title": {"type": "string", "maxLength": TITLE_MAX}, "chat": chat, "save_by_default": {"type": "boolean"}}}))
    image = {"schema": {"type": "string", "format": "binary"}}
    add_route(app, "PUT", "/api/me/cover", upload_cover, op(
        "Upload the cover image", tag=T, role="creator", errors=[400, 413, 415, 422],
        description="JPEG, PNG or WebP as the raw body (or the file part of a multipart form), at most "
                    "uploads.max_cover_bytes and uploads.max_cover_pixels. It is decoded and re-encoded to "
                    "JPEG (at most 1920x1080): no metadata of the upload survives.",
        body_content={"image/jpeg": image, "image/png": image, "image/webp": image, "multipart/form-data": {
            "schema": {"type": "object", "properties": {"cover": {"type": "string", "format": "binary"}}}}},
        ok_schema={"type": "object", "properties": {"cover_url": {"type": "string"}, "width": {"type": "integer"},
                                                    "height": {"type": "integer"}, "bytes": {"type": "integer"}}}))
    add_route(app, "DELETE", "/api/me/cover", delete_cover, op(
        "Remove the cover image", tag=T, role="creator", ok=204, ok_description="removed"))
    add_route(app, "GET", "/api/users/{handle}", user_profile, op(
        "A user's public profile", tag=T, params=[handle], ok_schema=ref("Profile"), errors=[400, 404]))
    add_route(app, "GET", "/api/users/{handle}/cover", cover_image, op(
        "A creator's cover (JPEG); falls back to the live thumbnail", tag=T, params=[handle],
        ok_content={"image/jpeg": image}, errors=[400, 404]))
    add_route(app, "GET", "/api/users/{handle}/followers", followers, op(
        "Who follows this user (newest first)", tag=T, params=[handle, *page], ok_schema=ref("UserList"),
        errors=[400, 404]))
    add_route(app, "GET", "/api/users/{handle}/following", following, op(
        "Whom this user follows (newest first)", tag=T, params=[handle, *page], ok_schema=ref("UserList"),
        errors=[400, 404]))
    add_route(app, "PUT", "/api/me/following/{handle}", follow, op(
        "Follow a user (idempotent)", tag=T, auth="required", params=[handle], ok_schema=ref("Follow"),
        errors=[400, 404]))
    add_route(app, "DELETE", "/api/me/following/{handle}", unfollow, op(
        "Unfollow a user (idempotent)", tag=T, auth="required", params=[handle], ok_schema=ref("Follow"),
        errors=[400, 404]))
    add_route(app, "PUT", "/api/users/{handle}/role", set_role, op(
        "Set a user's role", tag=T, role="admin", params=[handle], ok_schema=ref("Profile"), errors=[404],
        body={"type": "object", "required": ["role"], "additionalProperties": False,
              "properties": {"role": {"type": "string", "enum": list(ROLES)}}}))
    add_route(app, "GET", "/api/users/{handle}/live-access", user_live_access, op(
        "A user's live access (themselves, moderators, admins)", tag=T, auth="required", params=[handle],
        ok_schema=ref("LiveAccess"), errors=[400, 403, 404]))
    add_route(app, "PUT", "/api/users/{handle}/live-access", set_live_access, op(
        "Grant or revoke live access by hand, or return to the rule", tag=T, role="admin", params=[handle],
        description="Revoking stops the user's live stream, if any.", errors=[404],
        body={"type": "object", "required": ["access"], "additionalProperties": False,
              "properties": {"access": {"type": "string", "enum": ["granted", "revoked", "rule"]}}},
        ok_schema={"allOf": [ref("LiveAccess"), {"type": "object", "properties": {
            "stopped_live_stream": {"type": "boolean"}}}]}))
    add_route(app, "DELETE", "/api/users/{handle}/tokens", revoke_tokens, op(
        "Revoke all of a user's tokens (themselves or an admin)", tag=T, auth="required", params=[handle],
        ok_schema={"type": "object", "properties": {"revoked": {"type": "integer"}}}, errors=[400, 403, 404]))


__all__ = ["ACCOUNTS", "optional_user", "require_user", "setup"]
