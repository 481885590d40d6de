"""Chat rules: what a message may contain, how fast a user may send, who may speak.

Pure functions and small state machines with time passed in; the WebSocket hub applies
them. A refusal is a ``Refusal`` with a code a client can act on and a human reason.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field

from mediasrv.textrules import strip_invisible


class RefusalCode(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    RATE_LIMITED = "rate_limited"
    SLOW_MODE = "slow_mode"
    FOLLOWERS_ONLY = "followers_only"
    BANNED_WORD = "banned_word"
    TIMED_OUT = "timed_out"
    BANNED = "banned"
    NOT_LOGGED_IN = "not_logged_in"
    CHAT_OFF = "chat_off"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    reason: str
    #: Seconds after which trying again may succeed (rate limit, slow mode, timeout).
    retry_after: float = 0.0


class ChatRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


# Invisible characters (mediasrv.textrules: the rule display names and titles follow
# too) are removed: they can reorder text (bidi overrides) or hide it (zero-width),
# which is how spam evades filters.


def clean_text(text: str, *, max_chars: int) -> str:
    """Normalise a chat message: NFC, no control/format characters, whitespace folded.

    Raises ``ChatRefused`` (EMPTY or TOO_LONG). The result is plain text: it is sent as a
    JSON string and never interpreted as markup by the server."""
    if not isinstance(text, str):
        raise ChatRefused(Refusal(RefusalCode.EMPTY, "a message must be text"))
    if len(text) > max_chars * 4:
        raise ChatRefused(Refusal(RefusalCode.TOO_LONG, f"messages are limited to {max_chars} characters"))
    text = "".join(" " if ch in "\t\r\n" else ch for ch in strip_invisible(text))
    text = re.sub(r" {2,}", " ", text).strip()
    if not text:
        raise ChatRefused(Refusal(RefusalCode.EMPTY, "the message is empty"))
    if len(text) > max_chars:
        raise ChatRefused(Refusal(RefusalCode.TOO_LONG, f"messages are limited to {max_chars} characters"))
    return text


@dataclass(slots=True)
class TokenBucket:
    """``rate`` messages per ``per`` seconds with bursts of up to ``burst``."""

    rate: float
    per: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def allow(self, now: float) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        refill = self.rate / self.per
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * refill)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / refill


def _fold(text: str) -> str:
    # Case-fold and strip accents so "BÁD" matches "bad".
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class WordFilter:
    """Banned words/phrases matched case- and accent-insensitively on word boundaries."""

    def __init__(self, words: list[str] | tuple[str, ...] = ()) -> None:
        folded = sorted({_fold(w).strip() for w in words if w and w.strip()}, key=len, reverse=True)
        self.words = tuple(folded)
        self._pattern = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in folded) + r")(?!\w)") if folded else None
        )

    def find(self, text: str) -> str | None:
        """The first banned word in ``text``, or None."""
        if self._pattern is None:
            return None
        match = self._pattern.search(_fold(text))
        return match.group(0) if match else None


@dataclass(slots=True)
class RoomSettings:
    """A creator's chat settings (changeable while live)."""

    slow_mode_seconds: float = 0.0
    followers_only: bool = False
    banned_words: tuple[str, ...] = ()
    #: False: the creator turned the chat off; only they may still write (``RoomRules.check``).
    enabled: bool = True


@dataclass(slots=True)
class Speaker:
    """What the rules need to know about the user trying to speak."""

    user_id: int
    is_moderator: bool = False  # the creator, a moderator they appointed, or an admin
    is_creator: bool = False  # the one who may still write when the chat is off
    is_follower: bool = False
    banned: bool = False
    timed_out_until: float = 0.0


@dataclass(slots=True)
class RoomRules:
    """Decides whether a message may be posted. With the chat off (``settings.enabled``
    false) only the creator may write: their moderators and the site's staff keep their
    moderation powers but not their voice (docs/chat.md, "Turning the chat off").
    Moderators skip slow mode, followers-only and the per-user rate limit; nobody skips
    the word filter or the size limit."""

    settings: RoomSettings = field(default_factory=RoomSettings)
    server_words: tuple[str, ...] = ()
    rate: int = 3
    per: float = 2.0
    burst: int = 3
    max_chars: int = 500
    _buckets: dict[int, TokenBucket] = field(default_factory=dict)
    _last_post: dict[int, float] = field(default_factory=dict)
    _filter: WordFilter | None = None

    def update_settings(self, settings: RoomSettings) -> None:
        self.settings = settings
        self._filter = None

    @property
    def word_filter(self) -> WordFilter:
        if self._filter is None:
            self._filter = WordFilter(tuple(self.server_words) + tuple(self.settings.banned_words))
        return self._filter

    def check(self, speaker: Speaker, text: str, now: float) -> str:
        """Return the cleaned text, or raise ``ChatRefused``."""
        if not self.settings.enabled and not speaker.is_creator:
            # First: while the chat is off nothing else a viewer could change would help.
            raise ChatRefused(Refusal(RefusalCode.CHAT_OFF, "the creator has turned the chat off"))
        if speaker.banned:
            raise ChatRefused(Refusal(RefusalCode.BANNED, "you are banned from this creator's chats"))
        if speaker.timed_out_until > now:
            left = speaker.timed_out_until - now
            raise ChatRefused(Refusal(RefusalCode.TIMED_OUT, f"you are timed out for {left:.0f} more seconds", left))
        cleaned = clean_text(text, max_chars=self.max_chars)
        word = self.word_filter.find(cleaned)
        if word is not None:
            raise ChatRefused(Refusal(RefusalCode.BANNED_WORD, "the message contains a word this chat does not allow"))
        if not speaker.is_moderator:
            if self.settings.followers_only and not speaker.is_follower:
                raise ChatRefused(Refusal(RefusalCode.FOLLOWERS_ONLY, "only followers may chat here"))
            slow = self.settings.slow_mode_seconds
            last = self._last_post.get(speaker.user_id)
            if slow > 0 and last is not None and now - last < slow:
                wait = slow - (now - last)
                raise ChatRefused(Refusal(RefusalCode.SLOW_MODE, f"slow mode: wait {wait:.0f} s", wait))
            bucket = self._buckets.get(speaker.user_id)
            if bucket is None:
                bucket = self._buckets[speaker.user_id] = TokenBucket(self.rate, self.per, self.burst)
            wait = bucket.allow(now)
            if wait:
                raise ChatRefused(Refusal(RefusalCode.RATE_LIMITED, "you are sending messages too fast", wait))
        self._last_post[speaker.user_id] = now
        return cleaned
