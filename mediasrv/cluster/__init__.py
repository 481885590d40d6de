"""Several nodes over one Redis (docs/cluster.md).

- ``keys``: the names of every Redis key and channel (pure);
- ``bus``: ``ClusterBus``, the node's Redis side (heartbeat, stream directory, viewer
  counts, ordered pub/sub for chat, alerts and directory events);
- ``edge``: ``OriginFetcher``, which fetches another node's playlists and files once for
  many viewers (request coalescing, a small cache of immutable files).
"""

from mediasrv.cluster.bus import ClusterBus, DirectoryEntry
from mediasrv.cluster.edge import Fetched, OriginFetcher

__all__ = ["ClusterBus", "DirectoryEntry", "Fetched", "OriginFetcher"]
