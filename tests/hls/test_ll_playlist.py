"""Rendering of Low-Latency HLS playlists (rfc8216bis), from hand-made snapshots: where
each tag goes, delta updates, rendition reports, URI suffixes."""

from __future__ import annotations

from mediasrv.hls.playlist import (
    MediaPlaylist,
    PartialSegment,
    PlaylistPart,
    PlaylistSegment,
    RenditionReport,
    ServerControl,
    render_media_playlist,
)
from tests.hls.conftest import parse_media_playlist
from tests.hls.ll_rules import check_ll_playlist

PDT = 1_700_000_000.0


def _parts(msn: int, durations, *, independent_first=True):
    return tuple(
        PlaylistPart(f"part_a_{msn}_{i}.m4s", d, independent=independent_first and i == 0) for i, d in enumerate(durations)
    )


def ll_playlist(n=8, *, first=10, parts_from=6, ended=False, partial=(0.32, 0.32), control=True) -> MediaPlaylist:
    segments = tuple(
        PlaylistSegment(
            f"seg_a_{first + i}.m4s", 2.0, map_uri="init_a_0.mp4", program_date_time=PDT + 2 * i,
            parts=_parts(first + i, (0.32,) * 6 + (0.08,)) if i >= parts_from else (),
        )
        for i in range(n)
    )
    return MediaPlaylist(
        target_duration=2, media_sequence=first, discontinuity_sequence=0, segments=segments, ended=ended, version=9,
        part_target=0.333,
        server_control=ServerControl(hold_back=6.0, part_hold_back=0.999, can_skip_until=12.0) if control else None,
        partial=PartialSegment(_parts(first + n, partial), map_uri="init_a_0.mp4", program_date_time=PDT + 2 * n)
        if partial else None,
        preload_hint=None if ended else f"part_a_{first + n}_{len(partial)}.m4s",
    )


def test_tags_of_a_low_latency_playlist_and_their_places():
    text = render_media_playlist(ll_playlist(), rendition_reports=(
        RenditionReport("../240p/index.m3u8", 18, 1), RenditionReport("../144p/index.m3u8", 17)))
    pl = check_ll_playlist(text, live=True)
    lines = pl.lines
    first_segment_line = next(i for i, line in enumerate(lines) if line.startswith(("#EXTINF", "#EXT-X-PART:")))
    for tag in ("#EXT-X-SERVER-CONTROL:", "#EXT-X-PART-INF:"):
        position = next(i for i, line in enumerate(lines) if line.startswith(tag))
        assert position < first_segment_line  # playlist tags come before the segments
    assert pl.server_control == {"CAN-BLOCK-RELOAD": "YES", "CAN-SKIP-UNTIL": "12.000", "HOLD-BACK": "6.000",
                                 "PART-HOLD-BACK": "0.999"}
    assert pl.part_target == 0.333
    # Parts come before their segment's EXTINF, the partial segment's after the last one,
    # then the preload hint, then the reports.
    assert [len(s.parts) for s in pl.segments] == [0] * 6 + [7, 7]
    assert [p.uri for p in pl.partial_parts] == ["part_a_18_0.m4s", "part_a_18_1.m4s"]
    assert pl.preload_hints == [{"TYPE": "PART", "URI": "part_a_18_2.m4s"}]
    hint_at = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-PRELOAD-HINT"))
    last_part_at = max(i for i, line in enumerate(lines) if line.startswith("#EXT-X-PART:"))
    assert last_part_at < hint_at < next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-RENDITION-REPORT"))
    assert pl.rendition_reports == [{"URI": "../240p/index.m3u8", "LAST-MSN": "18", "LAST-PART": "1"},
                                    {"URI": "../144p/index.m3u8", "LAST-MSN": "17"}]
    # The partial segment carries its date (and would carry its discontinuity and map).
    assert pl.partial_program_date_time is not None
    assert 'URI="part_a_16_0.m4s",INDEPENDENT=YES' in text and 'URI="part_a_16_1.m4s"\n' in text


def test_ended_playlist_has_no_hint_nor_partial_parts():
    text = render_media_playlist(ll_playlist(ended=True))
    pl = check_ll_playlist(text, live=False)
    assert pl.lines[-1] == "#EXT-X-ENDLIST"
    assert not pl.preload_hints and not pl.partial_parts


def test_delta_update_skips_the_segments_before_the_skip_boundary():
    playlist = ll_playlist(n=10, parts_from=8)
    full = parse_media_playlist(render_media_playlist(playlist))
    delta = check_ll_playlist(render_media_playlist(playlist, delta=True), live=True)
    # 10 x 2 s + 0.64 s of parts; the boundary is 12 s from the end: segments that end
    # at least 12 s before it (the first 4: they end at 8 s, 8.64 + 12 > 20.64) go.
    assert delta.skipped_segments == 4 == playlist.skippable()
    assert delta.media_sequence == full.media_sequence
    assert [s.uri for s in delta.segments] == [s.uri for s in full.segments[4:]]
    assert delta.next_msn == full.next_msn
    # The first segment after the skip still names its init segment.
    assert delta.segments[0].map_uri == "init_a_0.mp4"
    assert delta.version >= 9


def test_delta_update_of_a_short_playlist_skips_nothing():
    playlist = ll_playlist(n=6, parts_from=4)
    delta = check_ll_playlist(render_media_playlist(playlist, delta=True), live=True)
    assert delta.skipped_segments == 0 and len(delta.segments) == 6


def test_no_delta_without_can_skip_until():
    playlist = ll_playlist(control=False)
    text = render_media_playlist(playlist, delta=True)
    assert "#EXT-X-SKIP" not in text and playlist.skippable() == 0


def test_uri_suffix_goes_on_every_uri():
    text = render_media_playlist(ll_playlist(), "?s=tok", rendition_reports=(RenditionReport("../240p/index.m3u8", 1, 0),))
    pl = parse_media_playlist(text)
    uris = [p.uri for s in pl.segments for p in s.parts] + [p.uri for p in pl.partial_parts]
    uris += [h["URI"] for h in pl.preload_hints] + [r["URI"] for r in pl.rendition_reports]
    uris += [s.uri for s in pl.segments] + [s.map_uri for s in pl.segments]
    assert uris and all(u.endswith("?s=tok") for u in uris)


def test_discontinuity_and_map_before_the_partial_segment():
    playlist = ll_playlist()
    partial = PartialSegment(_parts(18, (0.32,)), discontinuity=True, map_uri="init_a_1.mp4", program_date_time=PDT + 99)
    text = render_media_playlist(MediaPlaylist(**{**{f: getattr(playlist, f) for f in playlist.__slots__},
                                                  "partial": partial, "preload_hint": "part_a_18_1.m4s"}))
    pl = check_ll_playlist(text, live=True)
    assert pl.partial_discontinuity and pl.partial_map_uri == "init_a_1.mp4"
    lines = pl.lines
    part_at = lines.index('#EXT-X-PART:DURATION=0.320,URI="part_a_18_0.m4s",INDEPENDENT=YES')
    assert lines[part_at - 3:part_at] == ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init_a_1.mp4"',
                                          "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:14:59.000Z"]
