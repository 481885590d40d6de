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

**Issue 18, who may watch**: a live that is not public (``Stream.restricted``: backstage,
or a visibility of followers, unlisted or private) is played only with a grant, and grants
are handed out by the live control to those ``audience.may_watch`` lets in (an unlisted
live's to anyone who asks). A grant issued to a signed-in viewer who may be blocked
carries their user id (signed): ``check`` asks the ``ports.BlockList`` at every request, so
a block takes effect at the viewer's next playlist reload. Changing a live's visibility
revokes its grants (``revoke``), so who may no longer watch loses it at the next reload.
"""

from __future__ import annotations

from mediasrv.community.live.grants import Grant, PlaybackGrants
from mediasrv.hub.stream import Stream
from mediasrv.ports import NO_ACCESS, OPEN_ACCESS, BlockList, NoBlocks, PlaybackAccess


class GrantGate:
    """The node's playback gate (``app[PLAYBACK]``, and the RTMP server's)."""

    def __init__(self, grants: PlaybackGrants, blocks: BlockList | None = None) -> None:
        self.grants = grants
        self.blocks: BlockList = blocks if blocks is not None else NoBlocks()
        #: Stream name → its creator's user id (told by the live control when it decides
        #: who may watch), for the block check.
        self._creators: dict[str, int] = {}
        self.refused = 0
        self.revocations = 0
        #: Bumped by ``revoke_all``: part of every grant's scope.
        self._generation = 0
        #: Bumped by ``revoke(name)``: names that never had a revocation are not kept.
        self._generations: dict[str, int] = {}

    def scope(self, stream: Stream) -> str:
        """What a grant to play ``stream`` is bound to: this broadcast and the generations."""
        return f"{stream.started_at!r}/{self._generation}.{self._generations.get(stream.name, 0)}"

    def note_creator(self, name: str, creator_id: int) -> None:
        """Stream ``name`` is the live of user ``creator_id`` (whose block list applies)."""
        self._creators[name] = creator_id

    def issue(self, stream: Stream, viewer: int = 0) -> Grant:
        """A grant to play ``stream`` (for someone who may watch it: the caller decides);
        ``viewer``: the signed-in viewer's id when the creator's blocks apply to them."""
        return self.grants.issue(stream.name, scope=self.scope(stream), viewer=viewer)

    def check(self, stream: Stream, grant: str) -> PlaybackAccess:
        """The access of a viewer presenting ``grant`` ("" for none) to ``stream``."""
        if not stream.restricted:
            return OPEN_ACCESS
        viewer = self.grants.viewer_of(stream.name, grant, scope=self.scope(stream)) if grant else None
        if viewer is not None and not self._blocked(stream.name, viewer):
            return PlaybackAccess(True, restricted=True, grant=grant)
        self.refused += 1
        return NO_ACCESS

    def _blocked(self, name: str, viewer: int) -> bool:
        creator = self._creators.get(name)
        return bool(viewer) and creator is not None and self.blocks.blocks(creator, viewer)

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
