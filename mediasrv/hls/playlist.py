"""Rendering of HLS playlists (RFC 8216, draft-pantos-hls-rfc8216bis), pure.

The renderers take plain snapshots (``MediaPlaylist``, ``Variant``) and return text; the
segmenter builds the snapshots. ``uri_suffix`` (e.g. ``?s=TOKEN`` for a viewer session) is
appended to every URI written.

Low-Latency HLS (draft-pantos-hls-rfc8216bis) adds optional fields to the same snapshots:
the parts of recent segments (``PlaylistSegment.parts``) and of the segment being built
(``MediaPlaylist.partial``), ``part_target`` (EXT-X-PART-INF), ``server_control``
(EXT-X-SERVER-CONTROL) and ``preload_hint`` (EXT-X-PRELOAD-HINT); the renderer adds
delta updates (``delta=True``: EXT-X-SKIP, §6.2.5.1) and EXT-X-RENDITION-REPORT lines.
Plain clients keep seeing every whole segment with its EXTINF, as before.
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
class PlaylistPart:
    """One EXT-X-PART (§4.4.4.9)."""

    uri: str
    duration: float
    #: INDEPENDENT=YES: the part starts with an independent (key) frame.
    independent: bool = False


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
    #: Its parts, listed before its EXTINF (recent segments of a low-latency playlist).
    parts: tuple[PlaylistPart, ...] = ()


@dataclass(frozen=True, slots=True)
class PartialSegment:
    """The segment being built: the parts it has so far (no EXTINF/URI yet)."""

    parts: tuple[PlaylistPart, ...]
    discontinuity: bool = False
    map_uri: str | None = None
    program_date_time: float | None = None


@dataclass(frozen=True, slots=True)
class ServerControl:
    """EXT-X-SERVER-CONTROL (§4.4.3.8); seconds."""

    hold_back: float
    part_hold_back: float | None = None
    can_skip_until: float | None = None
    can_block_reload: bool = True


@dataclass(frozen=True, slots=True)
class RenditionReport:
    """EXT-X-RENDITION-REPORT (§4.4.5.4) of another rendition of the same stream."""

    uri: str
    last_msn: int
    last_part: int | None = None


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    target_duration: int
    media_sequence: int
    discontinuity_sequence: int
    segments: tuple[PlaylistSegment, ...]
    ended: bool = False
    version: int = 7
    independent_segments: bool = True
    #: EXT-X-PART-INF:PART-TARGET (seconds) when parts are listed.
    part_target: float | None = None
    server_control: ServerControl | None = None
    #: The parts of the segment being built (after the last complete segment).
    partial: PartialSegment | None = None
    #: URI of the next part (EXT-X-PRELOAD-HINT:TYPE=PART).
    preload_hint: str | None = None

    def skippable(self) -> int:
        """How many leading segments a delta update (§6.2.5.1) replaces with EXT-X-SKIP:
        those that end at least CAN-SKIP-UNTIL (the Skip Boundary) before the end of the
        playlist (0 when delta updates are not offered)."""
        control = self.server_control
        if control is None or control.can_skip_until is None:
            return 0
        total = sum(_ms(s.duration) for s in self.segments)
        if self.partial is not None:
            total += sum(_ms(p.duration) for p in self.partial.parts)
        boundary = _ms(control.can_skip_until)
        end = 0
        count = 0
        for segment in self.segments:
            end += _ms(segment.duration)
            if total - end < boundary:
                break
            count += 1
        return count


@dataclass(frozen=True, slots=True)
class Variant:
    """One EXT-X-STREAM-INF entry of a master playlist."""

    uri: str
    bandwidth: int
    codecs: str
    average_bandwidth: int | None = None
    resolution: tuple[int, int] | None = None
    frame_rate: float | None = None


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _part_line(part: PlaylistPart, uri_suffix: str) -> str:
    independent = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={part.duration:.3f},URI="{part.uri}{uri_suffix}"{independent}'


def render_media_playlist(
    playlist: MediaPlaylist,
    uri_suffix: str = "",
    *,
    delta: bool = False,
    rendition_reports: Sequence[RenditionReport] = (),
) -> str:
    """The media playlist text. ``delta``: a Playlist Delta Update (EXT-X-SKIP replaces
    the segments before the Skip Boundary; only when the playlist offers CAN-SKIP-UNTIL).
    ``rendition_reports``: EXT-X-RENDITION-REPORT lines for the other renditions."""
    segments = playlist.segments
    target = playlist.target_duration
    for segment in segments:  # §4.3.3.1 holds even if a caller's value was stale
        target = max(target, round_half_up(segment.duration))
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{playlist.version}",
        f"#EXT-X-TARGETDURATION:{target}",
    ]
    control = playlist.server_control
    if control is not None:
        attributes = []
        if control.can_block_reload:
            attributes.append("CAN-BLOCK-RELOAD=YES")
        if control.can_skip_until is not None:
            attributes.append(f"CAN-SKIP-UNTIL={control.can_skip_until:.3f}")
        attributes.append(f"HOLD-BACK={control.hold_back:.3f}")
        if control.part_hold_back is not None:
            attributes.append(f"PART-HOLD-BACK={control.part_hold_back:.3f}")
        lines.append("#EXT-X-SERVER-CONTROL:" + ",".join(attributes))
    if playlist.part_target is not None:
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={playlist.part_target:.3f}")
    lines += [
        f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{playlist.discontinuity_sequence}",
    ]
    if playlist.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    skipped = playlist.skippable() if delta else 0
    if delta and control is not None and control.can_skip_until is not None:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    current_map = None
    for index, segment in enumerate(segments[skipped:]):
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.map_uri is not None and (segment.map_uri != current_map or index == 0):
            lines.append(f'#EXT-X-MAP:URI="{segment.map_uri}{uri_suffix}"')
            current_map = segment.map_uri
        if segment.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(segment.program_date_time)}")
        for part in segment.parts:
            lines.append(_part_line(part, uri_suffix))
        lines.append(f"#EXTINF:{segment.duration:.3f},")
        lines.append(f"{segment.uri}{uri_suffix}")
    partial = playlist.partial
    if partial is not None and partial.parts and not playlist.ended:
        if partial.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if partial.map_uri is not None and (partial.map_uri != current_map or not segments[skipped:]):
            lines.append(f'#EXT-X-MAP:URI="{partial.map_uri}{uri_suffix}"')
        if partial.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(partial.program_date_time)}")
        for part in partial.parts:
            lines.append(_part_line(part, uri_suffix))
    if playlist.preload_hint is not None and not playlist.ended:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{playlist.preload_hint}{uri_suffix}"')
    for report in rendition_reports:
        attributes = f'URI="{report.uri}{uri_suffix}",LAST-MSN={report.last_msn}'
        if report.last_part is not None:
            attributes += f",LAST-PART={report.last_part}"
        lines.append("#EXT-X-RENDITION-REPORT:" + attributes)
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
