"""Names in HLS URLs: what a stream, rendition and file may be called, in one place.

``/live/{stream}/index.m3u8``, ``/live/{stream}/{rendition}/index.m3u8`` and
``/live/{stream}/{rendition}/{file}`` with ``file`` one of ``init_{tag}_{n}.mp4``,
``seg_{tag}_{msn}.m4s``, ``seg_{tag}_{msn}.ts`` or (Low-Latency HLS) the part
``part_{tag}_{msn}_{index}.m4s``. ``tag`` identifies the broadcast (base 36
of its start time in ms), so a file name never means two different contents and caches
in front may keep segments as immutable. Anything else is refused before any lookup
(a 404: a name outside this scheme names no resource).
"""

from __future__ import annotations

import re

SOURCE = "source"
PLAYLIST = "index.m3u8"

#: The same rule as ``mediasrv.config.STREAM_NAME_RE`` (a test keeps them equal): a name
#: never starts with a dot, so it can never be ``.`` or ``..``.
_STREAM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_RENDITION = re.compile(r"[a-z0-9][a-z0-9_\-]{0,31}")
_TAG = re.compile(r"[0-9a-z]{1,16}")
_FILE = re.compile(
    r"(init)_([0-9a-z]{1,16})_([0-9]{1,10})\.mp4|(seg)_([0-9a-z]{1,16})_([0-9]{1,10})\.(m4s|ts)"
    r"|part_[0-9a-z]{1,16}_[0-9]{1,10}_[0-9]{1,5}\.m4s"
)
_PART = re.compile(r"part_([0-9a-z]{1,16})_([0-9]{1,10})_([0-9]{1,5})\.m4s")


def is_stream_name(name: str) -> bool:
    """1-64 letters, digits, ``_ - .``, not starting with a dot."""
    return bool(_STREAM.fullmatch(name))


def is_rendition_name(name: str) -> bool:
    return bool(_RENDITION.fullmatch(name))


def is_file_name(name: str) -> bool:
    return bool(_FILE.fullmatch(name))


def is_init_name(name: str) -> bool:
    return name.startswith("init_") and is_file_name(name)


def is_part_name(name: str) -> bool:
    return bool(_PART.fullmatch(name))


def parse_part_name(name: str) -> tuple[str, int, int] | None:
    """``(tag, msn, part index)`` of a part file name, None for anything else."""
    match = _PART.fullmatch(name)
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def part_name(tag: str, msn: int, index: int) -> str:
    return f"part_{tag}_{msn}_{index}.m4s"


def init_name(tag: str, init_id: int) -> str:
    return f"init_{tag}_{init_id}.mp4"


def segment_name(tag: str, msn: int, extension: str) -> str:
    return f"seg_{tag}_{msn}.{extension}"


def make_tag(start_ms: int) -> str:
    """Base 36 of a broadcast's start time in ms."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    value = max(0, int(start_ms))
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out
