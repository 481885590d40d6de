"""The one rule for characters nobody can see, shared by the chat and the API's names
and titles (display names, go-live titles, anything declared ``text(..., clean=True)``).

Invisible characters are how an impostor or a spammer hides: bidi controls reorder what
is shown (``\\u202enimda`` reads "admin"), zero-width ones split a word a filter looks for
(``a\\u200bd\\u200bm\\u200bi\\u200bn``) or make a name that looks empty (``\\ufeff``). They
are stripped; a text left with nothing visible is refused by its caller.

What counts as invisible: Unicode's control, format, private-use, surrogate and
unassigned categories (Cc, Cf, Co, Cs, Cn: bidi controls and zero-width characters are
Cf), and the few letters and symbols that render as blanks (Hangul fillers, the braille
blank, the combining grapheme joiner). Tab, line feed and carriage return are left to
the caller (the chat folds them to spaces; single-line fields refuse them).

Pure: no I/O.
"""

from __future__ import annotations

import unicodedata

INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
#: Letters and marks outside those categories that draw nothing.
BLANKS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
_KEPT = frozenset("\t\n\r")


def is_invisible(ch: str) -> bool:
    """Whether the character ``ch`` is one the rule strips (never tab, LF or CR)."""
    if ch in _KEPT:
        return False
    return ch in BLANKS or unicodedata.category(ch) in INVISIBLE_CATEGORIES


def strip_invisible(text: str) -> str:
    """``text`` in NFC with every invisible character removed."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if not is_invisible(ch))


def has_visible(text: str) -> bool:
    """Whether ``text`` shows anything: a character that is neither invisible nor space."""
    return any(not ch.isspace() and not is_invisible(ch) for ch in text)
