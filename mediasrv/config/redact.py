"""The configuration as ``mediasrv check-config`` prints it: secrets as ``***``.

Secrets are the fields marked ``Secret`` in ``mediasrv.config.model`` (passwords, tokens,
HMAC keys, and the keys of ``auth.keys``) and the password or token inside any URL
(``redis://:PASSWORD@host``, ``https://host/hook?token=...``). An empty secret prints as
``""``: that it is unset is not a secret, and worth seeing."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

from mediasrv.config.base import Secret

MASK = "***"

#: Query parameters of a URL whose value is a credential.
_SECRET_PARAM = re.compile(r"token|secret|password|passwd|key|sig|auth", re.IGNORECASE)


def redacted(model: BaseModel) -> dict:
    """``model`` as JSON-ready data, with every secret replaced by ``***``."""
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        marks = [m for m in field.metadata if isinstance(m, Secret)]
        if marks and marks[0].keys:
            out[name] = _mask_keys(value)
        elif marks:
            out[name] = MASK if value else value
        else:
            out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return redacted(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return mask_url(value)
    return value


def _mask_keys(value: dict) -> dict:
    # Several keys cannot all be "***" in one JSON object: number them.
    if len(value) == 1:
        return {MASK: _plain(next(iter(value.values())))}
    return {f"{MASK}{index}": _plain(v) for index, v in enumerate(value.values(), 1)}


def mask_url(text: str) -> str:
    """``text`` with a URL's password and credential query values as ``***``; anything
    that is not a URL with those is returned unchanged."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:  # not a URL after all (a bad port, a stray bracket)
        return text
    netloc = parts.netloc
    if password:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SECRET_PARAM.search(k) and v else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return text
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
