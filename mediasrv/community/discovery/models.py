"""The discovery API's query and answer shapes (validated and described from here)."""

from __future__ import annotations


from typing import Literal

from pydantic import Field

from mediasrv.httpkit.models import query_int, RequestModel, ResponseModel


class LiveQuery(RequestModel):
    limit: query_int(1, 500, "at most this many (1-500)") = 50


Orientation = Literal["portrait", "landscape", "square"]


class Picture(ResponseModel):
    """The size of a live stream's picture as its publisher sends it (the source rendition;
    the ladder's rungs keep its orientation), so a page can shape its player and cards
    before the video loads. Null when unknown: no video (yet), or another node's stream."""

    width: int | None = Field(None, description="source video width in pixels")
    height: int | None = Field(None, description="source video height in pixels")
    orientation: Orientation | None = Field(
        None, description="portrait (taller than wide, e.g. 720x1280: a phone held upright), landscape or square")


class LiveStatus(Picture):
    """Whether a name is live: 200 either way, so a page that waits for a stream asks
    without an error in its console (``GET /api/streams/NAME`` answers 404 offline)."""

    name: str
    live: bool
    started_at: str | None = Field(description="ISO 8601, UTC; null when not live (or live on another node)")
    creator: str | None = Field(description="the handle of the account of this name, if there is one")
    backstage: bool = Field(False, description="true only when the asker (logged in) may watch this name's "
                                               "private (backstage) live: its creator, their moderators, site "
                                               "moderators and admins (then `live` is false: ask "
                                               "`GET /api/live/NAME/playback` for its signed URLs); false for "
                                               "anyone else, so a private live is not revealed")
    may_watch: bool = Field(False, description="a live that is not public (`live` false) that the asker may watch: "
                                               "ask `GET /api/live/NAME/playback` for its signed URLs")
    visibility: Literal["followers", "unlisted", "private"] | None = Field(
        None, description="who may watch this live when it is not public, told to who may watch it and, for a "
                          "followers-only or unlisted live, to anyone (so a page can say \"follow to watch\"); "
                          "null otherwise")
    mature: bool = Field(False, description="that live is 18+ (told with `visibility`)")


class Creator(ResponseModel):
    handle: str
    display_name: str
    followers: int
    profile_url: str


class LiveStream(Picture):
    name: str
    visibility: Literal["public", "followers"] = Field(
        "public", description="`followers`: a followers-only live, listed only to the creator's signed-in "
                              "followers; its `playback_url` needs a grant (`GET /api/live/NAME/playback`)")
    title: str
    creator: Creator | None
    viewers: int | None = Field(description="viewers now; null when the creator hides the count")
    started_at: str = Field(description="ISO 8601, UTC")
    cover_url: str | None
    thumbnail_url: str | None
    image_url: str | None = Field(description="the cover, else the thumbnail")
    playback_url: str
    followed: bool
    score: float | None = Field(description="ranking score, see docs/api.md (null with the viewer count hidden)")


class LiveListing(ResponseModel):
    streams: list[LiveStream]


class ChannelQuery(RequestModel):
    limit: query_int(1, 100, "at most this many (1-100)") = 24


class Channel(ResponseModel):
    """A creator's channel, for browsing when few (or none) are live."""

    handle: str = Field(description="the channel's stream name too: /watch/HANDLE")
    display_name: str
    title: str = Field(description="the go-live title the creator set (may be empty)")
    followers: int
    live: bool
    cover_url: str | None = Field(description="the creator's cover image, if any")


class ChannelListing(ResponseModel):
    channels: list[Channel]
