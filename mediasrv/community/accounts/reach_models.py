"""The reach API's request and answer shapes: blocks, mutes, suspensions."""

from __future__ import annotations

from pydantic import Field

from mediasrv.community.accounts.models import User
from mediasrv.httpkit.models import RequestModel, ResponseModel, text

#: Longest suspension reason (shown to the user on sign-in).
REASON_MAX = 500


class Related(ResponseModel):
    user: User
    since: float = Field(description="Unix time the block (or mute) was made")


class RelationList(ResponseModel):
    total: int
    users: list[Related]


class RelationAnswer(ResponseModel):
    handle: str
    blocked: bool | None = Field(None, description="(blocks) whether you block this user now")
    muted: bool | None = Field(None, description="(mutes) whether you mute this user now")
    changed: bool = Field(description="false when it already was so")


class NewSuspension(RequestModel):
    reason: text(REASON_MAX, min_length=1) = Field(description="shown to the user when they try to sign in")
    until: float | None = Field(None, gt=0, lt=1e11, description="Unix time the suspension ends; null or absent: "
                                                                 "until an operator lifts it")


class Suspension(ResponseModel):
    handle: str
    reason: str
    until: float | None = Field(description="Unix time it ends; null: until lifted")
    by: str | None = Field(description="the operator who suspended the account")
    created_at: float
    ended_live: bool | None = Field(None, description="(when suspending) whether a live of theirs was ended")


class SuspensionList(ResponseModel):
    suspensions: list[Suspension]


class Lifted(ResponseModel):
    handle: str
    lifted: bool = Field(description="false when the account was not suspended")
