"""A real SMTP server for the email tests (aiosmtpd, in its own thread): every mail it
receives, whether it came over TLS, and an event the test's loop can await."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import socket
import ssl
from email.message import EmailMessage
from typing import AsyncIterator

from aiosmtpd.controller import Controller


class Inbox:
    """An aiosmtpd handler keeping every mail; ``wait`` awaits the n-th one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.mails: list[tuple[list[str], EmailMessage, bool]] = []
        self._changed = asyncio.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        over_tls = session.ssl is not None  # aiosmtpd sets it once STARTTLS completed
        self.loop.call_soon_threadsafe(self._arrived, (list(envelope.rcpt_tos), message, over_tls))
        return "250 OK"

    def _arrived(self, mail) -> None:
        self.mails.append(mail)
        self._changed.set()

    async def wait(self, count: int = 1, timeout: float = 20) -> tuple[list[str], EmailMessage, bool]:
        """The ``count``-th mail received (awaited up to ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while len(self.mails) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.mails[count - 1]


def verification_link(message: EmailMessage) -> str:
    """The verification link of a mail mediasrv sent."""
    return re.search(r"(https?://\S+/api/verify-email\?token=[A-Za-z0-9_-]+)", message.get_content()).group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def smtp_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[Inbox, int]]:
    """An SMTP server on 127.0.0.1: (its inbox, its port). With ``tls`` (a server
    context) it offers STARTTLS and refuses any mail before it."""
    inbox = Inbox(asyncio.get_running_loop())
    port = _free_port()
    options = {"tls_context": tls, "require_starttls": True} if tls is not None else {}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    await asyncio.to_thread(controller.start)
    try:
        yield inbox, port
    finally:
        await asyncio.to_thread(controller.stop)


def server_context(cert, key) -> ssl.SSLContext:
    """A server-side TLS context of that certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
