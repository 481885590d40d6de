"""The segmenter: MediaUnits of one rendition in, HLS segments and playlist snapshots out.

Pure (no clock, no I/O): every call that needs the time takes ``now`` (unix seconds).

Rules (RFC 8216 §3, §4.3.3, §6.2.1–6.2.2; PROTOCOLS.md):

- A segment starts at a video keyframe (audio-only: at any frame) and is cut at the next
  video keyframe (audio-only: frame) whose DTS is at least 95 % (audio-only: all but 10 ms)
  of ``segment_duration`` after the segment's start (the 5 % absorb millisecond rounding of keyframe intervals, so a 2 s GOP at
  29.97 fps never doubles a segment). Audio frames whose DTS lies at or after the cut move
  to the new segment, so segments tile the timeline at the keyframes. EXTINF is the
  distance between consecutive segment starts in DTS (the last segment before a
  break or the end: up to its last frame plus one frame duration).
- A segment that would grow past ``MAX_SEGMENT_MS`` or ``MAX_SEGMENT_BYTES`` with no
  keyframe in sight (a broken encoder) is cut at the next frame anyway; it is then not
  independent and the playlist drops EXT-X-INDEPENDENT-SEGMENTS while it is listed. When
  video stops but audio goes on (``video_gone_ms``), the stream continues audio-only.
- A discontinuity (``unit.discontinuity``: publisher reconnect, ``mark_gap()``: a reader
  that skipped ahead) closes the open segment; the next one carries EXT-X-DISCONTINUITY.
  A change of codec configuration (a new TrackInfo for a kind, a kind appearing) gives a
  new init segment (new EXT-X-MAP) and a discontinuity too. A kind that merely pauses
  keeps the old init; after a discontinuity the init matches the tracks exactly.
- The playlist holds the last ``window`` segments. A segment that leaves it stays
  downloadable until ``now + playlist duration + target duration`` (§6.2.2) and at most
  ``window + 3`` removed segments are kept, so memory is bounded by ``2 * window + 3``
  segments plus the open one, whatever the pace of the input. MEDIA-SEQUENCE grows by one
  per removed segment, DISCONTINUITY-SEQUENCE by one per removed EXT-X-DISCONTINUITY.
- TARGETDURATION is ``round(segment_duration)`` raised to ``round(EXTINF)`` of any longer
  segment ever made, so it only grows and is never below a listed EXTINF (§4.3.3.1).
  (The RFC wants it constant; an encoder whose GOP exceeds the configured duration
  makes that impossible, and growing once beats lying.)
- PROGRAM-DATE-TIME: the wall clock of the first unit after the start or a
  discontinuity anchors the DTS timeline; each segment's date is that anchor plus its DTS
  offset, so dates and EXTINF agree.

Low-Latency HLS (later) slots in here: the open segment becomes a list of parts, a part
closing when the next unit proves its last sample's duration; a segment's bytes are
the concatenation of its parts' ``moof``+``mdat`` (``Fmp4Writer.fragment`` per part), and
the listed-segment/retention bookkeeping below stays as it is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from mediasrv.hls import mpegts, names
from mediasrv.hls.codecs import CodecConfigError, codec_string, parse_audio_specific_config
from mediasrv.hls.fmp4 import Fmp4Writer, TrackRun
from mediasrv.hls.mpegts import TsWriter
from mediasrv.hls.playlist import MediaPlaylist, PlaylistSegment, round_half_up
from mediasrv.media.types import MediaUnit, TrackInfo, TrackKind

#: Without video for this long (media time) at the start, the stream is audio-only.
AUDIO_ONLY_AFTER_MS = 1000
MAX_SEGMENT_MS = 30_000
#: Audio this far past the last video frame of a segment means video stopped: cut.
VIDEO_GONE_MS = 5_000
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
CUT_FRACTION = 0.95
DEFAULT_FRAME_MS = 33


class Container(enum.Enum):
    FMP4 = "fmp4"
    MPEGTS = "mpegts"

    @property
    def extension(self) -> str:
        return "m4s" if self is Container.FMP4 else "ts"

    @property
    def playlist_version(self) -> int:
        return 7 if self is Container.FMP4 else 3


@dataclass(slots=True, eq=False)
class InitSegment:
    id: int
    tracks: dict[TrackKind, TrackInfo]
    #: Init segment URI and bytes (fMP4); for MPEG-TS ``uri`` is None and ``data`` empty.
    uri: str | None
    data: bytes


@dataclass(slots=True, eq=False)
class Segment:
    msn: int
    uri: str
    start_dts: int
    duration: float
    discontinuity: bool
    independent: bool
    init: InitSegment
    program_date_time: float
    data: bytes
    created_at: float
    video_frames: int = 0
    #: Set when the segment leaves the playlist: when it may be dropped.
    expires_at: float | None = None


@dataclass(slots=True)
class SegmenterStats:
    segments: int = 0
    bytes: int = 0
    duration: float = 0.0
    #: Peak bitrate (bit/s) over segments of at least half the target duration.
    peak_bitrate: int = 0
    #: Peak over all segments (used while no segment is long enough).
    peak_bitrate_any: int = 0
    video_frames: int = 0
    video_duration: float = 0.0
    units_in: int = 0
    units_dropped: int = 0
    discontinuities: int = 0
    forced_cuts: int = 0


@dataclass(slots=True, eq=False)
class _Open:
    units: list[MediaUnit]
    tracks: dict[TrackKind, TrackInfo]
    start_dts: int
    discontinuity: bool
    independent: bool
    bytes: int = 0
    video_units: int = 0
    last_video_dts: int | None = None
    video_interval: int | None = None
    extra: dict = field(default_factory=dict)


class Segmenter:
    """Cuts one rendition's units into segments and keeps its playlist window.

    ``tag`` goes into every file name (``init_TAG_N.mp4``, ``seg_TAG_MSN.m4s``) so names
    never repeat across broadcasts of one stream name (caches in front may keep them).
    ``expect_video``: True waits for a video keyframe however long audio comes alone,
    False starts audio-only at once, None decides after ``AUDIO_ONLY_AFTER_MS``.
    """

    def __init__(
        self,
        *,
        segment_duration: float = 2.0,
        window: int = 6,
        container: Container | str = Container.FMP4,
        tag: str = "0",
        expect_video: bool | None = None,
    ) -> None:
        if segment_duration <= 0:
            raise ValueError("segment_duration must be positive")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.segment_duration = float(segment_duration)
        self.window = int(window)
        self.container = Container(container)
        self.tag = tag
        self.expect_video = expect_video
        self.max_removed = self.window + 3
        self.cut_ms = int(self.segment_duration * 1000 * CUT_FRACTION)
        # Audio-only: every frame is a sync point, so cut at the first one at the target.
        self.audio_cut_ms = int(self.segment_duration * 1000) - 10
        self.video_gone_ms = max(VIDEO_GONE_MS, int(3 * self.segment_duration * 1000))
        self.target_duration = max(1, round_half_up(self.segment_duration))
        self.media_sequence = 0
        self.discontinuity_sequence = 0
        self.ended = False
        self.stats = SegmenterStats()
        #: Listed segments, oldest first (at most ``window``).
        self.segments: list[Segment] = []
        #: Segments out of the playlist but still downloadable, oldest first.
        self.removed: list[Segment] = []
        self.init: InitSegment | None = None
        #: Bumped on every change of the playlist (new segment, end).
        self.version = 0
        self._files: dict[str, bytes] = {}
        self._open: _Open | None = None
        self._preroll: list[MediaUnit] = []
        self._video_seen = False
        self._break = False  # the next segment starts with a discontinuity
        self._gap = False  # treat the next unit as a discontinuity
        self._force_cut = False
        self._anchor: tuple[int, float] | None = None  # (dts, wall clock)
        self._next_msn = 0
        self._next_init = 0
        self._fmp4: Fmp4Writer | None = None
        self._fragment_sequence = 1
        self._ts = TsWriter()
        self._playlist: MediaPlaylist | None = None
        self._last_video_interval: int | None = None

    # --- input ----------------------------------------------------------------------------

    def mark_gap(self) -> None:
        """Units were lost before the next one (a reader skipped): start a discontinuity."""
        self._gap = True

    def push(self, unit: MediaUnit, now: float) -> list[Segment]:
        """Add one unit; returns the segments this completed (usually none or one)."""
        if self.ended:
            return []
        self.stats.units_in += 1
        done: list[Segment] = []
        kind = unit.kind
        if unit.discontinuity or self._gap:
            self._gap = False
            if self._open is not None:
                done += self._close(None, now)
            self._open = None
            self._preroll = []
            self._anchor = None
            self._force_cut = False
            if self.segments or self.removed or done:
                self._break = True
        if kind is TrackKind.VIDEO:
            self._video_seen = True
        if self.container is Container.MPEGTS and (self._next_msn or self._open) and not mpegts.supports(unit.track):
            self.stats.units_dropped += 1
            return done

        open_ = self._open
        if open_ is None:
            self._start(unit, now)
            return done

        current = open_.tracks.get(kind)
        if kind is TrackKind.VIDEO:
            if TrackKind.VIDEO not in open_.tracks or (current is not None and current != unit.track):
                # Video appears in an audio-only segment, or its configuration changed.
                if not unit.keyframe:
                    self.stats.units_dropped += 1
                    return done
                done += self._cut(unit, now)
                return done
            if unit.keyframe and (self._force_cut or unit.dts - open_.start_dts >= self.cut_ms):
                done += self._cut(unit, now)
                return done
            if self._oversized(open_, unit):
                self.stats.forced_cuts += 1
                done += self._cut(unit, now, independent=unit.keyframe)
                return done
            self._append(open_, unit)
            return done

        # audio
        if current is not None and current != unit.track:
            if TrackKind.VIDEO in open_.tracks:
                # New audio configuration mid-GOP: drop it until the next keyframe cuts.
                self._force_cut = True
                self.stats.units_dropped += 1
                return done
            done += self._cut(unit, now)
            return done
        if TrackKind.VIDEO not in open_.tracks:
            if unit.dts - open_.start_dts >= self.audio_cut_ms or self._oversized(open_, unit):
                done += self._cut(unit, now)
                return done
        elif unit.dts - (open_.last_video_dts or open_.start_dts) >= self.video_gone_ms:
            # Video stopped coming while audio goes on: continue audio-only rather than
            # grow one segment without bound (the init, a superset, stays).
            self.stats.forced_cuts += 1
            done += self._cut(unit, now)
            return done
        self._append(open_, unit)
        return done

    def finish(self, now: float) -> list[Segment]:
        """The stream ended: close the open segment and add EXT-X-ENDLIST."""
        if self.ended:
            return []
        done: list[Segment] = []
        if self._open is not None:
            done = self._close(None, now)
            self._open = None
        self._preroll = []
        self.ended = True
        self._changed()
        return done

    def expire(self, now: float) -> None:
        """Forget removed segments whose grace (§6.2.2) has passed."""
        changed = False
        while self.removed and (
            len(self.removed) > self.max_removed
            or (self.removed[0].expires_at is not None and self.removed[0].expires_at <= now)
        ):
            segment = self.removed.pop(0)
            self._files.pop(segment.uri, None)
            changed = True
        if changed:
            self._drop_unused_inits()

    # --- output ---------------------------------------------------------------------------

    def get(self, name: str) -> bytes | None:
        """Bytes of a listed or still retained segment or init segment, by file name."""
        return self._files.get(name)

    def file_names(self) -> list[str]:
        return list(self._files)

    @property
    def started(self) -> bool:
        """Whether a segment was ever opened (the start decision is behind us)."""
        return self._open is not None or self._next_msn > 0

    @property
    def tracks(self) -> Mapping[TrackKind, TrackInfo]:
        return self.init.tracks if self.init is not None else {}

    @property
    def codecs(self) -> str:
        tracks = self.tracks
        return ",".join(codec_string(tracks[k]) for k in (TrackKind.VIDEO, TrackKind.AUDIO) if k in tracks)

    @property
    def frame_rate(self) -> float | None:
        if self.stats.video_duration <= 0 or not self.stats.video_frames:
            return None
        return self.stats.video_frames / self.stats.video_duration

    @property
    def peak_bitrate(self) -> int:
        return self.stats.peak_bitrate or self.stats.peak_bitrate_any

    @property
    def average_bitrate(self) -> int:
        if self.stats.duration <= 0:
            return 0
        return int(self.stats.bytes * 8 / self.stats.duration)

    def playlist(self) -> MediaPlaylist:
        """A snapshot of the media playlist (cached until the next change)."""
        if self._playlist is None:
            self._playlist = MediaPlaylist(
                target_duration=self.target_duration,
                media_sequence=self.media_sequence,
                discontinuity_sequence=self.discontinuity_sequence,
                segments=tuple(
                    PlaylistSegment(
                        uri=s.uri,
                        duration=s.duration,
                        discontinuity=s.discontinuity,
                        map_uri=s.init.uri,
                        program_date_time=s.program_date_time,
                    )
                    for s in self.segments
                ),
                ended=self.ended,
                version=self.container.playlist_version,
                independent_segments=all(s.independent for s in self.segments),
            )
        return self._playlist

    # --- internals ------------------------------------------------------------------------

    def _start(self, unit: MediaUnit, now: float) -> None:
        """No segment open: begin one if this unit can start it, else wait (pre-roll)."""
        kind = unit.kind
        if kind is TrackKind.VIDEO:
            if not unit.keyframe:
                self.stats.units_dropped += 1
                return
            audio = [u for u in self._preroll if u.dts >= unit.dts]
            self.stats.units_dropped += len(self._preroll) - len(audio)
            self._preroll = []
            self._open_segment(unit, now)
            for a in audio:
                self._append(self._open, a)
            return
        audio_only = self.expect_video is False or (
            self.expect_video is None
            and not self._video_seen
            and self._preroll
            and unit.dts - self._preroll[0].dts >= AUDIO_ONLY_AFTER_MS
        )
        if audio_only:
            preroll = [u for u in self._preroll if u.track == unit.track]
            self._preroll = []
            self._open_segment(preroll[0] if preroll else unit, now)
            for a in preroll[1:] + ([unit] if preroll else []):
                self._append(self._open, a)
            return
        self._preroll.append(unit)
        while self._preroll and unit.dts - self._preroll[0].dts > AUDIO_ONLY_AFTER_MS:
            self._preroll.pop(0)
            self.stats.units_dropped += 1

    def _open_segment(self, unit: MediaUnit, now: float, *, independent: bool = True) -> None:
        if self.container is Container.MPEGTS and self._next_msn == 0 and not mpegts.supports(unit.track):
            self.container = Container.FMP4  # e.g. AV1/VP9 asked for in TS: fMP4 it is
        if self._anchor is None:
            self._anchor = (unit.dts, now)
        self._open = _Open(
            units=[],
            tracks={},
            start_dts=unit.dts,
            discontinuity=self._break,
            independent=independent,
        )
        self._break = False
        self._append(self._open, unit)

    def _append(self, open_: _Open, unit: MediaUnit) -> None:
        open_.units.append(unit)
        open_.tracks[unit.kind] = unit.track
        open_.bytes += len(unit.data)
        if unit.kind is TrackKind.VIDEO:
            if open_.last_video_dts is not None and unit.dts > open_.last_video_dts:
                open_.video_interval = unit.dts - open_.last_video_dts
            open_.last_video_dts = unit.dts
            open_.video_units += 1

    def _oversized(self, open_: _Open, unit: MediaUnit) -> bool:
        return unit.dts - open_.start_dts >= MAX_SEGMENT_MS or open_.bytes + len(unit.data) > MAX_SEGMENT_BYTES

    def _cut(self, unit: MediaUnit, now: float, *, independent: bool = True) -> list[Segment]:
        """Close the open segment at ``unit`` and open the next one with it."""
        open_ = self._open
        assert open_ is not None
        carry: list[MediaUnit] = []
        if unit.kind is TrackKind.VIDEO and TrackKind.VIDEO in open_.tracks:
            # Audio stamped at or after the cut belongs to the next segment.
            while open_.units and open_.units[-1].kind is TrackKind.AUDIO and open_.units[-1].dts >= unit.dts:
                carry.append(open_.units.pop())
            carry.reverse()
        done = self._close(unit.dts, now)
        self._force_cut = False
        self._open_segment(unit, now, independent=independent)
        for a in carry:
            self._append(self._open, a)
        return done

    def _close(self, end_dts: int | None, now: float) -> list[Segment]:
        open_ = self._open
        self._open = None
        if open_ is None or not open_.units:
            return []
        units = open_.units
        tracks = open_.tracks
        video = tracks.get(TrackKind.VIDEO)
        audio = tracks.get(TrackKind.AUDIO)
        if video is not None:
            last = open_.last_video_dts if open_.last_video_dts is not None else open_.start_dts
            interval = open_.video_interval or self._last_video_interval or DEFAULT_FRAME_MS
            end = end_dts if end_dts is not None else last + interval
            if open_.video_interval:
                self._last_video_interval = open_.video_interval
        else:
            last = units[-1].dts
            end = end_dts if end_dts is not None else last + _audio_frame_ms(audio)
        end = max(end, open_.start_dts + 1)
        duration = (end - open_.start_dts) / 1000

        init, new_init = self._init_for(tracks, open_.discontinuity)
        discontinuity = open_.discontinuity or (new_init and (self._next_msn > 0))
        if self.container is Container.FMP4:
            assert self._fmp4 is not None
            runs = []
            if video is not None:
                runs.append(TrackRun(video, [u for u in units if u.kind is TrackKind.VIDEO], end))
            if audio is not None:
                runs.append(TrackRun(audio, [u for u in units if u.kind is TrackKind.AUDIO], None))
            data = self._fmp4.fragment(runs)
        else:
            data = self._ts.segment(tracks, units)

        anchor_dts, anchor_wall = self._anchor if self._anchor is not None else (open_.start_dts, now)
        msn = self._next_msn
        self._next_msn += 1
        segment = Segment(
            msn=msn,
            uri=names.segment_name(self.tag, msn, self.container.extension),
            start_dts=open_.start_dts,
            duration=duration,
            discontinuity=discontinuity,
            independent=open_.independent,
            init=init,
            program_date_time=anchor_wall + (open_.start_dts - anchor_dts) / 1000,
            data=data,
            created_at=now,
            video_frames=open_.video_units,
        )
        self._add(segment, now)
        return [segment]

    def _init_for(self, tracks: dict[TrackKind, TrackInfo], discontinuity: bool) -> tuple[InitSegment, bool]:
        current = self.init
        if current is not None:
            if current.tracks == tracks:
                return current, False
            if not discontinuity and all(current.tracks.get(k) == t for k, t in tracks.items()):
                return current, False  # a kind paused: keep the superset init
        init_id = self._next_init
        self._next_init += 1
        if self.container is Container.FMP4:
            if self._fmp4 is not None:
                self._fragment_sequence = self._fmp4.sequence_number
            self._fmp4 = Fmp4Writer(tracks, sequence_number=self._fragment_sequence)
            uri = names.init_name(self.tag, init_id)
            data = self._fmp4.init_segment()
            self._files[uri] = data
        else:
            uri, data = None, b""
        self.init = InitSegment(init_id, dict(tracks), uri, data)
        return self.init, True

    def _add(self, segment: Segment, now: float) -> None:
        stats = self.stats
        stats.segments += 1
        stats.bytes += len(segment.data)
        stats.duration += segment.duration
        if segment.discontinuity:
            stats.discontinuities += 1
        bitrate = int(len(segment.data) * 8 / segment.duration)
        stats.peak_bitrate_any = max(stats.peak_bitrate_any, bitrate)
        if segment.duration >= self.segment_duration / 2:
            stats.peak_bitrate = max(stats.peak_bitrate, bitrate)
        if segment.video_frames:
            stats.video_frames += segment.video_frames
            stats.video_duration += segment.duration
        self.target_duration = max(self.target_duration, round_half_up(segment.duration))
        self._files[segment.uri] = segment.data
        self.segments.append(segment)
        while len(self.segments) > self.window:
            listed = sum(s.duration for s in self.segments)
            gone = self.segments.pop(0)
            gone.expires_at = now + listed + self.target_duration
            self.media_sequence += 1
            if gone.discontinuity:
                self.discontinuity_sequence += 1
            self.removed.append(gone)
        self.expire(now)
        self._changed()

    def _drop_unused_inits(self) -> None:
        used = {s.init.uri for s in self.segments} | {s.init.uri for s in self.removed}
        if self.init is not None:
            used.add(self.init.uri)
        for name in [n for n in self._files if names.is_init_name(n) and n not in used]:
            del self._files[name]

    def _changed(self) -> None:
        self.version += 1
        self._playlist = None


def _audio_frame_ms(track: TrackInfo | None) -> int:
    if track is None:
        return DEFAULT_FRAME_MS
    try:
        aac = parse_audio_specific_config(track.config)
        return max(1, round(aac.frame_length * 1000 / aac.sample_rate))
    except (CodecConfigError, ZeroDivisionError):
        return 21
