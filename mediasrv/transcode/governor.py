"""When an overloaded worker sheds work and when it takes it back (pure: time is a parameter).

The worker measures, for every source video packet it starts decoding, how long the
packet waited in its input queue. :class:`LoadGovernor` turns those delays into steps:

- level 0: every rung is encoded;
- levels 1 … n-1: the 1 … n-1 most expensive rungs are dropped (the cheapest is kept);
- level n: what is left encodes every other frame (aligned keyframes always encoded).

A delay above ``max_delay`` steps up, at most once per ``cooldown`` (the backlog needs
time to drain before the step can show). A delay below ``max_delay / 4`` for
``recover_after`` seconds steps down one level. Stepping up again soon after a step down
doubles ``recover_after`` (up to ``MAX_RECOVER_AFTER``), so a machine that can almost but
not quite carry a rung does not flap. Beyond the governor, the worker's queue has a hard
bound (``2 * max_delay`` of media) past which input is dropped up to the next keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RECOVER_AFTER = 120.0


@dataclass(frozen=True, slots=True)
class Step:
    """A change of level: ``shed``/``restore`` a rung (``index``), or ``decimate`` on/off."""

    action: str  # "shed" | "restore" | "decimate" | "undecimate"
    index: int | None
    level: int
    delay: float


class LoadGovernor:
    def __init__(self, shed_order: list[int], max_delay: float, *, recover_after: float = 10.0,
                 cooldown: float | None = None) -> None:
        self.shed_order = list(shed_order)
        self.max_delay = float(max_delay)
        self.recover_after = float(recover_after)
        self.cooldown = float(cooldown) if cooldown is not None else max(1.0, self.max_delay)
        self.level = 0
        self._changed_at: float | None = None
        self._low_since: float | None = None
        self._restored_at: float | None = None
        self.sheds = 0
        self.restores = 0

    @property
    def max_level(self) -> int:
        return len(self.shed_order) if self.shed_order else 0

    @property
    def disabled(self) -> frozenset[int]:
        """Rungs dropped at the current level."""
        return frozenset(self.shed_order[: min(self.level, len(self.shed_order) - 1)])

    @property
    def decimate(self) -> bool:
        return bool(self.shed_order) and self.level >= len(self.shed_order)

    def set_order(self, shed_order: list[int]) -> None:
        """A new ladder (the source changed size): start again at level 0."""
        self.shed_order = list(shed_order)
        self.level = 0
        self._changed_at = None
        self._low_since = None

    def observe(self, delay: float, now: float) -> Step | None:
        if delay > self.max_delay:
            self._low_since = None
            if self.level >= self.max_level:
                return None
            if self._changed_at is not None and now - self._changed_at < self.cooldown:
                return None
            if self._restored_at is not None and now - self._restored_at < 2 * self.recover_after:
                self.recover_after = min(MAX_RECOVER_AFTER, self.recover_after * 2)
            self.level += 1
            self._changed_at = now
            self.sheds += 1
            if self.level < len(self.shed_order):
                return Step("shed", self.shed_order[self.level - 1], self.level, delay)
            return Step("decimate", None, self.level, delay)
        if self.level == 0:
            return None
        if delay >= self.max_delay / 4:
            self._low_since = None
            return None
        if self._low_since is None:
            self._low_since = now
            return None
        since = max(self._low_since, self._changed_at or self._low_since)
        if now - since < self.recover_after:
            return None
        previous = self.level
        self.level -= 1
        self._changed_at = now
        self._restored_at = now
        self._low_since = None
        self.restores += 1
        if previous >= len(self.shed_order):
            return Step("undecimate", None, self.level, delay)
        return Step("restore", self.shed_order[self.level], self.level, delay)
