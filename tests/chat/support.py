"""Helpers for the chat tests: real aiohttp WebSocket clients against the whole server."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from mediasrv.httpkit.keys import CHAT
from mediasrv.community.chat.service import ChatService
from tests.accounts.support import Api


class Publisher:
    def kick(self, reason: str) -> None:
        pass


class Client:
    """One chat connection; ``recv(type)`` skips frames of other types (viewer counts …)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.raw: list[str] = []

    async def recv(self, kind: str | None = None, timeout: float = 5.0) -> dict:
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            self.raw.append(msg.data)
            data = json.loads(msg.data)
            if kind is None or data["type"] == kind:
                return data

    async def send(self, kind: str, **fields) -> None:
        await self.ws.send_json({"type": kind, **fields})

    async def say(self, text: str) -> dict:
        """Send a message and return the server's echo of it (or its error)."""
        await self.send("message", text=text)
        while True:
            data = await self.recv()
            if data["type"] == "error" or (data["type"] == "message" and data["text"] == text):
                return data

    async def close(self) -> None:
        await self.ws.close()


async def join(api: Api, name: str, headers: dict | None = None) -> tuple[Client, dict]:
    ws = await api.http.ws_connect(f"/live/{name}/chat", headers=headers or {})
    client = Client(ws)
    state = await client.recv()
    assert state["type"] == "state", state
    return client, state


def chat_service(api: Api) -> ChatService:
    return api.srv.app[CHAT]
