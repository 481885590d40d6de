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
- **Who may watch a private live**: ``may_watch`` (the creator, their appointed
  moderators, the site's moderators and admins).
"""

from __future__ import annotations

import math
import time
from typing import Awaitable, Callable, Protocol

from mediasrv.community.accounts.service import AccountService
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
                 moderators: ChannelModerators | None, monotonic: Callable[[], float] = time.monotonic) -> None:
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

    # --- who may watch a private live ---------------------------------------------------

    async def may_watch(self, name: str, user: User | None) -> bool:
        """Whether ``user`` may play the private live of ``name``: its creator (the stream
        is named after their handle), the site's moderators and admins, and the moderators
        the creator appointed."""
        if user is None:
            return False
        if user.handle == name or user.at_least("moderator"):
            return True
        if self.accounts is None or self.moderators is None:
            return False
        creator = await self.accounts.get_user(name)
        return creator is not None and await self.moderators.appointed(creator.id, user.id)

    def grant(self, stream: Stream) -> Grant:
        """A signed grant to play ``stream`` (for someone ``may_watch`` allowed): this
        broadcast only, until it expires or the gate revokes it."""
        return self.gate.issue(stream)
