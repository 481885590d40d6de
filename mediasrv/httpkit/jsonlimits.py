"""How deep a JSON text nests, found before any parser sees it.

Python's ``json`` decoder recurses once per ``[``/``{``: a body of ``[[[…]]]`` a few
thousand deep costs a ``RecursionError`` (a 500 before issue 18) and stack for every
level. No request of the API or the chat nests more than a few levels, so a text that
nests deeper than ``MAX_DEPTH`` is refused before it is parsed (HTTP bodies in
``httpkit.body``, chat frames in ``community.chat.service``). The size is bounded by
who reads the text (``http.max_body_bytes``, the chat's frame limit).

Pure: no I/O.
"""

from __future__ import annotations

import re

#: Deepest nesting any request of the API or the chat may have (each uses 4 or fewer).
MAX_DEPTH = 32

# A JSON string (its brackets do not count), written so the regex engine does not backtrack.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}|\[\}|\{\]")


def too_deep(raw: str | bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays/objects more than ``limit`` deep.

    Every step runs in the regex engine, never a Python loop per character: strings are
    removed, the brackets kept, then innermost pairs are removed ``limit`` times. Brackets
    left after that are nesting deeper than ``limit`` (or unbalanced ones, left to the
    parser to refuse as invalid)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if re.search(rb"[\[{]{%d}" % (limit + 1), brackets):
        return True  # the usual attack, [[[[…, found in one pass
    for _ in range(limit):
        if not brackets:
            return False
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not removed:
            return False  # unbalanced: invalid JSON, which the parser says
    return bool(brackets) and _INNERMOST.search(brackets) is not None
