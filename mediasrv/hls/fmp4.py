"""A CMAF / fragmented-MP4 writer (ISO/IEC 14496-12, ISO/IEC 23000-19), pure and stdlib-only.

Init segment: ``ftyp`` + ``moov`` (``mvhd``, one ``trak`` per track with an ``avc1``/``avcC``,
``hvc1``/``hvcC``, ``av01``/``av1C``, ``vp09``/``vpcC`` or ``mp4a``/``esds`` sample entry and
empty sample tables, ``mvex``/``trex``). Media fragment: ``moof`` (``mfhd``, one ``traf`` per
track: ``tfhd`` with default-base-is-moof, ``tfdt`` version 1, ``trun`` version 1 with per-sample
duration, size, flags and signed composition offset) + one ``mdat``.

Both tracks of a muxed rendition go into ONE ``moof`` (video ``traf`` first, its samples
first in the ``mdat``), the layout FFmpeg's own HLS/DASH muxer and Apple's segmenter produce;
hls.js 1.7 (muxed passthrough, checked by hand in headless Chromium), FFmpeg's mov demuxer
and HLS client and GStreamer's qtdemux/hlsdemux all play it (tests/hls check the last two).

Why our own writer rather than PyAV's muxers (measured with ``time.process_time`` on this
2-core shared machine, 100-200 rounds, one 2 s segment of 320x240 H.264 + AAC: 50 video and
91 audio samples, 100 kB, and the same with 8x larger video samples, 640 kB = 2.5 Mbit/s):

=================================  ===============  ===============
CPU per segment (range of 4 runs)  100 kB segment   640 kB segment
=================================  ===============  ===============
``Fmp4Writer.fragment`` (ours)     0.07-0.12 ms     0.08-0.14 ms
PyAV ``mp4``, fragmented, a muxer  0.41-0.67 ms     0.44-0.78 ms
opened per segment (BytesIO)
``TsWriter.segment`` (ours)        0.5-0.9 ms       1.2-2.2 ms
PyAV ``mpegts`` per segment        0.46-0.81 ms     0.56-0.96 ms
=================================  ===============  ===============

(PyAV includes building ``av.Packet`` objects from the bytes; a muxer per segment is what a
segmenter needs to get each segment's bytes and restart cleanly after a discontinuity.)
fMP4 is 4-6x cheaper our way; our TS writer costs about 1-2x PyAV's, 1-2 ms per 2 s
segment at 2.5 Mbit/s, i.e. under 0.1 % of a core. The deciding reasons are
control, not CPU: Low-Latency HLS needs each part (a ``moof``+``mdat`` of a few hundred ms)
the moment its last sample's duration is known, with the exact sample durations, flags,
fragment sequence numbers and byte layout we choose, while libavformat decides fragment
boundaries itself and buffers; and TS continuity counters, PCR placement and the
parameter sets before each keyframe stay under our control across segments.

Timestamps: video in a 90 kHz timescale (milliseconds * 90, exact), AAC in its sampling rate with frame-exact (1024/960 samples)
durations, re-anchored to the millisecond DTS whenever they drift more than 1 ms apart.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Mapping, Sequence

from mediasrv.hls.codecs import CodecConfigError, parse_audio_specific_config
from mediasrv.media.types import Codec, MediaUnit, TrackInfo, TrackKind

VIDEO_TIMESCALE = 90000
VIDEO_TRACK_ID = 1
AUDIO_TRACK_ID = 2

_SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (I-frame)
_NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_TRUN_VIDEO_FLAGS = 0x000F01  # data offset, duration, size, flags, composition offset
_TRUN_AUDIO_FLAGS = 0x000701  # data offset, duration, size, flags


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


@dataclass(frozen=True, slots=True)
class TrackRun:
    """One track's samples for a fragment.

    ``end_dts`` (ms) is where the last sample's decode time ends (the DTS of the unit
    that follows it); ``None`` estimates it (AAC: one frame; video: the previous interval).
    """

    track: TrackInfo
    units: Sequence[MediaUnit]
    end_dts: int | None = None


class _Timeline:
    """Maps a track's millisecond DTS to its timescale, sample-exact for AAC."""

    __slots__ = ("timescale", "frame", "tolerance", "last_t", "last_duration")

    def __init__(self, timescale: int, frame: int | None) -> None:
        self.timescale = timescale
        self.frame = frame
        self.tolerance = math.ceil(timescale / 1000) + 1
        self.last_t: int | None = None  # decode time of the last sample written
        self.last_duration: int | None = None

    def ticks(self, ms: int) -> int:
        return (ms * self.timescale + 500) // 1000

    def times(self, run: TrackRun) -> tuple[list[int], list[int]]:
        """Decode times and durations (in ticks) of the run's samples."""
        times: list[int] = []
        prev = self.last_t
        for unit in run.units:
            raw = self.ticks(unit.dts)
            if self.frame is not None and prev is not None:
                expected = prev + self.frame
                t = expected if abs(raw - expected) <= self.tolerance else raw
            else:
                t = raw
            if prev is not None and t < prev:
                t = prev  # never backwards (DTS is monotonic; guards the snapping)
            times.append(t)
            prev = t
        if not times:
            return times, []
        durations = [b - a for a, b in zip(times, times[1:])]
        last = times[-1]
        if run.end_dts is not None and self.frame is None:
            end = max(self.ticks(run.end_dts), last)
        elif self.frame is not None:
            end = last + self.frame
        elif durations:
            end = last + durations[-1]
        elif self.last_duration:
            end = last + self.last_duration
        else:
            end = last + self.timescale // 30
        durations.append(end - last)
        self.last_t = last
        self.last_duration = durations[-1] or self.last_duration
        return times, durations


