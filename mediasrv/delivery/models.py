"""The stream listing's answer shapes (validated and described from here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mediasrv.httpkit.models import ResponseModel


class Track(ResponseModel):
    """A track of a live stream: video ones have a size (and a frame rate when the
    encoder says it), audio ones a sample rate and channels."""

    kind: Literal["video", "audio"]
    codec: str
    codec_string: str
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


class Rendition(ResponseModel):
    """A rendition of a live stream that has segments (the source and the ladder's rungs)."""

    name: str
    codecs: str = Field(description="RFC 6381 codecs string")
    width: int
    height: int
    bandwidth: int = Field(description="peak bit/s")
    average_bandwidth: int
    frame_rate: float | None
    container: str
    playlist: str = Field(description="relative to /live/NAME/")
    segments: int = Field(description="segments listed")
    ended: bool


class Stream(ResponseModel):
    """A live stream. One another node of the cluster ingests has only ``name``,
    ``state``, ``started_at``, ``origin`` and ``playback_url``."""

    name: str
    state: Literal["live", "orphaned", "ended"]
    started_at: str = Field(description="ISO 8601, UTC")
    tracks: list[Track] | None = None
    bitrate_in_kbps: float | None = None
    renditions: list[Rendition] | None = None
    playback_url: str
    rtmp_playback_url: str | None = None
    origin: str | None = Field(None, description="the node that ingests it (another node's stream)")


class StreamList(ResponseModel):
    streams: list[Stream]


class Health(ResponseModel):
    status: Literal["ok"]
    version: str
    uptime_seconds: float
    streams: int
