"""The verification link as a browser and as an API client open it, and what the sign-up
form learns from ``GET /api/registration`` (issue 18 follow-up). A real SMTP server
(aiosmtpd) receives the mail."""

from __future__ import annotations

from tests.accounts.support import accounts_server
from tests.support.smtp import smtp_server, verification_link

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_a_browser_is_sent_to_the_page_without_using_the_link(tmp_path):
    async with smtp_server() as (inbox, port):
        async with accounts_server(tmp_path, "email.enabled=true", "email.host=127.0.0.1", f"email.port={port}",
                                   "email.starttls=false") as api:
            assert await (await api.http.get("/api/registration")).json() == {"open": True, "email_verification": True}
            response = await api.http.post("/api/users", json={"handle": "fan", "password": "correct-horse-9",
                                                                 "email": "fan@example.org"})
            assert response.status == 201, await response.text()
            _, message, _ = await inbox.wait()
            link = verification_link(message)
            path = link[link.index("/api/"):]
            token = path.split("token=")[1]
            response = await api.http.get(path, headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == f"/verify-email?token={token}"
            page = await api.http.get(response.headers["Location"], headers={"Accept": BROWSER_ACCEPT})
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
            # Neither the redirect nor the page used the link: the page's script does (POST).
            response = await api.http.post(path)
            assert await response.json() == {"handle": "fan", "verified": True}
            await api.error(await api.http.post(path), 404)
            # A bad token is refused before any redirect: a 400, not a page.
            await api.error(await api.http.get("/api/verify-email?token=%3Cx%3E", headers={"Accept": BROWSER_ACCEPT}), 400)


async def test_registration_facts_without_email(tmp_path):
    async with accounts_server(tmp_path, "accounts.open_registration=false") as api:
        assert await (await api.http.get("/api/registration")).json() == {"open": False, "email_verification": False}
