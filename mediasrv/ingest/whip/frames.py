"""The bounded hand-over of decoded frames from the event loop to a session's encoder
thread.

The loop never waits: ``put`` always returns at once. When the encoder falls behind,
the oldest queued video frame is dropped (a live picture skips rather than lags); audio
has its own, larger bound (its frames are small and a gap is audible), past which its
oldest frame goes too. Drops are counted per kind.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

#: Default bounds: ~0.4-0.6 s of video at 20-30 fps, ~1 s of 20 ms Opus frames.
VIDEO_FRAMES = 12
AUDIO_FRAMES = 50


class FrameQueue:
    """Items ``(kind, frame, arrival)`` in arrival order; ``kind`` is "video" or "audio"."""

    def __init__(self, *, video_frames: int = VIDEO_FRAMES, audio_frames: int = AUDIO_FRAMES) -> None:
        self._items: collections.deque = collections.deque()
        self._counts = {"video": 0, "audio": 0}
        self._limits = {"video": video_frames, "audio": audio_frames}
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = {"video": 0, "audio": 0}

    def put(self, kind: str, frame: Any, arrival: float) -> None:
        """Queue a frame (never blocks); the oldest of its kind goes when over the bound."""
        with self._ready:
            if self._closed:
                return
            if self._counts[kind] >= self._limits[kind]:
                for index, item in enumerate(self._items):
                    if item[0] == kind:
                        del self._items[index]
                        self._counts[kind] -= 1
                        self.dropped[kind] += 1
                        break
            self._items.append((kind, frame, arrival))
            self._counts[kind] += 1
            self._ready.notify()

    def get(self) -> tuple[str, Any, float] | None:
        """The next item, waiting for one; None once closed (what was queued is dropped)."""
        with self._ready:
            while not self._items and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            item = self._items.popleft()
            self._counts[item[0]] -= 1
            return item

    def close(self) -> None:
        """Wake the consumer with None; later puts are ignored."""
        with self._ready:
            self._closed = True
            self._items.clear()
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)
