"""Outgoing event webhooks: ``stream.started``, ``stream.ended``, ``broadcast.saved``.

``send(event, data)`` never blocks and never raises: it queues one delivery per configured
URL and returns. Worker tasks POST them; a delivery that fails (no 2xx answer, a timeout,
a refused connection) is retried ``webhooks.retries`` times after ``backoff``, 2×, 4× …
seconds (at most 10 minutes apart). Deliveries beyond ``MAX_PENDING`` are dropped and
counted, so a dead receiver costs bounded memory. Pending deliveries are lost at shutdown.

Every POST carries::

    Content-Type: application/json
    X-Mediasrv-Event: stream.started
    X-Mediasrv-Delivery: <id, the same for every retry of one delivery>
    X-Mediasrv-Attempt: 1, 2, ...
    X-Mediasrv-Timestamp: <unix seconds of this attempt>
    X-Mediasrv-Signature: sha256=<hex HMAC-SHA256(secret, TIMESTAMP + "." + BODY)>

and the body ``{"id", "event", "created_at", "data"}``. A receiver recomputes the HMAC
over the raw body, compares in constant time and rejects old timestamps (replays).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

import aiohttp

from mediasrv.config import WebhooksConfig

log = logging.getLogger("mediasrv.webhooks")

SECRET_ENV = "MEDIASRV_WEBHOOK_SECRET"
MAX_PENDING = 1000
MAX_BACKOFF = 600.0
EVENTS = ("stream.started", "stream.ended", "broadcast.saved")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Mediasrv-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(slots=True)
class Delivery:
    url: str
    event: str
    id: str
    body: bytes
    attempt: int = 0


@dataclass(slots=True)
class WebhookStats:
    queued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    by_event: dict = field(default_factory=dict)


class WebhookSender:
    """The webhooks component (``app[WEBHOOKS]``)."""

    def __init__(
        self,
        config: WebhooksConfig,
        session: Callable[[], aiohttp.ClientSession | None],
        *,
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.urls = tuple(config.urls)
        self.secret = config.secret or os.environ.get(SECRET_ENV, "")
        self.retries = config.retries
        self.backoff = config.backoff
        self.timeout = config.timeout
        self._session = session
        self._concurrency = concurrency
        self._clock = clock
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._pending = 0  # queued + waiting for a retry + being sent
        self._workers: list[asyncio.Task] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self.stats = WebhookStats()

    @property
    def enabled(self) -> bool:
        return bool(self.urls and self.secret)

    async def start(self) -> None:
        if self.enabled:
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._work(), name=f"webhooks-{i}") for i in range(self._concurrency)]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def send(self, event: str, data: dict) -> str | None:
        """Queue ``event`` for every URL; return its delivery id (None: webhooks are off)."""
        if not self.enabled:
            return None
        delivery_id = secrets.token_hex(12)
        body = json.dumps({"id": delivery_id, "event": event, "created_at": self._clock(), "data": data},
                          separators=(",", ":")).encode()
        self.stats.by_event[event] = self.stats.by_event.get(event, 0) + 1
        for url in self.urls:
            if self._pending >= MAX_PENDING:
                self.stats.dropped += 1
                log.warning("webhook %s to %s dropped: %d deliveries pending", event, _origin(url), self._pending)
                continue
            self._pending += 1
            self.stats.queued += 1
            self._queue.put_nowait(Delivery(url, event, delivery_id, body))
        return delivery_id

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            delivery.attempt += 1
            ok = False
            try:
                ok = await self._post(delivery)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one delivery kill the worker
                log.exception("webhook delivery failed unexpectedly")
            if ok:
                self._pending -= 1
                self.stats.delivered += 1
            elif delivery.attempt <= self.retries:
                self.stats.retried += 1
                delay = min(MAX_BACKOFF, self.backoff * 2 ** (delivery.attempt - 1))
                loop = asyncio.get_running_loop()
                timer: asyncio.TimerHandle | None = None

                def again(d: Delivery = delivery) -> None:
                    self._timers.discard(timer)  # type: ignore[arg-type]
                    self._queue.put_nowait(d)

                timer = loop.call_later(delay, again)
                self._timers.add(timer)
            else:
                self._pending -= 1
                self.stats.failed += 1
                log.warning("webhook %s to %s failed after %d attempts", delivery.event, _origin(delivery.url),
                            delivery.attempt)

    async def _post(self, delivery: Delivery) -> bool:
        session = self._session()
        if session is None or session.closed:
            return False
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mediasrv-webhooks",
            "X-Mediasrv-Event": delivery.event,
            "X-Mediasrv-Delivery": delivery.id,
            "X-Mediasrv-Attempt": str(delivery.attempt),
            "X-Mediasrv-Timestamp": timestamp,
            "X-Mediasrv-Signature": sign(self.secret, timestamp, delivery.body),
        }
        try:
            async with session.post(delivery.url, data=delivery.body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return True
                log.info("webhook %s to %s: HTTP %d (attempt %d)", delivery.event, _origin(delivery.url),
                         response.status, delivery.attempt)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.info("webhook %s to %s: %s (attempt %d)", delivery.event, _origin(delivery.url),
                     type(exc).__name__, delivery.attempt)
        return False


def _origin(url: str) -> str:
    """What a log line says about a receiver: scheme and host (no path or query secrets)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}"
