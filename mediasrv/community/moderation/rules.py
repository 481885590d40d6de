"""Moderation rules: who may moderate whom, timeouts, banned-word lists, reports.

Pure functions with time passed in; ``mediasrv.community.moderation.service`` applies them and keeps
the state in the store. A refusal is a ``ModerationRefused`` whose ``code`` a client can
act on (``forbidden``, ``bad_request``) and whose ``reason`` is for a human.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class ModerationRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class Action(enum.StrEnum):
    """What a moderation log entry records."""

    DELETE = "delete"
    TIMEOUT = "timeout"
    UNTIMEOUT = "untimeout"
    BAN = "ban"
    UNBAN = "unban"
    SLOW_MODE = "slow_mode"
    FOLLOWERS_ONLY = "followers_only"
    BANNED_WORDS = "banned_words"
    ADD_MODERATOR = "add_moderator"
    REMOVE_MODERATOR = "remove_moderator"
    CHAT_ENABLED = "chat_enabled"


class Standing(enum.IntEnum):
    """Where a user stands in one creator's chat; higher outranks lower.

    The creator outranks the site's moderators in their own chat (it is their room), an
    admin outranks everyone; nobody may act on the creator of the chat (see ``check_target``)."""

    VIEWER = 0
    APPOINTED_MODERATOR = 1  # appointed by this creator
    SITE_MODERATOR = 2  # the site-wide moderator role
    CREATOR = 3
    ADMIN = 4


def standing(*, role: str, is_creator: bool, is_appointed: bool) -> Standing:
    """A user's standing in a chat from their site role and their relation to its creator."""
    if role == "admin":
        return Standing.ADMIN
    if is_creator:
        return Standing.CREATOR
    if role == "moderator":
        return Standing.SITE_MODERATOR
    if is_appointed:
        return Standing.APPOINTED_MODERATOR
    return Standing.VIEWER


def may_moderate(actor: Standing) -> bool:
    """Delete, time out, ban, slow mode, followers-only: the creator and every moderator."""
    return actor >= Standing.APPOINTED_MODERATOR


def may_manage(actor: Standing) -> bool:
    """Appoint moderators and set the creator's banned words: the creator or an admin."""
    return actor in (Standing.CREATOR, Standing.ADMIN)


def check_target(actor: Standing, target: Standing, *, self_target: bool, target_is_creator: bool) -> None:
    """May ``actor`` time out or ban ``target``? Raises ``ModerationRefused`` if not.

    Nobody acts on themselves or on the chat's creator, and a moderator can only act on
    someone they outrank (an appointed moderator cannot ban another one, nor an admin)."""
    if not may_moderate(actor):
        raise ModerationRefused("forbidden", "only the creator and moderators can do that")
    if self_target:
        raise ModerationRefused("bad_request", "you cannot do that to yourself")
    if target_is_creator:
        raise ModerationRefused("forbidden", "nobody can do that to the creator in their own chat")
    if target >= actor:
        raise ModerationRefused("forbidden", "you cannot do that to a moderator of equal or higher standing")


def timeout_until(now: float, minutes: object, max_minutes: int) -> float:
    """When a timeout of ``minutes`` (a whole number, 1..max_minutes) set at ``now`` ends."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ModerationRefused("bad_request", "minutes: a whole number of minutes")
    if not 1 <= minutes <= max_minutes:
        raise ModerationRefused("bad_request", f"minutes: must be 1-{max_minutes}, got {minutes}")
    return now + minutes * 60.0


def time_left(until: float | None, now: float) -> float:
    """Seconds left of a timeout ending at ``until`` (0 when none or expired)."""
    return max(0.0, until - now) if until is not None else 0.0


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def clean_reason(value: object, *, max_chars: int, required: bool, name: str = "reason") -> str:
    """A free-text reason or resolution: stripped, no control characters, bounded."""
    if value is None or value == "":
        if required:
            raise ModerationRefused("bad_request", f"{name}: required")
        return ""
    if not isinstance(value, str):
        raise ModerationRefused("bad_request", f"{name}: expected text")
    text = " ".join(value.split())
    if _has_control(text):
        raise ModerationRefused("bad_request", f"{name}: control characters are not allowed")
    if required and not text:
        raise ModerationRefused("bad_request", f"{name}: required")
    if len(text) > max_chars:
        raise ModerationRefused("bad_request", f"{name}: at most {max_chars} characters, got {len(text)}")
    return text


def clean_word_list(words: object, *, max_words: int, max_chars: int) -> tuple[str, ...]:
    """A creator's banned words: whitespace folded, duplicates (ignoring case) dropped,
    order kept. Raises ``ModerationRefused`` naming the offending entry."""
    if not isinstance(words, list):
        raise ModerationRefused("bad_request", "words: expected a list of words or phrases")
    out: list[str] = []
    seen: set[str] = set()
    for index, word in enumerate(words):
        if not isinstance(word, str):
            raise ModerationRefused("bad_request", f"words[{index}]: expected text")
        word = " ".join(word.split())
        if not word or _has_control(word) or len(word) > max_chars:
            raise ModerationRefused("bad_request",
                                    f"words[{index}]: 1-{max_chars} characters without control characters")
        key = unicodedata.normalize("NFKC", word).casefold()
        if key not in seen:
            seen.add(key)
            out.append(word)
    if len(out) > max_words:
        raise ModerationRefused("bad_request", f"words: at most {max_words} words, got {len(out)}")
    return tuple(out)


# --- reports -------------------------------------------------------------------------------

REPORT_KINDS = ("message", "user", "stream")
REPORT_STATUSES = ("open", "resolved", "dismissed")
CLOSED_STATUSES = ("resolved", "dismissed")


def check_resolution(current: str, new: str) -> None:
    """An open report is closed once, as resolved or dismissed."""
    if new not in CLOSED_STATUSES:
        raise ModerationRefused("bad_request", f"status: one of {', '.join(CLOSED_STATUSES)}")
    if current != "open":
        raise ModerationRefused("conflict", f"the report is already {current}")


@dataclass(frozen=True, slots=True)
class ReportQuota:
    """``limit`` reports per user per ``window`` seconds (abuse of the queue is abuse too)."""

    limit: int
    window: float = 3600.0

    def retry_after(self, recent: list[float], now: float) -> float:
        """0 when a report made at ``now`` is allowed, given the user's report times
        ``recent`` (within the window); else the seconds until the oldest leaves it."""
        inside = sorted(t for t in recent if now - t < self.window)
        if len(inside) < self.limit:
            return 0.0
        return max(0.001, inside[len(inside) - self.limit] + self.window - now)
