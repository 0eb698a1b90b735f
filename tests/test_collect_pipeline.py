"""Collect end to end: real HTTP from a local server, real parsing, a real database.

One broken source never stops the others; each failure is recorded on its source with
what to do; conditional GET, 301, 410 and Retry-After change the stored fetch state.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.store.models import Entry, Source
from tests.httpserver import LocalServer

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Migration Governance</title><language>en</language>
<item><title>URBACT Networks</title><link>https://brussels-migration.example.org/urbact</link>
<guid isPermaLink="false">1201 at https://brussels-migration.example.org</guid>
<pubDate>Sun, 22 Nov 2026 09:00:00 +0100</pubDate>
<description>&lt;p&gt;An URBACT Network is a safe space for cities.&lt;/p&gt;</description>
</item>
<item><title>Belgian Resettlement Programme</title>
<link>https://brussels-migration.example.org/resettlement</link>
<pubDate>Fri, 20 Nov 2026 09:00:00 +0100</pubDate>
<description>In 2013, Belgium launched a structural resettlement programme.</description></item>
</channel></rss>"""


def sources_toml(server: LocalServer, names: dict[str, str]) -> str:
    return "".join(
        f'[[sources]]\nname = "{name}"\nurl = "{server.url(path)}"\nkind = "feed"\n'
        for name, path in names.items()
    )


def source(factory: sessionmaker[Session], name: str) -> Source:
    with factory() as session:
        found = session.scalar(sa.select(Source).where(Source.name == name))
        assert found is not None
        return found


def test_one_broken_source_never_stops_the_others(
    http_server: LocalServer, make_settings: Any, factory: sessionmaker[Session]
) -> None:
    http_server.route(
        "/good.rss", body=RSS.encode(), headers={"Content-Type": "application/rss+xml"}
    )
    http_server.route(
        "/html",
        body=b"<html><body><h1>Welcome</h1></body></html>",
        headers={"Content-Type": "text/html"},
    )
    http_server.route("/missing", status=404, body=b"not here")
    http_server.route("/slow.rss", body=RSS.encode(), delay=120)
    settings = make_settings(
        sources_toml(
            http_server,
            {"good": "/good.rss", "html-page": "/html", "missing": "/missing", "slow": "/slow.rss"},
        )
    )
    # Long enough for the good sources on a busy machine, far shorter than the slow one.
    settings = replace(settings, collect=replace(settings.collect, timeout_seconds=10))
    started = time.monotonic()
    report = pipeline.collect_sources(settings, factory, now=NOW)
    assert time.monotonic() - started < 100, "a slow source held the run past its timeout"
    outcome = {r.name: r for r in report.sources}
    assert outcome["good"].outcome == "collected"
    assert (outcome["good"].counts.new, outcome["good"].counts.changed) == (2, 0)
    assert "HTML page" in (outcome["html-page"].error or "")
    assert "404" in (outcome["missing"].error or "")
    assert outcome["slow"].error is not None
    assert sorted(r.name for r in report.failed) == ["html-page", "missing", "slow"]
    missing = source(factory, "missing")
    assert missing.consecutive_failures == 1 and missing.last_status == 404
    assert missing.next_fetch_at is not None and missing.next_fetch_at > NOW
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 2


def test_conditional_get_and_due_times(
    http_server: LocalServer, make_settings: Any, factory: sessionmaker[Session]
) -> None:
    route = http_server.route(
        "/feed.rss", body=RSS.encode(), etag='"v1"', headers={"Content-Type": "application/rss+xml"}
    )
    settings = make_settings(sources_toml(http_server, {"governance": "/feed.rss"}))
    pipeline.collect_sources(settings, factory, now=NOW)
    assert source(factory, "governance").etag == '"v1"'
    # Not due yet: nothing is fetched.
    assert pipeline.collect_sources(settings, factory, now=NOW + timedelta(minutes=5)).sources == []
    with factory.begin() as session:  # as if the last try had failed
        session.execute(
            sa.update(Source).values(
                consecutive_failures=2, last_error="timed out", last_status=None
            )
        )
    later = NOW + timedelta(hours=1)
    report = pipeline.collect_sources(settings, factory, now=later)
    assert report.sources[0].outcome == "not modified"
    assert http_server.received_at("/feed.rss")[-1].headers.get("if-none-match") == '"v1"'
    assert route is not None
    # The 304 (stored with the batch's other 304s in one UPDATE) is a success that keeps
    # the validators and schedules the next fetch.
    stored = source(factory, "governance")
    assert (stored.last_status, stored.consecutive_failures, stored.last_error) == (304, 0, None)
    assert (stored.last_fetched_at, stored.last_success_at) == (later, later)
    assert stored.next_fetch_at == later + settings.collect.every
    assert (stored.etag, stored.url) == ('"v1"', http_server.url("/feed.rss"))


