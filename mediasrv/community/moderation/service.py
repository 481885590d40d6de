"""Chat moderation and reports: the asyncio side of ``mediasrv.community.moderation.rules``.

``ModerationService`` keeps, per creator, the moderation state their chat rooms need on
every message (appointed moderators, bans, running timeouts, banned words, slow mode,
followers-only, whether the chat is on) in memory, loaded from the store on first use and
updated on every change (changes go through this service: the WebSocket requests and the
REST API alike). The store is the truth: bans, timeouts and settings survive restarts.

It plugs into the chat as the room policy (``attach``): it decides who moderates, refuses
banned users before their WebSocket opens, completes the ``Speaker`` the chat rules check,
and adds the ``timeout``/``untimeout``/``ban``/``unban``/``slow_mode``/``followers_only``/
``report`` requests. Every action is written to the moderation log. See docs/chat.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from mediasrv.config import HANDLE_RE, STREAM_NAME_RE, Config, ModerationConfig
from mediasrv.community.chat.rules import RoomSettings, Speaker
from mediasrv.community.moderation.rules import (
    Action,
    ModerationRefused,
    ReportQuota,
    Standing,
    check_resolution,
    check_target,
    clean_reason,
    clean_word_list,
    may_manage,
    may_moderate,
    standing,
    time_left,
    timeout_until,
)
from mediasrv.community.chat.service import ChatError, ChatService, Handler, Member, Room, encode
from mediasrv.community.accounts.relations import Relations
from mediasrv.store import SqliteStore, User
from mediasrv.store.moderation import Report

log = logging.getLogger("mediasrv.moderation")

#: Creators whose state stays cached when no room of theirs is open.
_CACHE_SOFT_LIMIT = 1024


class ReportRateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many reports: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _CreatorState:
    moderators: set[int]
    banned: set[int]
    timeouts: dict[int, float]
    words: tuple[str, ...]
    slow_mode_seconds: float
    followers_only: bool
    #: The creator's ``chat.enabled`` go-live setting.
    chat_enabled: bool = True
    room_settings: RoomSettings = field(init=False)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the rules' settings object (rooms compare it by identity)."""
        self.room_settings = RoomSettings(self.slow_mode_seconds, self.followers_only, self.words,
                                          enabled=self.chat_enabled)


