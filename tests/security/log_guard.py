"""The whole suite's logs are grepped for secrets (a pytest plugin, tests/conftest.py).

Every log record that reaches the root logger during any test — the server runs in the
test's process, so that is every server log line at the level the test runs with — is
searched for the shapes of mediasrv's generated secrets: bearer tokens (``msv_`` + 43
URL-safe characters) and stream keys (``sk_`` + 32). A test during which one is logged
fails, naming the logger. ``tests/security/test_secrets_not_logged.py`` covers the
secrets with no fixed shape (passwords, configured keys) in a dedicated flow.
"""

from __future__ import annotations

import logging
import re

import pytest

SECRET_SHAPES = re.compile(r"\b(msv_[A-Za-z0-9_-]{40,}|sk_[A-Za-z0-9_-]{30,})")


class SecretGuard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is someone else's failure
            return
        if record.exc_info and not record.exc_text:
            text += logging.Formatter().formatException(record.exc_info)
        elif record.exc_text:
            text += record.exc_text
        match = SECRET_SHAPES.search(text)
        if match:
            self.leaks.append(f"{record.name} {record.levelname}: …{match.group(0)[:6]}… in {record.getMessage()[:80]!r}")


GUARD = SecretGuard()


def pytest_configure(config) -> None:
    logging.getLogger().addHandler(GUARD)


@pytest.fixture(autouse=True)
def _no_secret_logged():
    start = len(GUARD.leaks)
    yield
    leaks = GUARD.leaks[start:]
    if leaks:
        pytest.fail("a secret was logged:\n" + "\n".join(leaks), pytrace=False)