def _timescale_and_frame(track: TrackInfo) -> tuple[int, int | None]:
    if track.kind is TrackKind.VIDEO:
        return VIDEO_TIMESCALE, None
    try:
        aac = parse_audio_specific_config(track.config)
        return aac.sample_rate, aac.frame_length
    except CodecConfigError:
        return (track.sample_rate or 48000), 1024


def _track_id(track: TrackInfo) -> int:
    return VIDEO_TRACK_ID if track.kind is TrackKind.VIDEO else AUDIO_TRACK_ID


class Fmp4Writer:
    """Writes the init segment and the fragments for one set of tracks.

    A change of tracks (new codec config, track added or gone) takes a new writer and a
    new init segment; pass ``sequence_number`` to continue the fragment numbering.
    """

    def __init__(self, tracks: Mapping[TrackKind, TrackInfo], *, sequence_number: int = 1) -> None:
        if not tracks:
            raise ValueError("an init segment needs at least one track")
        self.tracks = {kind: tracks[kind] for kind in (TrackKind.VIDEO, TrackKind.AUDIO) if kind in tracks}
        self.sequence_number = sequence_number
        self._timelines = {kind: _Timeline(*_timescale_and_frame(t)) for kind, t in self.tracks.items()}

    # --- init segment -------------------------------------------------------------------

    def init_segment(self) -> bytes:
        ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6cmfcmp41")
        mvhd = full_box(
            b"mvhd", 0, 0,
            struct.pack(">IIIIIH10x", 0, 0, 1000, 0, 0x00010000, 0x0100),
            _MATRIX, bytes(24), struct.pack(">I", 3),
        )
        traks = [self._trak(kind, track) for kind, track in self.tracks.items()]
        trexs = [
            full_box(b"trex", 0, 0, struct.pack(">IIIII", _track_id(track), 1, 0, 0, 0))
            for track in self.tracks.values()
        ]
        return ftyp + box(b"moov", mvhd, *traks, box(b"mvex", *trexs))

    def _trak(self, kind: TrackKind, track: TrackInfo) -> bytes:
        video = kind is TrackKind.VIDEO
        timescale = self._timelines[kind].timescale
        tkhd = full_box(
            b"tkhd", 0, 3,
            struct.pack(">IIIII8xhhHH", 0, 0, _track_id(track), 0, 0, 0, 0, 0 if video else 0x0100, 0),
            _MATRIX,
            struct.pack(">II", (track.width << 16) if video else 0, (track.height << 16) if video else 0),
        )
        mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))
        hdlr = full_box(
            b"hdlr", 0, 0,
            struct.pack(">I4s12x", 0, b"vide" if video else b"soun"),
            (b"VideoHandler" if video else b"SoundHandler") + b"\x00",
        )
        media_header = full_box(b"vmhd", 0, 1, bytes(8)) if video else full_box(b"smhd", 0, 0, bytes(4))
        dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
        stbl = box(
            b"stbl",
            full_box(b"stsd", 0, 0, struct.pack(">I", 1), self._sample_entry(track)),
            full_box(b"stts", 0, 0, struct.pack(">I", 0)),
            full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
            full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
            full_box(b"stco", 0, 0, struct.pack(">I", 0)),
        )
        minf = box(b"minf", media_header, dinf, stbl)
        return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))

    def _sample_entry(self, track: TrackInfo) -> bytes:
        codec = track.codec
        if codec is Codec.AAC:
            return self._mp4a(track)
        fourcc, config_box = {
            Codec.H264: (b"avc1", lambda c: box(b"avcC", c)),
            Codec.HEVC: (b"hvc1", lambda c: box(b"hvcC", c)),
            Codec.AV1: (b"av01", lambda c: box(b"av1C", c)),
            Codec.VP9: (b"vp09", _vpcc_box),
        }[codec]
        name = b"mediasrv"
        compressor = bytes((len(name),)) + name + bytes(31 - len(name))
        return box(
            fourcc,
            bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
            bytes(16),  # pre_defined, reserved, pre_defined[3]
            struct.pack(">HHIIIH", track.width & 0xFFFF, track.height & 0xFFFF, 0x00480000, 0x00480000, 0, 1),
            compressor,
            struct.pack(">Hh", 0x0018, -1),
            config_box(track.config),
        )

    def _mp4a(self, track: TrackInfo) -> bytes:
        try:
            aac = parse_audio_specific_config(track.config)
            channels = track.channels or aac.channels or 2
            rate = track.sample_rate or aac.sample_rate
        except CodecConfigError:
            channels = track.channels or 2
            rate = track.sample_rate or 48000
        asc = track.config
        decoder_specific = _descriptor(0x05, asc)
        decoder_config = _descriptor(
            0x04,
            struct.pack(">BB", 0x40, (0x05 << 2) | 1),  # MPEG-4 audio, AudioStream
            (0).to_bytes(3, "big"), struct.pack(">II", 0, 0),  # buffer size, max/avg bitrate
            decoder_specific,
        )
        es = _descriptor(0x03, struct.pack(">HB", AUDIO_TRACK_ID, 0), decoder_config, _descriptor(0x06, b"\x02"))
        return box(
            b"mp4a",
            bytes(6), struct.pack(">H", 1),
            bytes(8),  # version, revision, vendor
            struct.pack(">HHHH", channels, 16, 0, 0),
            struct.pack(">I", (rate & 0xFFFF) << 16),
            full_box(b"esds", 0, 0, es),
        )

    # --- media fragments ------------------------------------------------------------------

    def fragment(self, runs: Sequence[TrackRun]) -> bytes:
        """One ``moof`` + ``mdat`` holding the given runs (video first)."""
        prepared = []
        for run in sorted(runs, key=lambda r: r.track.kind is not TrackKind.VIDEO):
            if not run.units:
                continue
            kind = run.track.kind
            if kind not in self.tracks:
                raise ValueError(f"no {kind.value} track in this init segment")
            times, durations = self._timelines[kind].times(run)
            prepared.append((run, times, durations))
        if not prepared:
            raise ValueError("a fragment needs at least one sample")
        sequence = self.sequence_number
        self.sequence_number += 1

        def build_moof(offsets: list[int]) -> bytes:
            trafs = []
            for (run, times, durations), offset in zip(prepared, offsets):
                trafs.append(_traf(run, times, durations, offset))
            return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), *trafs)

        sizes = [sum(len(u.data) for u in run.units) for run, _, _ in prepared]
        moof_size = len(build_moof([0] * len(prepared)))
        offsets = []
        position = moof_size + 8
        for size in sizes:
            offsets.append(position)
            position += size
        moof = build_moof(offsets)
        mdat_size = 8 + sum(sizes)
        payload = [u.data for run, _, _ in prepared for u in run.units]
        return b"".join([moof, struct.pack(">I4s", mdat_size, b"mdat"), *payload])


