"""Playlist rendering, checked against RFC 8216 rules (not against copies of our output)."""

from __future__ import annotations

import re

from mediasrv.hls.playlist import (
    MediaPlaylist,
    PlaylistSegment,
    Variant,
    format_date_time,
    render_master_playlist,
    render_media_playlist,
    round_half_up,
)
from tests.hls.conftest import check_media_playlist, parse_media_playlist


def _segments(n, *, start=0, map_uri="init_a_0.mp4", duration=2.0, pdt=1_700_000_000.0):
    return tuple(
        PlaylistSegment(f"seg_a_{start + i}.m4s", duration, map_uri=map_uri, program_date_time=pdt + i * duration)
        for i in range(n)
    )


def test_media_playlist_has_the_required_tags_in_order():
    text = render_media_playlist(MediaPlaylist(2, 5, 1, _segments(3, start=5)))
    pl = check_media_playlist(text, fmp4=True)
    assert (pl.version, pl.target_duration, pl.media_sequence, pl.discontinuity_sequence) == (7, 2, 5, 1)
    assert pl.independent and not pl.ended
    assert [s.uri for s in pl.segments] == ["seg_a_5.m4s", "seg_a_6.m4s", "seg_a_7.m4s"]
    # Header tags come before the first segment (§4.3.3: they apply to the whole playlist).
    first_inf = next(i for i, line in enumerate(pl.lines) if line.startswith("#EXTINF"))
    for tag in ("#EXT-X-VERSION", "#EXT-X-TARGETDURATION", "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-DISCONTINUITY-SEQUENCE"):
        assert any(line.startswith(tag) for line in pl.lines[:first_inf])
    assert text.endswith("\n")


def test_target_duration_is_never_below_a_rounded_extinf():
    segs = (
        PlaylistSegment("a.ts", 2.49),
        PlaylistSegment("b.ts", 2.5),  # rounds to 3
        PlaylistSegment("c.ts", 1.2),
    )
    pl = check_media_playlist(render_media_playlist(MediaPlaylist(2, 0, 0, segs, version=3)), fmp4=False)
    assert pl.target_duration == 3
    assert round_half_up(2.5) == 3 and round_half_up(2.4999) == 2 and round_half_up(0.5) == 1


def test_map_before_first_segment_and_again_after_an_init_change():
    segs = _segments(2) + tuple(
        PlaylistSegment(f"seg_a_{i}.m4s", 2.0, discontinuity=(i == 2), map_uri="init_a_1.mp4") for i in (2, 3)
    )
    text = render_media_playlist(MediaPlaylist(2, 0, 0, segs))
    pl = check_media_playlist(text, fmp4=True)
    assert [s.map_uri for s in pl.segments] == ["init_a_0.mp4", "init_a_0.mp4", "init_a_1.mp4", "init_a_1.mp4"]
    assert [s.discontinuity for s in pl.segments] == [False, False, True, False]
    assert sum(line.startswith("#EXT-X-MAP") for line in pl.lines) == 2


def test_map_is_repeated_for_the_first_listed_segment_after_removal():
    # After the first segments left the window, the first listed one still gets its MAP.
    text = render_media_playlist(MediaPlaylist(2, 10, 0, _segments(2, start=10)))
    check_media_playlist(text, fmp4=True)


def test_endlist_is_last_and_uri_suffix_goes_on_every_uri():
    text = render_media_playlist(MediaPlaylist(2, 0, 0, _segments(2), ended=True), "?s=tok")
    pl = check_media_playlist(text, fmp4=True)
    assert pl.ended
    assert all(s.uri.endswith("?s=tok") for s in pl.segments)
    assert all(s.map_uri.endswith("?s=tok") for s in pl.segments)


def test_program_date_time_is_iso8601_utc_with_milliseconds():
    assert format_date_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_date_time(951782400.25) == "2000-02-29T00:00:00.250Z"
    assert format_date_time(1709251199.9994) == "2024-02-29T23:59:59.999Z"
    pl = parse_media_playlist(render_media_playlist(MediaPlaylist(2, 0, 0, _segments(2, pdt=1_700_000_000.5))))
    assert [s.program_date_time for s in pl.segments] == ["2023-11-14T22:13:20.500Z", "2023-11-14T22:13:22.500Z"]


def test_ts_playlist_has_no_map_and_version_3():
    segs = tuple(PlaylistSegment(f"seg_a_{i}.ts", 2.0) for i in range(3))
    pl = check_media_playlist(render_media_playlist(MediaPlaylist(2, 0, 0, segs, version=3)), fmp4=False)
    assert pl.version == 3


def test_independent_segments_can_be_left_out():
    text = render_media_playlist(MediaPlaylist(2, 0, 0, _segments(1), independent_segments=False))
    assert "#EXT-X-INDEPENDENT-SEGMENTS" not in text


def _attributes(line: str) -> dict[str, str]:
    body = line.split(":", 1)[1]
    return dict(re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', body))


def test_master_playlist_stream_inf_attributes():
    text = render_master_playlist(
        [
            Variant("source/index.m3u8", 2_500_000, "avc1.64001f,mp4a.40.2", 2_000_000, (1280, 720), 29.97),
            Variant("480p/index.m3u8", 1_200_000, "avc1.4d401e,mp4a.40.2", None, (854, 480), None),
        ],
        "?s=x",
    )
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    infs = [i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(infs) == 2
    first = _attributes(lines[infs[0]])
    assert first["BANDWIDTH"] == "2500000" and first["AVERAGE-BANDWIDTH"] == "2000000"
    assert first["CODECS"] == '"avc1.64001f,mp4a.40.2"'
    assert first["RESOLUTION"] == "1280x720"
    assert first["FRAME-RATE"] == "29.970"
    # The URI line follows each EXT-X-STREAM-INF (§4.3.4.2).
    assert lines[infs[0] + 1] == "source/index.m3u8?s=x"
    second = _attributes(lines[infs[1]])
    assert "AVERAGE-BANDWIDTH" not in second and "FRAME-RATE" not in second
    assert re.fullmatch(r"\d+", second["BANDWIDTH"])
