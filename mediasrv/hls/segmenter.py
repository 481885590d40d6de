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

Low-Latency HLS (``part_duration`` set, fMP4 only; draft-pantos-hls-rfc8216bis):

- The open segment is cut into parts, each one ``moof``+``mdat`` (``Fmp4Writer.fragment``),
  written the moment the unit that starts the next part proves the last sample's
  duration. A segment's bytes are the concatenation of its parts; EXTINF, cut rule,
  window and retention of segments stay exactly as above.
- Part cut rule, on each unit of the lead track (video; audio when audio-only), with D
  the open part's duration if cut here and f the frame interval (the median of the last
  five, + 1 ms as millisecond timestamps alternate): cut when D + f exceeds PART-TARGET
  (the next frame would not fit). If the frame came late and D
  already exceeds it, the part is closed at its previous frame instead (it is not
  published yet, so nothing listed changes). Parts therefore hold whole frames, never
  exceed PART-TARGET and fill at least 85 % of it (§4.4.4.9) but for the last of a segment.
- PART-TARGET is ``part_duration``, unless the frame interval (the larger of the first
  two) is too coarse for whole frames to fill 85-100 % of it: then it is the nearest
  whole number of frames plus half a frame for timestamp jitter (``choose_part_target``).
- INDEPENDENT=YES on parts whose first video frame is a keyframe (audio-only: all).
- The init segment of a segment is chosen at its first part (from the tracks seen so
  far); a track that appears later in that segment is held back until the next segment
  starts (a keyframe cut is forced), as for an audio configuration change.
- At a break (reconnect) while nothing of the open segment was published yet, the open
  segment continues across it when the track and timeline allow (it then carries the
  EXT-X-DISCONTINUITY) rather than closing as a segment of a frame or two.
- Parts are listed (EXT-X-PART) for the segment being built and for the complete
  segments that end within 3 target durations of the playlist's end; when a segment's
  parts leave the playlist they stay downloadable for 3 more target durations (and never
  longer than their segment), so memory stays bounded by the segment bound above.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Mapping

from mediasrv.hls import mpegts, names
from mediasrv.hls.codecs import CodecConfigError, codec_string, parse_audio_specific_config
from mediasrv.hls.fmp4 import Fmp4Writer, TrackRun
from mediasrv.hls.mpegts import TsWriter
from mediasrv.hls.playlist import (
    MediaPlaylist,
    PartialSegment,
    PlaylistPart,
    PlaylistSegment,
    ServerControl,
    round_half_up,
)
from mediasrv.media.types import MediaUnit, TrackInfo, TrackKind

#: Without video for this long (media time) at the start, the stream is audio-only.
AUDIO_ONLY_AFTER_MS = 1000
MAX_SEGMENT_MS = 30_000
#: Audio this far past the last video frame of a segment means video stopped: cut.
VIDEO_GONE_MS = 5_000
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
CUT_FRACTION = 0.95
DEFAULT_FRAME_MS = 33
#: Parts are listed while within this many target durations of the playlist's end, and
#: stay downloadable this many target durations after leaving it.
PART_WINDOW_TARGETS = 3
#: Frame intervals the part cut rule takes the median of.
LEAD_INTERVALS = 5
#: Timestamp jitter (ms) allowed for when PART-TARGET is one or two frames.
PART_JITTER_MS = 2
#: Frame intervals up to this fraction of the part target let parts fill >= 85 % of it.
FINE_FRAME_FRACTION = 0.125
#: A break whose first unit follows the open segment's last within this many ms (a
#: reconnect, rebased by the hub) may continue that segment (parts only, see
#: ``Segmenter._continue_across_break``).
MERGE_GAP_MS = 1000
#: The playlist version of low-latency playlists (EXT-X-SKIP needs 9).
LOW_LATENCY_VERSION = 9


