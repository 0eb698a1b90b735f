"""New sources and single pages (issue 11 point 6): a new source's items older than the
last issue sent are history unless the editor asks for them (`--backfill DAYS`); a
feedless page that is one document is news when it is new and again, once, when it
changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.config import SourceSettings
from digest.store import db, sources
from digest.store.models import Entry, Issue, IssueStatus

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def _example_feed(tmp_path: Path) -> Path:
    from examples.run import materialize

    materialize(tmp_path / "example", MONDAY.date())
    return tmp_path / "example" / "feeds" / "migration-governance.rss"


def _sent_issue(settings: Any, factory: sessionmaker[Session], sent_at: datetime) -> None:
    pipeline.draft(settings, factory, now=sent_at)
    with db.transaction(factory) as session:
        issue = session.scalars(sa.select(Issue)).one()
        issue.status, issue.sent_at = IssueStatus.SENT, sent_at


def _add(factory: sessionmaker[Session], name: str, url: Path, backfill: int | None) -> None:
    item = SourceSettings(name=name, url=str(url), kind="feed", language="en")
    with db.transaction(factory) as session:
        sources.add(session, item, default_language="en", now=MONDAY, backfill_days=backfill)


def _news(factory: sessionmaker[Session]) -> set[str]:
    with factory() as session:
        query = sa.select(Entry.title).where(Entry.backlog.is_(False))
        return set(session.scalars(query))


def test_items_older_than_the_last_issue_sent_are_history(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = make_settings()
    feed = _example_feed(tmp_path)
    _sent_issue(settings, factory, MONDAY - timedelta(days=5))
    _add(factory, "governance", feed, backfill=None)
    pipeline.collect_sources(settings, factory, now=MONDAY)
    # Ages 1 and 4 days are newer than the issue sent 5 days ago; 8, 13, 16, 40 days and
    # the undated one are history although 8 and 13 are inside the 14-day news window.
    assert _news(factory) == {"URBACT Networks", "Belgian Resettlement Programme"}


def test_backfill_asks_for_older_items(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = make_settings()
    feed = _example_feed(tmp_path)
    _sent_issue(settings, factory, MONDAY - timedelta(days=5))
    _add(factory, "governance", feed, backfill=14)
    pipeline.collect_sources(settings, factory, now=MONDAY)
    news = _news(factory)
    assert "Global Skill Partnerships" in news  # 13 days old
    assert not any(title.startswith("Integrating Migration") for title in news)  # 40 days


def test_the_cli_takes_backfill(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    from digest.cli import cli

    settings = make_settings()
    feed = _example_feed(tmp_path)
    config_path = tmp_path / "digest.toml"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config_path), "sources", "add", "gov", str(feed), "--backfill", "30"],
    )
    assert result.exit_code == 0, result.output
    with factory() as session:
        assert sources.by_name(session, "gov").backfill_days == 30
    del settings


PAGE = """<!DOCTYPE html><html lang="en"><head><title>Call for projects</title></head>
<body><nav><ul><li><a href="/">Home</a></li></ul></nav><main><h1>Call for projects 2027</h1>
<p>{body}</p></main></body></html>"""


def test_a_single_page_is_news_when_new_and_once_per_change(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    page = tmp_path / "call.html"
    first = "Cities can apply for support for their reception projects until 31 January 2027."
    page.write_text(PAGE.format(body=first), encoding="utf-8")
    settings = make_settings(
        f'[[sources]]\nname = "call"\nurl = "{page}"\nkind = "page"\nlanguage = "en"\n'
        'section = "calls"\n'
    )
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    one = pipeline.draft(settings, factory, now=MONDAY)
    titles = [i.title for s in one.plan.variant("en").sections for i in s.items]
    assert titles == ["Call for projects 2027"]
    with db.transaction(factory) as session:
        issue = session.scalars(sa.select(Issue)).one()
        issue.status, issue.sent_at = IssueStatus.SENT, MONDAY
    # Unchanged: not news again.
    pipeline.collect_sources(settings, factory, now=MONDAY + timedelta(days=2), force=True)
    two = pipeline.draft(settings, factory, now=MONDAY + timedelta(days=3))
    assert two.plan.is_empty
    # Changed: news again, once, with its new text.
    changed = "The deadline moves: cities can apply until 28 February 2027, online only."
    page.write_text(PAGE.format(body=changed), encoding="utf-8")
    pipeline.collect_sources(settings, factory, now=MONDAY + timedelta(days=4), force=True)
    again = pipeline.draft(settings, factory, now=MONDAY + timedelta(days=5))
    (item,) = [i for s in again.plan.variant("en").sections for i in s.items]
    assert item.title == "Call for projects 2027"
    assert "28 February 2027" in item.excerpt
