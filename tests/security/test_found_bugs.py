"""Regressions: requests that schemathesis found answered with a 500, now a 4xx."""

from __future__ import annotations

import pytest
import yarl

from tests.accounts.support import accounts_server
from tests.chat.support import join

pytestmark = pytest.mark.e2e


async def test_malformed_multipart_cover_is_400(tmp_path):
    async with accounts_server(tmp_path) as api:
        creator = await api.user("alice", "creator")
        jpeg = b"\xff\xd8\xff" + bytes(64)
        cases = [
            ("multipart/form-data", jpeg),  # no boundary
            ("multipart/form-data; boundary=abc", jpeg),  # boundary never appears
            ("multipart/form-data; boundary=b", b"--b\r\n[[[]], None]--b--\r\n"),  # a part header that is no header
        ]
        for content_type, body in cases:
            response = await api.http.put("/api/me/cover", data=body,
                                          headers={**creator, "Content-Type": content_type})
            assert response.status == 400, (content_type, await response.text())
            assert "multipart" in (await response.json())["error"]


async def test_report_ids_beyond_sqlite_integers_are_404(tmp_path):
    async with accounts_server(tmp_path) as api:
        admin = await api.admin()
        huge = "9" * 30
        response = await api.http.get(f"/api/reports/{huge}", headers=admin)
        assert response.status == 404, await response.text()
        response = await api.http.post(f"/api/reports/{huge}/resolve", headers=admin,
                                       json={"status": "dismissed", "resolution": "x"})
        assert response.status == 404, await response.text()
        response = await api.http.get(f"/api/reports/{(1 << 63) - 1}", headers=admin)
        assert response.status == 404


#: JSON nested 1,000 deep (issue 18: `POST /api/login` answered 500 with a RecursionError).
DEEP = "[" * 1000 + "]" * 1000


async def test_json_nested_a_thousand_deep_is_a_400_and_a_chat_error(tmp_path):
    async with accounts_server(tmp_path) as api:
        for body in (DEEP, '{"handle": ' + DEEP + ', "password": "x"}'):
            response = await api.http.post("/api/login", data=body, headers={"Content-Type": "application/json"})
            assert response.status == 400, await response.text()
            assert "nested too deeply" in (await response.json())["error"]
        # The same frame in the chat is that client's error; its connection stays open.
        await api.user("alice", "creator")
        viewer, _ = await join(api, "alice", await api.user("bob"))
        await viewer.ws.send_str('{"type": "message", "text": ' + DEEP + "}")
        assert (await viewer.recv("error"))["code"] == "bad_request"
        assert (await viewer.say("still here"))["type"] == "message"


async def test_a_nul_in_an_asset_path_is_a_404(tmp_path):
    async with accounts_server(tmp_path) as api:
        url = yarl.URL(f"{api.srv.http_url}/web/js/api.js%00.js", encoded=True)
        async with api.http.get(url) as response:
            assert response.status == 404, await response.text()
        async with api.http.get(yarl.URL(f"{api.srv.http_url}/web/js/api.js", encoded=True)) as response:
            assert response.status == 200
