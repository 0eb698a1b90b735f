"""Public answers from memory: the same bytes as on disk, 304s, and a publish seen within a
second (the app's ticker is moved by the test, never slept on)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config, pipeline
from digest.store.models import Issue
from digest.web import create_app, public
from tests.test_draft import MONDAY
from tests.web.conftest import TestClient, client_for, drafted, example_settings


@dataclass
class Ticker:
    """The app's monotonic seconds, moved by the test."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def published(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> config.Settings:
    settings = example_settings(make_settings, tmp_path)
    number = drafted(settings, factory)
    pipeline.mark_published(settings, factory, number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    return settings


@pytest.fixture
def site(
    published: config.Settings, factory: sessionmaker[Session], ticker: Ticker
) -> Iterator[TestClient]:
    with client_for(create_app(published, factory=factory, ticker=ticker)) as client:
        yield client


@pytest.mark.parametrize(
    "path", ["/feeds/en.atom", "/archive/nl/1.html", "/archive/fr/", "/events.ics"]
)
def test_a_kept_file_is_the_same_bytes_and_is_answered_from_memory(
    site: TestClient, published: config.Settings, ticker: Ticker, path: str
) -> None:
    relative = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
    on_disk = published.publish.output_dir / relative
    first = site.get(path)
    assert first.status_code == 200 and first.content == on_disk.read_bytes()
    on_disk.write_bytes(b"changed behind the app's back")
    ticker.now += 0.5
    again = site.get(path)  # within the second: memory, not the disk
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    ticker.now += 1.0
    later = site.get(path)
    assert later.content == b"changed behind the app's back"
    assert later.headers["etag"] != first.headers["etag"]


def test_a_kept_file_answers_304_to_its_etag_and_date(site: TestClient) -> None:
    first = site.get("/feeds/nl-items.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    same = site.get("/feeds/nl-items.atom", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag and same.headers["last-modified"] == modified
    assert "content-length" not in same.headers or same.headers["content-length"] == "0"
    since = site.get("/feeds/nl-items.atom", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    other = site.get("/feeds/nl-items.atom", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content == first.content
    # The security headers are on kept answers too.
    assert "content-security-policy" in same.headers and "x-content-type-options" in other.headers


def test_a_publish_is_served_within_a_second(
    site: TestClient, published: config.Settings, factory: sessionmaker[Session], ticker: Ticker
) -> None:
    before = site.get("/archive/en/")
    assert site.get("/archive/en/2.html").status_code == 404
    with factory.begin() as session:
        first = session.get(Issue, 1)
        assert first is not None
        session.add(
            Issue(
                number=2,
                cadence=first.cadence,
                slot=first.slot + timedelta(days=7),
                status=first.status,
                plan=first.plan.replace('"number": 1,', '"number": 2,'),
                curation=first.curation,
                composed_at=first.composed_at,
                created_at=first.created_at,
                updated_at=first.updated_at,
                published_at=MONDAY + timedelta(days=7),
            )
        )
    pipeline.publish(published, factory, now=MONDAY + timedelta(days=7))
    assert site.get("/archive/en/").content == before.content  # not yet looked at again
    ticker.now += 1.0
    after = site.get("/archive/en/")
    assert after.content != before.content and b"2.html" in after.content
    assert after.content == (published.publish.output_dir / "archive/en/index.html").read_bytes()
    assert site.get("/archive/en/2.html").status_code == 200
    revalidated = site.get("/archive/en/", headers={"If-None-Match": before.headers["etag"]})
    assert revalidated.status_code == 200


def test_a_removed_file_is_gone_within_a_second(
    site: TestClient, published: config.Settings, ticker: Ticker
) -> None:
    assert site.get("/calendars/en.ics").status_code == 200
    (published.publish.output_dir / "calendars" / "en.ics").unlink()
    ticker.now += 1.0
    assert site.get("/calendars/en.ics").status_code == 404


def test_the_signup_page_is_rendered_once_a_second_at_most(
    published: config.Settings,
    factory: sessionmaker[Session],
    ticker: Ticker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []
    real = public.offered_topics

    def counted(site: Any) -> list[str]:
        asked.append(1)
        return real(site)

    monkeypatch.setattr(public, "offered_topics", counted)
    with client_for(create_app(published, factory=factory, ticker=ticker)) as client:
        first = client.get("/en/")
        assert first.status_code == 200 and 'name="email"' in first.text
        again = client.get("/en/")
        assert again.content == first.content and len(asked) == 1  # no database
        assert again.headers["etag"] == first.headers["etag"]
        assert client.get("/en/", headers={"If-None-Match": first.headers["etag"]}).status_code == (
            304
        )
        # Each path is its own page (the language switcher keeps the path).
        other = client.get("/en/subscribe")
        assert other.status_code == 200 and 'href="/nl/subscribe"' in other.text
        ticker.now += 1.0
        assert client.get("/en/").content == first.content and len(asked) == 3
        dutch = client.get("/nl/")
        assert dutch.headers["etag"] != first.headers["etag"] and 'lang="nl"' in dutch.text
