"""Verification mails over STARTTLS (issue 18 follow-up) against a real aiosmtpd server
that refuses any mail before STARTTLS, with a self-signed certificate made for the test:
trusted through ``email.ca_file`` the mail arrives over TLS; not trusted (the system's
store only) the send fails, is logged, and the account is kept (201, unverified)."""

from __future__ import annotations

import logging

from mediasrv.httpkit.keys import ACCOUNTS
from tests.accounts.support import accounts_server
from tests.security.support import self_signed
from tests.support.smtp import server_context, smtp_server, verification_link


def _email_config(port: int, *extra: str) -> tuple[str, ...]:
    return ("email.enabled=true", "email.host=127.0.0.1", f"email.port={port}", "email.starttls=true",
            "email.from_address=noreply@example.org", *extra)


async def test_the_mail_arrives_over_starttls_with_the_ca_file_trusted(tmp_path):
    cert, key = self_signed(tmp_path)
    async with smtp_server(server_context(cert, key)) as (inbox, port):
        async with accounts_server(tmp_path, *_email_config(port, f"email.ca_file={cert}")) as api:
            response = await api.http.post("/api/users", json={"handle": "fan", "password": "correct-horse-9",
                                                                 "email": "fan@example.org"})
            assert response.status == 201, await response.text()
            recipients, message, over_tls = await inbox.wait()
            assert recipients == ["fan@example.org"] and over_tls
            link = verification_link(message)
            response = await api.http.get(link[link.index("/api/"):])
            assert await response.json() == {"handle": "fan", "verified": True}


async def test_an_untrusted_certificate_fails_the_send_but_keeps_the_account(tmp_path, caplog):
    cert, key = self_signed(tmp_path)
    caplog.set_level(logging.WARNING, logger="mediasrv.accounts.mail")
    async with smtp_server(server_context(cert, key)) as (inbox, port):
        async with accounts_server(tmp_path, *_email_config(port)) as api:  # no ca_file: system store only
            response = await api.http.post("/api/users", json={"handle": "fan", "password": "correct-horse-9",
                                                                 "email": "fan@example.org"})
            assert response.status == 201, await response.text()
            mailer = api.srv.app[ACCOUNTS].mailer
            assert mailer.failed == 1 and mailer.sent == 0
            assert any("could not send mail" in r.getMessage() and "SSLCertVerificationError" in r.getMessage()
                       for r in caplog.records)
            fan = await api.login("fan", "correct-horse-9")
            status = await (await api.http.get("/api/me/email", headers=fan)).json()
            assert status == {"email": "fan@example.org", "verified": False, "verification": True}
            # Giving the address again fails the same way: 202 with sent false, never a 5xx.
            response = await api.http.put("/api/me/email", headers=fan, json={"email": "fan@example.org"})
            assert response.status == 202 and (await response.json())["sent"] is False
            assert inbox.mails == []
