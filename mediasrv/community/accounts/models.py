"""The accounts API's request and answer shapes (validated and described from here)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mediasrv.community.accounts.service import PASSWORD_MAX, PASSWORD_MIN
from mediasrv.httpkit.models import query_int, RequestModel, ResponseModel, text

DISPLAY_NAME_MAX = 64
TITLE_MAX = 140

Role = Literal["viewer", "creator", "moderator", "admin"]
#: A handle as clients may spell it: any case, stored and compared lower-case.
HANDLE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$"
HANDLE_RULE = "3-32 characters: letters, digits, '_' or '-', starting with a letter or digit; case-insensitive"
Handle = text(32, pattern=HANDLE_PATTERN, rule=HANDLE_RULE, lower=True)
#: A handle in a path (``/api/users/{handle}``): the same rule.
HANDLE_PARAM = {"type": "string", "pattern": HANDLE_PATTERN}
Password = text(PASSWORD_MAX, min_length=PASSWORD_MIN, strip=False)
#: Names and titles strip the characters nobody sees (bidi controls, zero-width; the
#: chat's rule, mediasrv.textrules); a name with nothing visible is refused.
DisplayName = text(DISPLAY_NAME_MAX, min_length=1, clean=True)


# --- requests -----------------------------------------------------------------------------

#: An email address as the verification mail needs it (not every RFC 5322 form).
EMAIL_PATTERN = r"^[^@\s<>()\[\],;:\\\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"
Email = text(254, pattern=EMAIL_PATTERN, rule="an email address (name@example.org)")


class NewUser(RequestModel):
    handle: Handle
    password: Password
    display_name: DisplayName | None = None
    role: Role | None = None
    email: Email | None = Field(None, description="with `email.enabled`: a link that verifies it is mailed there "
                                                  "(followers count toward live access once verified); "
                                                  "refused (422) when the server sends no email")


class EmailChange(RequestModel):
    email: Email = Field(description="a verification link is mailed there; the address counts once verified")


class VerifyEmail(RequestModel):
    """``?token=`` of a verification link."""

    token: text(200, min_length=1, pattern="^[A-Za-z0-9_-]{1,200}$", rule="the token of a verification link")


class Login(RequestModel):
    handle: text(64, min_length=1, lower=True)
    password: text(PASSWORD_MAX, min_length=1, strip=False)


class MeUpdate(RequestModel):
    # The schema says it too: a new password comes with the current one.
    model_config = {"json_schema_extra": {"dependentRequired": {"new_password": ["current_password"]}}}

    display_name: DisplayName | None = None
    # Not nullable (unlike display_name): the schema's dependentRequired counts a null as
    # present, so null is refused for both rather than read as "absent".
    current_password: text(PASSWORD_MAX, min_length=1, strip=False) = None
    new_password: Password = None

    @model_validator(mode="after")
    def _current_with_new(self) -> "MeUpdate":
        if self.new_password is not None and self.current_password is None:
            raise ValueError("current_password: required to change the password")
        return self


class RoleChange(RequestModel):
    role: Role


class LiveAccessChange(RequestModel):
    access: Literal["granted", "revoked", "rule"]


class ChatSettingsChange(RequestModel):
    enabled: bool | None = None
    followers_only: bool | None = None
    slow_mode_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None


class SettingsChange(RequestModel):
    title: text(TITLE_MAX, clean=True) | None = None
    chat: ChatSettingsChange | None = None
    save_by_default: bool | None = None
    backstage: bool | None = Field(None, description="a new broadcast starts private (only the creator, their "
                                                     "moderators and operators can play it) until "
                                                     "`POST /api/me/live/public`; applies to the next broadcast")
    hide_viewer_count: bool | None = Field(None, description="hide the viewer count from everyone but you, your "
                                                             "moderators and operators (applies at once)")
    visibility: Literal["public", "followers", "unlisted", "private"] | None = Field(
        None, description="who may watch the next broadcasts (docs/security.md, \"Who may watch\"); one of the "
                          "site's `live.visibility_allowed` (another is a 400); the live now: `PATCH /api/me/live`")
    mature: bool | None = Field(None, description="the next broadcasts are 18+ (viewers confirm their age; not "
                                                  "listed for signed-out viewers)")


class Page(RequestModel):
    limit: query_int(1, 500, "page size (1-500)") = 50
    offset: query_int(0, 10_000_000, "rows to skip") = 0


class UserSearch(RequestModel):
    """``GET /api/users``: operators look users up by the start of their handle."""

    prefix: text(32, pattern="^[A-Za-z0-9_-]*$", rule="the start of a handle: letters, digits, '_' or '-'",
                 lower=True) = Field("", description="the start of the handle, any case; empty: everyone")
    only: Literal["all", "waiting"] = Field(
        "all", description="`waiting`: only users with a live-access request waiting for an operator")
    limit: query_int(1, 100, "page size (1-100)") = 20
    offset: query_int(0, 10_000_000, "rows to skip") = 0


# --- answers ------------------------------------------------------------------------------

class User(ResponseModel):
    handle: str
    display_name: str
    role: Role
    created_at: float


class Vod(ResponseModel):
    """A saved broadcast (a VOD)."""

    id: str = Field(description="the recording's id")
    title: str = Field(description="the broadcast's title when it started (else the creator's display name)")
    duration: float = Field(description="seconds")
    started_at: float = Field(description="Unix time")
    ended_at: float | None = Field(description="Unix time")
    playback_url: str = Field(description="the VOD playlist (EXT-X-PLAYLIST-TYPE:VOD)")
    download_url: str = Field(description="the MP4 download")


class Profile(User):
    followers: int
    following: int
    live: bool
    cover_url: str | None
    vods: list[Vod] | None = Field(None, description="the user's saved broadcasts, newest first (at most 50)")


class UserList(ResponseModel):
    total: int
    users: list[User]


class UserMatch(User):
    followers: int
    waiting_for_access: bool = Field(description="a live-access request of theirs waits for an operator "
                                                 "(decided in `GET /api/live-access/requests`)")


class UserSearchAnswer(ResponseModel):
    total: int = Field(description="users that match, on every page")
    users: list[UserMatch] = Field(description="by handle")
    next_offset: int | None = Field(description="the `offset` of the next page; null on the last")


class LoginAnswer(ResponseModel):
    token: str
    token_type: Literal["Bearer"]
    expires_at: float
    user: User


class LiveAccess(ResponseModel):
    handle: str
    allowed: bool
    reason: str = Field(examples=["live access requires 1000 followers, you have 12"])
    followers: int
    min_followers: int
    override: Literal["granted", "revoked"] | None


class LiveAccessChanged(LiveAccess):
    stopped_live_stream: bool


class StreamKey(ResponseModel):
    stream_key: str = Field(description="secret; shown only to its owner")
    server: str
    url: str
    public_name: str
    playback_url: str
    auth_mode: str
    keyframe_interval: float = Field(description="seconds between keyframes to set in the encoder (hls.segment_duration)")


class ChatSettings(ResponseModel):
    enabled: bool
    followers_only: bool
    slow_mode_seconds: int


class GoLiveSettings(ResponseModel):
    title: str
    cover_url: str | None
    chat: ChatSettings
    save_by_default: bool
    backstage: bool = Field(description="a new broadcast starts private until `POST /api/me/live/public`")
    visibility: Literal["public", "followers", "unlisted", "private"] = Field(
        description="who may watch the next broadcasts (the site's default until the creator chooses)")
    mature: bool = Field(description="the next broadcasts are 18+")
    visibility_allowed: list[str] = Field(description="the visibilities this site allows")
    updated_at: float
    hide_viewer_count: bool = Field(False, description="the viewer count is hidden from the public")


class FollowAnswer(ResponseModel):
    following: bool
    changed: bool
    handle: str
    followers: int


class CoverAnswer(ResponseModel):
    cover_url: str | None
    width: int
    height: int
    bytes: int


class EmailStatus(ResponseModel):
    email: str = Field(description="the address given (empty: none)")
    verified: bool
    verification: bool = Field(description="this server verifies emails (`email.enabled`): followers count "
                                           "toward live access once their email is verified")
    sent: bool | None = Field(None, description="after a change: whether the link could be mailed")


class Registration(ResponseModel):
    """What the sign-up form needs to know about this server."""

    open: bool = Field(description="anyone may create a viewer or creator account (`accounts.open_registration`)")
    email_verification: bool = Field(description="an email may be given and is verified (`email.enabled`): "
                                                 "followers count toward live access once verified")


class EmailVerified(ResponseModel):
    handle: str
    verified: Literal[True]


class Revoked(ResponseModel):
    revoked: int
