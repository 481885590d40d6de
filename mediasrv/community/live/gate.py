"""``ports.PlaybackGate`` from signed grants: who may play a live stream.

A public stream is anyone's. A private one (backstage) is played only with a valid grant
for its name (``grants.PlaybackGrants``), whatever the way: HLS (every playlist, part
and segment), RTMP play, the stream's API answers. Without one the answer is the one for
a stream that does not exist, so a refusal says nothing about the live.

**What a grant is bound to** (its *scope*, signed in but never sent): the broadcast it
was issued for (its start time), so a grant of one backstage never opens the next one of
the same name, and a *generation* of its name that ``revoke`` bumps. Revoking is how a
change of who may watch takes effect at once rather than when the grants expire: the
creator (or an admin) removing one of their moderators revokes the grants of that
creator's live, an operator's role lowered revokes every live's (``revoke_all``). Every
grant handed out before stops working at the next request (an HLS playlist or segment,
the next keyframe of an RTMP play); those who still may watch ask for a fresh one
(``GET /api/live/NAME/playback``; the watch page does when its player gets a 404). The
generations are this node's memory, like the live itself (a private live is served by
the node that ingests it only); a restart ends every live, and with it every grant.

Issue 18 (followers-only, unlisted, invited viewers) extends ``check``: the decision is
made here once, for every source and every way of playing.
"""

from __future__ import annotations

from mediasrv.community.live.grants import Grant, PlaybackGrants
from mediasrv.hub.stream import Stream
from mediasrv.ports import NO_ACCESS, OPEN_ACCESS, PlaybackAccess


class GrantGate:
    """The node's playback gate (``app[PLAYBACK]``, and the RTMP server's)."""

    def __init__(self, grants: PlaybackGrants) -> None:
        self.grants = grants
        self.refused = 0
        self.revocations = 0
        #: Bumped by ``revoke_all``: part of every grant's scope.
        self._generation = 0
        #: Bumped by ``revoke(name)``: names that never had a revocation are not kept.
        self._generations: dict[str, int] = {}

    def scope(self, stream: Stream) -> str:
        """What a grant to play ``stream`` is bound to: this broadcast and the generations."""
        return f"{stream.started_at!r}/{self._generation}.{self._generations.get(stream.name, 0)}"

    def issue(self, stream: Stream) -> Grant:
        """A grant to play ``stream`` (for someone who may watch it: the caller decides)."""
        return self.grants.issue(stream.name, scope=self.scope(stream))

    def check(self, stream: Stream, grant: str) -> PlaybackAccess:
        """The access of a viewer presenting ``grant`` ("" for none) to ``stream``."""
        if not stream.private:
            return OPEN_ACCESS
        if grant and self.grants.valid(stream.name, grant, scope=self.scope(stream)):
            return PlaybackAccess(True, restricted=True, grant=grant)
        self.refused += 1
        return NO_ACCESS

    def revoke(self, name: str) -> None:
        """Every grant handed out so far for stream ``name`` stops working now (the
        creator removed one of their moderators)."""
        self._generations[name] = self._generations.get(name, 0) + 1
        self.revocations += 1

    def revoke_all(self) -> None:
        """Every grant handed out so far, for any stream, stops working now (an operator's
        role was lowered: they may hold grants of any private live)."""
        self._generation += 1
        self.revocations += 1
