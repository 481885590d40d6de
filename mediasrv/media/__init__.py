"""Layer 0: media types and codec configuration parsers. Pure: stdlib only."""

from mediasrv.media.types import Codec, MediaUnit, TrackInfo, TrackKind

__all__ = ["Codec", "MediaUnit", "TrackInfo", "TrackKind"]
