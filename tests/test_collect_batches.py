"""Collecting in bulk keeps every guarantee of one-at-a-time: a parser that hangs is killed
and the other sources are collected; an item the database refuses is left out alone, the
rest of its batch is kept; identities repeated inside a batch still make one entry.
(On SQLite, and on PostgreSQL with DIGEST_TEST_DATABASE_URL.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import collect, pipeline
from digest.collect.documents import parse_document
from digest.pipeline import collecting
from digest.store import items
from digest.store.models import Entry, EntrySource, Source, SourceKind, SourceOrigin
from tests.httpserver import LocalServer
from tests.test_collect_pipeline import RSS, sources_toml

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def hang_on_marker(kind: str, body: bytes, **options: Any) -> collect.Parsed:
    """parse_document, except that a body holding HANG never returns (run in a worker)."""
    while b"HANG" in body:
        pass
    return parse_document(kind, body, **options)


def test_a_hung_parser_is_killed_and_the_rest_collected(
    http_server: LocalServer,
    make_settings: Any,
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = collecting._parser

    def parser(*args: Any) -> Callable[[], collect.Parsed]:
        made = original(*args)
        assert isinstance(made, functools.partial)
        return functools.partial(hang_on_marker, *made.args, **made.keywords)

    monkeypatch.setattr(collecting, "_parser", parser)
    feeds = {}
    for number in range(6):
        body = RSS.replace("brussels-migration", f"site{number}")
        http_server.route(
            f"/{number}.rss", body=body.encode(), headers={"Content-Type": "text/xml"}
        )
        feeds[f"feed-{number}"] = f"/{number}.rss"
    http_server.route("/hang.rss", body=RSS.replace("URBACT", "HANG").encode())
    feeds["hangs"] = "/hang.rss"
    settings = make_settings(sources_toml(http_server, feeds))
    # Fewer parser workers than sources: the ones after the hang need the worker back.
    settings = replace(
        settings, collect=replace(settings.collect, timeout_seconds=20, concurrency=2)
    )
    report = pipeline.collect_sources(settings, factory, now=NOW)
    outcome = {r.name: r for r in report.sources}
    assert "parsing took longer than" in (outcome["hangs"].error or "")
    for number in range(6):
        assert outcome[f"feed-{number}"].outcome == "collected", outcome[f"feed-{number}"].error
        assert outcome[f"feed-{number}"].counts.new == 2
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 12
        hung = session.scalar(sa.select(Source).where(Source.name == "hangs"))
        assert hung is not None and hung.consecutive_failures == 1


def make_source(session: Session, name: str) -> Source:
    made = Source(
        name=name,
        url=f"https://{name}.example.org/feed",
        kind=SourceKind.FEED,
        language="en",
        origin=SourceOrigin.CLI,
        created_at=NOW,
    )
    session.add(made)
    session.flush()
    return made


def entry(number: int, title: str | None = None) -> collect.Entry:
    return collect.Entry(
        title=title if title is not None else f"Item {number}",
        link=f"https://example.org/{number}",
        guid=f"https://example.org/{number}",
        summary_html=f"<p>Text {number}</p>",
        summary_text=f"Text {number}",
        published_at=NOW - timedelta(days=1),
    )


def record(session: Session, source: Source, batch: list[collect.Entry]) -> items.Counts:
    return items.record_entries(
        session, source, batch, now=NOW, first_collection=False, news_window=timedelta(days=14)
    )


@pytest.mark.parametrize("batch_size", [3, 500])
def test_a_bad_item_in_a_batch_is_isolated(
    session: Session, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    monkeypatch.setattr(items, "ENTRY_BATCH", batch_size)
    source = make_source(session, "s")
    batch = [entry(n) for n in range(7)]
    # A title of None breaks the NOT NULL constraint: the database itself refuses it.
    batch[4] = replace(entry(4), title=None)  # type: ignore[arg-type]
    counts = record(session, source, batch)
    session.commit()
    assert (counts.new, len(counts.skipped)) == (6, 1)
    titles = set(session.scalars(sa.select(Entry.title)))
    assert titles == {f"Item {n}" for n in range(7) if n != 4}
    links = session.scalar(sa.select(sa.func.count()).select_from(EntrySource))
    assert links == 6


def test_bulk_storing_counts_new_changed_unchanged_and_links_every_carrier(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(items, "ENTRY_BATCH", 4)
    one, two = make_source(session, "one"), make_source(session, "two")
    first = record(session, one, [entry(n) for n in range(10)])
    assert (first.new, first.changed, first.unchanged) == (10, 0, 0)
    again = [entry(n) for n in range(10)]
    again[3] = entry(3, title="Item 3, corrected")
    second = record(session, one, again)
    assert (second.new, second.changed, second.unchanged) == (0, 1, 9)
    # The same items from another source: one entry each, carried by both.
    third = record(session, two, [entry(n) for n in range(12)])
    assert (third.new, third.unchanged + third.changed) == (2, 10)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 12
    carried = session.execute(
        sa.select(EntrySource.source_id, sa.func.count()).group_by(EntrySource.source_id)
    ).all()
    assert dict(carried) == {one.id: 10, two.id: 12}


def test_an_identity_repeated_inside_a_batch_is_one_entry(session: Session) -> None:
    source = make_source(session, "s")
    twice = [entry(1), entry(2), entry(1, title="Item 1, again")]
    counts = record(session, source, twice)
    session.commit()
    assert counts.new == 2 and counts.new + counts.changed + counts.unchanged == 3
    assert session.scalar(sa.select(sa.func.count()).select_from(Entry)) == 2
