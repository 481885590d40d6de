"""The moderation and reports API's request and answer shapes (validated and described
from here). Bounds come from the ``moderation`` config section: ``request_models(limits)``."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import Field, RootModel

from mediasrv.community.accounts.models import HANDLE_PATTERN, HANDLE_RULE, User
from mediasrv.community.moderation.rules import REPORT_KINDS, REPORT_STATUSES, Action
from mediasrv.httpkit.models import STREAM_NAME_PATTERN, query_int, RequestModel, ResponseModel, text

StreamName = text(64, pattern=STREAM_NAME_PATTERN, rule="a stream name")
AnyHandle = text(32, pattern=HANDLE_PATTERN, rule=HANDLE_RULE)


@dataclass(frozen=True)
class Requests:
    ban: type[RequestModel]
    timeout: type[RequestModel]
    words: type[RequestModel]
    report: type
    resolve: type[RequestModel]


@functools.cache
def request_models(max_reason_chars: int, max_timeout_minutes: int, max_word_chars: int,
                   max_banned_words: int) -> Requests:
    """The request models for these limits (``config.moderation``)."""
    # Reasons are folded (runs of white space become one space) and may hold no control
    # or format character, as mediasrv.community.moderation.rules.clean_reason wants.
    Reason = text(max_reason_chars, min_length=1, fold=True, forbid="control_or_format")
    OptionalReason = text(max_reason_chars, fold=True, forbid="control_or_format")
    Word = text(max_word_chars, min_length=1, fold=True, forbid="control_or_format")

    class BanChange(RequestModel):
        reason: OptionalReason | None = None

    class Timeout(RequestModel):
        minutes: Annotated[int, Field(ge=1, le=max_timeout_minutes)]

    class BannedWordsChange(RequestModel):
        words: Annotated[list[Word], Field(max_length=max_banned_words)]

    class MessageReport(RequestModel):
        kind: Literal["message"]
        stream: StreamName
        message_id: text(64, min_length=1, strip=False)
        reason: Reason

    class UserReport(RequestModel):
        kind: Literal["user"]
        user: AnyHandle
        reason: Reason

    class StreamReport(RequestModel):
        kind: Literal["stream"]
        stream: StreamName
        reason: Reason

    class NewReport(RootModel[Annotated[Union[MessageReport, UserReport, StreamReport],
                                        Field(discriminator="kind")]]):
        """A report of a chat message (by stream and id), a user or a stream."""

    class Resolution(RequestModel):
        status: Literal["resolved", "dismissed"]
        resolution: Reason

    return Requests(BanChange, Timeout, BannedWordsChange, NewReport, Resolution)


class ModesChange(RequestModel):
    # Not nullable: null is not "unchanged" here, it is refused.
    slow_mode_seconds: Annotated[int, Field(ge=0, le=3600)] = None
    followers_only: bool = None


class LogQuery(RequestModel):
    limit: query_int(1, 500, "page size (1-500)") = 50
    before: query_int(0, 1 << 62, "only entries with a smaller id (paging)") = 0


class ReportQuery(RequestModel):
    status: Literal[REPORT_STATUSES + ("all",)] = Field("open", description="open (default), resolved, dismissed "
                                                                          "or all")
    limit: query_int(1, 500, "page size (1-500)") = 50
    offset: query_int(0, 10_000_000, "rows to skip") = 0


# --- answers ------------------------------------------------------------------------------

class Moderators(ResponseModel):
    changed: bool | None = None
    creator: str
    moderators: list[User]


class Ban(ResponseModel):
    user: str
    display_name: str
    by: str | None
    reason: str
    at: float


class ChatTimeout(ResponseModel):
    user: str
    display_name: str
    by: str | None
    until: float = Field(description="Unix time the timeout ends")


class ChatBans(ResponseModel):
    bans: list[Ban]
    timeouts: list[ChatTimeout]


class BanResult(ResponseModel):
    banned: bool
    changed: bool
    user: str


class TimedOut(ResponseModel):
    user: str
    until: float


class TimeoutEnded(ResponseModel):
    user: str
    changed: bool


class Modes(ResponseModel):
    slow_mode_seconds: int
    followers_only: bool


class BannedWords(ResponseModel):
    words: list[str]
    max_words: int


class LogEntry(ResponseModel):
    id: int
    #: One of the rules' actions (the enum is the one source of their names).
    action: Action
    by: str | None
    target: str | None
    message_id: str | None
    detail: dict[str, Any]
    at: float


class ModerationLog(ResponseModel):
    creator: str
    entries: list[LogEntry]


class Report(ResponseModel):
    id: int
    reporter: str
    kind: Literal[REPORT_KINDS]
    target: str = Field(description="message id, user handle or stream name")
    target_user: str | None
    stream: str
    excerpt: str = Field(description="the reported message's text, kept with the report")
    reason: str
    status: Literal[REPORT_STATUSES]
    resolved_by: str | None
    resolution: str
    created_at: float
    resolved_at: float | None


class ReportList(ResponseModel):
    total: int
    reports: list[Report]