class ModerationService:
    """The moderation component (``app[MODERATION]``)."""

    def __init__(self, store: SqliteStore, limits: ModerationConfig, *, rooms: Mapping[str, Room],
                 is_live: Callable[[str], bool], chat_clock: Callable[[], float] = time.monotonic,
                 clock: Callable[[], float] = time.time,
                 on_moderator_removed: Callable[[str], None] = lambda creator: None) -> None:
        """``limits``: the ``moderation`` config section; ``rooms``: the chat's room directory (shared with ``ChatService``); ``chat_clock``:
        the chat's monotonic clock (a timeout's end is on it); ``is_live``: whether a stream
        is live (reports on a stream that is neither live nor a creator are refused);
        ``on_moderator_removed(creator_handle)``: told when a creator's moderator is removed
        (the playback gate revokes the grants of that creator's private live: a removed
        moderator's player stops at once)."""
        self.store = store
        self.on_moderator_removed = on_moderator_removed
        self.limits = limits
        self.rooms = rooms
        self.is_live = is_live
        self.chat_clock = chat_clock
        self.clock = clock
        self._states: dict[int, _CreatorState] = {}
        self._loading: dict[int, asyncio.Task] = {}
        self.quota = ReportQuota(self.limits.reports_per_hour, 3600.0)
        # Plain counters, read at scrape time.
        self.actions = 0
        self.reports_filed = 0

    def handlers(self) -> dict[str, Handler]:
        """The chat requests moderation adds (``ChatService(extra_handlers=...)``)."""
        return {
            "timeout": self._on_timeout, "untimeout": self._on_untimeout, "ban": self._on_ban,
            "unban": self._on_unban, "slow_mode": self._on_slow_mode, "followers_only": self._on_followers_only,
            "report": self._on_report,
        }

    async def deleted(self, room: Room, user: User, message) -> None:
        """``RoomPolicy.deleted``: a moderator's deletion goes into the creator's log."""
        if room.owner_id is not None:
            await self._log(room.owner_id, user, Action.DELETE, message.user_id, message.id, {"text": message.text})

    # --- the per-creator state ---------------------------------------------------------

    async def _state(self, creator_id: int) -> _CreatorState:
        state = self._states.get(creator_id)
        if state is not None:
            return state
        task = self._loading.get(creator_id)
        if task is None:
            # One load per creator at a time: a second caller waits for the first.
            task = self._loading[creator_id] = asyncio.get_running_loop().create_task(self._load(creator_id))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._loading.pop(creator_id, None)

    async def _load(self, creator_id: int) -> _CreatorState:
        now = self.clock()
        loaded = await asyncio.to_thread(self.store.creator_moderation, creator_id, now)
        settings = await asyncio.to_thread(self.store.get_settings, creator_id)
        state = _CreatorState(set(loaded.moderator_ids), set(loaded.banned_ids), dict(loaded.timeouts),
                              loaded.banned_words, float(settings.chat.get("slow_mode_seconds", 0) or 0),
                              bool(settings.chat.get("followers_only", False)),
                              bool(settings.chat.get("enabled", True)))
        if len(self._states) >= _CACHE_SOFT_LIMIT:
            open_rooms = {room.owner_id for room in self.rooms.values()}
            for stale in [cid for cid in self._states if cid not in open_rooms]:
                del self._states[stale]
        return self._states.setdefault(creator_id, state)

    def _rooms_of(self, creator_id: int) -> list[Room]:
        return [room for room in self.rooms.values() if room.owner_id == creator_id]

    def _apply(self, creator_id: int, state: _CreatorState) -> None:
        state.refresh()
        for room in self._rooms_of(creator_id):
            room.rules.update_settings(state.room_settings)

    def _broadcast(self, creator_id: int, payload: dict) -> None:
        for room in self._rooms_of(creator_id):
            room.broadcast(payload)

    async def _owner(self, room: Room) -> int | None:
        """The room's creator id; outside auth.mode accounts, the user whose handle is the
        room's name, if any (moderation needs a creator account)."""
        if room.owner_id is None and HANDLE_RE.fullmatch(room.name):
            owner = await asyncio.to_thread(self.store.get_user_by_handle, room.name)
            if owner is not None:
                room.owner_id = owner.id
        return room.owner_id

    def standing(self, creator_id: int, user: User) -> Standing:
        """``user``'s standing in ``creator_id``'s chat (state must be loaded)."""
        state = self._states.get(creator_id)
        appointed = state is not None and user.id in state.moderators
        return standing(role=user.role, is_creator=user.id == creator_id, is_appointed=appointed)

    async def standing_of(self, creator_id: int, user: User) -> Standing:
        await self._state(creator_id)
        return self.standing(creator_id, user)

    async def appointed(self, creator_id: int, user_id: int) -> bool:
        """Is ``user_id`` one of the moderators ``creator_id`` appointed? (They may watch
        the creator's private live.)"""
        return user_id in (await self._state(creator_id)).moderators

    async def is_banned(self, creator_id: int, user_id: int) -> bool:
        """Is ``user_id`` banned from ``creator_id``'s chats? (Gifts are refused too.)"""
        return user_id in (await self._state(creator_id)).banned

    async def timed_out_until(self, creator_id: int, user_id: int) -> float | None:
        until = (await self._state(creator_id)).timeouts.get(user_id)
        return until if time_left(until, self.clock()) > 0 else None

    # --- the room policy (called by ChatService) ---------------------------------------

    def can_moderate(self, room: Room, user: User) -> bool:
        if room.is_creator(user) or user.at_least("moderator"):
            return True
        state = self._states.get(room.owner_id) if room.owner_id is not None else None
        return state is not None and user.id in state.moderators

    async def admit(self, room: Room, user: User | None) -> None:
        creator_id = await self._owner(room)
        if creator_id is None:
            return
        state = await self._state(creator_id)
        if room.rules.settings is not state.room_settings:
            room.rules.update_settings(state.room_settings)
        if user is not None and user.id in state.banned:
            raise ChatError("banned", f"you are banned from {room.name}'s chats")

    async def speaker(self, room: Room, user: User, speaker: Speaker) -> Speaker:
        if room.owner_id is None:
            return speaker
        state = await self._state(room.owner_id)
        speaker.banned = user.id in state.banned
        left = time_left(state.timeouts.get(user.id), self.clock())
        if left > 0:
            # The rules run on the chat's monotonic clock; timeouts are kept in Unix time.
            speaker.timed_out_until = self.chat_clock() + left
        else:
            state.timeouts.pop(user.id, None)
        if room.rules.settings.followers_only and not speaker.is_moderator:
            speaker.is_follower = await asyncio.to_thread(self.store.is_following, user.id, room.owner_id)
        return speaker

    def you(self, room: Room, user: User) -> dict:
        state = self._states.get(room.owner_id) if room.owner_id is not None else None
        until = state.timeouts.get(user.id) if state is not None else None
        if time_left(until, self.clock()) > 0:
            return {"can_write": False, "timed_out_until": until}
        return {}

    # --- actions (WebSocket and REST) --------------------------------------------------

    async def _log(self, creator_id: int, actor: User, action: Action, target_id: int | None = None,
                   message_id: str | None = None, detail: dict | None = None) -> None:
        self.actions += 1
        await asyncio.to_thread(self.store.add_moderation_log, creator_id, actor.id, action.value, target_id,
                                message_id, detail or {}, self.clock())

    async def _check_target(self, creator_id: int, actor: User, target: User) -> None:
        await self._state(creator_id)
        check_target(self.standing(creator_id, actor), self.standing(creator_id, target),
                     self_target=actor.id == target.id, target_is_creator=target.id == creator_id)

    def _clear_messages(self, creator_id: int, target: User) -> list[str]:
        removed: list[str] = []
        for room in self._rooms_of(creator_id):
            messages = room.remove_messages_of(target.id)
            removed += [m.id for m in messages]
            if room.pinned is not None and room.pinned in messages:
                room.pinned = None
                room.broadcast({"type": "pinned", "message": None, "by": None})
        return removed

    async def timeout(self, creator_id: int, actor: User, target: User, minutes: object) -> float:
        """Time ``target`` out of the creator's chats; their recent messages are removed."""
        await self._check_target(creator_id, actor, target)
        until = timeout_until(self.clock(), minutes, self.limits.max_timeout_minutes)
        await asyncio.to_thread(self.store.set_chat_timeout, creator_id, target.id, actor.id, until)
        (await self._state(creator_id)).timeouts[target.id] = until
        deleted = self._clear_messages(creator_id, target)
        self._broadcast(creator_id, {"type": "moderation", "action": "timeout", "user": target.handle,
                                     "by": actor.handle, "until": until, "minutes": minutes, "deleted": deleted})
        await self._log(creator_id, actor, Action.TIMEOUT, target.id, None, {"minutes": minutes, "until": until})
        return until

    async def untimeout(self, creator_id: int, actor: User, target: User) -> bool:
        await self._check_target(creator_id, actor, target)
        running = await asyncio.to_thread(self.store.clear_chat_timeout, creator_id, target.id, self.clock())
        (await self._state(creator_id)).timeouts.pop(target.id, None)
        if running:
            self._broadcast(creator_id, {"type": "moderation", "action": "untimeout", "user": target.handle,
                                         "by": actor.handle})
            await self._log(creator_id, actor, Action.UNTIMEOUT, target.id)
        return running

    async def ban(self, creator_id: int, actor: User, target: User, reason: object) -> bool:
        """Ban ``target`` from the creator's chats: their open connections there are
        closed (a final ``error`` frame, code ``banned``, then close code 1008), their
        messages removed; new connections are refused until unbanned."""
        await self._check_target(creator_id, actor, target)
        reason = clean_reason(reason, max_chars=self.limits.max_reason_chars, required=False)
        added = await asyncio.to_thread(self.store.add_chat_ban, creator_id, target.id, actor.id, reason,
                                        self.clock())
        state = await self._state(creator_id)
        state.banned.add(target.id)
        state.timeouts.pop(target.id, None)
        if target.id in state.moderators:
            # A banned moderator is no moderator (appointing them again needs an unban first).
            await asyncio.to_thread(self.store.remove_chat_moderator, creator_id, target.id)
            state.moderators.discard(target.id)
            await self._log(creator_id, actor, Action.REMOVE_MODERATOR, target.id, None, {"reason": "banned"})
        kicked = encode({"type": "error", "code": "banned", "reason": "you were banned from this creator's chats",
                         "retry_after": 0})
        for room in self._rooms_of(creator_id):
            for member in list(room.members):
                if member.user is not None and member.user.id == target.id:
                    room.members.discard(member)
                    member.close("banned", kicked)
        deleted = self._clear_messages(creator_id, target)
        self._broadcast(creator_id, {"type": "moderation", "action": "ban", "user": target.handle,
                                     "by": actor.handle, "deleted": deleted})
        if added:
            await self._log(creator_id, actor, Action.BAN, target.id, None, {"reason": reason})
        return added

    async def unban(self, creator_id: int, actor: User, target: User) -> bool:
        await self._check_target(creator_id, actor, target)
        removed = await asyncio.to_thread(self.store.remove_chat_ban, creator_id, target.id)
        (await self._state(creator_id)).banned.discard(target.id)
        if removed:
            self._broadcast(creator_id, {"type": "moderation", "action": "unban", "user": target.handle,
                                         "by": actor.handle})
            await self._log(creator_id, actor, Action.UNBAN, target.id)
        return removed

    async def _require_moderator(self, creator_id: int, actor: User) -> None:
        if not may_moderate(await self.standing_of(creator_id, actor)):
            raise ModerationRefused("forbidden", "only the creator and moderators can do that")

    async def _save_chat_setting(self, creator_id: int, name: str, value) -> None:
        current = await asyncio.to_thread(self.store.get_settings, creator_id)
        await asyncio.to_thread(self.store.update_settings, creator_id, self.clock(),
                                chat={**current.chat, name: value})

    async def set_slow_mode(self, creator_id: int, actor: User, seconds: object) -> int:
        """Slow mode: at most one message per ``seconds`` per user (0 turns it off); kept
        in the creator's go-live settings."""
        await self._require_moderator(creator_id, actor)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 3600:
            raise ModerationRefused("bad_request", "seconds: a whole number 0-3600 (0 turns slow mode off)")
        await self._save_chat_setting(creator_id, "slow_mode_seconds", seconds)
        await self.settings_changed(creator_id, actor, {"slow_mode_seconds": seconds})
        return seconds

    async def set_followers_only(self, creator_id: int, actor: User, on: object) -> bool:
        await self._require_moderator(creator_id, actor)
        if not isinstance(on, bool):
            raise ModerationRefused("bad_request", "on: true or false")
        await self._save_chat_setting(creator_id, "followers_only", on)
        await self.settings_changed(creator_id, actor, {"followers_only": on})
        return on

    async def settings_changed(self, creator_id: int, actor: User, chat: dict) -> None:
        """Slow mode, followers-only or ``enabled`` changed (here or by ``PATCH
        /api/me/settings``): apply it to the open rooms at once, tell them, and log it."""
        state = await self._state(creator_id)
        if "enabled" in chat and bool(chat["enabled"]) != state.chat_enabled:
            state.chat_enabled = bool(chat["enabled"])
            self._apply(creator_id, state)
            # The open connections learn it from this frame: nobody has to reconnect.
            self._broadcast(creator_id, {"type": "moderation", "action": "chat_enabled", "on": state.chat_enabled,
                                         "by": actor.handle})
            await self._log(creator_id, actor, Action.CHAT_ENABLED, None, None, {"on": state.chat_enabled})
        if "slow_mode_seconds" in chat and float(chat["slow_mode_seconds"]) != state.slow_mode_seconds:
            state.slow_mode_seconds = float(chat["slow_mode_seconds"])
            self._apply(creator_id, state)
            seconds = int(chat["slow_mode_seconds"])
            self._broadcast(creator_id, {"type": "moderation", "action": "slow_mode", "seconds": seconds,
                                         "by": actor.handle})
            await self._log(creator_id, actor, Action.SLOW_MODE, None, None, {"seconds": seconds})
        if "followers_only" in chat and bool(chat["followers_only"]) != state.followers_only:
            state.followers_only = bool(chat["followers_only"])
            self._apply(creator_id, state)
            self._broadcast(creator_id, {"type": "moderation", "action": "followers_only",
                                         "on": state.followers_only, "by": actor.handle})
            await self._log(creator_id, actor, Action.FOLLOWERS_ONLY, None, None, {"on": state.followers_only})

    async def banned_words(self, creator_id: int) -> tuple[str, ...]:
        return (await self._state(creator_id)).words

    async def set_banned_words(self, creator_id: int, actor: User, words: object) -> tuple[str, ...]:
        if not may_manage(await self.standing_of(creator_id, actor)):
            raise ModerationRefused("forbidden", "only the creator (or an admin) sets the chat's banned words")
        cleaned = clean_word_list(words, max_words=self.limits.max_banned_words,
                                  max_chars=self.limits.max_word_chars)
        await asyncio.to_thread(self.store.set_chat_banned_words, creator_id, cleaned, self.clock())
        state = await self._state(creator_id)
        state.words = cleaned
        self._apply(creator_id, state)
        await self._log(creator_id, actor, Action.BANNED_WORDS, None, None, {"count": len(cleaned)})
        return cleaned

    async def set_moderator(self, creator_id: int, actor: User, target: User, appointed: bool) -> bool:
        """Appoint (or remove) one of the creator's chat moderators."""
        if not may_manage(await self.standing_of(creator_id, actor)):
            raise ModerationRefused("forbidden", "only the creator (or an admin) appoints chat moderators")
        if target.id == creator_id:
            raise ModerationRefused("bad_request", "the creator moderates their own chat already")
        if appointed and target.id in (await self._state(creator_id)).banned:
            raise ModerationRefused("conflict", f"{target.handle} is banned from this chat: unban them first")
        if appointed:
            changed = await asyncio.to_thread(self.store.add_chat_moderator, creator_id, target.id, actor.id,
                                              self.clock())
            (await self._state(creator_id)).moderators.add(target.id)
        else:
            changed = await asyncio.to_thread(self.store.remove_chat_moderator, creator_id, target.id)
            (await self._state(creator_id)).moderators.discard(target.id)
        if changed and not appointed:
            creator = await asyncio.to_thread(self.store.get_user, creator_id)
            if creator is not None:
                self.on_moderator_removed(creator.handle)
        if changed:
            action = Action.ADD_MODERATOR if appointed else Action.REMOVE_MODERATOR
            self._broadcast(creator_id, {"type": "moderation", "action": action.value, "user": target.handle,
                                         "by": actor.handle})
            await self._log(creator_id, actor, action, target.id)
        return changed

    # --- reading ------------------------------------------------------------------------

    async def list_moderators(self, creator_id: int) -> list[User]:
        return await asyncio.to_thread(self.store.list_chat_moderators, creator_id)

    async def list_bans(self, creator_id: int):
        """(bans, running timeouts) of the creator's chats."""
        bans = await asyncio.to_thread(self.store.list_chat_bans, creator_id)
        timeouts = await asyncio.to_thread(self.store.list_chat_timeouts, creator_id, self.clock())
        return bans, timeouts

    async def modes(self, creator_id: int) -> dict:
        state = await self._state(creator_id)
        return {"slow_mode_seconds": int(state.slow_mode_seconds), "followers_only": state.followers_only}

    async def log_entries(self, creator_id: int, limit: int, before_id: int | None):
        return await asyncio.to_thread(self.store.list_moderation_log, creator_id, limit, before_id)

    async def list_reports(self, status: str | None, limit: int, offset: int) -> tuple[list[Report], int]:
        return await asyncio.to_thread(self.store.list_reports, status, limit, offset)

    async def get_report(self, report_id: int) -> Report | None:
        return await asyncio.to_thread(self.store.get_report, report_id)

    # --- reports -----------------------------------------------------------------------

    def _find_room(self, stream: str) -> Room | None:
        return self.rooms.get(stream) or self.rooms.get(stream.lower())

    async def report(self, reporter: User, kind: object, *, stream: object = None, message_id: object = None,
                     user: object = None, reason: object = None) -> Report:
        """File a report (any logged-in user, ``moderation.reports_per_hour`` an hour).
        A message is looked up in the stream's chat history and its text kept with the
        report, so deleting it does not destroy the evidence."""
        if kind not in ("message", "user", "stream"):
            raise ModerationRefused("bad_request", "kind: one of message, user, stream")
        reason = clean_reason(reason, max_chars=self.limits.max_reason_chars, required=True)
        if stream is not None and (not isinstance(stream, str) or not STREAM_NAME_RE.fullmatch(stream)):
            raise ModerationRefused("bad_request", "stream: a stream name")
        now = self.clock()
        recent = await asyncio.to_thread(self.store.report_times, reporter.id, now - self.quota.window)
        wait = self.quota.retry_after(recent, now)
        if wait:
            raise ReportRateLimited(wait)
        target_user: User | None = None
        excerpt = ""
        if kind == "message":
            if stream is None:
                raise ModerationRefused("bad_request", "stream: required to report a message")
            if not isinstance(message_id, str) or not 0 < len(message_id) <= 64:
                raise ModerationRefused("bad_request", "message_id: the id of a chat message")
            room = self._find_room(stream)
            message = room.find(message_id) if room is not None else None
            if message is None:
                raise ModerationRefused("not_found", "no such message in that chat's recent history")
            target, stream, excerpt = message.id, room.name, message.text
            target_user = await asyncio.to_thread(self.store.get_user, message.user_id)
        elif kind == "user":
            if not isinstance(user, str) or not HANDLE_RE.fullmatch(user.lower()):
                raise ModerationRefused("bad_request", "user: the handle of the user to report")
            target_user = await asyncio.to_thread(self.store.get_user_by_handle, user.lower())
            if target_user is None:
                raise ModerationRefused("not_found", "no such user")
            if target_user.id == reporter.id:
                raise ModerationRefused("bad_request", "you cannot report yourself")
            target = target_user.handle
        else:
            if stream is None:
                raise ModerationRefused("bad_request", "stream: the stream to report")
            if HANDLE_RE.fullmatch(stream.lower()):
                target_user = await asyncio.to_thread(self.store.get_user_by_handle, stream.lower())
            if target_user is None and not self.is_live(stream):
                raise ModerationRefused("not_found", "no such stream")
            target = target_user.handle if target_user is not None else stream
            stream = target
        report = await asyncio.to_thread(
            self.store.add_report, reporter.id, kind, target, target_user.id if target_user else None,
            stream or "", excerpt, reason, now)
        self.reports_filed += 1
        log.info("report %d filed: %s %s", report.id, kind, target)
        return report

    async def resolve(self, report_id: int, operator: User, status: object, resolution: object) -> Report:
        """Close an open report as ``resolved`` or ``dismissed`` (site moderators, admins)."""
        if not operator.at_least("moderator"):
            raise ModerationRefused("forbidden", "only moderators and admins handle reports")
        report = await asyncio.to_thread(self.store.get_report, report_id)
        if report is None:
            raise ModerationRefused("not_found", "no such report")
        check_resolution(report.status, status if isinstance(status, str) else "")
        text = clean_reason(resolution, max_chars=self.limits.max_reason_chars, required=True, name="resolution")
        if not await asyncio.to_thread(self.store.resolve_report, report_id, status, operator.id, text, self.clock()):
            raise ModerationRefused("conflict", "the report was closed meanwhile")
        closed = await asyncio.to_thread(self.store.get_report, report_id)
        assert closed is not None
        return closed

    # --- WebSocket requests ------------------------------------------------------------

    async def _ws_context(self, room: Room, member: Member) -> tuple[int, User]:
        if member.user is None:
            raise ChatError("not_logged_in", "log in to chat")
        creator_id = await self._owner(room)
        if creator_id is None:
            raise ChatError("bad_request", "this chat has no creator account to moderate for")
        return creator_id, member.user

    async def _ws_target(self, request: dict) -> User:
        handle = request.get("user")
        if not isinstance(handle, str) or not HANDLE_RE.fullmatch(handle.lower()):
            raise ChatError("bad_request", "user: the handle of a user")
        target = await asyncio.to_thread(self.store.get_user_by_handle, handle.lower())
        if target is None:
            raise ChatError("not_found", "no such user")
        return target

    async def _ws_run(self, room: Room, member: Member, request: dict, action) -> None:
        creator_id, actor = await self._ws_context(room, member)
        try:
            await action(creator_id, actor)
        except ModerationRefused as refused:
            raise ChatError(refused.code, refused.reason) from None

    async def _on_timeout(self, room: Room, member: Member, request: dict) -> None:
        target = await self._ws_target(request)
        await self._ws_run(room, member, request,
                           lambda cid, actor: self.timeout(cid, actor, target, request.get("minutes")))

    async def _on_untimeout(self, room: Room, member: Member, request: dict) -> None:
        target = await self._ws_target(request)
        await self._ws_run(room, member, request, lambda cid, actor: self.untimeout(cid, actor, target))

    async def _on_ban(self, room: Room, member: Member, request: dict) -> None:
        target = await self._ws_target(request)
        await self._ws_run(room, member, request,
                           lambda cid, actor: self.ban(cid, actor, target, request.get("reason")))

    async def _on_unban(self, room: Room, member: Member, request: dict) -> None:
        target = await self._ws_target(request)
        await self._ws_run(room, member, request, lambda cid, actor: self.unban(cid, actor, target))

    async def _on_slow_mode(self, room: Room, member: Member, request: dict) -> None:
        await self._ws_run(room, member, request,
                           lambda cid, actor: self.set_slow_mode(cid, actor, request.get("seconds")))

    async def _on_followers_only(self, room: Room, member: Member, request: dict) -> None:
        await self._ws_run(room, member, request,
                           lambda cid, actor: self.set_followers_only(cid, actor, request.get("on")))

    async def _on_report(self, room: Room, member: Member, request: dict) -> None:
        if member.user is None:
            raise ChatError("not_logged_in", "log in to report")
        try:
            report = await self.report(member.user, request.get("kind"), stream=room.name,
                                       message_id=request.get("id"), user=request.get("user"),
                                       reason=request.get("reason"))
        except ModerationRefused as refused:
            raise ChatError(refused.code, refused.reason) from None
        except ReportRateLimited as limited:
            raise ChatError("rate_limited", str(limited), limited.retry_after) from None
        member.push(encode({"type": "reported", "report": report.id, "kind": report.kind}))


