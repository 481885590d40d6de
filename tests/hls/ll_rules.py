"""The Low-Latency HLS rules of ../shared/PROTOCOLS.md (rfc8216bis), as checks on parsed
playlists: shared by the pure tests (tests/hls/test_ll_*.py) and the live conformance
module (tests/e2e/test_ll_hls_conformance.py). They state the spec's rules and the
relations between tags, never a copy of our own output.
"""

from __future__ import annotations

import math

from tests.hls.conftest import ParsedPart, ParsedPlaylist, check_media_playlist

#: Playlist values are decimals with 3 places: compare durations at millisecond precision.
EPS = 0.0005
#: Parts leave the playlist once older than this many target durations (§6.2.2).
PART_WINDOW_TARGETS = 3


def last_part_position(pl: ParsedPlaylist) -> tuple[int, int] | None:
    """(msn, index) of the newest part listed, None if no part is listed."""
    if pl.partial_parts:
        return pl.next_msn, len(pl.partial_parts) - 1
    for offset, segment in enumerate(reversed(pl.segments)):
        if segment.parts:
            return pl.next_msn - 1 - offset, len(segment.parts) - 1
    return None


def playlist_duration(pl: ParsedPlaylist) -> float:
    return sum(s.duration for s in pl.segments) + sum(p.duration for p in pl.partial_parts)


def check_ll_playlist(text: str, *, live: bool | None = None, lenient_breaks: bool = False) -> ParsedPlaylist:
    """Every LL-HLS rule one playlist must satisfy on its own; returns it parsed.

    ``lenient_breaks``: a segment that spans a publisher's break (EXT-X-DISCONTINUITY)
    may have a part under 85 % of PART-TARGET where the timeline jumped (whole frames
    cannot fill it then); only "never longer" is checked for those."""
    pl = check_media_playlist(text, fmp4=True)
    listed = [p for s in pl.segments for p in s.parts] + pl.partial_parts
    if live is not None:
        assert pl.ended is not live
    # §4.4.3.7: EXT-X-PART-INF whenever parts are listed.
    if listed:
        assert pl.part_target is not None and pl.part_target > 0, "EXT-X-PART-INF is required with EXT-X-PART"
    target = pl.part_target
    # §4.4.3.8: EXT-X-SERVER-CONTROL.
    control = pl.server_control
    assert control is not None, "EXT-X-SERVER-CONTROL is missing"
    assert control.get("CAN-BLOCK-RELOAD") == "YES"
    hold_back = float(control["HOLD-BACK"])
    assert hold_back >= 3 * pl.target_duration - EPS, f"HOLD-BACK {hold_back} < 3 x {pl.target_duration}"
    if target is not None:
        part_hold_back = float(control["PART-HOLD-BACK"])
        assert part_hold_back >= 3 * target - EPS, f"PART-HOLD-BACK {part_hold_back} < 3 x PART-TARGET {target}"
        assert part_hold_back < hold_back
    if "CAN-SKIP-UNTIL" in control:
        assert float(control["CAN-SKIP-UNTIL"]) >= 6 * pl.target_duration - EPS
    # §4.4.4.9: part durations; all but the last of a segment fill >= 85 % of PART-TARGET.
    uris = [p.uri for p in listed]
    assert len(set(uris)) == len(uris), "a part URI is listed twice"
    for segment in pl.segments:
        _check_parts(segment.parts, target, complete=True, segment_duration=segment.duration, name=segment.uri,
                     short_ok=lenient_breaks and segment.discontinuity)
    _check_parts(pl.partial_parts, target, complete=False, segment_duration=None, name="partial segment",
                 short_ok=lenient_breaks and pl.partial_discontinuity)
    # Segments start at keyframes: their first part is INDEPENDENT=YES.
    if pl.independent:
        for segment in pl.segments:
            if segment.parts:
                assert segment.parts[0].independent, f"{segment.uri}: first part not INDEPENDENT"
        if pl.partial_parts:
            assert pl.partial_parts[0].independent
    # Parts are listed for the last segments only: a suffix of the playlist, within
    # three target durations of its end (§6.2.2), and enough of them to start playing
    # PART-HOLD-BACK from the end.
    with_parts = [i for i, s in enumerate(pl.segments) if s.parts]
    if with_parts:
        assert with_parts == list(range(with_parts[0], len(pl.segments))), "parts listed for a non-final run of segments"
    end = playlist_duration(pl)
    position = 0.0
    for segment in pl.segments:
        for part in segment.parts:
            assert end - position <= PART_WINDOW_TARGETS * pl.target_duration + EPS, (
                f"{part.uri} starts {end - position:.3f} s before the end (> {PART_WINDOW_TARGETS} target durations)"
            )
            position += part.duration
        if not segment.parts:
            position += segment.duration
    if listed and not pl.ended:
        covered = sum(p.duration for p in listed)
        assert covered + EPS >= min(end, float(control["PART-HOLD-BACK"])), "too few parts to start at PART-HOLD-BACK"
    # §4.4.5.3: one preload hint for the next part, only while live.
    hints = [h for h in pl.preload_hints if h.get("TYPE") == "PART"]
    if pl.ended:
        assert not pl.preload_hints, "EXT-X-PRELOAD-HINT after EXT-X-ENDLIST"
    elif listed:
        assert len(hints) == 1, pl.preload_hints
        assert hints[0]["URI"] and hints[0]["URI"] not in uris
    for hint in pl.preload_hints:
        assert hint.get("TYPE") in ("PART", "MAP") and hint.get("URI")
    # §4.4.5.4: rendition reports.
    for report in pl.rendition_reports:
        assert report["URI"].endswith(".m3u8")
        assert int(report["LAST-MSN"]) >= 0
        if "LAST-PART" in report:
            assert int(report["LAST-PART"]) >= 0
    # The version rules (EXT-X-SKIP needs 9, EXT-X-MAP 6).
    if pl.skipped_segments is not None:
        assert pl.version >= 9
    return pl


def _check_parts(parts: list[ParsedPart], target: float | None, *, complete: bool,
                 segment_duration: float | None, name: str, short_ok: bool = False) -> None:
    if not parts:
        return
    assert target is not None
    for index, part in enumerate(parts):
        assert 0 < part.duration <= target + EPS, f"{name} part {index}: {part.duration} > PART-TARGET {target}"
        last = complete and index == len(parts) - 1
        if not last and not short_ok:
            assert part.duration >= 0.85 * target - EPS, f"{name} part {index}: {part.duration} < 85 % of {target}"
    if segment_duration is not None:
        # The segment is its parts: their durations add up to its EXTINF.
        assert math.isclose(sum(p.duration for p in parts), segment_duration, abs_tol=0.0015), (
            name, [p.duration for p in parts], segment_duration)


def check_ll_update(old: ParsedPlaylist, new: ParsedPlaylist) -> None:
    """Rules between two successive versions of one LL playlist: listed parts never
    change, the newest part never goes back, PART-TARGET stays."""
    if old.part_target is not None and new.part_target is not None:
        assert new.part_target == old.part_target, "PART-TARGET changed"
    old_parts = {p.uri: p for s in old.segments for p in s.parts} | {p.uri: p for p in old.partial_parts}
    for part in [p for s in new.segments for p in s.parts] + new.partial_parts:
        before = old_parts.get(part.uri)
        if before is not None:
            assert (before.duration, before.independent) == (part.duration, part.independent), part.uri
    old_last, new_last = last_part_position(old), last_part_position(new)
    if old_last is not None and new_last is not None:
        assert new_last >= old_last
    assert new.next_msn >= old.next_msn
