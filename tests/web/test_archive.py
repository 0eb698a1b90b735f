"""The published files through the app: content types, ETag, Last-Modified and 304s."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config, pipeline
from digest.publish import search
from digest.web import create_app
from tests.test_draft import MONDAY
from tests.web.conftest import TestClient, client_for, drafted, example_settings
from tests.web.test_cache import Ticker


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
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def site(
    published: config.Settings, factory: sessionmaker[Session], ticker: Ticker
) -> Iterator[TestClient]:
    with client_for(create_app(published, factory=factory, ticker=ticker)) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "content_type", "needle"),
    [
        ("/feeds/en.atom", "application/atom+xml; charset=utf-8", b"<feed"),
        ("/feeds/fr.atom", "application/atom+xml; charset=utf-8", b'xml:lang="fr"'),
        ("/events.ics", "text/calendar; charset=utf-8; method=PUBLISH", b"METHOD:PUBLISH"),
        ("/archive/nl/", "text/html; charset=utf-8", b'<html lang="nl"'),
        ("/archive/nl/index.html", "text/html; charset=utf-8", b'<html lang="nl"'),
        ("/archive/fr/1.html", "text/html; charset=utf-8", b'lang="fr"'),
        ("/feeds/nl-items.atom", "application/atom+xml; charset=utf-8", b"items/nl"),
        ("/calendars/fr.ics", "text/calendar; charset=utf-8; method=PUBLISH", b"BEGIN:VEVENT"),
        ("/archive/en/search.json", "application/json; charset=utf-8", b'"issue_url"'),
        ("/archive/search.js", "text/javascript; charset=utf-8", b"search.json"),
    ],
)
def test_published_files_are_served_with_their_types(
    site: TestClient, published: config.Settings, path: str, content_type: str, needle: bytes
) -> None:
    answer = site.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert needle in answer.content
    relative = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
    assert answer.content == (published.publish.output_dir / relative).read_bytes()
    assert answer.headers["etag"].startswith('"') and len(answer.headers["etag"]) == 34
    assert parsedate_to_datetime(answer.headers["last-modified"]).tzinfo is not None
    assert "public" in answer.headers["cache-control"]


def test_an_event_file_is_served_as_a_calendar(
    site: TestClient, published: config.Settings
) -> None:
    events = sorted((published.publish.output_dir / "events").glob("*.ics"))
    assert events
    answer = site.get(f"/events/{events[0].name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8; method=PUBLISH"
    assert b"BEGIN:VEVENT" in answer.content


def test_conditional_requests_answer_304(site: TestClient, published: config.Settings) -> None:
    first = site.get("/feeds/en.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    same = site.get("/feeds/en.atom", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag and same.headers["last-modified"] == modified
    assert (
        site.get("/feeds/en.atom", headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    )
    assert site.get("/feeds/en.atom", headers={"If-Modified-Since": modified}).status_code == 304
    # If-None-Match wins over If-Modified-Since, and another ETag means new content.
    other = site.get(
        "/feeds/en.atom", headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
    )
    assert other.status_code == 200 and other.content == first.content
    earlier = parsedate_to_datetime(modified).timestamp() - 3600
    older = format_datetime(parsedate_to_datetime(modified).fromtimestamp(earlier), usegmt=False)
    assert site.get("/feeds/en.atom", headers={"If-Modified-Since": older}).status_code == 200
    assert site.get("/feeds/en.atom", headers={"If-Modified-Since": "yesterday"}).status_code == 200


def test_a_changed_file_gets_a_new_etag(
    site: TestClient, published: config.Settings, ticker: Ticker
) -> None:
    path = published.publish.output_dir / "feeds" / "en.atom"
    etag = site.get("/feeds/en.atom").headers["etag"]
    path.write_bytes(path.read_bytes().replace(b"</feed>", b"<!-- changed --></feed>"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    ticker.now += 1.0  # the app looks at a kept file again after a second
    again = site.get("/feeds/en.atom", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag


def test_head_answers_headers_only(site: TestClient) -> None:
    answer = site.head("/events.ics")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-type"].startswith("text/calendar")


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/de.atom",
        "/archive/de/",
        "/archive/en/99.html",
        "/events/not-a-hash.ics",
        "/events/..%2F..%2Fdigest.toml.ics",
        "/archive/en/..%2F..%2Fdigest.toml",
    ],
)
def test_anything_else_is_not_found(site: TestClient, path: str) -> None:
    answer = site.get(path)
    assert answer.status_code == 404
    assert b"secret_key" not in answer.content


def test_before_the_first_publish_the_archive_is_not_found_politely(
    client: TestClient,
) -> None:
    answer = client.get("/archive/en/")
    assert answer.status_code == 404 and "Page not found" in answer.text
    assert client.get("/en/archive").headers["location"] == "/archive/en/"


def test_the_archive_searches_on_the_server_without_a_script(
    site: TestClient, published: config.Settings
) -> None:
    answer = site.get("/archive/en/search.html", params={"q": "urbact NETWORKS"})
    assert answer.status_code == 200
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "<script" not in answer.text
    assert "URBACT Networks" in answer.text and "In issue 1" in answer.text
    accents = site.get("/archive/fr/search.html", params={"q": "reseau"}).text
    french = (published.publish.output_dir / "archive/fr/search.json").read_text("utf-8")
    assert ("réseau" in french.lower()) == ("<p>Aucun résultat.</p>" not in accents)
    nothing = site.get("/archive/en/search.html", params={"q": "zzzz-nothing"}).text
    assert "<p>Nothing found.</p>" in nothing
    empty = site.get("/archive/en/search.html").text
    assert "<p>Nothing found.</p>" not in empty and 'name="q"' in empty
    static = (published.publish.output_dir / "archive/en/search.html").read_text("utf-8")
    assert '<script src="https://digest.example.org/archive/search.js" defer>' in static


@pytest.mark.parametrize("path", ["/calendars/x.y.ics", "/calendars/EN.ics", "/calendars/nope.ics"])
def test_only_calendar_names_are_served(site: TestClient, path: str) -> None:
    assert site.get(path).status_code == 404


def test_older_archive_pages_and_search_parts_are_served_and_searched(
    site: TestClient, published: config.Settings
) -> None:
    """With more issues than the index lists, `search.json` names the parts holding the
    older ones: the server's search reads them too, newest first, each story once."""
    folder = published.publish.output_dir / "archive/en"

    def item(title: str, number: int, summary: str) -> dict[str, object]:
        url = f"https://a.example/{title}"
        return asdict(search.IndexedItem(title, url, f"u{number}", number, "d", summary))

    (folder / "search.json").write_bytes(
        search.index_document([item("Harbour", 120, "ferry")], ["search-1.json", "../x.json"])
    )
    (folder / "search-1.json").write_bytes(
        search.records_bytes(
            [item("Harbour", 20, "ferry old"), item("Quay", 3, "a ferry"), item("Other", 2, "-")]
        )
    )
    (folder / "page-1.html").write_bytes(b"<!DOCTYPE html><title>page 1</title>")
    answer = site.get("/archive/en/search.html", params={"q": "ferry"})
    assert answer.status_code == 200
    assert answer.text.count(">Harbour<") == 1 and "In issue 120" in answer.text
    assert "Quay" in answer.text and "In issue 3" in answer.text
    assert "Other" not in answer.text
    assert site.get("/archive/en/search-1.json").json()[1]["title"] == "Quay"
    assert site.get("/archive/en/page-1.html").text.endswith("<title>page 1</title>")
    assert site.get("/archive/en/page-2.html").status_code == 404