def _traf(run: TrackRun, times: list[int], durations: list[int], data_offset: int) -> bytes:
    track = run.track
    video = track.kind is TrackKind.VIDEO
    units = run.units
    n = len(units)
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", _track_id(track)))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", times[0]))
    if video:
        values: list[int] = []
        for unit, duration in zip(units, durations):
            values += (
                duration, len(unit.data),
                _SYNC_FLAGS if unit.keyframe else _NON_SYNC_FLAGS,
                (unit.pts - unit.dts) * 90,
            )
        samples = struct.pack(">" + "IIIi" * n, *values)
        trun = full_box(b"trun", 1, _TRUN_VIDEO_FLAGS, struct.pack(">Ii", n, data_offset), samples)
    else:
        values = []
        for unit, duration in zip(units, durations):
            values += (duration, len(unit.data), _SYNC_FLAGS)
        samples = struct.pack(">" + "III" * n, *values)
        trun = full_box(b"trun", 1, _TRUN_AUDIO_FLAGS, struct.pack(">Ii", n, data_offset), samples)
    return box(b"traf", tfhd, tfdt, trun)


def _descriptor(tag: int, *payload: bytes) -> bytes:
    body = b"".join(payload)
    size = len(body)
    length = bytearray()
    length.insert(0, size & 0x7F)
    size >>= 7
    while size:
        length.insert(0, 0x80 | (size & 0x7F))
        size >>= 7
    return bytes((tag,)) + bytes(length) + body


def _vpcc_box(config: bytes) -> bytes:
    """``vpcC`` is a FullBox (version 1): accept the record with or without that header."""
    if len(config) >= 12 and config[0] == 1 and config[1:4] == b"\x00\x00\x00":
        return box(b"vpcC", config)
    return full_box(b"vpcC", 1, 0, config)
