"""Chat rooms beside every stream: members, history, pins and fan-out with flow control.

The rules (text cleaning, rate limit, word filter) live in ``mediasrv.community.chat.rules``; this is
the asyncio side. It knows nothing of WebSockets: a ``Member`` is a bounded queue of
already-encoded JSON frames that a transport (``mediasrv.community.chat.routes``) drains.

Flow control: a room never waits for a member. Each frame is encoded once and appended to
every member's queue; a member whose queue already holds ``chat.send_buffer`` frames is
dropped (its ``on_drop`` callback closes the connection) and the room goes on.

Client requests are dispatched on their ``type`` through ``ChatService.handlers``; later
features (timeouts, bans, reports, gifts) add entries there and use ``can_moderate``, the
single moderator check. Moderation (``mediasrv.community.moderation.service``) plugs in as the room
``policy``: appointed moderators, bans, timeouts, followers-only. See docs/chat.md.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Mapping, Protocol

from mediasrv.config import ChatConfig
from mediasrv.httpkit.jsonlimits import too_deep
from mediasrv.hub import StreamEnded, StreamStarted, StreamWentPublic
from mediasrv.community.accounts.relations import Relations
from mediasrv.community.chat.rules import ChatRefused, RefusalCode, RoomRules, Speaker
from mediasrv.store import User

log = logging.getLogger("mediasrv.chat")

#: Seconds between viewer-count checks (sent only when the count changed).
VIEWER_COUNT_INTERVAL = 5.0
#: Longest ``id`` accepted in a request.
_ID_MAX = 64
#: Frames every node makes for itself, never relayed to the other nodes of a cluster
#: (each node sends the cluster-wide viewer count it reads from Redis).
NODE_LOCAL_FRAMES = frozenset({"viewer-count"})


class ChatError(Exception):
    """A request refused: sent back to its sender as an ``error`` frame."""

    def __init__(self, code: str, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.code, self.reason, self.retry_after = code, reason, retry_after

    def to_json(self) -> dict:
        return {"type": "error", "code": self.code, "reason": self.reason,
                "retry_after": round(self.retry_after, 3)}


def encode(payload: dict) -> str:
    # ensure_ascii: every non-ASCII character (and so every U+2028/2029) is escaped; the
    # frame is plain JSON text whatever the message contains.
    # "<", ">" and "&" are escaped too (\u003c …): a frame holds no markup characters at all,
    # so it stays inert even if a client pastes it into an HTML document or a script.
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    handle: str
    display_name: str
    badges: tuple[str, ...]
    text: str
    sent_at: float
    user_id: int

    def to_json(self) -> dict:
        return {"type": "message", "id": self.id, "user": self.handle, "display_name": self.display_name,
                "badges": list(self.badges), "text": self.text, "sent_at": self.sent_at}


class Member:
    """One connection in a room: a bounded queue of encoded frames."""

    def __init__(self, user: User | None, limit: int, on_drop: Callable[["Member"], None] | None = None,
                 sink: Callable[[str], bool] | None = None) -> None:
        self.user = user
        self.limit = limit
        self.on_drop = on_drop
        #: A transport that takes frames at once (False: it is ``limit`` frames behind);
        #: without one, frames queue here for ``next_frames``.
        self.sink = sink
        #: None while open; else why it closed: "too_slow" or "shutdown".
        self.closed: str | None = None
        self._frames: collections.deque[str] = collections.deque()
        self._ready = asyncio.Event()

    def push(self, frame: str) -> bool:
        if self.closed is not None:
            return False
        if self.sink is not None:
            if self.sink(frame):
                return True
            self.close("too_slow")
            return False
        if len(self._frames) >= self.limit:
            self.close("too_slow")
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def close(self, reason: str, final_frame: str | None = None) -> None:
        """Close; ``final_frame`` (e.g. why) is the last frame the transport sends."""
        if self.closed is not None:
            return
        self.closed = reason
        self._frames.clear()
        if final_frame is not None:
            self._frames.append(final_frame)
        self._ready.set()
        if reason == "too_slow" and self.on_drop is not None:
            self.on_drop(self)

    async def next_frames(self) -> list[str] | None:
        """The queued frames (at least one), or None once the member is closed."""
        while not self._frames and self.closed is None:
            self._ready.clear()
            await self._ready.wait()
        if self.closed is not None and not self._frames:
            return None
        frames = list(self._frames)
        self._frames.clear()
        return frames


@dataclass(slots=True)
class Room:
    name: str
    rules: RoomRules
    history_size: int
    #: Id of the stream's creator (accounts mode), else None: then a user whose handle is
    #: the stream name is its creator.
    owner_id: int | None = None
    members: set[Member] = field(default_factory=set)
    history: collections.deque[ChatMessage] = field(default_factory=collections.deque)
    pinned: ChatMessage | None = None
    #: None: the creator hides the count (``hide_viewer_count``).
    viewers: int | None = 0
    #: In a cluster: called with (room name, payload) for every frame broadcast here, so
    #: the room's members on the other nodes get it too (docs/cluster.md).
    relay: Callable[[str, dict], None] | None = None
    #: ``hides(viewer_id, author_id)``: the viewer blocked or muted the author (their
    #: messages are not fanned out to that viewer, nor shown in the history they get).
    hides: Callable[[int, int], bool] | None = None

    def is_creator(self, user: User | None) -> bool:
        if user is None:
            return False
        if self.owner_id is not None:
            return user.id == self.owner_id
        return user.handle == self.name

    def find(self, message_id: str) -> ChatMessage | None:
        for message in self.history:
            if message.id == message_id:
                return message
        return None

    def remove_messages_of(self, user_id: int) -> list[ChatMessage]:
        """Take a user's messages out of the history (a ban or timeout clears them)."""
        removed = [m for m in self.history if m.user_id == user_id]
        if removed:
            self.history = collections.deque(m for m in self.history if m.user_id != user_id)
        return removed

    def broadcast(self, payload: dict, *, author_id: int | None = None) -> int:
        """Queue ``payload`` for every member (and, in a cluster, relay it to the room on
        the other nodes); return how many members here got it. ``author_id``: the user who
        wrote it; members who blocked or muted them do not get it (encoded once all the same)."""
        if self.relay is not None and payload.get("type") not in NODE_LOCAL_FRAMES:
            self.relay(self.name, payload)
        frame = encode(payload)
        members = list(self.members)
        if author_id is not None and self.hides is not None:
            hides = self.hides
            members = [m for m in members if m.user is None or not hides(m.user.id, author_id)]
        return sum(member.push(frame) for member in members)

    def history_for(self, user: User | None) -> list[ChatMessage]:
        """The history as ``user`` sees it: without the messages of those they blocked or muted."""
        if user is None or self.hides is None:
            return list(self.history)
        return [m for m in self.history if not (m.user_id and self.hides(user.id, m.user_id))]

    def apply_remote(self, payload: dict) -> None:
        """Follow a frame from another node in this room's state (history, pin), then
        queue it for the members here (not relayed again)."""
        kind = payload.get("type")
        if kind == "message":
            try:
                message = ChatMessage(str(payload["id"]), str(payload["user"]), str(payload["display_name"]),
                                      tuple(payload.get("badges") or ()), str(payload["text"]),
                                      float(payload["sent_at"]), 0)
            except (KeyError, TypeError, ValueError):
                return
            self.history.append(message)
            while len(self.history) > self.history_size:
                self.history.popleft()
        elif kind == "deleted" or (kind == "moderation" and payload.get("deleted")):
            gone = {payload.get("id")} if kind == "deleted" else set(payload.get("deleted") or ())
            self.history = collections.deque(m for m in self.history if m.id not in gone)
        elif kind == "pinned":
            pinned = payload.get("message")
            self.pinned = self.find(pinned.get("id")) if isinstance(pinned, dict) else None
        frame = encode(payload)
        for member in list(self.members):
            member.push(frame)


