"""The building blocks of the API's models: one declaration validates a request and
describes it in ``/api/openapi.json``.

- ``RequestModel``: a JSON body or a query string. Unknown fields are refused and values
  are not coerced (``"5"`` is not a number, ``1`` is not ``true``): the model accepts
  exactly what its JSON Schema allows.
- ``ResponseModel``: an answer. Handlers build answers through it (``body.respond``), so
  what the description promises is what is sent.
- ``text(...)``: a string field whose checks (control characters, trimming, length,
  pattern) and whose JSON Schema are written once, here, from the same pattern.
- ``query_int(low, high)``: a whole number in a query string (decimal digits only).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema

from mediasrv.config import STREAM_NAME_RE, STREAM_NAME_RULE
from mediasrv.ports import PLAYBACK_GRANT_PARAM
from mediasrv.textrules import has_visible, is_invisible, strip_invisible

#: A stream name in a path or a query: the rule the handlers check (``STREAM_NAME_RE``).
STREAM_NAME_PATTERN = "^" + STREAM_NAME_RE.pattern + "$"
STREAM_NAME_PARAM = {"type": "string", "pattern": STREAM_NAME_PATTERN, "description": STREAM_NAME_RULE}
#: ``?pt=GRANT``, the signed playback grant that opens a private (backstage) live
#: (``ports.PLAYBACK_GRANT_PARAM``; from ``GET /api/me/live`` or ``GET /api/live/NAME/playback``).
GRANT_QUERY = {"name": PLAYBACK_GRANT_PARAM, "in": "query", "required": False,
               "description": "a signed playback grant: needed for a private (backstage) live",
               "schema": {"type": "string", "maxLength": 64}}


class RequestModel(BaseModel):
    """A request body or query: unknown fields refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    """An answer; only the fields set are sent (``respond`` dumps with ``exclude_unset``)."""

    model_config = ConfigDict(extra="forbid")


class Error(ResponseModel):
    """Every refusal: a 4xx (or 503) with what is wrong, for a human."""

    error: str


@functools.cache
def _class_of(predicate_name: str) -> str:
    """A regex character-class body of every code point for which the named predicate
    holds, as literal characters (\\xNN escapes for ASCII): the same text works in
    Python ``re``, Rust ``regex`` and ECMA-262, so the schema and the check agree."""
    predicate = _PREDICATES[predicate_name]
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if predicate(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))

    def spell(code: int) -> str:
        return f"\\x{code:02X}" if code < 0x80 else chr(code)

    return "".join(spell(a) if a == b else f"{spell(a)}-{spell(b)}" for a, b in ranges)


_PREDICATES = {
    # The house rule for text: no C0 control character but the tab.
    "control": lambda ch: ord(ch) < 32 and ch != "\t",
    # Free text kept for moderators (reasons): no control or format character at all
    # (Unicode Cc, Cf), as mediasrv.community.moderation.rules checks.
    "control_or_format": lambda ch: unicodedata.category(ch) in ("Cc", "Cf"),
    "space": str.isspace,
    # What a name or title must show at least one of (mediasrv.textrules, the chat's rule).
    "invisible": is_invisible,
}


@dataclass(frozen=True)
class _Text:
    max_length: int
    min_length: int
    strip: bool
    fold: bool
    lower: bool
    pattern: str | None
    rule: str
    forbidden: str
    clean: bool = False

    @functools.cached_property
    def schema_pattern(self) -> str:
        if self.pattern is not None:
            return self.pattern
        allowed = f"[^{_class_of(self.forbidden)}]"
        if self.min_length and (self.strip or self.fold):
            # At least one character that survives trimming.
            invisible = _class_of("invisible") if self.clean else ""
            solid = f"[^{_class_of(self.forbidden)}{_class_of('space')}{invisible}]"
            return f"^{allowed}*{solid}{allowed}*$"
        return f"^{allowed}*$"

    @functools.cached_property
    def compiled(self) -> re.Pattern:
        return re.compile(self.schema_pattern)

    def check(self, value: str) -> str:
        if len(value) > self.max_length:
            raise ValueError(f"must be {self.min_length}-{self.max_length} characters, got {len(value)}")
        if self.pattern is None and any(_PREDICATES[self.forbidden](ch) for ch in value):
            raise ValueError("control characters are not allowed")
        if not self.compiled.fullmatch(value):
            if self.rule:
                raise ValueError(f"{value[:64]!r} is not valid ({self.rule})")
            if self.clean and not has_visible(value):
                raise ValueError("must show something: only invisible characters or spaces were sent")
            raise ValueError(f"must be {self.min_length}-{self.max_length} characters, got {len(value.strip())}")
        if self.clean:
            value = strip_invisible(value)
        if self.fold:
            value = " ".join(value.split())
        elif self.strip:
            value = value.strip()
        if len(value) < self.min_length:
            raise ValueError(f"must be {self.min_length}-{self.max_length} characters, got {len(value)}")
        return value.lower() if self.lower else value

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_length, "pattern": self.schema_pattern}
        if self.min_length and not (self.strip or self.fold):
            schema["minLength"] = self.min_length
        if self.rule:
            schema["description"] = self.rule
        return schema


def text(max_length: int, *, min_length: int = 0, strip: bool = True, fold: bool = False, lower: bool = False,
         pattern: str | None = None, rule: str = "", forbid: str = "control", clean: bool = False) -> Any:
    """A string field: at most ``max_length`` characters as sent, no control characters;
    ``strip`` trims white space (``fold`` also joins inner runs of it into one space)
    after the checks, and then at least ``min_length`` characters must remain (0 or 1:
    a pattern can say "something besides white space", not "n such characters").
    ``pattern`` (anchored ``^...$``) replaces the character rule, e.g. for handles;
    ``rule`` says it in words. ``forbid="control_or_format"`` also refuses Unicode
    format characters. ``clean`` (names, titles, descriptions) strips the characters
    nobody sees (``mediasrv.textrules``: bidi controls, zero-width ones, the chat's rule)
    and, with ``min_length``, refuses a text with nothing visible."""
    if (strip or fold) and min_length > 1 and pattern is None:
        raise ValueError("a trimmed text field can require at most 1 character")
    spec = _Text(max_length, min_length, strip and pattern is None, fold, lower, pattern, rule, forbid,
                 clean and pattern is None)
    return Annotated[str, Strict(), AfterValidator(spec.check), WithJsonSchema(spec.json_schema())]


def _decimal(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,19}", value):
            raise ValueError(f"expected a whole number, got {value[:32]!r}")
        return int(value)
    return value


def query_int(low: int, high: int, description: str = "") -> Any:
    """A whole number ``low``-``high`` in a query string: decimal digits, an optional minus
    (``int()`` would also take ``" 1"``, ``"1_0"`` or other scripts' digits, which the
    schema does not)."""
    # The bounds first: the digits check wraps the bounded integer, and both show in the schema.
    return Annotated[int, Field(ge=low, le=high, description=description or None), BeforeValidator(_decimal)]


class SseEvent(ResponseModel):
    """One Server-Sent Event as a client's parser sees it (WHATWG HTML, "Server-sent
    events"): its name and its data (JSON text here)."""

    event: str | None = None
    data: str | None = None
    id: str | None = None
    retry: int | None = None


class TokenQuery(RequestModel):
    """``?access_token=``: browsers' WebSocket and EventSource cannot send headers."""

    access_token: str | None = None
