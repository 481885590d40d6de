"""Who is asking and about whom: the bearer-token helpers every feature's routes use, the
``{handle}`` of a path and the user it names, the account service of a request, and the
cover URL of a creator (profile and discovery routes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from mediasrv.community.accounts import models as m
from mediasrv.httpkit.body import validated
from mediasrv.httpkit.keys import ACCOUNTS
from mediasrv.httpkit.validate import ApiError
from mediasrv.store import User

if TYPE_CHECKING:
    from mediasrv.community.accounts.service import AccountService



_USER_KEY = web.RequestKey("user", object)  # User | None once authenticated


def _token(request: web.Request, *, query: bool) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if query:
        return request.query.get("access_token", "")
    return ""


async def optional_user(request: web.Request, *, query_token: bool = False) -> User | None:
    """The logged-in user, or None without a token. A token that is sent but invalid is
    a 401 (a client should know its token no longer works)."""
    if _USER_KEY in request:
        return request[_USER_KEY]
    token = _token(request, query=query_token)
    if not token:
        request[_USER_KEY] = None
        return None
    service = request.app.get(ACCOUNTS)
    if service is None:
        raise ApiError(503, "accounts are not available yet")
    user = await service.user_for_token(token)
    if user is None:
        raise ApiError(401, "the bearer token is invalid, expired or revoked: log in again")
    request[_USER_KEY] = user
    return user


async def require_user(request: web.Request, role: str | None = None, *, query_token: bool = False) -> User:
    user = await optional_user(request, query_token=query_token)
    if user is None:
        raise ApiError(401, "log in first: send Authorization: Bearer TOKEN (from POST /api/login)")
    if role is not None and not user.at_least(role):
        raise ApiError(403, f"this needs the {role} role (this account is a {user.role})")
    return user


def cover_url(user: User, settings) -> str | None:
    if not settings.cover:
        return None
    return f"/api/users/{user.handle}/cover?v={settings.cover.rsplit('.', 1)[0]}"


class _HandlePath(m.RequestModel):
    handle: m.Handle


def handle_param(request: web.Request) -> str:
    """The ``{handle}`` of the path, lower-case (400 if it is not a handle)."""
    return validated(_HandlePath, {"handle": request.match_info["handle"]}).handle


def account_service(request: web.Request) -> "AccountService":
    """The accounts of this server (a 503 while they are starting)."""
    service = request.app.get(ACCOUNTS)
    if service is None:
        raise ApiError(503, "accounts are not available yet")
    return service


async def target_user(request: web.Request) -> User:
    """The user the path's ``{handle}`` names (a 404 when there is none)."""
    user = await account_service(request).get_user(handle_param(request))
    if user is None:
        raise ApiError(404, "no such user")
    return user