Handler = Callable[[Room, Member, dict], Awaitable[None]]


class RoomPolicy(Protocol):
    """What moderation adds to every room (``ChatService.policy``)."""

    def can_moderate(self, room: Room, user: User) -> bool:
        """The creator, a moderator they appointed, a site moderator or an admin."""

    async def admit(self, room: Room, user: User | None) -> None:
        """Before a connection joins: raise ``ChatError`` to refuse it (a banned user)."""

    async def speaker(self, room: Room, user: User, speaker: Speaker) -> Speaker:
        """Complete the speaker (banned, timed out, follower) before the rules decide."""

    def you(self, room: Room, user: User) -> dict:
        """Extra fields of ``state.you`` (``can_write`` false while timed out …)."""

    async def deleted(self, room: Room, user: User, message: ChatMessage) -> None:
        """After a moderator deleted ``message`` (moderation writes it to its log)."""


class ChatService:
    def __init__(
        self,
        config: ChatConfig,
        *,
        viewers: Callable[[str], int | None] = lambda name: 0,
        is_live: Callable[[str], bool] = lambda name: False,
        moderator_check: Callable[[Room, User], bool] | None = None,
        policy: RoomPolicy | None = None,
        extra_handlers: Mapping[str, Handler] | None = None,
        relay: Callable[[str, dict], None] | None = None,
        message_listeners: Iterable[Callable[[Room, ChatMessage], None]] = (),
        rooms: dict[str, Room] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        relations: Relations | None = None,
        suspended: Callable[[int], bool] = lambda user_id: False,
    ) -> None:
        """``policy`` and ``extra_handlers``: moderation's hooks and requests; ``relay``: in a
        cluster, where rooms send their frames (``ClusterBus.publish_chat``); ``rooms``: the
        room directory, shared with moderation (the composition root makes it);
        ``relations``: who blocked or muted whom (a blocked user cannot join or write in the
        blocker's rooms; a blocker or muter does not see the other's messages);
        ``suspended(user_id)``: a suspended account cannot chat."""
        self.relations = relations
        self.suspended = suspended
        self.config = config
        self.viewers = viewers
        self.is_live = is_live
        self.clock = clock
        self.wall_clock = wall_clock
        self.rooms: dict[str, Room] = {} if rooms is None else rooms
        self._moderator_check = moderator_check
        self.policy = policy
        self._task: asyncio.Task | None = None
        #: type -> coroutine handling a client request of that type.
        self.handlers: dict[str, Handler] = {
            "message": self._on_message, "pin": self._on_pin, "unpin": self._on_unpin, "delete": self._on_delete,
            **(extra_handlers or {}),
        }
        self.relay = relay
        #: Called with every message accepted into a room (analytics count them).
        self.message_listeners = tuple(message_listeners)
        # Plain counters, read at scrape time.
        self.messages_sent = 0
        self.messages_refused = 0
        self.members_dropped_slow = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._viewer_counts(), name="chat-viewer-counts")

    async def stop(self) -> None:
        self.close_all()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def close_all(self) -> None:
        for room in list(self.rooms.values()):
            for member in list(room.members):
                member.close("shutdown")

    def on_hub_event(self, event) -> None:
        room = self.rooms.get(event.stream.name)
        if room is None:
            return
        stream = event.stream
        # A private broadcast (backstage) is not announced: the room hears of it once it
        # is made public, and nothing of one that ended without going public.
        if isinstance(event, StreamStarted) and not stream.private or isinstance(event, StreamWentPublic):
            room.broadcast({"type": "system", "event": "stream-started", "text": "the stream started"})
        elif isinstance(event, StreamEnded):
            if stream.public_at is not None:
                frame = {"type": "stream-ended", "stream": room.name}
                if stream.end_reason:  # an operator (or the creator) stopped it: the viewers see why
                    frame["reason"] = stream.end_reason
                room.broadcast(frame)
            self.forget_if_idle(room)

    # --- membership ---------------------------------------------------------------------

    async def recheck(self, name: str, may_stay: Callable[[User | None], Awaitable[bool]]) -> int:
        """Ask ``may_stay`` again of every member of room ``name`` (who may watch its live
        changed, issue 18) and close those it refuses, with an ``error`` frame (code
        ``not_allowed``); returns how many were closed."""
        room = self.rooms.get(name)
        if room is None:
            return 0
        refused = encode({"type": "error", "code": "not_allowed",
                          "reason": "you may no longer watch this live", "retry_after": 0})
        closed = 0
        for member in list(room.members):
            if member.closed is None and not await may_stay(member.user):
                room.members.discard(member)
                member.close("not_allowed", refused)
                closed += 1
        return closed

    def room(self, name: str, *, owner_id: int | None = None) -> Room:
        room = self.rooms.get(name)
        if room is None:
            cfg = self.config
            rules = RoomRules(server_words=tuple(cfg.banned_words), rate=cfg.rate, per=cfg.per, burst=cfg.burst,
                              max_chars=cfg.max_chars)
            room = self.rooms[name] = Room(name, rules, cfg.history, owner_id=owner_id,
                                           viewers=self.viewers(name), relay=self._relay,
                                           hides=self.relations.hides if self.relations is not None else None)
        elif owner_id is not None:
            room.owner_id = owner_id
        return room

    def _relay(self, name: str, payload: dict) -> None:
        if self.relay is not None:
            self.relay(name, payload)

    def deliver_remote(self, name: str, payload: dict) -> None:
        """A frame of room ``name`` from another node: for the room's members here. A room
        nobody here has joined is not made for it."""
        room = self.rooms.get(name)
        if room is not None:
            room.apply_remote(payload)

    def join(self, room: Room, user: User | None, *, on_drop: Callable[[Member], None] | None = None,
             sink: Callable[[str], bool] | None = None) -> Member:
        """Add a member; its first frame is the room's state."""
        member = Member(user, max(self.config.send_buffer, 1), on_drop=self._dropper(room, on_drop), sink=sink)
        member.push(encode(self.state(room, user)))
        room.members.add(member)
        return member

    def _dropper(self, room: Room, on_drop):
        def dropped(member: Member) -> None:
            self.members_dropped_slow += 1
            log.info("chat %s: dropped a member that could not keep up (%s)", room.name,
                     member.user.handle if member.user else "anonymous")
            room.members.discard(member)
            if on_drop is not None:
                on_drop(member)
        return dropped

    def leave(self, room: Room, member: Member) -> None:
        room.members.discard(member)
        self.forget_if_idle(room)

    def forget_if_idle(self, room: Room) -> None:
        """Forget ``room`` if nobody is in it and it is not live (a room made for a
        connection that did not join, or whose last member left)."""
        if not room.members and not self.is_live(room.name) and self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    # --- who is who ---------------------------------------------------------------------

    def can_moderate(self, room: Room, user: User | None) -> bool:
        """The moderator check: the creator, a moderator or an admin (appointed moderators
        come with the moderation feature through ``moderator_check``)."""
        if user is None:
            return False
        if self.policy is not None:
            return self.policy.can_moderate(room, user)
        if self._moderator_check is not None:
            return self._moderator_check(room, user)
        return room.is_creator(user) or user.at_least("moderator")

    def badges(self, room: Room, user: User) -> tuple[str, ...]:
        badges = ["creator"] if room.is_creator(user) else []
        if user.role in ("moderator", "admin"):
            badges.append(user.role)
        elif not badges and self.can_moderate(room, user):
            badges.append("moderator")  # appointed by this creator
        return tuple(badges)

    def state(self, room: Room, user: User | None) -> dict:
        """The first frame of a connection: the room as ``user`` (None: anonymous) sees it."""
        enabled = room.rules.settings.enabled
        you = None
        if user is not None:
            creator = room.is_creator(user)
            you = {"user": user.handle, "display_name": user.display_name, "badges": list(self.badges(room, user)),
                   "can_write": enabled or creator, "can_pin": creator, "can_moderate": self.can_moderate(room, user)}
            if self.policy is not None:
                you.update(self.policy.you(room, user))
        return {"type": "state", "stream": room.name, "live": self.is_live(room.name), "viewers": room.viewers,
                "enabled": enabled, "pinned": room.pinned.to_json() if room.pinned else None,
                "history": [m.to_json() for m in room.history_for(user)], "you": you}

    async def admit(self, room: Room, user: User | None) -> None:
        """Before ``join``: raises ``ChatError`` when the connection is refused (the room,
        if it was made for it, is forgotten again)."""
        try:
            self._check_reach(room, user)
            if self.policy is None:
                return
            await self.policy.admit(room, user)
        except ChatError:
            self.forget_if_idle(room)
            raise

    # --- requests -----------------------------------------------------------------------

    async def handle(self, room: Room, member: Member, data: str) -> None:
        """One text frame from a client; errors go back to that client only."""
        try:
            try:
                if too_deep(data):  # refused before parsing: the decoder recurses per level
                    raise ValueError("nested too deeply")
                request = json.loads(data)
            except (ValueError, RecursionError):  # RecursionError: a backstop to too_deep
                raise ChatError("bad_request", "a request is a JSON object with a type") from None
            if not isinstance(request, dict) or not isinstance(request.get("type"), str):
                raise ChatError("bad_request", "a request is a JSON object with a type")
            handler = self.handlers.get(request["type"])
            if handler is None:
                raise ChatError("unknown_type", f"unknown request type {request['type'][:32]!r}")
            await handler(room, member, request)
        except ChatError as error:
            self.messages_refused += 1
            member.push(encode(error.to_json()))

    def _writer(self, member: Member) -> User:
        if member.user is None:
            raise ChatError(RefusalCode.NOT_LOGGED_IN.value, "log in to chat")
        return member.user

    def _check_reach(self, room: Room, user: User | None) -> None:
        """Refuse a suspended account, and a user the room's creator blocked."""
        if user is None:
            return
        if self.suspended(user.id):
            raise ChatError("suspended", "this account is suspended")
        if self.relations is not None and room.owner_id is not None and self.relations.blocks(room.owner_id, user.id):
            raise ChatError("blocked", f"{room.name} blocked you: you cannot chat in their rooms")

    def disconnect_user(self, user_id: int, reason: str, *, owner_id: int | None = None) -> int:
        """Close every connection of ``user_id`` (only in ``owner_id``'s rooms when given),
        each told why in a last ``error`` frame; returns how many were closed."""
        closed = 0
        frame = encode(ChatError("blocked" if owner_id is not None else "suspended", reason).to_json())
        for room in list(self.rooms.values()):
            if owner_id is not None and room.owner_id != owner_id:
                continue
            for member in list(room.members):
                if member.user is not None and member.user.id == user_id:
                    member.close("removed", final_frame=frame)
                    room.members.discard(member)
                    closed += 1
        return closed

    @staticmethod
    def _message_id(request: dict) -> str:
        message_id = request.get("id")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= _ID_MAX:
            raise ChatError("bad_request", "id: the id of a message (a string)")
        return message_id

    async def _on_message(self, room: Room, member: Member, request: dict) -> None:
        user = self._writer(member)
        self._check_reach(room, user)
        speaker = Speaker(user.id, is_moderator=self.can_moderate(room, user), is_creator=room.is_creator(user))
        if self.policy is not None:
            speaker = await self.policy.speaker(room, user, speaker)
        try:
            text = room.rules.check(speaker, request.get("text"), self.clock())
        except ChatRefused as refused:
            r = refused.refusal
            raise ChatError(r.code.value, r.reason, r.retry_after) from None
        message = ChatMessage(secrets.token_hex(8), user.handle, user.display_name, self.badges(room, user), text,
                              round(self.wall_clock(), 3), user.id)
        room.history.append(message)
        while len(room.history) > room.history_size:
            room.history.popleft()
        self.messages_sent += 1
        room.broadcast(message.to_json(), author_id=user.id)
        for listener in self.message_listeners:
            listener(room, message)

    async def _on_pin(self, room: Room, member: Member, request: dict) -> None:
        user = self._writer(member)
        if not room.is_creator(user):
            raise ChatError("forbidden", "only the creator can pin a message")
        message = room.find(self._message_id(request))
        if message is None:
            raise ChatError("not_found", "no such message in this chat's history")
        room.pinned = message
        room.broadcast({"type": "pinned", "message": message.to_json(), "by": user.handle})

    async def _on_unpin(self, room: Room, member: Member, request: dict) -> None:
        user = self._writer(member)
        if not room.is_creator(user):
            raise ChatError("forbidden", "only the creator can unpin a message")
        if room.pinned is not None:
            room.pinned = None
            room.broadcast({"type": "pinned", "message": None, "by": user.handle})

    async def _on_delete(self, room: Room, member: Member, request: dict) -> None:
        user = self._writer(member)
        if not self.can_moderate(room, user):
            raise ChatError("forbidden", "only the creator and moderators can delete messages")
        message = room.find(self._message_id(request))
        if message is None:
            raise ChatError("not_found", "no such message in this chat's history")
        room.history.remove(message)
        room.broadcast({"type": "deleted", "id": message.id, "by": user.handle})
        if room.pinned is not None and room.pinned.id == message.id:
            room.pinned = None
            room.broadcast({"type": "pinned", "message": None, "by": user.handle})
        if self.policy is not None:
            await self.policy.deleted(room, user, message)

    # --- viewer counts ------------------------------------------------------------------

    async def _viewer_counts(self) -> None:
        while True:
            await asyncio.sleep(VIEWER_COUNT_INTERVAL)
            self.update_viewer_counts()

    def update_viewer_counts(self) -> None:
        for room in list(self.rooms.values()):
            try:
                count = self.viewers(room.name)
            except Exception:  # a monitor that is not there yet counts as zero
                count = 0
            if count != room.viewers:
                room.viewers = count
                room.broadcast({"type": "viewer-count", "viewers": count})
