"""The creator's control of their live, for every kind of publisher (RTMP, WHIP).

- **Backstage.** With the creator's ``backstage`` setting on, the accounts' publish
  decision says ``private``; ``admit`` (``ports.PublishPolicy``, asked by the publish
  authorizer that every publisher goes through) tells the hub, so the new broadcast starts
  private: live for the creator, their moderators and operators (grants, ``gate.py``),
  not listed, not alerted, not recorded. ``make_public`` makes it public at once
  (``Hub.make_public`` → ``StreamWentPublic``: listing, alerts, webhooks and the recording
  start then).
- **Ending a live.** ``end`` stops the broadcast (``Hub.stop``: the publisher is kicked
  through its handle, RTMP connection or WHIP peer connection closed; the recording goes
  to the save-or-discard decision) and holds the name for ``live.end_hold_seconds``:
  ``admit`` refuses a new publish of it meanwhile, so an encoder that reconnects on its own
  does not silently restart the live.
- **Who may watch** (issue 18): ``may_watch`` gathers what is known of a viewer (the
  creator, an operator, an appointed moderator, a follower, invited, blocked) and asks the
  one rule, ``audience.may_watch``, for the live's visibility (a backstage: the creator's
  team only). ``set_audience`` changes a running live's visibility and 18+ flag; a
  change revokes the live's grants, so who may no longer watch loses it at the next
  playlist reload.
"""

from __future__ import annotations

import math
import time
from typing import Awaitable, Callable, Protocol

from mediasrv.community.accounts.service import AccountService
from mediasrv.community.live import audience
from mediasrv.community.live.gate import GrantGate
from mediasrv.community.live.grants import Grant
from mediasrv.config import LiveConfig
from mediasrv.hub import Hub, Stream
from mediasrv.ports import PublishDecision
from mediasrv.store import User

#: What the chat's ``stream-ended`` frame and the stats feed's ``ended`` say.
ENDED_BY_CREATOR = "The creator ended the live."


class NotLive(Exception):
    """The creator has no live broadcast (the message says so, for a 409)."""


class ChannelModerators(Protocol):
    """Who moderates a creator's channel (``ModerationService``)."""

    def appointed(self, creator_id: int, user_id: int) -> Awaitable[bool]: ...


