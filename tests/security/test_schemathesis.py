"""Schemathesis against ``/api/openapi.json`` of a running ``mediasrv serve``.

Every operation of the description gets generated requests (valid and invalid bodies,
parameters and path values) with a fresh admin bearer token, so the real handlers run
rather than the 401 in front of them. Every answer must be: not a 5xx, a status the
description documents for that operation, of the documented content type, and, when
JSON, valid against the documented schema; a request the description allows is never
refused as invalid (400), and one it forbids is never accepted. ``MEDIASRV_SCHEMATHESIS_EXAMPLES`` raises the
number of examples per operation (default small: the bounded CI run).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    positive_data_acceptance,
    negative_data_rejection,
)

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "schemathesis-admin-1"
EXAMPLES = int(os.environ.get("MEDIASRV_SCHEMATHESIS_EXAMPLES", "6"))
#: Both sides: no 5xx, answers as described, schema-valid requests not refused as invalid
#: (positive_data_acceptance), schema-invalid ones not accepted (negative_data_rejection).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, positive_data_acceptance, negative_data_rejection]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url
        self.session = requests.Session()
        self.token = ""

    def admin_token(self) -> str:
        """A fresh token: an operation under test may log out or revoke the previous one."""
        response = self.session.post(f"{self.url}/api/login", json={"handle": "admin", "password": ADMIN_PASSWORD},
                                     timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["token"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("schemathesis")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediasrv.cli", "serve", "--set", "rtmp.listen=127.0.0.1:0",
         "--set", "http.listen=127.0.0.1:0", "--set", f"data_dir={data}",
         *[arg for setting in _settings() for arg in ("--set", setting)]],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "MEDIASRV_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    try:
        banner = ""
        deadline = time.monotonic() + 30
        while "API:" not in banner:
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, f"no banner: {banner}"
            banner += line
        url = re.search(r"Watch:\s+(http://127\.0\.0\.1:\d+)/live", banner).group(1)
        # A creator and a viewer, so handles in generated paths can exist.
        s = Server(proc, url)
        token = s.admin_token()
        for handle, role in (("alice", "creator"), ("bob", "viewer")):
            s.session.post(f"{url}/api/users", json={"handle": handle, "password": "password-1", "role": role},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
        s.token = s.admin_token()
        yield s
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _settings() -> list[str]:
    return ["auth.mode=accounts", "transcode.enabled=false", "log.level=warning",
            # Schemathesis logs in with wrong passwords by design; the limit is tested elsewhere.
            "accounts.login_failures=1000000"]


def _description() -> dict:
    """The description the server will serve, built without a server: schemathesis needs
    the operations at collection time (its lazy fixture loader does not work with this
    pytest). The test checks the served one is the same."""
    from mediasrv.config import load_config
    from mediasrv.app.root import create_app
    from mediasrv.httpkit.openapi import OPENAPI

    return create_app(load_config(None, _settings()))[OPENAPI].document()


DESCRIPTION = _description()
# WHIP's offer (POST /whip) is SDP text: sent as the generated text is (UTF-8).
schemathesis.serializer.alias("application/sdp", "text/plain")
#: Event streams never end (an answer is read to its end before it is checked): their
#: first events are checked by tests/accounts and tests/e2e instead.
STREAMS = [path for path, ops in DESCRIPTION["paths"].items()
           if "text/event-stream" in ops.get("get", {}).get("responses", {}).get("200", {}).get("content", {})]
#: A well-formed request the server refuses for what it asks (following yourself, a gift
#: to yourself, reporting yourself) is a 422, and an upload whose bytes are not an image a
#: 415 (no schema can say "a JPEG"): positive data may get those, never a 400.
CONFIG = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "415", "422", "429"]}}})
schema = schemathesis.openapi.from_dict(DESCRIPTION, config=CONFIG).exclude(path=STREAMS)
#: Operations that may end the admin's token (or role): a fresh token after each.
ENDS_SESSION = {("POST", "/api/logout"), ("DELETE", "/api/users/{handle}/tokens"), ("PUT", "/api/users/{handle}/role")}


def test_served_description_is_the_one_tested(server):
    served = server.session.get(f"{server.url}/api/openapi.json", timeout=30).json()
    assert served == DESCRIPTION


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_description(case, server):
    assert STREAMS  # the exclusion above matched the event streams
    try:
        case.call_and_validate(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"},
                               checks=CHECKS, timeout=30)
    finally:
        if (case.method.upper(), case.path) in ENDS_SESSION:
            server.token = server.admin_token()
