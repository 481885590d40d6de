"""Shapes of the live-access request API (validated and described from here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mediasrv.community.accounts.models import User
from mediasrv.httpkit.models import RequestModel, ResponseModel, query_int, text

MESSAGE_MAX = 500
#: The largest threshold an operator may set (what the configuration allows too).
MIN_FOLLOWERS_MAX = 1_000_000_000


class NewAccessRequest(RequestModel):
    message: text(MESSAGE_MAX, min_length=1) = Field(
        description="a short word to the operators: who you are, what you will stream")


class Grant(RequestModel):
    reason: text(MESSAGE_MAX) = Field("", description="what the creator is told (optional)")


class Refusal(RequestModel):
    reason: text(MESSAGE_MAX, min_length=1) = Field(description="what the creator is told: why")


class AccessRequestQuery(RequestModel):
    status: Literal["pending", "granted", "refused", "all"] = Field("pending", description="pending (default), "
                                                                    "granted, refused or all")
    limit: query_int(1, 500, "at most this many, newest first (1-500)") = 100


class SiteSettingsChange(RequestModel):
    live_access_min_followers: int | None = Field(
        ..., ge=0, le=MIN_FOLLOWERS_MAX, description="followers a creator needs to go live; null: the "
                                                     "configuration's live_access.min_followers")


class AccessRequest(ResponseModel):
    id: int
    user: User
    message: str
    status: Literal["pending", "granted", "refused"]
    reason: str = Field(description="the operator's answer (empty while pending)")
    created_at: float
    decided_at: float | None
    decided_by: str | None = Field(description="the deciding operator's handle")


class AccessRequestList(ResponseModel):
    requests: list[AccessRequest]


class SiteSettings(ResponseModel):
    live_access_min_followers: int = Field(description="the threshold in force")
    configured_min_followers: int = Field(description="live_access.min_followers from the configuration")
    source: Literal["admin", "config"] = Field(description="where the threshold in force comes from")
