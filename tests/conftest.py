"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.httpserver import LocalServer

# Database fixtures (SQLite file, or PostgreSQL with DIGEST_TEST_DATABASE_URL) for every test.
pytest_plugins = ["tests.dbfixtures"]


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1 and a free port; configure it with `.route(...)`."""
    with LocalServer() as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses `http_server` as `network`, so `-m "not network"` skips them."""
    for item in items:
        if "http_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.network)


from tests.smtpserver import SmtpServer  # noqa: E402  (appended with its fixture)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, plain, without AUTH.

    It keeps every accepted message (`.messages`: envelope and the data as stored), counts
    sessions (`.connections`), and takes injected trouble: `.reply_for(address, "451 …")`,
    `.drop_on_data()`, `.disconnect_all()`. `.sender_options()` gives `SmtpOptions` that
    reach it. For STARTTLS, implicit TLS or AUTH, use `SmtpServer(starttls=True,
    users={...})` from tests/smtpserver.py as a context manager; its docstring shows all.
    """
    with SmtpServer() as server:
        yield server
