"""``GET /live/{name}/chat``: the chat beside a stream, over WebSocket. See docs/chat.md.

Anyone may connect and read; a logged-in user (``Authorization: Bearer`` or, for
browsers, ``?access_token=``) may write. The token is checked before the upgrade: an
invalid one is an ordinary 401 JSON answer, and a user banned from the creator's chats gets
a 403 JSON answer (code ``banned``), also before the upgrade. The connection's writer drains the member's
bounded queue (``mediasrv.community.chat.service``); a member that overflows it is disconnected at
once (the transport is aborted: a close frame could not get through a full buffer).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import socket
from typing import AsyncIterator

from aiohttp import WSCloseCode, WSMsgType, web

from mediasrv.config import Config
from mediasrv.httpkit import validate
from mediasrv.community.accounts.routes import ACCOUNTS, optional_user
from mediasrv.app.root import CONFIG, HUB
from mediasrv.httpkit.models import STREAM_NAME_PARAM, RequestModel
from mediasrv.httpkit.openapi import op, path_param, register_operation
from mediasrv.httpkit.validate import ApiError
from mediasrv.community.chat.service import ChatError, ChatService

log = logging.getLogger("mediasrv.chat")

CHAT = web.AppKey("chat", ChatService)


class TokenQuery(RequestModel):
    """``?access_token=``: browsers' WebSocket and EventSource cannot send headers."""

    access_token: str | None = None

_SOCKETS = web.AppKey("chat_sockets", set)
#: Kernel send buffer of a chat connection, bytes.
SOCKET_SEND_BUFFER = 64 * 1024
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


class FrameSink:
    """Writes a member's frames straight to its connection as WebSocket text frames
    (RFC 6455 §5.2: FIN + opcode 1, unmasked from a server), with no task per member.

    Frames pushed during one turn of the event loop are joined and written once, at the
    end of the turn (``Flusher``): a broadcast costs one append per member, and when the
    server is busy (several messages handled in one turn) one write carries them all.

    Flow control as with a queue: frames not yet handed to the kernel (buffered here or
    in the transport, counted from its write-buffer size) are pending, and a member with
    ``limit`` of them is too slow. A frame without RSV1 is valid whatever extension was
    negotiated (RFC 7692 §6).
    """

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, limit: int,
                 flusher: "Flusher") -> None:
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.flusher = flusher
        self.written = 0
        #: Encoded frames of this turn, not yet written.
        self.buffer: list[bytes] = []
        #: Where each frame still in the transport's buffer ends (bytes written so far).
        self.pending: collections.deque[int] = collections.deque()

    def _closing(self) -> bool:
        return self.ws.closed or self.transport.is_closing()

    def __call__(self, frame: str) -> bool:
        if self._closing():
            return True  # the connection is closing: its reader will leave the room
        pending = self.pending
        if pending:
            flushed = self.written - self.transport.get_write_buffer_size()
            while pending and pending[0] <= flushed:
                pending.popleft()
        if len(pending) + len(self.buffer) >= self.limit:
            return False
        self.buffer.append(websocket_frame(frame))
        if len(self.buffer) == 1:
            self.flusher.add(self)
        return True

    def flush(self) -> None:
        frames, self.buffer = self.buffer, []
        if not frames or self._closing():
            return
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        if self.transport.get_write_buffer_size() == 0:
            # All of it went to the kernel at once (the usual case): nothing is pending.
            self.pending.clear()
            self.written += sum(map(len, frames))
            return
        for data in frames:
            self.written += len(data)
            self.pending.append(self.written)


class Flusher:
    """Writes every sink with buffered frames once.

    A fan-out to few connections is written at the end of the loop's turn: no added
    latency. Once one flush has written to at least ``batch_above`` connections (a big
    room that is talking), the following frames gather for ``interval`` seconds before
    the next flush (``chat.flush_interval``, ``chat.batch_above``): each connection then
    gets one write for all the messages of that time instead of one per message, which
    divides the system calls of a busy big room by its message rate times the interval,
    at the cost of at most ``interval`` of delivery latency (70 ms by default, not
    noticed in a chat). When the room quietens, flushes fall back to once per turn.
    """

    def __init__(self, interval: float = 0.07, batch_above: int = 1000) -> None:
        self.interval = interval
        self.batch_above = batch_above
        self.dirty: list[FrameSink] = []
        #: The last flush wrote to ``batch_above`` connections or more.
        self.batching = False

    def add(self, sink: FrameSink) -> None:
        if not self.dirty:
            loop = asyncio.get_running_loop()
            if self.batching and self.interval > 0:
                loop.call_later(self.interval, self.flush)
            else:
                loop.call_soon(self.flush)
        self.dirty.append(sink)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        self.batching = len(dirty) >= self.batch_above
        for sink in dirty:
            try:
                sink.flush()
            except Exception:  # one broken connection must not stop the others' frames
                log.exception("chat: writing to a connection failed")


_FLUSHER = web.AppKey("chat_flusher", Flusher)

_last_frame: list = [None, b""]


def websocket_frame(text: str) -> bytes:
    """``text`` as one unmasked WebSocket text frame. A room sends the same string to every
    member: the last one is kept, so it is encoded once per broadcast."""
    if _last_frame[0] is text:
        return _last_frame[1]
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    data = head + payload
    _last_frame[0], _last_frame[1] = text, data
    return data