def choose_part_target(part_duration_ms: float, frame_ms: float | None) -> int:
    """PART-TARGET in ms for a configured part duration and the lead track's frame interval.

    Fine frames (interval <= 1/8 of the duration): the configured duration, so every part
    but the last of a segment is within one frame (<= 12.5 %) of it. Coarser frames: the
    nearest whole number N of frames plus half a frame, so that parts of N frames fit
    however the millisecond timestamps jitter (up to half a frame) and fill N / (N + 1/2)
    >= 85 % of it (N >= 3); for N of 1 or 2, N frames plus ``PART_JITTER_MS``.
    """
    target = max(1, round(part_duration_ms))
    if not frame_ms or frame_ms <= 0 or frame_ms <= FINE_FRAME_FRACTION * target:
        return target
    frames = max(1, round(part_duration_ms / frame_ms))
    margin = frame_ms / 2 if frames >= 3 else PART_JITTER_MS
    return int(math.ceil(frames * frame_ms + margin))


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
class Part:
    """One Low-Latency HLS part: a ``moof``+``mdat`` of the segment ``msn``."""

    msn: int
    index: int
    uri: str
    start_dts: int
    duration_ms: int
    independent: bool
    data: bytes
    created_at: float
    #: Set when the part leaves the playlist: when it may be dropped.
    expires_at: float | None = None

    @property
    def duration(self) -> float:
        return self.duration_ms / 1000


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
    #: Its Low-Latency HLS parts (``data`` is their concatenation); empty without parts.
    parts: tuple[Part, ...] = ()


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
    parts: int = 0
    part_bytes: int = 0


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
    # Low-Latency HLS: the parts written so far and the units of the open part.
    parts: list[Part] = field(default_factory=list)
    part_units: list[MediaUnit] = field(default_factory=list)
    part_start: int = 0
    part_lead_units: int = 0
    part_last_lead_dts: int | None = None
    #: The init segment, chosen when the first part is written (parts only).
    init: InitSegment | None = None
    new_init: bool = False


