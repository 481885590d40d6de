"""The Low-Latency HLS delivery directives of a media playlist request (RFC 8216bis §6.2.5).

``_HLS_msn=M[&_HLS_part=N]`` asks for a blocking reload, ``_HLS_skip=YES|v2`` for a delta
update. Pure: the route hands in the decoded query and answers 400 on
:class:`BadReloadQuery`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Decimal-integers (§4.2) without sign, at most 10 digits: larger values cannot be
# reached by any live playlist and would only make the "too far ahead" check meaningless.
# ASCII digits only: ``str.isdigit`` would accept "²" or Arabic-Indic digits.
_DECIMAL = re.compile(r"[0-9]{1,10}")


class BadReloadQuery(ValueError):
    """The directives are malformed or inconsistent (answered with 400)."""


@dataclass(frozen=True, slots=True)
class ReloadQuery:
    """What the client asked for: a blocking reload (``msn``, ``part``) and/or a delta."""

    msn: int | None = None
    part: int | None = None
    skip: bool = False


def parse_reload_query(query: Mapping[str, str]) -> ReloadQuery:
    """Read ``_HLS_msn``, ``_HLS_part`` and ``_HLS_skip``; other parameters are ignored.

    Raises :class:`BadReloadQuery` for ``_HLS_part`` without ``_HLS_msn`` (§6.2.5.2) or a
    value that is not a decimal integer."""
    skip = query.get("_HLS_skip") in ("YES", "v2")
    raw_msn, raw_part = query.get("_HLS_msn"), query.get("_HLS_part")
    if raw_part is not None and raw_msn is None:
        raise BadReloadQuery("_HLS_part needs _HLS_msn")
    if raw_msn is None:
        return ReloadQuery(skip=skip)
    if not isinstance(raw_msn, str) or not _DECIMAL.fullmatch(raw_msn):
        raise BadReloadQuery("_HLS_msn is not a decimal integer")
    if raw_part is not None and (not isinstance(raw_part, str) or not _DECIMAL.fullmatch(raw_part)):
        raise BadReloadQuery("_HLS_part is not a decimal integer")
    return ReloadQuery(int(raw_msn), int(raw_part) if raw_part is not None else None, skip)
