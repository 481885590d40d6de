"""``ports.PlaybackGate`` from signed grants: who may play a live stream.

A public stream is anyone's. A private one (backstage) is played only with a valid grant
for its name (``grants.PlaybackGrants``), whatever the way: HLS (every playlist, part
and segment), RTMP play, the stream's API answers. Without one the answer is the one for
a stream that does not exist, so a refusal says nothing about the live.

Issue 18 (followers-only, unlisted, invited viewers) extends ``check``: the decision is
made here once, for every source and every way of playing.
"""

from __future__ import annotations

from mediasrv.community.live.grants import PlaybackGrants
from mediasrv.hub.stream import Stream
from mediasrv.ports import NO_ACCESS, OPEN_ACCESS, PlaybackAccess


class GrantGate:
    """The node's playback gate (``app[PLAYBACK]``, and the RTMP server's)."""

    def __init__(self, grants: PlaybackGrants) -> None:
        self.grants = grants
        self.refused = 0

    def check(self, stream: Stream, grant: str) -> PlaybackAccess:
        """The access of a viewer presenting ``grant`` ("" for none) to ``stream``."""
        if not stream.private:
            return OPEN_ACCESS
        if grant and self.grants.valid(stream.name, grant):
            return PlaybackAccess(True, restricted=True, grant=grant)
        self.refused += 1
        return NO_ACCESS
