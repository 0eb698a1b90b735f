"""The sources page at the desk: add (checked first), edit, pause, retry, remove."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.errors import NotFoundError
from digest.store import sources
from digest.web import create_app
from tests.httpserver import LocalServer
from tests.web.conftest import Clock, TestClient, client_for, csrf_of, login

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Ghent news</title><link>https://example.org/</link>
<description>x</description>
<item><title>A new library opens</title><link>https://example.org/library</link>
<guid>https://example.org/library</guid><pubDate>Sat, 21 Nov 2026 09:00:00 GMT</pubDate>
<description>The city opens a new library.</description></item>
</channel></rss>"""


@pytest.fixture
def desk(web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(web_settings, factory=factory, clock=clock)) as client:
        login(client)
        yield client


def stored(factory: sessionmaker[Session], name: str) -> dict[str, Any] | None:
    with factory() as session:
        try:
            source = sources.by_name(session, name)
        except NotFoundError:
            return None
        return {"url": source.url, "language": source.language, "topics": source.topics}


def test_a_source_is_checked_then_added_edited_and_removed(
    desk: TestClient, factory: sessionmaker[Session], http_server: LocalServer
) -> None:
    http_server.route("/feed.xml", body=RSS, headers={"Content-Type": "application/rss+xml"})
    page = desk.get("/en/admin/sources")
    assert page.status_code == 200 and "governance" in page.text  # the config's source
    assert "Declared in the config file" in page.text
    csrf = csrf_of(page.text)
    added = desk.post(
        "/en/admin/sources/add",
        data={
            "csrf": csrf,
            "name": "ghent",
            "url": http_server.url("/feed.xml"),
            "kind": "feed",
            "language": "nl",
            "topics": "housing, Culture",
        },
    )
    assert added.status_code == 303
    assert "ghent was checked and added: it holds 1 item." in desk.get("/en/admin/sources").text
    assert stored(factory, "ghent") == {
        "url": http_server.url("/feed.xml"),
        "language": "nl",
        "topics": ["housing", "Culture"],
    }
    edited = desk.post(
        "/en/admin/sources/edit",
        data={
            "csrf": csrf,
            "name": "ghent",
            "url": http_server.url("/feed.xml"),
            "language": "fr",
            "topics": "culture",
            "section": "news",
        },
    )
    assert edited.status_code == 303
    assert stored(factory, "ghent") == {
        "url": http_server.url("/feed.xml"),
        "language": "fr",
        "topics": ["culture"],
    }
    retried = desk.post(
        "/en/admin/collect", data={"csrf": csrf, "name": "ghent", "back": "sources"}
    )
    assert retried.headers["location"] == "/en/admin/sources"
    removed = desk.post("/en/admin/sources/remove", data={"csrf": csrf, "name": "ghent"})
    assert removed.status_code == 303 and stored(factory, "ghent") is None


def test_a_source_the_check_cannot_read_is_not_added(
    desk: TestClient, factory: sessionmaker[Session], http_server: LocalServer
) -> None:
    http_server.route("/gone.xml", status=404)
    csrf = csrf_of(desk.get("/en/admin/sources").text)
    refused = desk.post(
        "/en/admin/sources/add",
        data={"csrf": csrf, "name": "broken", "url": http_server.url("/gone.xml"), "kind": "feed"},
    )
    assert refused.status_code == 400
    assert 'aria-invalid="true" aria-describedby="url-error"' in refused.text
    assert 'id="url-error">The check could not read it, so it was not added.' in refused.text
    assert 'value="broken"' in refused.text  # what the editor typed stays
    assert stored(factory, "broken") is None
    local = desk.post(
        "/en/admin/sources/add",
        data={"csrf": csrf, "name": "secrets", "url": "file:///etc/passwd", "kind": "page"},
    )
    assert local.status_code == 400 and stored(factory, "secrets") is None
    config_source = desk.post(
        "/en/admin/sources/edit",
        data={"csrf": csrf, "name": "governance", "url": "https://example.org/x", "language": "en"},
    )
    assert config_source.status_code == 400
    assert "It is declared in the config file: change it there." in config_source.text
