"""One timeline for a WHIP session's audio and video (pure: no clock is read here).

RTP timestamps of the audio and the video track start at unrelated random values (and
aiortc rebases each track's to 0 at its first packet), so they say nothing about how the
tracks line up. Each track is therefore **anchored at its first frame's arrival time**
on one monotonic clock, and runs on its own RTP clock from there:

    position = arrival(first frame) - session origin + (pts - pts(first frame))

where the session origin is the arrival of the first frame of either track. A/V stay in
sync to within the difference of the two tracks' receive paths (jitter buffer, decode),
and each track keeps its own clock's smoothness.

A track whose RTP time strays from the arrival clock by more than ``max_drift`` seconds
(the sender restarted its stream, a new SSRC) is re-anchored at that frame's arrival
(counted in ``rebases``). Positions never go back (``monotonic_fixes``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SessionOrigin:
    """The arrival time (seconds, one monotonic clock) of the session's first frame."""

    at: float | None = None

    def since(self, arrival: float) -> float:
        """Seconds from the origin to ``arrival``; the first call sets the origin."""
        if self.at is None:
            self.at = arrival
        return arrival - self.at


class TrackTimeline:
    """Positions of one track's frames in ticks of ``rate`` since the session origin."""

    def __init__(self, origin: SessionOrigin, rate: int, *, max_drift: float = 3.0, strictly: bool = True) -> None:
        """``strictly``: each position is after the previous one (video: an encoder needs
        increasing timestamps); otherwise equal positions are allowed."""
        self.origin = origin
        self.rate = rate
        self.max_drift_ticks = int(max_drift * rate)
        self.strictly = strictly
        self._anchor_ticks: int | None = None
        self._anchor_pts = 0
        self.last: int | None = None
        self.rebases = 0
        self.monotonic_fixes = 0

    @property
    def corrections(self) -> int:
        """Every correction made so far."""
        return self.rebases + self.monotonic_fixes

    def place(self, pts: int, arrival: float) -> int:
        """The position (ticks since the origin) of a frame with RTP-derived ``pts`` (in
        ticks of ``rate``) that arrived at ``arrival``."""
        expected = round(self.origin.since(arrival) * self.rate)
        if self._anchor_ticks is None:
            self._anchor_ticks, self._anchor_pts = expected, pts
        position = self._anchor_ticks + (pts - self._anchor_pts)
        if abs(position - expected) > self.max_drift_ticks:
            self._anchor_ticks, self._anchor_pts = expected, pts
            position = expected
            self.rebases += 1
        last = self.last
        if last is not None:
            floor = last + 1 if self.strictly else last
            if position < floor:
                position = floor
                self.monotonic_fixes += 1
        self.last = position
        return position
