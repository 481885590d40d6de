"""Layer 0: media types and codec configuration parsers. Pure: stdlib only.

Modules: :mod:`~mediasrv.media.types` (TrackInfo, MediaUnit), :mod:`~mediasrv.media.errors`,
codec parsers :mod:`~mediasrv.media.avc`, :mod:`~mediasrv.media.hevc`,
:mod:`~mediasrv.media.av1`, :mod:`~mediasrv.media.vp9`, :mod:`~mediasrv.media.aac`,
FLV/Enhanced-RTMP tags :mod:`~mediasrv.media.flv`, timestamp normalisation
:mod:`~mediasrv.media.timestamps` and the ingest front end :mod:`~mediasrv.media.ingest`.
"""

from mediasrv.media.errors import MalformedMediaError, MediaError, UnsupportedCodecError
from mediasrv.media.ingest import FlvIngest, IngestStats, TrackStats, track_from_config
from mediasrv.media.timestamps import ClockReading, TrackClock
from mediasrv.media.types import Codec, MediaUnit, StreamMetadata, TrackInfo, TrackKind

__all__ = [
    "ClockReading",
    "Codec",
    "FlvIngest",
    "IngestStats",
    "MalformedMediaError",
    "MediaError",
    "MediaUnit",
    "StreamMetadata",
    "TrackClock",
    "TrackInfo",
    "TrackKind",
    "TrackStats",
    "UnsupportedCodecError",
    "track_from_config",
]