class Segmenter:
    """Cuts one rendition's units into segments and keeps its playlist window.

    ``tag`` goes into every file name (``init_TAG_N.mp4``, ``seg_TAG_MSN.m4s``) so names
    never repeat across broadcasts of one stream name (caches in front may keep them).
    ``expect_video``: True waits for a video keyframe however long audio comes alone,
    False starts audio-only at once, None decides after ``AUDIO_ONLY_AFTER_MS``.
    ``part_duration`` (seconds): cut Low-Latency HLS parts of about that duration
    (fMP4 only; ignored for MPEG-TS); None makes whole segments only.
    """

    def __init__(
        self,
        *,
        segment_duration: float = 2.0,
        window: int = 6,
        container: Container | str = Container.FMP4,
        tag: str = "0",
        expect_video: bool | None = None,
        part_duration: float | None = None,
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
        if part_duration is not None and part_duration <= 0:
            raise ValueError("part_duration must be positive")
        #: Low-Latency HLS parts are cut (fMP4 with a part duration).
        self.parts_enabled = part_duration is not None and self.container is Container.FMP4
        self.part_duration = float(part_duration) if self.parts_enabled else None
        #: PART-TARGET in ms, decided once the lead track's frame interval is known.
        self.part_target_ms: int | None = None
        #: Parts out of the playlist but still downloadable, oldest first.
        self.removed_parts: list[Part] = []
        self._parts_from = 0  # segments with a lower msn have no EXT-X-PART lines
        #: The last few frame intervals (ms) of the lead track, newest last.
        self._lead_intervals: list[int] = []
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
            if not self._continue_across_break(unit, now):
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
            self._append(open_, unit, now)
            return done

        # audio
        if open_.init is not None and TrackKind.AUDIO not in open_.init.tracks and TrackKind.VIDEO in open_.tracks:
            # Parts: audio appeared after this segment's init was chosen at its first
            # part: hold it back until the next keyframe starts a segment with a new init.
            self._force_cut = True
            self.stats.units_dropped += 1
            return done
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
        self._append(open_, unit, now)
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
            for part in segment.parts:
                self._files.pop(part.uri, None)
            changed = True
        while self.removed_parts and (
            self.removed_parts[0].expires_at is None
            or self.removed_parts[0].expires_at <= now
            or self.removed_parts[0].uri not in self._files
        ):
            self._files.pop(self.removed_parts.pop(0).uri, None)
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
            low_latency = self.parts_enabled and self.part_target_ms is not None
            partial = None
            preload_hint = None
            open_ = self._open
            if low_latency and not self.ended:
                if open_ is not None and open_.parts and open_.init is not None:
                    anchor_dts, anchor_wall = self._anchor if self._anchor is not None else (open_.start_dts, 0.0)
                    partial = PartialSegment(
                        parts=tuple(_listed(p) for p in open_.parts),
                        discontinuity=open_.discontinuity or (open_.new_init and self._next_msn > 0),
                        map_uri=open_.init.uri,
                        program_date_time=anchor_wall + (open_.start_dts - anchor_dts) / 1000,
                    )
                msn, index = self.next_part()
                preload_hint = names.part_name(self.tag, msn, index)
            part_target = self.part_target_ms / 1000 if low_latency and self.part_target_ms else None
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
                        parts=tuple(_listed(p) for p in s.parts) if low_latency and s.msn >= self._parts_from else (),
                    )
                    for s in self.segments
                ),
                ended=self.ended,
                version=LOW_LATENCY_VERSION if low_latency else self.container.playlist_version,
                independent_segments=all(s.independent for s in self.segments),
                part_target=part_target,
                server_control=ServerControl(
                    hold_back=3.0 * self.target_duration,
                    part_hold_back=3 * part_target,
                    can_skip_until=6.0 * self.target_duration,
                ) if part_target is not None else None,
                partial=partial,
                preload_hint=preload_hint,
            )
        return self._playlist

    # --- Low-Latency HLS lookups --------------------------------------------------------------

    @property
    def last_msn(self) -> int:
        """Media sequence number of the last complete segment (-1 before the first)."""
        return self._next_msn - 1

    def last_part(self) -> tuple[int, int] | None:
        """(msn, part index) of the newest part, None before the first (or without parts)."""
        open_ = self._open
        if open_ is not None and open_.parts:
            return self._next_msn, len(open_.parts) - 1
        if self.segments and self.segments[-1].parts:
            last = self.segments[-1]
            return last.msn, len(last.parts) - 1
        return None

    def next_part(self) -> tuple[int, int]:
        """(msn, part index) of the part being built (the preload hint)."""
        open_ = self._open
        return self._next_msn, (len(open_.parts) if open_ is not None else 0)

    def has_reached(self, msn: int, part: int | None = None) -> bool:
        """Whether the playlist holds segment ``msn`` (complete) or, with ``part``, part
        ``part`` of segment ``msn`` or anything later (blocking reload, §6.2.5.2)."""
        if part is None:
            return self.last_msn >= msn
        last = self.last_part()
        return (last is not None and last >= (msn, part)) or self.last_msn > msn

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
                self._append(self._open, a, now)
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
                self._append(self._open, a, now)
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
        self._open.part_start = unit.dts
        self._append(self._open, unit, now)

    def _append(self, open_: _Open, unit: MediaUnit, now: float) -> None:
        open_.units.append(unit)
        open_.tracks[unit.kind] = unit.track
        open_.bytes += len(unit.data)
        if unit.kind is TrackKind.VIDEO:
            if open_.last_video_dts is not None and unit.dts > open_.last_video_dts:
                open_.video_interval = unit.dts - open_.last_video_dts
            open_.last_video_dts = unit.dts
            open_.video_units += 1
        if self.parts_enabled:
            self._part_append(open_, unit, now)

    # --- Low-Latency HLS parts --------------------------------------------------------------

    def _continue_across_break(self, unit: MediaUnit, now: float) -> bool:
        """Parts only: at a break, continue the open segment instead of closing it when none
        of it was published yet (shorter than a part), the track is unchanged and the
        timestamps follow on (a publisher reconnect, rebased by the hub). The segment then
        carries the EXT-X-DISCONTINUITY. Closing it would publish a segment of a frame or
        two, shorter than video's composition delay: its audio cannot reach past the end
        of the segment before it, and hls.js (1.7, low-latency mode) then stops loading at
        the break, believing the buffer's end lies in fragments it already has.

        When the break's first unit is a keyframe at the open segment's cut point (a
        transcoder rung that came back after a restart, having delivered only the keyframe
        that opened this segment), it ends the segment as usual: the open segment keeps its
        units from before the break, with no discontinuity and its usual init (tagging it
        would also force a new init of only its tracks, and a second one for the next
        segment), and the discontinuity goes to the segment that keyframe starts."""
        open_ = self._open
        if not self.parts_enabled or open_ is None or open_.parts or not open_.units:
            return False
        if open_.tracks.get(unit.kind) != unit.track or not 0 <= unit.dts - open_.units[-1].dts <= MERGE_GAP_MS:
            return False
        cuts_here = unit.kind is TrackKind.VIDEO and unit.keyframe and unit.dts - open_.start_dts >= self.cut_ms
        if self.segments or self.removed:
            if cuts_here:
                self._break = True  # taken by the segment this unit opens (push cuts next)
            else:
                open_.discontinuity = True
        self._anchor = (unit.dts, now)
        self._preroll = []
        self._force_cut = False
        return True

    @staticmethod
    def _lead(open_: _Open) -> TrackKind:
        return TrackKind.VIDEO if TrackKind.VIDEO in open_.tracks else TrackKind.AUDIO

    def _part_append(self, open_: _Open, unit: MediaUnit, now: float) -> None:
        """Add ``unit`` to the open part, first closing the part if ``unit`` starts the next."""
        lead = unit.kind is self._lead(open_)
        if lead:
            last = open_.part_last_lead_dts
            if last is not None and unit.dts > last:
                self._lead_intervals.append(unit.dts - last)
                if len(self._lead_intervals) > LEAD_INTERVALS:
                    del self._lead_intervals[0]
            if open_.part_lead_units:
                self._part_cut_rule(open_, unit.dts, now)
        open_.part_units.append(unit)
        if lead:
            open_.part_lead_units += 1
            open_.part_last_lead_dts = unit.dts

    def _part_cut_rule(self, open_: _Open, dts: int, now: float, *, segment_end: bool = False) -> None:
        """A lead unit at ``dts`` arrived: close the open part if it ends there (or, when
        the frame came late, at its previous lead frame). ``segment_end``: ``dts`` ends the
        segment, so only the overshoot is fixed (the caller closes the last part)."""
        intervals = self._lead_intervals
        if self.part_target_ms is None:
            if len(intervals) < 2:
                return  # two frame intervals are needed to choose PART-TARGET
            assert self.part_duration is not None
            self.part_target_ms = choose_part_target(self.part_duration * 1000, max(intervals))
        # The next frame's interval: the median of the last few, plus 1 ms as millisecond
        # timestamps alternate (33/34 at 30 fps); one late frame does not move it.
        estimate = sorted(intervals)[len(intervals) // 2] + 1 if intervals else 0
        target = self.part_target_ms
        duration = dts - open_.part_start
        if duration > target and open_.part_lead_units > 1 and open_.part_last_lead_dts is not None:
            # Late frame: the part should have ended at its last lead frame; it is not
            # published yet, so close it there (the new part starts with that frame).
            self._close_part(open_, open_.part_last_lead_dts, now)
            duration = dts - open_.part_start
        if not segment_end and duration + estimate > target:
            self._close_part(open_, dts, now)

    def _close_part(self, open_: _Open, end_dts: int, now: float, *, final: bool = False) -> None:
        """Write the open part as [part_start, end_dts): its units stamped before
        ``end_dts`` (all of them when ``final``); the others start the next part."""
        if final:
            head, tail = open_.part_units, []
        else:
            head = [u for u in open_.part_units if u.dts < end_dts]
            tail = [u for u in open_.part_units if u.dts >= end_dts]
        open_.part_units = tail
        lead = self._lead(open_)
        start = open_.part_start
        open_.part_start = end_dts
        open_.part_lead_units = sum(1 for u in tail if u.kind is lead)
        tail_lead = [u.dts for u in tail if u.kind is lead]
        open_.part_last_lead_dts = tail_lead[-1] if tail_lead else None
        if not head:
            return
        if open_.init is None:
            open_.init, open_.new_init = self._init_for(open_.tracks, open_.discontinuity)
        assert self._fmp4 is not None
        video = [u for u in head if u.kind is TrackKind.VIDEO]
        audio = [u for u in head if u.kind is TrackKind.AUDIO]
        tracks = open_.init.tracks
        runs = []
        if video and TrackKind.VIDEO in tracks:
            runs.append(TrackRun(video[0].track, video, end_dts))
        if audio and TrackKind.AUDIO in tracks:
            runs.append(TrackRun(audio[0].track, audio, None))
        if not runs:
            return
        data = self._fmp4.fragment(runs)
        first_lead = next((u for u in head if u.kind is lead), head[0])
        msn = self._next_msn
        part = Part(
            msn=msn,
            index=len(open_.parts),
            uri=names.part_name(self.tag, msn, len(open_.parts)),
            start_dts=start,
            duration_ms=max(1, end_dts - start),
            independent=first_lead.keyframe if lead is TrackKind.VIDEO else True,
            data=data,
            created_at=now,
        )
        open_.parts.append(part)
        self._files[part.uri] = data
        self.stats.parts += 1
        self.stats.part_bytes += len(data)
        self._update_part_window(now)
        self._changed()

    def _update_part_window(self, now: float) -> None:
        """List parts for the segments within ``PART_WINDOW_TARGETS`` target durations of
        the end; the parts of older segments leave the playlist (and expire later)."""
        limit = PART_WINDOW_TARGETS * self.target_duration * 1000
        open_ = self._open
        total = sum(p.duration_ms for p in open_.parts) if open_ is not None else 0
        first = self._next_msn
        for segment in reversed(self.segments):
            total += round(segment.duration * 1000)
            if total > limit or segment.msn < self._parts_from:
                break
            first = segment.msn
        if first > self._parts_from:
            self._unlist_parts(first, now)

    def _unlist_parts(self, first: int, now: float, extra: tuple[Segment, ...] = ()) -> None:
        """Segments below msn ``first`` (and ``extra`` ones) no longer list their parts."""
        expires = now + PART_WINDOW_TARGETS * self.target_duration
        for segment in [*self.removed, *extra, *self.segments]:
            if self._parts_from <= segment.msn < first:
                for part in segment.parts:
                    if part.expires_at is None:
                        part.expires_at = expires
                        self.removed_parts.append(part)
        self._parts_from = first

    def _oversized(self, open_: _Open, unit: MediaUnit) -> bool:
        return unit.dts - open_.start_dts >= MAX_SEGMENT_MS or open_.bytes + len(unit.data) > MAX_SEGMENT_BYTES

    def _cut(self, unit: MediaUnit, now: float, *, independent: bool = True) -> list[Segment]:
        """Close the open segment at ``unit`` and open the next one with it."""
        open_ = self._open
        assert open_ is not None
        carry: list[MediaUnit] = []
        if self.parts_enabled:
            if unit.kind is self._lead(open_) and open_.part_lead_units:
                self._part_cut_rule(open_, unit.dts, now, segment_end=True)
            # Units stamped at or after the cut (audio) belong to the next segment.
            carry = [u for u in open_.part_units if u.dts >= unit.dts]
            if carry:
                open_.part_units = [u for u in open_.part_units if u.dts < unit.dts]
                moved = {id(u) for u in carry}
                open_.units = [u for u in open_.units if id(u) not in moved]
        elif unit.kind is TrackKind.VIDEO and TrackKind.VIDEO in open_.tracks:
            # Audio stamped at or after the cut belongs to the next segment.
            while open_.units and open_.units[-1].kind is TrackKind.AUDIO and open_.units[-1].dts >= unit.dts:
                carry.append(open_.units.pop())
            carry.reverse()
        done = self._close(unit.dts, now)
        self._force_cut = False
        self._open_segment(unit, now, independent=independent)
        for a in carry:
            self._append(self._open, a, now)
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
        if self.parts_enabled:
            if end_dts is None and self.part_target_ms is not None:
                # Estimated end (a break or the end): keep the last part within PART-TARGET.
                last_lead = open_.part_last_lead_dts if open_.part_last_lead_dts is not None else open_.part_start
                end = max(last_lead + 1, min(end, open_.part_start + self.part_target_ms))
            if open_.part_units:
                self._close_part(open_, end, now, final=True)
            if not open_.parts:
                return []
            end = open_.parts[-1].start_dts + open_.parts[-1].duration_ms
        duration = (end - open_.start_dts) / 1000

        if self.parts_enabled:
            assert open_.init is not None
            init, new_init = open_.init, open_.new_init
        else:
            init, new_init = self._init_for(tracks, open_.discontinuity)
        discontinuity = open_.discontinuity or (new_init and (self._next_msn > 0))
        if self.parts_enabled:
            data = b"".join(p.data for p in open_.parts)
        elif self.container is Container.FMP4:
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
            parts=tuple(open_.parts),
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
        if self.parts_enabled:
            self._update_part_window(now)
        while len(self.segments) > self.window:
            listed = sum(s.duration for s in self.segments)
            gone = self.segments.pop(0)
            gone.expires_at = now + listed + self.target_duration
            if gone.parts and gone.msn >= self._parts_from:
                self._unlist_parts(gone.msn + 1, now, (gone,))
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


def _listed(part: Part) -> PlaylistPart:
    return PlaylistPart(part.uri, part.duration, part.independent)


def _audio_frame_ms(track: TrackInfo | None) -> int:
    if track is None:
        return DEFAULT_FRAME_MS
    try:
        aac = parse_audio_specific_config(track.config)
        return max(1, round(aac.frame_length * 1000 / aac.sample_rate))
    except (CodecConfigError, ZeroDivisionError):
        return 21
