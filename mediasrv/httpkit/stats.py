"""Counters of the HTTP listener, kept by the request middleware and the send-timeout
sweep and read by the metrics at scrape time."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class HttpStats:
    """HTTP requests and errors by kind (a small fixed set of labels)."""

    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    blocking_waits: int = 0
    blocking_wait_seconds: float = 0.0
    #: Connections closed because the client took no byte of its answer (http.send_timeout).
    send_timeouts: int = 0

    def count(self, kind: str, status: int) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1
        if status >= 400:
            key = (kind, "4xx" if status < 500 else "5xx")
            self.errors[key] = self.errors.get(key, 0) + 1
