"""Helpers for the accounts, discovery and alerts tests."""

from __future__ import annotations

import contextlib
import time
from typing import AsyncIterator

import aiohttp

from mediasrv.httpkit.keys import STORE
from mediasrv.community.accounts.service import hash_password
from mediasrv.store import SqliteStore, User
from tests.support.server import RunningServer, running_server

PASSWORD = "correct-horse-1"
ADMIN_PASSWORD = "admin-password-1"
#: These tests are not about recording: leave it off (less disk and CPU).
NO_RECORDING = ("recording.enabled=false",)
#: A cheap scrypt hash (n=2^10) of PASSWORD for users made in bulk; logins still verify it.
BULK_HASH = hash_password(PASSWORD, n=1 << 10)


class Api:
    """A client of one running server, with helpers to make users and log them in."""

    def __init__(self, srv: RunningServer, session: aiohttp.ClientSession) -> None:
        self.srv = srv
        self.http = session

    @property
    def store(self) -> SqliteStore:
        return self.srv.app[STORE]

    async def register(self, handle: str, role: str = "viewer", *, admin: dict | None = None) -> dict:
        response = await self.http.post("/api/users", json={"handle": handle, "password": PASSWORD, "role": role},
                                        headers=admin or {})
        assert response.status == 201, await response.text()
        return await response.json()

    async def login(self, handle: str, password: str = PASSWORD) -> dict:
        response = await self.http.post("/api/login", json={"handle": handle, "password": password})
        assert response.status == 200, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}

    async def user(self, handle: str, role: str = "viewer") -> dict:
        """Register (as an admin for roles above creator) and log in; return auth headers."""
        admin = await self.login("admin", ADMIN_PASSWORD) if role in ("moderator", "admin") else None
        await self.register(handle, role, admin=admin)
        return await self.login(handle)

    async def admin(self) -> dict:
        return await self.login("admin", ADMIN_PASSWORD)

    async def stream_key(self, headers: dict) -> str:
        response = await self.http.get("/api/me/stream-key", headers=headers)
        assert response.status == 200, await response.text()
        return (await response.json())["stream_key"]

    async def error(self, response: aiohttp.ClientResponse, status: int) -> str:
        """Assert a JSON error answer with ``status``; return its message."""
        body = await response.text()
        assert response.status == status, body
        assert response.content_type == "application/json", body
        message = (await response.json())["error"]
        assert isinstance(message, str) and message
        return message


def bulk_users(store: SqliteStore, prefix: str, count: int) -> list[User]:
    """``count`` viewers made straight in the store (fast; they can log in with PASSWORD)."""
    now = time.time()
    return [store.create_user(f"{prefix}{i}", f"{prefix} {i}", BULK_HASH, "viewer", now) for i in range(count)]


@contextlib.asynccontextmanager
async def accounts_server(tmp_path, *overrides: str, **clocks) -> AsyncIterator[Api]:
    """The whole server in ``auth.mode=accounts`` with a bootstrapped admin (``clocks``:
    see ``running_server``)."""
    async with running_server(tmp_path, "auth.mode=accounts", f"accounts.admin_password={ADMIN_PASSWORD}",
                              *NO_RECORDING, *overrides, **clocks) as srv:
        async with aiohttp.ClientSession(srv.http_url) as session:
            yield Api(srv, session)
