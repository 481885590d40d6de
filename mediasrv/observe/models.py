"""The observability API's query and answer shapes (validated and described from here)."""

from __future__ import annotations


from pydantic import Field

from mediasrv.httpkit.models import STREAM_NAME_PATTERN, query_int, RequestModel, ResponseModel, text


class BroadcastQuery(RequestModel):
    stream: text(64, pattern=STREAM_NAME_PATTERN, rule="a stream name") | None = Field(
        None, description="only this stream")
    limit: query_int(1, 1000, "at most this many (1-1000)") = 100


class TimestampCorrections(ResponseModel):
    video: int
    audio: int


class LiveAnalytics(ResponseModel):
    """The creator's live figures: chat, gifts, follows."""

    chat_messages_per_minute: float
    active_chatters: int
    chat_messages: int
    unique_chatters: int
    gifts: int
    gift_coins: int = Field(description="coins viewers sent in gifts this broadcast (each gift's price)")
    gift_creator_coins: int = Field(description="the creator's part of gift_coins (gifts.platform_share taken off)")
    new_followers: int


class StreamStats(ResponseModel):
    """Live statistics of a stream. A stream another node of the cluster ingests has only
    ``stream``, ``live``, ``origin``, ``viewers`` and ``viewers_here``."""

    stream: str
    live: bool
    viewers: int | None = Field(description="viewers now (of every node in a cluster); a viewer is a client "
                                            "(address + user agent) with an open session; null when the "
                                            "creator hides the count from this asker")
    viewers_here: int | None = Field(None, description="viewers of this node (in a cluster)")
    origin: str | None = Field(None, description="the node that ingests it (another node's stream)")
    peak_viewers: int | None = Field(None, description="the most viewers at once in this broadcast (this node)")
    unique_viewers: int | None = Field(None, description="distinct viewers of this broadcast (this node); "
                                                         "never below peak_viewers")
    watch_seconds: float | None = None
    bytes_sent: int | None = None
    viewers_per_rendition: dict[str, int] | None = None
    bitrate_kbps: float | None = None
    fps: float | None = None
    keyframe_interval_ms: float | None = None
    timestamp_corrections: TimestampCorrections | None = None
    reconnects: int | None = None
    reader_skips: int | None = None
    warnings: list[str] | None = None
    analytics: LiveAnalytics | None = None
    started_at: float | None = Field(None, description="Unix time")
    average_viewers: float | None = None


class BroadcastSummary(ResponseModel):
    """What is kept of a broadcast once it ended."""

    id: int
    stream: str
    started_at: float
    ended_at: float
    duration_seconds: float
    peak_viewers: int
    average_viewers: float
    unique_viewers: int
    watch_seconds: float
    reconnects: int
    bytes_in: int
    bytes_out: int
    chat_messages: int
    peak_messages_per_minute: int
    unique_chatters: int
    gifts: int
    gift_coins: int
    new_followers: int
    private: bool = Field(description="it ended without ever going public (the creator's backstage): listed only "
                                      "for its creator and operators")


class Broadcasts(ResponseModel):
    broadcasts: list[BroadcastSummary]
