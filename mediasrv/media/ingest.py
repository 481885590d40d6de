"""FLV tag bodies from an RTMP publisher → :class:`TrackInfo` + :class:`MediaUnit`.

:class:`FlvIngest` is what the RTMP adapter feeds, one object per publishing session:
``video(timestamp, payload)`` / ``audio(timestamp, payload)`` with the RTMP message
timestamp (32-bit ms) and body. It returns a :class:`MediaUnit` for each coded frame and
None for everything else (sequence headers, metadata, commands, end of sequence, empty
messages, frames before their sequence header, tracks other than 0 of a multitrack stream).

Errors propagate to the caller, after being counted in :attr:`FlvIngest.stats`:

* :class:`UnsupportedCodecError`: the publisher uses a codec we don't carry (e.g. Opus,
  MP3, VP6 or VP8). The adapter will usually reject the stream.
* :class:`MalformedMediaError`: a truncated/invalid tag, configuration record or NAL/OBU
  framing. The adapter may drop the message or close the connection.

The ingest state is unchanged by a message that raised.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mediasrv.media import aac, av1, avc, hevc, vp9
from mediasrv.media.errors import MediaError, UnsupportedCodecError
from mediasrv.media.flv import (
    AudioTag,
    TagPacket,
    VideoTag,
    aac_raw_frame,
    avc_coded_frame,
    parse_audio_tag,
    parse_video_tag,
)
from mediasrv.media.timestamps import TrackClock
from mediasrv.media.types import Codec, MediaUnit, TrackInfo

# Enum members as module constants for the per-message paths: on CPython 3.11
# ``Enum.MEMBER`` is an unspecialised class attribute look-up (~60 ns), a module
# global ~5 ns, and these are read for every audio/video message.
_SEQUENCE_HEADER = TagPacket.SEQUENCE_HEADER
_CODED_FRAME = TagPacket.CODED_FRAME
_NAL_CODECS = (Codec.H264, Codec.HEVC)
_H264 = Codec.H264
_AAC = Codec.AAC

__all__ = ["FlvIngest", "IngestStats", "TrackStats", "track_from_config"]


def track_from_config(codec: Codec, config: bytes) -> TrackInfo:
    """Build a :class:`TrackInfo` from a codec configuration record.

    ``config`` is an avcC, hvcC, av1C, vpcC or AudioSpecificConfig. Width and height come
    from the SPS / sequence header (0 for VP9, whose vpcC has no picture size). Raises
    :class:`MalformedMediaError` if the record (or its SPS) is invalid.
    """
    config = bytes(config)
    if codec is Codec.H264:
        c = avc.parse_avcc(config)
        sps = c.parsed_sps()
        return TrackInfo(codec, config, c.codec_string, width=sps.width, height=sps.height,
                         nal_length_size=c.nal_length_size)
    if codec is Codec.HEVC:
        h = hevc.parse_hvcc(config)
        hsps = h.parsed_sps()
        return TrackInfo(codec, config, h.codec_string, width=hsps.width, height=hsps.height,
                         nal_length_size=h.nal_length_size)
    if codec is Codec.AV1:
        a = av1.parse_av1c(config)
        seq = a.sequence_header
        width, height = (seq.max_frame_width, seq.max_frame_height) if seq else (0, 0)
        return TrackInfo(codec, config, a.codec_string, width=width, height=height)
    if codec is Codec.VP9:
        v = vp9.parse_vpcc(config)
        return TrackInfo(codec, config, v.codec_string)
    if codec is Codec.AAC:
        asc = aac.parse_asc(config)
        return TrackInfo(codec, config, asc.codec_string, sample_rate=asc.sample_rate, channels=asc.channels)
    raise UnsupportedCodecError(f"no configuration parser for {codec.value}")


@dataclass(slots=True)
class TrackStats:
    """Plain counters for one direction (video or audio) of an ingest session."""

    units: int = 0  #: MediaUnits returned
    bytes: int = 0  #: payload bytes of those units
    keyframes: int = 0
    sequence_headers: int = 0  #: sequence headers received (repeats included)
    config_changes: int = 0  #: sequence headers that replaced a different configuration
    before_sequence_header: int = 0  #: coded frames dropped: no (matching) sequence header yet
    empty: int = 0  #: empty messages or empty coded frames
    ignored: int = 0  #: metadata, commands, end of sequence, multichannel config, TS start
    other_tracks: int = 0  #: multitrack messages for a track other than 0
    unsupported: int = 0  #: messages that raised UnsupportedCodecError
    malformed: int = 0  #: messages that raised MalformedMediaError
    # Timestamp corrections (copied from the track's TrackClock).
    wraps: int = 0
    monotonic_fixes: int = 0
    rebases: int = 0
    pts_fixes: int = 0

    @property
    def timestamp_corrections(self) -> int:
        """All timestamp corrections of this track."""
        return self.wraps + self.monotonic_fixes + self.rebases + self.pts_fixes


@dataclass(slots=True)
class IngestStats:
    """Counters of an ingest session, read by the metrics collector."""

    video: TrackStats = field(default_factory=TrackStats)
    audio: TrackStats = field(default_factory=TrackStats)


class FlvIngest:
    """Turns one publisher's RTMP audio/video message bodies into media units."""

    def __init__(self, *, max_jump_ms: int = 5000) -> None:
        self.stats = IngestStats()
        self._video_track: TrackInfo | None = None
        self._audio_track: TrackInfo | None = None
        self._video_clock = TrackClock(max_jump_ms, default_interval_ms=33)
        self._audio_clock = TrackClock(max_jump_ms, default_interval_ms=21)

    @property
    def video_track(self) -> TrackInfo | None:
        """The current video track (None before the first video sequence header)."""
        return self._video_track

    @property
    def audio_track(self) -> TrackInfo | None:
        """The current audio track (None before the first audio sequence header)."""
        return self._audio_track

    # ------------------------------------------------------------------ video

    def video(self, timestamp: int, payload: bytes) -> MediaUnit | None:
        """Feed one video message; return its unit or None (see the module docstring)."""
        s = self.stats.video
        if not payload:
            s.empty += 1
            return None
        frame = avc_coded_frame(payload)
        if frame is not None:
            # Nearly every message of an H.264 stream: the steps of the general path
            # below for a coded H.264 frame of track 0, without a VideoTag.
            track = self._video_track
            if track is None or track.codec is not _H264:
                s.before_sequence_header += 1
                return None
            keyframe, composition_time, data = frame
            if not data:
                s.empty += 1
                return None
            try:
                avc.check_length_prefixed(data, track.nal_length_size)
            except MediaError:
                s.malformed += 1
                raise
            return self._unit(track, self._video_clock, s, timestamp, composition_time, keyframe, data)
        try:
            tag = parse_video_tag(payload)
            if tag.track_id != 0:
                s.other_tracks += 1
                return None
            if tag.packet is _SEQUENCE_HEADER:
                self._video_sequence_header(tag)
                return None
            if tag.packet is not _CODED_FRAME:
                s.ignored += 1
                return None
            track = self._video_track
            if track is None or track.codec is not tag.codec:
                s.before_sequence_header += 1
                return None
            data, track = self._video_payload(track, tag)
            if not data:
                s.empty += 1
                return None
        except UnsupportedCodecError:
            s.unsupported += 1
            raise
        except MediaError:
            s.malformed += 1
            raise
        self._video_track = track
        return self._unit(track, self._video_clock, s, timestamp, tag.composition_time, tag.keyframe, data)

    def _video_sequence_header(self, tag: VideoTag) -> None:
        assert tag.codec is not None
        s = self.stats.video
        s.sequence_headers += 1
        current = self._video_track
        if current is not None and current.codec is tag.codec and current.config == tag.data:
            return
        new = track_from_config(tag.codec, tag.data)
        if current is not None:
            s.config_changes += 1
        self._video_track = new

    @staticmethod
    def _video_payload(track: TrackInfo, tag: VideoTag) -> tuple[bytes, TrackInfo]:
        """Validate/normalise a coded frame; may return an updated track (picture size).

        H.264/HEVC: the NAL length prefixes must add up (data unchanged). AV1: converted to
        the MP4 sample form (temporal delimiters dropped; may become empty). VP9/AV1: the
        first key frame fills in a picture size the configuration record lacked.
        """
        data = tag.data
        if not data:
            return data, track
        if track.codec in _NAL_CODECS:
            avc.check_length_prefixed(data, track.nal_length_size)  # MalformedMediaError if not
        elif track.codec is Codec.AV1:
            data = av1.filter_obus_for_mp4(data)
            if track.width == 0 and tag.keyframe:
                seq = av1.find_sequence_header(data)
                if seq is not None:
                    track = _with_size(track, seq.max_frame_width, seq.max_frame_height)
        elif track.codec is Codec.VP9 and track.width == 0 and tag.keyframe:
            header = vp9.parse_frame_header(data)
            if header.keyframe:
                track = _with_size(track, header.width, header.height)
        return data, track

    # ------------------------------------------------------------------ audio

    def audio(self, timestamp: int, payload: bytes) -> MediaUnit | None:
        """Feed one audio message; return its unit or None (see the module docstring)."""
        s = self.stats.audio
        if not payload:
            s.empty += 1  # RTMP "audio silence" message
            return None
        data = aac_raw_frame(payload)
        if data is not None:
            # Most messages of a stream: the steps of the general path below for a raw
            # AAC frame of track 0, without an AudioTag.
            track = self._audio_track
            if track is None or track.codec is not _AAC:
                s.before_sequence_header += 1
                return None
            if not data:
                s.empty += 1
                return None
            return self._unit(track, self._audio_clock, s, timestamp, 0, True, data)
        try:
            tag = parse_audio_tag(payload)
            if tag.track_id != 0:
                s.other_tracks += 1
                return None
            if tag.packet is _SEQUENCE_HEADER:
                self._audio_sequence_header(tag)
                return None
        except UnsupportedCodecError:
            s.unsupported += 1
            raise
        except MediaError:
            s.malformed += 1
            raise
        if tag.packet is not _CODED_FRAME:
            s.ignored += 1
            return None
        track = self._audio_track
        if track is None or track.codec is not tag.codec:
            s.before_sequence_header += 1
            return None
        if not tag.data:
            s.empty += 1
            return None
        return self._unit(track, self._audio_clock, s, timestamp, 0, True, tag.data)

    def _audio_sequence_header(self, tag: AudioTag) -> None:
        s = self.stats.audio
        s.sequence_headers += 1
        current = self._audio_track
        if current is not None and current.codec is tag.codec and current.config == tag.data:
            return
        new = track_from_config(tag.codec, tag.data)
        if current is not None:
            s.config_changes += 1
        self._audio_track = new

    # ------------------------------------------------------------------ shared

    @staticmethod
    def _unit(
        track: TrackInfo, clock: TrackClock, s: TrackStats,
        timestamp: int, composition_time: int, keyframe: bool, data: bytes,
    ) -> MediaUnit:
        dts, pts, discontinuity = clock.convert_values(timestamp, composition_time)
        s.wraps, s.monotonic_fixes = clock.wraps, clock.monotonic_fixes
        s.rebases, s.pts_fixes = clock.rebases, clock.pts_fixes
        s.units += 1
        s.bytes += len(data)
        if keyframe:
            s.keyframes += 1
        return MediaUnit(track, dts, pts, keyframe, data, discontinuity)


def _with_size(track: TrackInfo, width: int, height: int) -> TrackInfo:
    return dataclasses.replace(track, width=width, height=height)
