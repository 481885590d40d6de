"""The on-disk form of a recording: manifest, VOD playlist, the concatenating reader and
the MP4 remux refusing what one MP4 cannot hold."""

from __future__ import annotations

import dataclasses
import io

import pytest

from mediasrv.hls.segmenter import Segmenter
from mediasrv.recording import files as rf
from tests.hls.conftest import encode


def entry(n, *, disc=False, init="init_t_0.mp4", dur=2.0, pdt=None):
    return rf.SegmentEntry(f"seg_t_{n}.m4s", init, dur, disc, True, 10, 50, pdt)


def test_vod_playlist_keeps_discontinuities_and_maps():
    manifest = rf.Manifest({"v": 1, "id": "x"}, [
        entry(0, pdt=1_700_000_000.0), entry(1, dur=2.5), entry(2, disc=True, pdt=1_700_000_010.0),
        entry(3, disc=True, init="init_t_1.mp4"),
    ])
    assert rf.render_vod_playlist(manifest) == "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-TARGETDURATION:3",
        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="init_t_0.mp4"', "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z",
        "#EXTINF:2.000,", "seg_t_0.m4s", "#EXTINF:2.500,", "seg_t_1.m4s",
        "#EXT-X-DISCONTINUITY", "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z",
        "#EXTINF:2.000,", "seg_t_2.m4s",
        "#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init_t_1.mp4"', "#EXTINF:2.000,", "seg_t_3.m4s",
        "#EXT-X-ENDLIST", ""])


def test_manifest_skips_torn_lines_and_missing_files(tmp_path):
    files = rf.RecordingFiles(tmp_path / "r")
    files.create({"id": "abc", "stream": "s", "started_at": 1.0})
    segmenter = Segmenter(segment_duration=1.0, window=1, tag="t")
    made = []
    for unit in encode(seconds=4.0).units:
        made += segmenter.push(unit, 0.0)
    made += segmenter.finish(0.0)
    for segment in made:
        files.add_segment(segment)
    assert len(made) == 4
    (tmp_path / "r" / made[1].uri).unlink()  # lost (not something our writer does)
    with open(tmp_path / "r" / rf.MANIFEST, "ab") as f:
        f.write(b'{"seg": "seg_t_9.m4s", "ma')
    manifest = rf.load_manifest(tmp_path / "r")
    assert [s.uri for s in manifest.segments] == [made[0].uri, made[2].uri, made[3].uri]
    assert [s.discontinuity for s in manifest.segments] == [False, True, False]
    assert manifest.header["id"] == "abc" and manifest.ended_at is None
    assert rf.load_manifest(tmp_path / "nothing") is None


def test_concat_file_reads_and_seeks_across_files(tmp_path):
    parts = [b"abc", b"", b"defgh", b"ij"]
    paths = []
    for index, data in enumerate(parts):
        path = tmp_path / f"p{index}"
        path.write_bytes(data)
        paths.append(path)
    f = rf._ConcatFile(paths)
    assert f.read(4) == b"abcd" and f.tell() == 4
    assert f.read() == b"efghij" and f.read(3) == b""
    f.seek(-3, io.SEEK_END)
    assert f.read(2) == b"hi"
    f.seek(2)
    assert f.read(3) == b"cde"
    f.close()


def test_remux_refuses_a_codec_configuration_change(tmp_path):
    media = encode(seconds=2.0)
    other = encode(seconds=2.0, width=352, height=288)
    last = max(u.dts for u in media.units) + 40
    second = [dataclasses.replace(u, dts=u.dts + last, pts=u.pts + last, discontinuity=(i == 0))
              for i, u in enumerate(other.units)]
    segmenter = Segmenter(segment_duration=2.0, window=1, tag="t")
    made = []
    for unit in list(media.units) + second:
        made += segmenter.push(unit, 0.0)
    made += segmenter.finish(0.0)
    files = rf.RecordingFiles(tmp_path)
    files.create({"id": "x", "stream": "s", "started_at": 0.0})
    for segment in made:
        files.add_segment(segment)
    manifest = rf.load_manifest(tmp_path)
    assert len(manifest.inits()) == 2
    assert rf.render_vod_playlist(manifest).count("#EXT-X-MAP") == 2
    with pytest.raises(rf.RemuxError, match="video codec configuration changed"):
        rf.remux_mp4(tmp_path, manifest)
    assert not list(tmp_path.glob("*download*"))
