"""Decoded WebRTC video → H.264 ``MediaUnit``s (runs in the session's encoder thread).

x264 with ``tune=zerolatency`` (no B-frames, no lookahead: a frame in, its packet out one
frame later, as rate control on the real timestamps needs the next frame's),
a keyframe forced every ``keyframe_interval`` seconds of media time (the HLS segmenter
and the ladder cut at keyframes) and none otherwise, VBV-capped bitrate. The output size
is the first frame's (rounded down to even): a browser that lowers its resolution under
load has its frames scaled back to it, so the stream keeps one track, and a portrait
picture stays portrait (nothing is rotated or cropped).

The avcC comes from the encoder's global header (SPS/PPS); packets are converted from
Annex B to 4-byte length-prefixed NAL units, the MP4 sample format of ``MediaUnit``.
"""

from __future__ import annotations

import fractions

import av
from av.codec.context import Flags
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from mediasrv.media import avc
from mediasrv.media.ingest import track_from_config
from mediasrv.media.types import Codec, MediaUnit, TrackInfo

MS = fractions.Fraction(1, 1000)
#: No scene-cut or periodic keyframes (only the forced ones), closed GOPs, rate control
#: on the real timestamps (a browser's frame rate varies).
X264_PARAMS = "scenecut=0:open-gop=0:keyint=infinite:min-keyint=1:force-cfr=0:bframes=0"
#: Above this many pixels x264 gets a second (sliced) thread.
PIXELS_PER_THREAD = 600_000


class EncoderError(Exception):
    """The encoder could not be set up (no SPS/PPS in its header)."""


class H264Encoder:
    """One session's video encoder; ``encode`` returns the units of one frame."""

    def __init__(self, *, bitrate: int, preset: str, keyframe_interval: float) -> None:
        self.bitrate = bitrate
        self.preset = preset
        self.keyframe_interval_ms = max(1, round(keyframe_interval * 1000))
        self.track: TrackInfo | None = None
        self.width = self.height = 0
        self.frames = 0
        self.scaled = 0
        self.keyframes = 0
        self._encoder: av.CodecContext | None = None
        self._reformatter = VideoReformatter()
        self._last_key_ms: int | None = None

    def encode(self, frame: av.VideoFrame, ms: int) -> list[MediaUnit]:
        """Encode ``frame`` at ``ms`` (strictly increasing); the units it gave."""
        if self._encoder is None:
            self._open(frame)
        picture = self._fit(frame)
        picture.pts = ms
        picture.time_base = MS
        force = self._last_key_ms is None or ms - self._last_key_ms >= self.keyframe_interval_ms
        picture.pict_type = PictureType.I if force else PictureType.NONE
        if force:
            self._last_key_ms = ms
        self.frames += 1
        return self._units(self._encoder.encode(picture))

    def _fit(self, frame: av.VideoFrame) -> av.VideoFrame:
        if frame.width == self.width and frame.height == self.height and frame.format.name == "yuv420p":
            return frame
        if (frame.width, frame.height) != (self.width, self.height):
            self.scaled += 1
        return self._reformatter.reformat(frame, self.width, self.height, "yuv420p",
                                          interpolation=Interpolation.BILINEAR)

    def _open(self, frame: av.VideoFrame) -> None:
        width, height = max(2, frame.width & ~1), max(2, frame.height & ~1)
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = MS
        enc.framerate = fractions.Fraction(30, 1)
        enc.sample_aspect_ratio = fractions.Fraction(1, 1)
        enc.bit_rate = self.bitrate
        enc.flags |= Flags.global_header
        enc.thread_count = 1 if width * height <= PIXELS_PER_THREAD else 2
        enc.options = {
            "preset": self.preset,
            "tune": "zerolatency",
            "maxrate": str(self.bitrate),
            "bufsize": str(self.bitrate),
            "forced-idr": "1",
            "x264-params": X264_PARAMS,
        }
        enc.open()
        config = avc.avcc_from_annexb_header(bytes(enc.extradata or b""))
        if config is None:
            raise EncoderError("x264 gave no SPS/PPS in its global header")
        self.track = track_from_config(Codec.H264, config)
        self.width, self.height = width, height
        self._encoder = enc

    def _units(self, packets) -> list[MediaUnit]:
        units = []
        track = self.track
        for packet in packets:
            data = avc.annexb_to_length_prefixed(bytes(packet), 4)
            if not data or packet.pts is None:
                continue
            keyframe = bool(packet.is_keyframe)
            self.keyframes += keyframe
            # No B-frames: decode order is presentation order.
            units.append(MediaUnit(track, int(packet.pts), int(packet.pts), keyframe, data))
        return units
