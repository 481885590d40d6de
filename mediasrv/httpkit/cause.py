"""Why a request was answered with a server error (5xx), for the one log line of it.

A handler that answers a 5xx itself notes the cause on the response (aiohttp's
``StreamResponse`` is a mutable mapping for this); the request middleware of
``observe.routes`` writes the log line, so every 5xx is logged once, in one place, with
the request it answered (docs/operations.md, "Server errors").
"""

from __future__ import annotations

from aiohttp import web

#: The response's mapping key under which its cause is kept.
CAUSE = web.ResponseKey("mediasrv_cause", str)


def with_cause(response: web.StreamResponse, cause: str) -> web.StreamResponse:
    """Note on ``response`` why it is an error (safe to log: never a key or a token)."""
    response[CAUSE] = cause
    return response


#: The longest error body quoted as a cause when none was noted.
_BODY_CHARS = 300


def cause_of(response: web.StreamResponse) -> str:
    """The cause noted by :func:`with_cause`; else a short plain-text or JSON error body
    (``{"error": "..."}`` answers say why), else the reason phrase."""
    noted = response.get(CAUSE)
    if noted:
        return noted
    if isinstance(response, web.Response) and response.content_type in ("text/plain", "application/json"):
        body = response.body
        if isinstance(body, bytes) and 0 < len(body) <= _BODY_CHARS:
            return body.decode(response.charset or "utf-8", errors="replace").strip()
    return response.reason or f"HTTP {response.status}"
