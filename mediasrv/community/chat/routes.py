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
import contextlib
import logging
import re
import socket

from aiohttp import WSCloseCode, WSMsgType, web

from mediasrv.community.accounts.http import optional_user
from mediasrv.community.chat.service import ChatError
from mediasrv.community.chat.transport import FrameSink
from mediasrv.config import Config
from mediasrv.httpkit import validate
from mediasrv.httpkit.keys import ACCOUNTS, CHAT, CHAT_FLUSHER, CHAT_SOCKETS, CONFIG, LIVE
from mediasrv.httpkit.models import STREAM_NAME_PARAM, TokenQuery
from mediasrv.httpkit.openapi import op, path_param, register_operation
from mediasrv.httpkit.validate import ApiError










log = logging.getLogger("mediasrv.chat")



#: Kernel send buffer of a chat connection, bytes.
SOCKET_SEND_BUFFER = 64 * 1024
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")











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
    room = service.room(name, owner_id=owner_id)
    try:
        await service.admit(room, user)
    except ChatError as refused:  # banned, or blocked by the creator: they know the room
        raise ApiError(403, refused.reason, code=refused.code) from None
    # Who may watch (issue 18): the chat of a live that is not public is for who may watch
    # it; anyone else gets the 404 of no such creator (a refusal tells nothing).
    live = request.app.get(LIVE) if owner_id is not None else None
    if live is not None and not await live.may_chat(name, user):
        service.forget_if_idle(room)
        raise ApiError(404, "no such creator")
    if not ws.can_prepare(request).ok:
        # A plain GET gets the refusals an upgrade would (401, 403 banned, 404) before this
        # 400: a browser cannot read a refused handshake's status and asks this way why.
        service.forget_if_idle(room)
        raise ApiError(400, "this endpoint is a WebSocket: send an Upgrade request")
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

    sink = (FrameSink(ws, transport, max(config.send_buffer, 1), request.app[CHAT_FLUSHER])
            if transport is not None else None)
    member = service.join(room, user, on_drop=drop, sink=sink)
    sockets = request.app[CHAT_SOCKETS]
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
        elif member.closed == "removed":  # blocked by the creator, or the account suspended
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"removed from this chat")
        elif member.closed == "not_allowed":  # who may watch the live changed (issue 18)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no longer allowed to watch this live")

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
        if member.closed in ("banned", "removed"):
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
    """The chat WebSocket route; the chat service and its flusher are the composition root's."""
    validate.install(app)
    app.router.add_get("/live/{name}/chat", chat)
    register_operation(app, "GET", "/live/{name}/chat", op(
        "The stream's chat (WebSocket)", tag="chat", auth="optional",
        description=(
            "Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). Anyone may read; a "
            "logged-in user may write (the token as `Authorization: Bearer` or `?access_token=`). Frames are "
            "JSON objects with a `type`. The first frame from the server is `state` {stream, live, viewers, "
            "enabled, pinned, history[], you|null} (`enabled` false: the creator turned the chat off and only "
            "they may write; others get `error` `chat_off`); then `message` {id, user, display_name, badges[], text, sent_at}, "
            "`system`, `pinned` {message|null, by}, `deleted` {id, by}, `viewer-count` {viewers}, "
            "`stream-ended` {stream, reason (an operator's stop only)}, `moderation` {action, by, user, until, minutes, deleted[], seconds, on}, "
            "`reported` {report, kind}, and `error` {code, reason, retry_after} for the sender's refused requests. "
            "Client requests: `message` {text}, `pin` {id}, `unpin`, `delete` {id}, `timeout` {user, minutes}, "
            "`untimeout` {user}, `ban` {user, reason}, `unban` {user}, `slow_mode` {seconds}, `followers_only` "
            "{on}, `report` {kind, id|user, reason}. A user banned from the creator's chats is refused with 403 "
            "before the upgrade; a ban closes their open connections (code 1008). So is a user the creator blocked "
            "(403 `blocked`; blocking closes their connections) and a suspended account (403 `suspended`). A "
            "user never gets the messages of those they blocked or muted (live or in `history`). All fields are plain "
            "text: render them as text, never as HTML. A client that cannot keep up with "
            f"`chat.send_buffer` ({config.chat.send_buffer}) queued frames is disconnected. See docs/chat.md."),
        params=[path_param("name", "public stream name (the creator's handle in auth.mode accounts)",
                           STREAM_NAME_PARAM)],
        query=TokenQuery,
        ok=101, ok_description="Switching Protocols: the WebSocket is open",
        errors=[400, 403, 404]))
