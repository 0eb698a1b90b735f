"""Fixtures for the web app tests: settings with secrets, the app on the test database with
a clock the test moves, a client over https (so Secure cookies are kept), and helpers."""

from __future__ import annotations

import email
import email.policy
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from digest import config, pipeline
from digest.pipeline import transport
from digest.web import create_app
from subscribers import registry
from subscribers.model import ConsentSource
from tests.test_draft import MONDAY

with warnings.catch_warnings():
    # starlette 0.x's testclient reads anyio.abc.BlockingPortal at import, an alias anyio
    # 4.16 deprecates (starlette 1.x reads the new name); the tests turn warnings into errors.
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"
EDITOR = "editor@example.org"
WEB = f"""
[web]
secret_key = "web-test-secret-key-0123456789abcdef"
admin_password = "{PASSWORD}"
editors = ["{EDITOR}"]
[subscribers]
suppression_key = "web-test-suppression-key-0123456789"
"""
TOPICS = """
[[sources]]
name = "governance"
url = "feeds/governance.rss"
topics = ["governance", "housing"]
"""


@dataclass
class Clock:
    """The app's clock: a moment the test sets and moves."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def web_settings(make_settings: Any) -> config.Settings:
    """A publication with secrets, an editor, two topics and the outbox transport."""
    settings: config.Settings = make_settings(WEB + TOPICS)
    return settings


def example_settings(make_settings: Any, tmp_path: Path, extra: str = "") -> config.Settings:
    """The example publication (local feeds, calendars, pages) with the web secrets."""
    from examples.run import materialize

    materialize(tmp_path, MONDAY.date())
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    settings: config.Settings = make_settings(
        WEB + extra + '\n[issue]\napproval = "editor"\n' + text[text.index("[[sources]]") :]
    )
    return settings


def drafted(settings: config.Settings, factory: sessionmaker[Session]) -> int:
    """Collect the example sources and draft the Monday issue; return its number."""
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    return pipeline.draft(settings, factory, now=MONDAY - timedelta(hours=12)).number


def client_for(app: Starlette) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


@pytest.fixture
def app(web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Starlette:
    return create_app(web_settings, factory=factory, clock=clock)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with client_for(app) as client:
        yield client


def add(
    settings: config.Settings,
    factory: sessionmaker[Session],
    address: str,
    *,
    confirmed: bool = True,
    language: str = "en",
    topics: tuple[str, ...] = (),
) -> str:
    """Put `address` on the list; return its public_id."""
    with factory() as session, session.begin():
        subscriber = registry.add(
            session,
            address,
            language=language,
            topics=topics,
            source=ConsentSource.CLI,
            consent_version="v1",
            confirmed=confirmed,
            now=MONDAY - timedelta(days=3),
            languages=settings.publication.languages,
            suppression_key=transport.suppression_key(settings),
        )
        return subscriber.public_id


def outbox(settings: config.Settings) -> list[EmailMessage]:
    """The messages the outbox transport wrote, oldest first."""
    files = sorted(settings.delivery.outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    found = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def link_in(message: EmailMessage, pattern: str) -> str:
    """The path of the first URL in the text part that matches `pattern` (a regex)."""
    found = re.search(rf"https?://[^/\s]+(\S*{pattern}\S*)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client: TestClient, language: str = "en") -> None:
    page = client.get(f"/{language}/admin/login")
    answer = client.post(
        f"/{language}/admin/login",
        data={"csrf": csrf_of(page.text), "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
