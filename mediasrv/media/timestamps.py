"""Per-track timestamp normalisation for RTMP's 32-bit millisecond clock.

Real publishers send timestamps that wrap at 2^32 ms (~49.7 days, or sooner when the
encoder starts its clock high), step back a little (audio/video interleaving bugs,
B-frame reordering mistakes) and jump after reconnects or encoder restarts. A
:class:`TrackClock` turns that into a DTS that never decreases and never wraps:

1. **Unwrap**: a step back of more than 2^31 ms is a wrap (the 32-bit counter overflowed);
   a step *forward* of more than 2^31 ms is a late timestamp from before the last wrap.
2. **Rebase**: a jump of more than ``max_jump_ms`` in either direction is not media time;
   the track continues from the last DTS plus its usual frame interval, and every later
   timestamp is shifted by the same offset. The unit is flagged as a discontinuity.
3. **Monotonic**: a smaller step back is raised to the previous DTS.
4. **PTS ≥ DTS**: ``pts = dts + composition offset`` is raised to the DTS if it is below.

Pure and time-free: nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClockReading", "TrackClock"]

_WRAP = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The normalised timestamps of one unit, in milliseconds."""

    dts: int
    pts: int
    #: True when this unit was rebased after a jump.
    discontinuity: bool = False


class TrackClock:
    """Normalises one track's RTMP timestamps; counts each kind of correction.

    ``default_interval_ms`` is the step used by a rebase before the track's own frame
    interval has been observed (the last positive DTS step no larger than
    ``max_jump_ms``).
    """

    __slots__ = (
        "max_jump_ms", "default_interval_ms", "wraps", "monotonic_fixes", "rebases", "pts_fixes",
        "_epoch", "_last_raw", "_offset", "_last_dts", "_interval",
    )

    def __init__(self, max_jump_ms: int = 5000, default_interval_ms: int = 0) -> None:
        if max_jump_ms <= 0:
            raise ValueError("max_jump_ms must be positive")
        self.max_jump_ms = max_jump_ms
        self.default_interval_ms = max(0, default_interval_ms)
        #: Number of 2^32 wraps seen.
        self.wraps = 0
        #: Number of DTS values raised to the previous DTS.
        self.monotonic_fixes = 0
        #: Number of jumps rebased.
        self.rebases = 0
        #: Number of PTS values raised to their DTS.
        self.pts_fixes = 0
        self._epoch = 0
        self._last_raw: int | None = None
        self._offset = 0
        self._last_dts: int | None = None
        self._interval = 0

    @property
    def last_dts(self) -> int | None:
        """The last DTS returned, or None before the first unit."""
        return self._last_dts

    @property
    def corrections(self) -> int:
        """Total number of corrections of every kind."""
        return self.wraps + self.monotonic_fixes + self.rebases + self.pts_fixes

    def _unwrap(self, timestamp: int) -> int:
        raw = timestamp & (_WRAP - 1)
        if self._last_raw is None:
            self._last_raw = raw
            return raw
        step = raw - self._last_raw
        if step < -_HALF:  # the counter wrapped
            self._epoch += _WRAP
            self.wraps += 1
        elif step > _HALF:  # a straggler from before the last wrap: don't move the state
            return self._epoch - _WRAP + raw
        self._last_raw = raw
        return self._epoch + raw

    def convert(self, timestamp: int, composition_offset: int = 0) -> ClockReading:
        """Normalise one unit's RTMP ``timestamp`` (32-bit ms) and composition offset."""
        return ClockReading(*self.convert_values(timestamp, composition_offset))

    def convert_values(self, timestamp: int, composition_offset: int = 0) -> tuple[int, int, bool]:
        """:meth:`convert` as a plain ``(dts, pts, discontinuity)`` tuple: for the ingest,
        which converts every audio/video message and only needs the three values (no
        ``ClockReading`` object built and dropped per message)."""
        candidate = self._unwrap(timestamp) + self._offset
        discontinuity = False
        last = self._last_dts
        if last is None:
            dts = candidate
        else:
            step = candidate - last
            if step > self.max_jump_ms or step < -self.max_jump_ms:
                target = last + (self._interval or self.default_interval_ms)
                self._offset += target - candidate
                candidate = dts = target
                self.rebases += 1
                discontinuity = True
            elif step < 0:
                dts = last
                self.monotonic_fixes += 1
            else:
                dts = candidate
                if step > 0:
                    self._interval = step
        pts = candidate + composition_offset
        if pts < dts:
            pts = dts
            self.pts_fixes += 1
        self._last_dts = dts
        return dts, pts, discontinuity
