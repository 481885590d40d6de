"""The ladder and the per-frame decisions every rung must share (pure, no PyAV).

- :func:`plan_ladder`: which configured rungs a source gets and their output sizes. A
  rung's ``height`` is its *short side*, as its name says ("720p"): a landscape source's
  rung is that tall, a portrait source's (a phone held upright, 720x1280) that wide, so a
  portrait 720x1280 source's "720p" rung is 720x1280, not a 406x720 picture named
  "720p". Rungs bigger than the source (by short side) are left out; the other side
  follows the display aspect ratio, rounded to an even number.
- :class:`KeyframePlanner`: at which source frames *every* rung puts a keyframe. It
  mirrors the HLS segmenter's cut rule (a segment ends at the first keyframe at least
  ``cut_ms`` after the segment's start) over the source's own keyframes, so rungs cut
  their segments at exactly the frames where the ``source`` rendition cuts its own (the
  server uses ``max_gap_ms`` = 3 segment durations: exact for source GOPs up to twice the
  segment duration); a source whose keyframes are further apart than that gets a
  keyframe forced on a cadence instead (rungs stay aligned with each other, not with
  that source).
- :class:`FrameRateCap`: which frames a rung with ``max_fps`` keeps (evenly, on a grid;
  forced keyframes always kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Protocol


class RungSettings(Protocol):
    """What a configured rung provides (``mediasrv.config.RungConfig`` has it all)."""

    name: str
    height: int
    video_bitrate: int
    maxrate: int
    bufsize: int
    max_fps: float
    preset: str


@dataclass(frozen=True, slots=True)
class RungPlan:
    """One rung to encode: its configuration plus the size that follows from the source."""

    index: int
    name: str
    width: int
    height: int
    video_bitrate: int
    maxrate: int
    bufsize: int
    max_fps: float
    preset: str

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def cost(self, source_fps: float = 30.0) -> float:
        """Relative encoding cost: pixels per second (the x264 preset aside)."""
        return self.pixels * min(self.max_fps, source_fps or self.max_fps)

    def to_dict(self) -> dict:
        return {
            "index": self.index, "name": self.name, "width": self.width, "height": self.height,
            "video_bitrate": self.video_bitrate, "maxrate": self.maxrate, "bufsize": self.bufsize,
            "max_fps": self.max_fps, "preset": self.preset,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RungPlan":
        return cls(
            index=int(data["index"]), name=str(data["name"]), width=int(data["width"]),
            height=int(data["height"]), video_bitrate=int(data["video_bitrate"]),
            maxrate=int(data["maxrate"]), bufsize=int(data["bufsize"]),
            max_fps=float(data["max_fps"]), preset=str(data["preset"]),
        )


def even(value: float) -> int:
    """``value`` rounded to the nearest even integer (at least 2)."""
    return max(2, int(round(value / 2.0)) * 2)


def output_width(source_width: int, source_height: int, height: int, sar: tuple[int, int] = (1, 1)) -> int:
    """Width of a rung ``height`` pixels tall that keeps the source's display aspect ratio
    (``sar``: the source's sample aspect ratio; the output has square pixels)."""
    num, den = sar if sar[0] > 0 and sar[1] > 0 else (1, 1)
    display = Fraction(source_width * num, source_height * den)
    return even(float(display * height))


def is_portrait(width: int, height: int, sar: tuple[int, int] = (1, 1)) -> bool:
    """Whether a ``width``×``height`` picture displays taller than wide."""
    num, den = sar if sar[0] > 0 and sar[1] > 0 else (1, 1)
    return width * num < height * den


def short_side(width: int, height: int, sar: tuple[int, int] = (1, 1)) -> int:
    """The side a picture's "p" name counts: its height, or a portrait picture's width
    (720x1280 is "720p"). Anamorphic pictures count in displayed (square) pixels."""
    if is_portrait(width, height, sar):
        num, den = sar if sar[0] > 0 and sar[1] > 0 else (1, 1)
        return int(width * num / den)
    return height


def output_size(source_width: int, source_height: int, short: int,
                sar: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """The (width, height) of a rung whose short side is ``short`` pixels, with the
    source's display aspect ratio and square pixels."""
    if is_portrait(source_width, source_height, sar):
        num, den = sar if sar[0] > 0 and sar[1] > 0 else (1, 1)
        # The height that goes with a width of ``short``: the ratio of output_width, inverted.
        return even(short), even(float(Fraction(source_height * den, source_width * num) * short))
    return output_width(source_width, source_height, short, sar), short


def plan_ladder(
    source_width: int,
    source_height: int,
    rungs: Iterable[RungSettings],
    *,
    sar: tuple[int, int] = (1, 1),
) -> list[RungPlan]:
    """The rungs a ``source_width``×``source_height`` source gets, in configured order.

    A rung's ``height`` is its short side (see the module's docstring). A rung bigger than
    the source is left out (upscaling only costs bits); a rung the source's size is kept
    (it is the bitrate-capped version of ``source``). ``index`` is the rung's position in
    the configured ladder, so it names the same rung across sources of different sizes.
    """
    if source_width <= 0 or source_height <= 0:
        return []
    source_short = short_side(source_width, source_height, sar)
    plans = []
    for index, rung in enumerate(rungs):
        if rung.height > source_short:
            continue
        width, height = output_size(source_width, source_height, rung.height, sar)
        plans.append(
            RungPlan(
                index=index,
                name=rung.name,
                width=width,
                height=height,
                video_bitrate=int(rung.video_bitrate),
                maxrate=int(rung.maxrate),
                bufsize=int(rung.bufsize),
                max_fps=float(rung.max_fps),
                preset=str(rung.preset),
            )
        )
    return plans


def shed_order(plans: Iterable[RungPlan], source_fps: float = 30.0) -> list[int]:
    """Rung indexes, most expensive first: the order in which an overloaded worker drops them."""
    return [p.index for p in sorted(plans, key=lambda p: (-p.cost(source_fps), p.index))]


class KeyframePlanner:
    """Decides, per source video frame, whether every rung must make it a keyframe.

    Feed every source video frame in decode order with its presentation time (ms) and
    whether the source made it a keyframe. A source keyframe at least ``cut_ms`` after
    the last forced one is forced (the HLS segmenter cuts ``source`` there too); with no
    such source keyframe, the first frame at least ``max_gap_ms`` after the last forced
    one is forced anyway. ``reset()`` (publisher reconnect, worker restart) makes the
    next source keyframe forced whatever the time.
    """

    __slots__ = ("cut_ms", "max_gap_ms", "_last", "forced", "cadence_forced")

    def __init__(self, cut_ms: int, max_gap_ms: int) -> None:
        if cut_ms <= 0 or max_gap_ms < cut_ms:
            raise ValueError("need 0 < cut_ms <= max_gap_ms")
        self.cut_ms = int(cut_ms)
        self.max_gap_ms = int(max_gap_ms)
        self._last: int | None = None
        #: Frames forced so far, and how many of them were not source keyframes.
        self.forced = 0
        self.cadence_forced = 0

    def reset(self) -> None:
        self._last = None

    def decide(self, pts: int, source_keyframe: bool) -> bool:
        last = self._last
        if last is None:
            if not source_keyframe:
                return False  # nothing decodable before the first source keyframe anyway
            force = True
        elif source_keyframe:
            force = pts - last >= self.cut_ms
        else:
            force = pts - last >= self.max_gap_ms
            if force:
                self.cadence_forced += 1
        if force:
            self._last = pts
            self.forced += 1
        return force


class FrameRateCap:
    """Keeps frames on a grid of ``1/max_fps`` so a faster source is thinned evenly.

    A frame is kept when it is at or past the next grid point (less a quarter period of
    tolerance for millisecond rounding); the grid re-anchors after a jump. Frames with
    ``force`` (aligned keyframes) are always kept and re-anchor the grid.
    """

    __slots__ = ("period", "tolerance", "_due")

    def __init__(self, max_fps: float) -> None:
        self.period = 1000.0 / max_fps if max_fps > 0 else 0.0
        self.tolerance = self.period / 4
        self._due: float | None = None

    def keep(self, pts: int, force: bool = False) -> bool:
        if self.period <= 0:
            return True
        due = self._due
        if force or due is None or pts >= due + self.period or pts < due - 2 * self.period:
            self._due = pts + self.period
            return True
        if pts >= due - self.tolerance:
            self._due = due + self.period
            return True
        return False

    def reset(self) -> None:
        self._due = None
