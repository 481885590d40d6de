"""Who may publish: ``open``, ``keys``, ``webhook`` or ``accounts`` (config ``auth.mode``).

In ``accounts`` mode the key is a creator's secret stream key; the decision (public name =
the creator's handle, or a refusal with the live-access reason) comes from the accounts
component (``ports.StreamKeyChecker``). In ``open`` mode the key is the public name, except
a key of the accounts' form (``sk_…``): that is a creator's key shown in the studio, and
it publishes under the creator's handle as in ``accounts`` mode.

Every allowed decision then goes through the platform's ``ports.PublishPolicy`` (when one is
given): a stream its creator ended from the studio is refused for a short hold, and a
creator's backstage makes the new broadcast start private. Every publisher (RTMP, WHIP)
authorizes here before ``Hub.publish``, so none of them has to know.

``check_only`` answers whether a key would be taken without any of that: nothing is
published, counted, logged or sent (WHIP's ``OPTIONS`` asks it before handing out TURN
credentials).

A secret stream key never appears in a log line, a playback URL or an API answer: the
decision carries only the public name, and no mode accepts a name of the key's form
(``ports.looks_like_stream_key``) as a public name.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

import aiohttp

from mediasrv.config import STREAM_NAME_RE, AuthConfig
from mediasrv.ports import PublishDecision, PublishPolicy, StreamKeyChecker, looks_like_stream_key

log = logging.getLogger("mediasrv.auth")


def redact_key(key: str) -> str:
    """What a log line may say about a key: its length only."""
    return f"<key of {len(key)} chars>"


class PublishAuthorizer:
    """Decides whether a publish with ``key`` on ``app`` is allowed and under which name."""

    def __init__(
        self,
        config: AuthConfig,
        session: aiohttp.ClientSession | None = None,
        *,
        accounts: StreamKeyChecker | None = None,
        policy: PublishPolicy | None = None,
    ) -> None:
        """``accounts``: who decides on a creator's key in ``auth.mode: accounts`` and
        ``open`` (the accounts service, which the composition root starts before any
        listener); ``policy``: what the platform adds to an allowed decision (the end hold,
        the backstage)."""
        self.config = config
        self._session = session
        self._accounts = accounts
        self._policy = policy
        self.refusals = 0
        self.webhook_failures = 0

    async def authorize(self, *, app: str, key: str, client: str) -> PublishDecision:
        """The decision for a publish with ``key``: the public name, or why not."""
        mode = self.config.mode
        if mode == "open":
            decision = await self._open(key)
        elif mode == "keys":
            decision = self._keys(key)
        elif mode == "accounts":
            decision = await self._account_key(key)
        else:
            decision = await self._webhook(app=app, key=key, client=client)
        if decision.allowed and looks_like_stream_key(decision.name):
            # Whatever decided (a webhook echoing the key, a name in auth.keys): a name of
            # the secret keys' form would publish what looks like a creator's key.
            decision = PublishDecision(False, reason="a stream key is never a public stream name")
        if decision.allowed and self._policy is not None:
            decision = self._policy.admit(decision)
        if not decision.allowed:
            self.refusals += 1
        return decision

    async def check_only(self, key: str) -> PublishDecision:
        """Whether ``key`` is one ``authorize`` takes, with none of its side effects: the
        same check of the key under ``auth.mode`` (``open``, ``keys``, ``accounts``: the
        key, the creator's live access), but no counter, no log line, and the platform's
        ``PublishPolicy`` not asked (it decides about a publish, and marks the name's next
        broadcast private). In ``webhook`` mode the answer is a refusal: the webhook is
        told of publishes (``"action": "publish"``), and a check would look like one."""
        mode = self.config.mode
        if mode == "webhook":
            return PublishDecision(False, reason="the auth webhook is asked only for a publish")
        if mode == "keys":
            decision = self._keys(key)
        elif mode == "open":
            decision = await self._open(key, check_only=True)
        else:
            decision = await self._account_key(key, check_only=True)
        if decision.allowed and looks_like_stream_key(decision.name):
            return PublishDecision(False, reason="a stream key is never a public stream name")
        return decision

    async def _account_key(self, key: str, *, check_only: bool = False) -> PublishDecision:
        if self._accounts is None:
            return PublishDecision(False, reason="no accounts service to check the stream key")
        return await self._accounts.check_publish(key, check_only=check_only)

    async def _open(self, key: str, *, check_only: bool = False) -> PublishDecision:
        if looks_like_stream_key(key):
            # A creator's key from the studio: their handle is the public name, never the key.
            return await self._account_key(key, check_only=check_only)
        # Otherwise the key is the public name, so it must be a valid name.
        if not STREAM_NAME_RE.fullmatch(key):
            return PublishDecision(False, reason="invalid stream name")
        return PublishDecision(True, key)

    def _keys(self, key: str) -> PublishDecision:
        # Compare against every key in constant time so timing tells nothing.
        found = ""
        supplied = key.encode()
        for secret, name in self.config.keys.items():
            if hmac.compare_digest(secret.encode(), supplied):
                found = name
        if found:
            return PublishDecision(True, found)
        return PublishDecision(False, reason="unknown stream key")

    async def _webhook(self, *, app: str, key: str, client: str) -> PublishDecision:
        webhook = self.config.webhook
        body = {"action": "publish", "app": app, "key": key, "client": client}
        try:
            session = self._session or aiohttp.ClientSession()
            try:
                async with session.post(
                    webhook.url, json=body, timeout=aiohttp.ClientTimeout(total=webhook.timeout)
                ) as response:
                    if not 200 <= response.status < 300:
                        return PublishDecision(False, reason=f"refused by the auth webhook (HTTP {response.status})")
                    name = key
                    if response.content_type == "application/json":
                        try:
                            reply = await response.json()
                        except (ValueError, aiohttp.ContentTypeError):
                            reply = None
                        if isinstance(reply, dict) and isinstance(reply.get("name"), str):
                            name = reply["name"]
            finally:
                if self._session is None:
                    await session.close()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self.webhook_failures += 1
            log.warning("auth webhook failed: %s", type(exc).__name__)
            return PublishDecision(False, reason="the auth webhook did not answer")
        if not STREAM_NAME_RE.fullmatch(name):
            return PublishDecision(False, reason="the auth webhook gave an invalid stream name")
        return PublishDecision(True, name)
