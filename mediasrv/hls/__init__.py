"""Layer 1: HLS packaging, pure (no asyncio, sockets or clocks; time comes in as ``now``).

``segmenter`` cuts a rendition's MediaUnits into segments and keeps the playlist window;
``fmp4`` and ``mpegts`` write the container bytes; ``playlist`` renders the text;
``names`` says which URL names exist. ``mediasrv.delivery.hls_service`` drives it from the hub.
With a ``part_duration`` the segmenter also cuts Low-Latency HLS parts (docs/low-latency.md).
"""

from mediasrv.hls.playlist import (
    MediaPlaylist,
    PartialSegment,
    PlaylistPart,
    PlaylistSegment,
    RenditionReport,
    ServerControl,
    Variant,
    render_master_playlist,
    render_media_playlist,
)
from mediasrv.hls.segmenter import Container, InitSegment, Part, Segment, Segmenter

__all__ = [
    "Container",
    "InitSegment",
    "MediaPlaylist",
    "Part",
    "PartialSegment",
    "PlaylistPart",
    "PlaylistSegment",
    "RenditionReport",
    "ServerControl",
    "Segment",
    "Segmenter",
    "Variant",
    "render_master_playlist",
    "render_media_playlist",
]