async def chat(request: web.Request) -> web.StreamResponse:
    service = request.app.get(CHAT)
    if service is None:
        raise ApiError(503, "chat is not available yet")
    name = request.match_info["name"]
    if not _NAME_RE.fullmatch(name):
        raise ApiError(400, "name: not a valid stream name")
    user = await optional_user(request, query_token=True)
    owner_id = None
    config = service.config
    if request.app[CONFIG].auth.mode == "accounts":
        accounts = request.app.get(ACCOUNTS)
        if accounts is None:
            raise ApiError(503, "accounts are not available yet")
        owner = await accounts.get_user(name.lower())
        if owner is None:
            raise ApiError(404, "no such creator")
        owner_id, name = owner.id, owner.handle

    # Incoming frames: the longest request is a message of max_chars characters, each up to
    # 4 bytes of UTF-8, or 6 bytes escaped as \uXXXX; bigger frames close the connection (1009).
    ws = web.WebSocketResponse(heartbeat=config.heartbeat, max_msg_size=config.max_chars * 12 + 1024)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "this endpoint is a WebSocket: send an Upgrade request")
    room = service.room(name, owner_id=owner_id)
    try:
        await service.admit(room, user)
    except ChatError as refused:
        raise ApiError(403, refused.reason, code=refused.code) from None
    await ws.prepare(request)

    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        # A fixed kernel send buffer (instead of autotuning up to megabytes): memory per
        # chat connection stays bounded and a peer that stops reading is noticed soon.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)

    def drop(member) -> None:
        if transport is not None:
            transport.abort()

    sink = (FrameSink(ws, transport, max(config.send_buffer, 1), request.app[_FLUSHER])
            if transport is not None else None)
    member = service.join(room, user, on_drop=drop, sink=sink)
    sockets = request.app[_SOCKETS]
    sockets.add(ws)

    async def pump() -> None:
        try:
            while True:
                frames = await member.next_frames()
                if frames is None:
                    break
                for frame in frames:
                    await ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            member.close("gone")
        if member.closed == "shutdown":
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        elif member.closed == "banned":
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"banned from this chat")

    writer = asyncio.get_running_loop().create_task(pump(), name=f"chat-writer-{name}")
    try:
        async for msg in ws:
            if member.closed is not None:
                break
            if msg.type == WSMsgType.TEXT:
                await service.handle(room, member, msg.data)
                # Let the writers run between requests: a burst from one client must not
                # fill everyone's queue before any of them had a chance to drain.
                await asyncio.sleep(0)
            elif msg.type == WSMsgType.BINARY:
                member.push('{"type":"error","code":"bad_request","reason":"send text frames (JSON)",'
                            '"retry_after":0}')
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        sockets.discard(ws)
        service.leave(room, member)
        if member.closed is None:
            member.close("gone")
        if member.closed == "banned":
            # The writer is sending the last frame and the 1008 close: let it finish.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        if not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
    return ws


def setup(app: web.Application, config: Config) -> None:
    """After ``accounts_routes.setup`` and the stats routes (viewer counts)."""
    from mediasrv.observe.routes import MONITOR

    validate.install(app)
    app[_SOCKETS] = set()
    app[_FLUSHER] = Flusher(config.chat.flush_interval, config.chat.batch_above)
    hub = app[HUB]

    from mediasrv.cluster import routes as cluster_routes

    def viewers(name: str) -> int:
        if cluster_routes.origin_of(app, name) is not None:  # served here for another node
            return cluster_routes.viewers_total(app, name, cluster_routes.local_viewers(app, name))
        monitor = app.get(MONITOR)
        health = monitor.streams.get(name) if monitor is not None else None
        if health is None or health.ended_at is not None:
            return 0
        return cluster_routes.viewers_total(app, name, health.audience.concurrent)

    def is_live(name: str) -> bool:
        return hub.get(name) is not None or cluster_routes.origin_of(app, name) is not None

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        service = ChatService(config.chat, viewers=viewers, is_live=is_live)
        app[CHAT] = service
        hub.add_listener(service.on_hub_event)
        await service.start()
        yield
        hub.remove_listener(service.on_hub_event)
        await service.stop()

    async def close_chats(app: web.Application) -> None:
        # on_shutdown runs before the server waits for open requests: end the chats now.
        service = app.get(CHAT)
        if service is not None:
            service.close_all()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(close_chats)
    app.router.add_get("/live/{name}/chat", chat)
    register_operation(app, "GET", "/live/{name}/chat", op(
        "The stream's chat (WebSocket)", tag="chat", auth="optional",
        description=(
            "Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). Anyone may read; a "
            "logged-in user may write (the token as `Authorization: Bearer` or `?access_token=`). Frames are "
            "JSON objects with a `type`. The first frame from the server is `state` {stream, live, viewers, "
            "pinned, history[], you|null}; then `message` {id, user, display_name, badges[], text, sent_at}, "
            "`system`, `pinned` {message|null, by}, `deleted` {id, by}, `viewer-count` {viewers}, "
            "`stream-ended`, `moderation` {action, by, user, until, minutes, deleted[], seconds, on}, "
            "`reported` {report, kind}, and `error` {code, reason, retry_after} for the sender's refused requests. "
            "Client requests: `message` {text}, `pin` {id}, `unpin`, `delete` {id}, `timeout` {user, minutes}, "
            "`untimeout` {user}, `ban` {user, reason}, `unban` {user}, `slow_mode` {seconds}, `followers_only` "
            "{on}, `report` {kind, id|user, reason}. A user banned from the creator's chats is refused with 403 "
            "before the upgrade; a ban closes their open connections (code 1008). All fields are plain "
            "text: render them as text, never as HTML. A client that cannot keep up with "
            f"`chat.send_buffer` ({config.chat.send_buffer}) queued frames is disconnected. See docs/chat.md."),
        params=[path_param("name", "public stream name (the creator's handle in auth.mode accounts)",
                           STREAM_NAME_PARAM)],
        query=TokenQuery,
        ok=101, ok_description="Switching Protocols: the WebSocket is open",
        errors=[400, 403, 404]))