def moderated_chat(
    store: SqliteStore,
    config: Config,
    *,
    viewers: Callable[[str], int] = lambda name: 0,
    is_live: Callable[[str], bool] = lambda name: False,
    relay: Callable[[str, dict], None] | None = None,
    message_listeners: Iterable[Callable] = (),
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    on_moderator_removed: Callable[[str], None] = lambda creator: None,
    relations: Relations | None = None,
    suspended: Callable[[int], bool] = lambda user_id: False,
) -> tuple[ChatService, ModerationService]:
    """The chat with moderation as its room policy, sharing one room directory: what the
    composition root builds (and tests build the same way). ``clock`` is the wall clock
    (bans, timeouts, the log), ``monotonic`` the chat's own; ``on_moderator_removed``:
    see ``ModerationService``; ``relations``, ``suspended``: see ``ChatService``."""
    rooms: dict[str, Room] = {}
    moderation = ModerationService(store, config.moderation, rooms=rooms, is_live=is_live, chat_clock=monotonic,
                                   clock=clock, on_moderator_removed=on_moderator_removed)
    chat = ChatService(config.chat, viewers=viewers, is_live=is_live, policy=moderation,
                       extra_handlers=moderation.handlers(), relay=relay, message_listeners=message_listeners,
                       rooms=rooms, clock=monotonic, wall_clock=clock, relations=relations, suspended=suspended)
    return chat, moderation