class LiveControl:
    """The node's live control (``app[LIVE]``, and the publish authorizer's policy)."""

    def __init__(self, config: LiveConfig, hub: Hub, gate: GrantGate, *, accounts: AccountService | None,
                 moderators: ChannelModerators | None, monotonic: Callable[[], float] = time.monotonic,
                 on_audience_changed: Callable[[str], None] = lambda name: None) -> None:
        """``on_audience_changed(name)``: told when who may watch the live of ``name``
        changed (its visibility, an invitation withdrawn): the chat asks its members again."""
        self.on_audience_changed = on_audience_changed
        self.config = config
        self.hub = hub
        self.gate = gate
        self.accounts = accounts
        self.moderators = moderators
        self.monotonic = monotonic
        #: Stream names held after an end from the studio → end of the hold (monotonic).
        self._holds: dict[str, float] = {}
        self.refused_held = 0

    # --- ports.PublishPolicy ------------------------------------------------------------

    def admit(self, decision: PublishDecision) -> PublishDecision:
        """An allowed decision as it stands now: refused while its name is held; otherwise
        allowed, and its next new broadcast starts private when ``decision.private``."""
        if not decision.allowed:
            return decision
        left = self.hold_left(decision.name)
        if left > 0:
            self.refused_held += 1
            return PublishDecision(False, reason=f"this live was ended from the studio: you can go live again "
                                                 f"in {math.ceil(left)} s")
        self.hub.set_backstage(decision.name, decision.private)
        self.hub.set_audience(decision.name, self.config.effective_visibility(decision.visibility), decision.mature)
        return decision

    def hold_left(self, name: str) -> float:
        """Seconds left of the hold on ``name`` after an end from the studio (0: none)."""
        until = self._holds.get(name)
        if until is None:
            return 0.0
        left = until - self.monotonic()
        if left <= 0:
            del self._holds[name]
            return 0.0
        return left

    # --- the creator's actions ----------------------------------------------------------

    def end_if_live(self, name: str, reason: str) -> bool:
        """``end`` when ``name`` is live (an account suspended, a creator demoted: the
        platform ends it, as the studio's End live does); False when it was not."""
        try:
            self.end(name, reason)
        except NotLive:
            return False
        return True

    def current(self, name: str) -> Stream | None:
        """The live broadcast of ``name`` (publishing, or waiting for its publisher to
        reconnect), private or public."""
        return self.hub.get(name)

    def make_public(self, name: str) -> tuple[Stream, bool]:
        """Make the broadcast of ``name`` public now; ``(stream, changed)``: ``changed`` is
        False when it was public already. Raises ``NotLive``."""
        stream = self.hub.get(name)
        if stream is None:
            raise NotLive("you are not live: there is no broadcast to make public")
        return stream, self.hub.make_public(name)

    def end(self, name: str, reason: str = ENDED_BY_CREATOR) -> Stream:
        """End the broadcast of ``name`` now and hold the name (``live.end_hold_seconds``).
        ``reason``: what the viewers are told (an operator's suspension, a demotion).
        Raises ``NotLive``."""
        stream = self.hub.get(name)
        if stream is None:
            raise NotLive("you are not live: there is no broadcast to end")
        hold = self.config.end_hold_seconds
        if hold > 0:
            # Held before the publisher is kicked: an encoder that reconnects at once is refused.
            self._holds[name] = self.monotonic() + hold
        self.hub.stop(name, reason)
        return stream

    def set_audience(self, name: str, *, visibility: str | None = None, mature: bool | None = None) -> Stream:
        """Change who may watch the running live of ``name`` (and whether it is 18+), from
        now; the next broadcasts follow the creator's saved setting. Raises ``NotLive``;
        ``ValueError`` for a visibility the site does not allow."""
        stream = self.hub.get(name)
        if stream is None:
            raise NotLive("you are not live: there is no broadcast to change")
        if visibility is not None and visibility not in self.config.visibility_allowed:
            raise ValueError(f"visibility {visibility!r} is not allowed on this site "
                             f"(allowed: {', '.join(self.config.visibility_allowed)})")
        if visibility is not None and visibility != stream.visibility:
            stream.visibility = visibility
            self.audience_changed(name)
        if mature is not None:
            stream.mature = mature
        return stream

    def audience_changed(self, name: str) -> None:
        """Who may watch the live of ``name`` changed: grants handed out before stop working
        at the next request (everyone who still may watch asks again; the watch page does
        on a 404), and the chat's members are asked again."""
        self.gate.revoke(name)
        self.on_audience_changed(name)

    # --- who may watch ------------------------------------------------------------------

    def visibility_of(self, stream: Stream) -> str:
        """The visibility that decides who may watch ``stream`` now (a backstage: the team)."""
        return audience.BACKSTAGE if stream.private else stream.visibility

    async def viewer(self, name: str, user: User | None) -> tuple[audience.Viewer, int]:
        """What is known of ``user`` for the live of ``name``, and the id a grant issued to
        them carries (0 when the creator's blocks do not apply to them)."""
        if user is None:
            return audience.Viewer(), 0
        if user.handle == name or user.at_least("moderator"):
            return audience.Viewer(signed_in=True, creator=user.handle == name, operator=user.at_least("moderator")), 0
        if self.accounts is None:
            return audience.Viewer(signed_in=True), 0
        creator = await self.accounts.get_user(name)
        if creator is None:
            return audience.Viewer(signed_in=True), 0
        self.gate.note_creator(name, creator.id)
        blocked = self.gate.blocks.blocks(creator.id, user.id)
        moderator = self.moderators is not None and await self.moderators.appointed(creator.id, user.id)
        follower = await self.accounts.is_following(user, creator.id)
        invited = await self.accounts.is_invited(creator.id, user)
        return audience.Viewer(signed_in=True, moderator=moderator, follower=follower, invited=invited,
                               blocked=blocked), user.id

    async def may_watch(self, name: str, user: User | None, *, visibility: str | None = None) -> bool:
        """Whether ``user`` may watch the live of ``name`` (its visibility now, or
        ``visibility``; no live: the creator's team only)."""
        if visibility is None:
            stream = self.hub.get(name)
            visibility = self.visibility_of(stream) if stream is not None else audience.BACKSTAGE
        viewer, _ = await self.viewer(name, user)
        return audience.may_watch(visibility, viewer)

    async def may_chat(self, name: str, user: User | None) -> bool:
        """Whether ``user`` may join the chat of ``name``: who may watch its live; offline,
        who may watch its next one (the creator's saved visibility). A chat stays open to
        everyone only for a public channel."""
        stream = self.hub.get(name)
        if stream is not None and not stream.private:
            visibility = stream.visibility
        elif stream is not None:
            visibility = "public"  # a backstage: its chat is the channel's, as before
        elif self.accounts is not None and (creator := await self.accounts.get_user(name)) is not None:
            visibility = (await self.accounts.audience(creator))[0]
        else:
            visibility = "public"
        if visibility == "public" and user is None:
            return True
        viewer, _ = await self.viewer(name, user)
        return audience.may_watch(visibility, viewer)

    async def grant_for(self, stream: Stream, user: User | None) -> Grant | None:
        """A grant to play ``stream`` for ``user`` when they may watch it, else None."""
        viewer, viewer_id = await self.viewer(stream.name, user)
        if not audience.may_watch(self.visibility_of(stream), viewer):
            return None
        return self.gate.issue(stream, viewer_id)

    def grant(self, stream: Stream) -> Grant:
        """A signed grant to play ``stream`` (for someone ``may_watch`` allowed, to whom the
        creator's blocks do not apply: the creator, an operator): this broadcast only,
        until it expires or the gate revokes it."""
        return self.gate.issue(stream)
