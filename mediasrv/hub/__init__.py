"""Layer 2: the stream hub — one publisher per stream name, many readers.

Modelled on MediaMTX's stream/reader split: the publisher never waits, every reader
has its own bounded queue, a reader that falls behind skips to the next keyframe.
"""

from mediasrv.hub.hub import Hub, HubEvent, StreamEnded, StreamStarted, StreamWentPublic
from mediasrv.hub.reader import Reader
from mediasrv.hub.stream import PublisherHandle, Stream

__all__ = [
    "Hub",
    "HubEvent",
    "PublisherHandle",
    "Reader",
    "Stream",
    "StreamEnded",
    "StreamStarted",
    "StreamWentPublic",
]
