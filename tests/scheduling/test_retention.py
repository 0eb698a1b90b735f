"""The database stays bounded: old deliveries fold into per-issue counts, entries and
events no source carries any more go (the archive keeps what it showed), the outbox
rotates, former subscribers are erased after their grace with the suppression kept."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest import layout, pipeline
from digest.cli import cli
from digest.pipeline import retention, scheduling
from digest.store.models import Delivery, Entry, Event, Issue
from subscribers import registry, suppression
from tests.scheduling.conftest import PEOPLE, add_readers, outbox

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def count(factory: sessionmaker[Session], model: Any) -> int:
    with factory() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_retention_keeps_the_database_bounded_and_the_archive_whole(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = publication(MONDAY.date())
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    scheduling.issue_tick(settings, factory, "weekly", now=MONDAY)
    for path in outbox(settings):  # written now, in real time: as if at the slot
        os.utime(path, (MONDAY.timestamp(), MONDAY.timestamp()))
    page = settings.publish.output_dir / layout.issue_page(1, "en")
    archived = page.read_text("utf-8")
    key = settings.subscribers.suppression_key.reveal().encode()
    gone = PEOPLE[0][0]
    with factory() as session, session.begin():
        person = registry.by_email(session, gone)
        assert person is not None
        registry.unsubscribe(session, person, now=MONDAY + timedelta(days=1), suppression_key=key)
    entries, events = count(factory, Entry), count(factory, Event)
    assert entries and events

    early = retention.purge(settings, factory, now=MONDAY + timedelta(days=10))
    assert not early.anything, early.message

    later = retention.purge(settings, factory, now=MONDAY + timedelta(days=100))
    assert (later.issues_folded, later.delivery_rows) == (1, len(PEOPLE))
    assert later.outbox_files == len(PEOPLE) and not outbox(settings)
    assert later.people == 1
    assert (later.entries, later.events) == (0, 0), "still within items_days"
    with factory() as session:
        issue = session.scalars(sa.select(Issue)).one()
        assert retention.totals(issue) == {"sent": len(PEOPLE)}
        assert registry.by_email(session, gone) is None
        assert suppression.find(session, gone, key=key) is not None, "never mailed again"
    assert count(factory, Delivery) == 0

    said = scheduling.purge_tick(settings, factory, now=MONDAY + timedelta(days=900)).message
    assert f"{entries} entries and {events} events deleted" in said, said
    assert count(factory, Entry) == count(factory, Event) == 0
    pipeline.publish(settings, factory, now=MONDAY + timedelta(days=900))
    assert page.read_text("utf-8") == archived, "the archive keeps what it showed"


def test_digest_purge_applies_the_rules_now(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = publication(MONDAY.date())
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    scheduling.issue_tick(settings, factory, "weekly", now=MONDAY)
    moment = (MONDAY + timedelta(days=91)).isoformat()
    result = CliRunner().invoke(cli, ["--config", str(settings.path), "purge", "--as-of", moment])
    assert result.exit_code == 0, result.output
    assert f"{len(PEOPLE)} delivery rows of 1 issues folded into counts" in result.output
