"""The recordings API's query and answer shapes (validated and described from here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mediasrv.httpkit.models import STREAM_NAME_PATTERN, query_int, RequestModel, ResponseModel, text
from mediasrv.store.recordings import RecordingState

MAX_LIST = 500
State = Literal[tuple(state.value for state in RecordingState)]


class RecordingQuery(RequestModel):
    stream: text(64, pattern=STREAM_NAME_PATTERN, rule="a stream name") | None = Field(
        None, description="only this stream")
    state: State | None = Field(None, description="only this state")
    limit: query_int(1, MAX_LIST, f"at most this many (1-{MAX_LIST})") = 100


class Recording(ResponseModel):
    """A recording of a broadcast; ``playlist_url`` and ``download_url`` once saved."""

    id: str
    stream: str
    state: State
    started_at: float
    ended_at: float | None
    duration: float = Field(description="seconds of media on disk")
    size: int = Field(description="bytes on disk")
    segments: int
    video_frames: int
    error: str | None
    decided_at: float | None
    decided_by: str | None
    title: str
    visibility: Literal["public", "followers", "unlisted", "private"] = Field(
        "public", description="who may watch it (its live's at the end; `PATCH /api/recordings/{id}` changes it)")
    mature: bool = Field(False, description="18+")
    decide_by: float | None = Field(description="when an undecided recording follows the default")
    playlist_url: str | None = Field(None, description="once saved; a recording that is not public: signed "
                                                       "(`?hs=`) for this asker, valid 6 h")
    download_url: str | None = None


class AudienceChange(RequestModel):
    """`PATCH /api/recordings/{id}`: who may watch the recording."""

    visibility: Literal["public", "followers", "unlisted", "private"] | None = Field(
        None, description="one of the site's `live.visibility_allowed`")
    mature: bool | None = Field(None, description="18+")


class RecordingList(ResponseModel):
    recordings: list[Recording]
