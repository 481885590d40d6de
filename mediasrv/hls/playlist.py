"""Rendering of HLS playlists (RFC 8216, draft-pantos-hls-rfc8216bis), pure.

The renderers take plain snapshots (``MediaPlaylist``, ``Variant``) and return text; the
segmenter builds the snapshots. ``uri_suffix`` (e.g. ``?s=TOKEN`` for a viewer session) is
appended to every URI written. Low-Latency HLS adds fields to these snapshots (parts,
part target, server control, preload hint, rendition reports) and lines to the same
renderer; plain clients keep seeing whole segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

MIME_TYPE = "application/vnd.apple.mpegurl"


def round_half_up(seconds: float) -> int:
    """EXTINF rounded to the nearest integer, as §4.3.3.1 compares it with TARGETDURATION."""
    return math.floor(seconds + 0.5)


def format_date_time(unix_seconds: float) -> str:
    """ISO 8601 with milliseconds and a UTC offset, as EXT-X-PROGRAM-DATE-TIME wants."""
    ms = round(unix_seconds * 1000)
    days, ms_of_day = divmod(ms, 86_400_000)
    year, month, day = _civil_from_days(days)
    seconds, millis = divmod(ms_of_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian date of ``days`` since 1970-01-01 (H. Hinnant's algorithm;
    no ``datetime``: this layer reads no clocks and imports no time modules)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


@dataclass(frozen=True, slots=True)
class PlaylistSegment:
    uri: str
    duration: float
    #: EXT-X-DISCONTINUITY before this segment.
    discontinuity: bool = False
    #: The init segment (EXT-X-MAP URI) this segment needs; None for MPEG-TS.
    map_uri: str | None = None
    #: Wall-clock time of the segment's first sample (unix seconds), or None.
    program_date_time: float | None = None


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    target_duration: int
    media_sequence: int
    discontinuity_sequence: int
    segments: tuple[PlaylistSegment, ...]
    ended: bool = False
    version: int = 7
    independent_segments: bool = True


@dataclass(frozen=True, slots=True)
class Variant:
    """One EXT-X-STREAM-INF entry of a master playlist."""

    uri: str
    bandwidth: int
    codecs: str
    average_bandwidth: int | None = None
    resolution: tuple[int, int] | None = None
    frame_rate: float | None = None


def render_media_playlist(playlist: MediaPlaylist, uri_suffix: str = "") -> str:
    segments = playlist.segments
    target = playlist.target_duration
    for segment in segments:  # §4.3.3.1 holds even if a caller's value was stale
        target = max(target, round_half_up(segment.duration))
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{playlist.version}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{playlist.discontinuity_sequence}",
    ]
    if playlist.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    current_map = None
    for index, segment in enumerate(segments):
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.map_uri is not None and (segment.map_uri != current_map or index == 0):
            lines.append(f'#EXT-X-MAP:URI="{segment.map_uri}{uri_suffix}"')
            current_map = segment.map_uri
        if segment.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(segment.program_date_time)}")
        lines.append(f"#EXTINF:{segment.duration:.3f},")
        lines.append(f"{segment.uri}{uri_suffix}")
    if playlist.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_master_playlist(
    variants: Sequence[Variant], uri_suffix: str = "", *, independent_segments: bool = True
) -> str:
    lines = ["#EXTM3U"]
    if independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    for variant in variants:
        attributes = [f"BANDWIDTH={max(1, int(variant.bandwidth))}"]
        if variant.average_bandwidth:
            attributes.append(f"AVERAGE-BANDWIDTH={int(variant.average_bandwidth)}")
        attributes.append(f'CODECS="{variant.codecs}"')
        if variant.resolution and variant.resolution[0] and variant.resolution[1]:
            attributes.append(f"RESOLUTION={variant.resolution[0]}x{variant.resolution[1]}")
        if variant.frame_rate:
            attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(f"{variant.uri}{uri_suffix}")
    return "\n".join(lines) + "\n"
