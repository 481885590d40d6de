"""Sending mail through the configured SMTP server (``email.*``): verification links.

``smtplib`` is blocking: ``send`` runs it in a thread. With ``email.starttls`` the
connection is upgraded before any login, and the server's certificate and host name are
verified (the system's trust store, or only ``email.ca_file`` when set: a private server). A mail that cannot be sent is logged and reported as False:
registration does not fail because the mail server is down.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage

from mediasrv.config import EmailConfig

log = logging.getLogger("mediasrv.accounts.mail")


class Mailer:
    """One SMTP connection per mail (verification mails are rare)."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.sent = 0
        self.failed = 0

    async def send(self, to: str, subject: str, body: str) -> bool:
        """Send a plain-text mail; False (logged) when the server refuses or cannot be reached."""
        message = EmailMessage()
        message["From"] = self.config.from_address
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            self.failed += 1
            log.warning("could not send mail through %s:%d: %s", self.config.host, self.config.port,
                        type(exc).__name__)
            return False
        self.sent += 1
        return True

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=self._tls_context())
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message)

    def _tls_context(self) -> ssl.SSLContext:
        # Read per mail (mails are rare): a renewed CA bundle needs no restart. A missing
        # or unreadable file is an OSError, so the send fails (logged) like a bad certificate.
        return ssl.create_default_context(cafile=self.config.ca_file or None)
