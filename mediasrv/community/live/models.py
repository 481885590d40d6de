"""The live-control API's answers (``GET /api/me/live``, ``POST /api/me/live/public``,
``POST /api/me/live/end``, ``GET /api/live/NAME/playback``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mediasrv.httpkit.models import RequestModel, ResponseModel

Visibility = Literal["public", "followers", "unlisted", "private"]


class Playback(ResponseModel):
    """Where to play a live: for a private one, URLs that carry a signed grant."""

    playback_url: str = Field(description="the HLS master playlist (hls.js, Safari, FFmpeg); for a private live "
                                          "it carries `?pt=GRANT`, and so does every URL of its playlists")
    rtmp_playback_url: str = Field(description="RTMP play (`NAME?pt=GRANT` for a private live)")
    events_url: str = Field(description="the live's statistics and health warnings as Server-Sent Events "
                                        "(`GET /api/streams/NAME/events`, with the grant for a private live)")
    grant: str | None = Field(description="the signed playback grant (`pt`): also opens `GET /api/streams/NAME`, "
                                          "its `/stats` and `/events` (`?pt=GRANT`); null for a public live")
    expires_at: int | None = Field(description="Unix seconds when the grant stops working (`live.grant_seconds`); "
                                               "ask again before then")
    expires_in: int | None = Field(description="seconds from this answer until then (what a client whose clock "
                                               "is off should go by); null for a public live")


class LiveState(ResponseModel):
    """The creator's live as the studio shows it."""

    stream: str = Field(description="the public stream name (the creator's handle)")
    state: Literal["offline", "private", "public"] = Field(
        description="`private`: live backstage (not listed, no alerts, not recorded, playable only by the "
                    "creator, their moderators and operators); `public`: live for everyone")
    connection: Literal["connected", "reconnecting"] | None = Field(
        description="whether the encoder is connected, or dropped and may come back within "
                    "`hls.reconnect_grace`; null offline")
    started_at: float | None = Field(description="Unix seconds: when the broadcast started (null offline)")
    public_at: float | None = Field(description="Unix seconds: when it became public (null while private)")
    backstage: bool = Field(description="the setting: a new broadcast starts private (`PATCH /api/me/settings`)")
    visibility: Visibility | None = Field(None, description="who may watch the live now (null offline); "
                                                            "`PATCH /api/me/live` changes it")
    mature: bool | None = Field(None, description="the live is 18+ (null offline)")
    hold_seconds: float = Field(description="after `POST /api/me/live/end`: seconds before a new publish of this "
                                            "stream is accepted again (0: none)")
    preview: Playback | None = Field(description="URLs that play this live for the creator, private or public "
                                                 "(null offline)")
    changed: bool | None = Field(None, description="`POST /api/me/live/public` only: false when the live was "
                                                   "public already (nothing happened)")


class RecordingRef(ResponseModel):
    """The ended broadcast's recording, for the save-or-discard question."""

    id: str = Field(description="`POST /api/recordings/{id}/save` or `/discard`")
    state: Literal["recording", "pending_decision", "saved", "discarded", "failed"] = Field(
        description="`pending_decision`: ask the creator; `saved`: they save by default (already a VOD); "
                    "`discarded`: nothing was recorded")
    duration: float = Field(description="seconds recorded")
    decide_by: float | None = Field(description="Unix seconds: undecided, it follows the creator's default then")


class LiveEnded(ResponseModel):
    """What `POST /api/me/live/end` did."""

    stream: str
    ended_at: float = Field(description="Unix seconds")
    was: Literal["private", "public"] = Field(description="the live's state when it was ended")
    hold_seconds: float = Field(description="a new publish of this stream (the same key, RTMP or WHIP) is refused "
                                            "for this long (`live.end_hold_seconds`)")
    recording: RecordingRef | None = Field(description="its recording, waiting for save or discard; null when "
                                                       "there is none (it never went public, or recording is off)")


class LivePlayback(Playback):
    """`GET /api/live/NAME/playback`."""

    stream: str
    state: Literal["private", "public"] = Field(description="`private`: backstage (not made public yet)")
    visibility: Visibility = Field(description="who may watch it")
    mature: bool = Field(description="18+: a player asks the viewer to confirm their age first")


class AudienceChange(RequestModel):
    """`PATCH /api/me/live`: who may watch the live now."""

    visibility: Visibility | None = Field(None, description="one of the site's `live.visibility_allowed`; "
                                                            "applies at once (grants of the old one are revoked)")
    mature: bool | None = Field(None, description="the live is 18+")


class Invitee(ResponseModel):
    handle: str
    display_name: str
    invited_at: float = Field(description="Unix seconds")


class Invites(ResponseModel):
    """The people a creator invited to their private lives."""

    invites: list[Invitee]


class InviteAnswer(ResponseModel):
    handle: str
    invited: bool
    changed: bool = Field(description="false when nothing changed (invited already, or not invited)")
