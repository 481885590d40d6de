"""Decoded WebRTC audio (Opus, 48 kHz) → AAC ``MediaUnit``s (runs in the encoder thread).

HLS players take AAC, not Opus. Every frame is converted to planar float stereo at
48 kHz (PyAV's resampler: any format, layout or rate in), cut into the 1024-sample
frames AAC encodes (Opus sends 960), and encoded with FFmpeg's AAC encoder.

Positions come from the session timeline in 48 kHz ticks. Frames that follow on within
``GAP_TOLERANCE`` samples are treated as contiguous (the 1024-sample cutting needs a
continuous run); a larger gap (packet loss, a muted sender that stopped sending) ends the
run: its last partial frame is padded with silence and the next run starts at the new
position, so the track keeps its timing instead of drifting.
"""

from __future__ import annotations

import fractions

import av
import numpy as np
from av.audio.resampler import AudioResampler

from mediasrv.media import aac
from mediasrv.media.ingest import track_from_config
from mediasrv.media.types import Codec, MediaUnit, TrackInfo

RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = 1024
#: A frame starting this many samples from where the last one ended is contiguous (20 ms).
GAP_TOLERANCE = 960


class AacEncoder:
    """One session's audio encoder; ``encode`` returns the units of one input frame."""

    def __init__(self, *, bitrate: int) -> None:
        self.bitrate = bitrate
        self.track: TrackInfo | None = None
        self.frames = 0
        self.gaps = 0
        self._encoder: av.CodecContext | None = None
        self._resampler = AudioResampler(format="fltp", layout="stereo", rate=RATE)
        self._pending = np.zeros((CHANNELS, 0), dtype=np.float32)
        self._pending_start = 0  # position (48 kHz samples) of _pending[:, 0]
        self._first_sample: int | None = None

    def encode(self, frame: av.AudioFrame, position: int) -> list[MediaUnit]:
        """Encode ``frame`` whose first sample is at ``position`` (48 kHz ticks)."""
        if self._encoder is None:
            self._open()
        self.frames += 1
        planes = [out.to_ndarray() for out in self._resampler.resample(frame)]
        if not planes:
            return []
        samples = np.concatenate(planes, axis=1).astype(np.float32, copy=False)
        units: list[MediaUnit] = []
        end = self._pending_start + self._pending.shape[1]
        if self._first_sample is None:
            self._first_sample = self._pending_start = position
        elif abs(position - end) > GAP_TOLERANCE:
            self.gaps += 1
            units += self._flush_padded()  # (moves _pending_start past the padded frame)
            self._pending_start = max(position, self._pending_start)
        units += self._take(samples)
        return units

    def _take(self, samples: np.ndarray) -> list[MediaUnit]:
        self._pending = np.concatenate((self._pending, samples), axis=1) if self._pending.size else samples
        units: list[MediaUnit] = []
        while self._pending.shape[1] >= FRAME_SAMPLES:
            chunk, self._pending = self._pending[:, :FRAME_SAMPLES], self._pending[:, FRAME_SAMPLES:]
            units += self._encode_chunk(chunk, self._pending_start)
            self._pending_start += FRAME_SAMPLES
        return units

    def _flush_padded(self) -> list[MediaUnit]:
        count = self._pending.shape[1]
        if not count:
            return []
        chunk = np.zeros((CHANNELS, FRAME_SAMPLES), dtype=np.float32)
        chunk[:, :count] = self._pending
        self._pending = np.zeros((CHANNELS, 0), dtype=np.float32)
        units = self._encode_chunk(chunk, self._pending_start)
        self._pending_start += FRAME_SAMPLES
        return units

    def _encode_chunk(self, chunk: np.ndarray, position: int) -> list[MediaUnit]:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = position
        frame.time_base = fractions.Fraction(1, RATE)
        units = []
        for packet in self._encoder.encode(frame):
            if packet.pts is None or packet.pts < self._first_sample:
                continue  # the encoder's priming frame, before the first sample
            ms = round(packet.pts * 1000 / RATE)
            units.append(MediaUnit(self.track, ms, ms, True, bytes(packet)))
        return units

    def _open(self) -> None:
        enc = av.CodecContext.create("aac", "w")
        enc.sample_rate = RATE
        enc.layout = "stereo"
        enc.format = "fltp"
        enc.bit_rate = self.bitrate
        enc.time_base = fractions.Fraction(1, RATE)
        enc.open()
        config = bytes(enc.extradata or b"") or aac.build_asc(2, RATE, CHANNELS)
        self.track = track_from_config(Codec.AAC, config)
        self._encoder = enc
