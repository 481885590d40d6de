"""Regressions: requests that schemathesis found answered with a 500, now a 4xx."""

from __future__ import annotations

import pytest

from tests.accounts.support import accounts_server

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
