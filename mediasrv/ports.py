"""Typed interfaces between features (ports): what one feature offers another, declared
here so that neither imports the other. The composition root (``mediasrv.app``) passes
the implementation in.

- ``StreamKeyChecker``: what RTMP ingest asks of accounts about a creator's stream key, in
  ``auth.mode: accounts`` and ``open`` (implemented by
  ``community.accounts.service.AccountService``);
- ``STREAM_KEY_PREFIX`` / ``looks_like_stream_key``: how an account's secret key looks,
  so that ingest never takes one for a public stream name (docs/security.md);
- ``PublishPolicy``: what the platform adds to every allowed publish, whoever publishes
  (RTMP, WHIP): the hold after a live was ended from the studio, and the backstage
  (implemented by ``community.live.service.LiveControl``);
- ``PlaybackGate``: who may play a live stream, one decision for every way of playing it
  (HLS playlists, parts and segments; RTMP play; the stream's API answers), from the
  signed playback grant the viewer presents (``PLAYBACK_GRANT_PARAM``; implemented by
  ``community.live.gate.GrantGate``);
- ``BlockList``: who has blocked whom, asked by every feature that lets one user reach
  another (watch, chat, follow, gift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Protocol

from mediasrv.hub.stream import Stream


#: Every account's stream key starts with this; no public stream name may.
STREAM_KEY_PREFIX = "sk_"


def looks_like_stream_key(name: str) -> bool:
    """Whether ``name`` has the form of an account's secret stream key (case-insensitive:
    ``SK_…`` is refused as a public name too)."""
    return name[:len(STREAM_KEY_PREFIX)].lower().startswith(STREAM_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class PublishDecision:
    allowed: bool
    #: Public stream name (what viewers use); empty when refused.
    name: str = ""
    #: Why it was refused, safe to show the publisher and to log (never contains the key).
    reason: str = ""
    #: A new broadcast starts private (the creator's ``backstage`` setting).
    private: bool = False
    #: Who may watch the new broadcast (the creator's ``visibility`` setting, issue 18).
    visibility: str = "public"
    #: The new broadcast is 18+ (the creator's ``mature`` setting).
    mature: bool = False


class StreamKeyChecker(Protocol):
    """The decision for a creator's stream key: the creator's handle as the public name,
    or a refusal (unknown key, no live access)."""

    def check_publish(self, key: str, *, check_only: bool = False) -> Awaitable["PublishDecision"]:
        """``check_only``: the same decision for a question asked before any publish (WHIP's
        ``OPTIONS``): reads only, counts no refusal."""
        ...


class PublishPolicy(Protocol):
    """What the platform adds to an allowed publish decision, for every publisher (the
    ``PublishAuthorizer`` asks it; RTMP and WHIP both go through that)."""

    def admit(self, decision: PublishDecision) -> PublishDecision:
        """``decision`` (allowed) as it stands now: refused while the name is held after an
        end from the studio; otherwise allowed, its new broadcast starting private when
        ``decision.private``."""
        ...


#: The query parameter that carries a signed playback grant (``?pt=EXPIRES.SIGNATURE``):
#: on a playlist, segment or part URL, an RTMP play name (``NAME?pt=...``) and the
#: stream's API answers.
PLAYBACK_GRANT_PARAM = "pt"


@dataclass(frozen=True, slots=True)
class PlaybackAccess:
    """The gate's answer for one request to play a stream."""

    #: May this viewer have it? When not, the answer is the one for a stream that does not
    #: exist (404, ``NetStream.Play.StreamNotFound``): a refusal tells nothing.
    allowed: bool
    #: Not everyone may play it: answers are private to this viewer (no shared cache) and
    #: every URL they list carries ``grant``.
    restricted: bool = False
    #: The grant that let this viewer in ("" when none was needed).
    grant: str = ""

    def query(self) -> str:
        """What a URL listed in an answer to this viewer must carry (``pt=...``), or ""."""
        return f"{PLAYBACK_GRANT_PARAM}={self.grant}" if self.restricted and self.grant else ""


#: The access to a public stream: anyone, nothing to carry.
OPEN_ACCESS = PlaybackAccess(True)


class PlaybackGate(Protocol):
    """Who may play a live stream: one decision, whatever the way of playing it."""

    def check(self, stream: Stream, grant: str) -> PlaybackAccess:
        """The access of a viewer presenting ``grant`` ("" for none) to ``stream`` (the
        hub's, live or ended: an ended private broadcast stays private)."""
        ...


#: What a private stream is for a viewer without a grant: nothing (the 404 of no stream).
NO_ACCESS = PlaybackAccess(False, restricted=True)


def playback_access(gate: PlaybackGate | None, stream: Stream, grant: str) -> PlaybackAccess:
    """``gate``'s answer; without a gate (a node or a test app without the live control)
    a public stream is anyone's and a private one nobody's."""
    if gate is not None:
        return gate.check(stream, grant)
    return NO_ACCESS if stream.private else OPEN_ACCESS


class BlockList(Protocol):
    """Who has blocked whom (a user's block list, kept in memory by its owner feature so
    that a synchronous decision such as ``PlaybackGate.check`` can ask it)."""

    def blocks(self, owner_id: int, other_id: int) -> bool:
        """Whether user ``owner_id`` has blocked user ``other_id``."""
        ...


class NoBlocks:
    """A ``BlockList`` in which nobody has blocked anybody (a node without accounts)."""

    def blocks(self, owner_id: int, other_id: int) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class AnalyticsView:
    """What one asker may read of a live's statistics (``/api/streams/NAME/stats``, its SSE
    feed, ``/api/broadcasts``): everything (``full``: the creator, their moderators,
    operators; a stream no account owns), or what the watch page shows (the viewer count,
    unless the creator hides it: ``viewers`` False)."""

    full: bool
    viewers: bool = True


#: Everything: a node without accounts, a stream no account owns.
FULL_ANALYTICS = AnalyticsView(True)