def test_first_collection_is_history_later_items_are_news(
    http_server: LocalServer, make_settings: Any, factory: sessionmaker[Session]
) -> None:
    old = RSS.replace("2026", "2019")
    http_server.route(
        "/feed.rss", body=old.encode(), headers={"Content-Type": "application/rss+xml"}
    )
    settings = make_settings(sources_toml(http_server, {"governance": "/feed.rss"}))
    pipeline.collect_sources(settings, factory, now=NOW)
    with factory() as session:
        assert session.scalars(sa.select(Entry.backlog)).all() == [True, True]


def test_gone_deactivates_and_rate_limit_postpones(
    http_server: LocalServer, make_settings: Any, factory: sessionmaker[Session]
) -> None:
    http_server.route("/gone", status=410, body=b"")
    http_server.route("/busy", status=429, body=b"", headers={"Retry-After": "7200"})
    settings = make_settings(sources_toml(http_server, {"gone": "/gone", "busy": "/busy"}))
    report = pipeline.collect_sources(settings, factory, now=NOW)
    assert "410 Gone" in (report.sources[1].error or "")
    gone, busy = source(factory, "gone"), source(factory, "busy")
    assert gone.active is False
    assert busy.active is True and busy.next_fetch_at == NOW + timedelta(hours=2)


def test_moved_permanently_updates_the_url(
    http_server: LocalServer, make_settings: Any, factory: sessionmaker[Session]
) -> None:
    http_server.route("/old.rss", status=301, headers={"Location": http_server.url("/new.rss")})
    http_server.route(
        "/new.rss", body=RSS.encode(), headers={"Content-Type": "application/rss+xml"}
    )
    settings = make_settings(sources_toml(http_server, {"governance": "/old.rss"}))
    pipeline.collect_sources(settings, factory, now=NOW)
    assert source(factory, "governance").url == http_server.url("/new.rss")
    # The next run follows the new url even though the config still says the old one.
    pipeline.collect_sources(settings, factory, now=NOW + timedelta(hours=1))
    assert len(http_server.received_at("/old.rss")) == 1


def test_example_publication_collects_offline(
    make_settings: Any, factory: sessionmaker[Session], tmp_path: Any
) -> None:
    from examples.run import materialize

    materialize(tmp_path, NOW.date())
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    sources_part = text[text.index("[[sources]]") :]
    settings = make_settings(sources_part)
    report = pipeline.collect_sources(settings, factory, now=NOW)
    assert report.failed == []
    found = {r.name: r.counts.new for r in report.sources}
    assert found["migration-governance"] == 7
    assert found["stad-en-migratie"] == 3
    assert found["villes-et-migration"] == 3
    # The page's Actiris item is the IOM feed's entry (same id): 5 items, 4 entries,
    # whichever of the two sources was stored first.
    assert found["iom-belgium-projects"] + found["iom-belgium"] == 4
    assert found["agenda"] >= 7
    with factory() as session:
        actiris = session.scalars(sa.select(Entry).where(Entry.title.like("Actiris%"))).one()
        assert {link.source.name for link in actiris.sources} == {
            "iom-belgium",
            "iom-belgium-projects",
        }
        languages = set(session.scalars(sa.select(Entry.language)))
        assert languages == {"en", "nl", "fr"}
        html = " ".join(session.scalars(sa.select(Entry.summary_html)))
        assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    again = pipeline.collect_sources(settings, factory, now=NOW + timedelta(hours=1), force=True)
    assert all(r.counts.new == 0 for r in again.sources)
