"""Names of the Redis keys and channels of one cluster (all under ``cluster.key_prefix``).

Keys (each with an expiry, refreshed by its node's heartbeat):

- ``P:node:ID``: a node's JSON ``{"node", "url", "ingest"}``;
- ``P:stream:NAME``: the stream directory, JSON ``{"node", "url", "started_at"}`` of the
  stream's origin;
- ``P:viewers:ID``: hash ``stream name -> viewer sessions`` counted on node ID.

Channels (pub/sub): ``P:chat:ROOM`` (one per chat room), ``P:alerts`` (go-live alerts),
``P:directory`` (a stream started or ended, before the next heartbeat says so).
"""

from __future__ import annotations


class Keys:
    """Key and channel names for one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.node_pattern = f"{prefix}:node:*"
        self.stream_pattern = f"{prefix}:stream:*"
        self.chat_pattern = f"{prefix}:chat:*"
        self.alerts = f"{prefix}:alerts"
        self.directory = f"{prefix}:directory"

    def node(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    def stream(self, name: str) -> str:
        return f"{self.prefix}:stream:{name}"

    def viewers(self, node_id: str) -> str:
        return f"{self.prefix}:viewers:{node_id}"

    def chat(self, room: str) -> str:
        return f"{self.prefix}:chat:{room}"

    def stream_name(self, key: str) -> str:
        """``P:stream:NAME`` -> NAME."""
        return key[len(self.prefix) + len(":stream:"):]

    def chat_room(self, channel: str) -> str:
        """``P:chat:ROOM`` -> ROOM."""
        return channel[len(self.prefix) + len(":chat:"):]
