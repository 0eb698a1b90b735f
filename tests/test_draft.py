"""Drafting: the issue belongs to its slot; re-drafting updates it; changes are announced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.store.models import Event, Issue, IssueStatus

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Brussels, the weekly slot


def example_settings(make_settings: Any, tmp_path: Any) -> Any:
    from examples.run import materialize

    materialize(tmp_path, MONDAY.date())
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    return make_settings(text[text.index("[[sources]]") :])


def test_redrafting_a_slot_updates_its_issue(
    make_settings: Any, tmp_path: Any, factory: sessionmaker[Session]
) -> None:
    settings = example_settings(make_settings, tmp_path)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    first = pipeline.draft(settings, factory, now=MONDAY - timedelta(hours=12))
    again = pipeline.draft(settings, factory, now=MONDAY + timedelta(minutes=5))
    assert first.created and not again.created
    assert (first.number, first.slot) == (again.number, again.slot) == (1, MONDAY)
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Issue)) == 1
    english = again.plan.variant("en")
    names = [s.name for s in english.sections]
    assert names == ["news", "projects", "events"]
    titles = [i.title for s in english.sections for i in s.items]
    assert "URBACT Networks" in titles
    assert "Networking lunch URBACT cities" not in titles  # cancelled, never announced
    assert not any("Final Conference of the Joint IOM" in t for t in titles)  # 2011: history


def test_a_sent_slot_is_never_drafted_again_and_changes_are_flagged(
    make_settings: Any, tmp_path: Any, factory: sessionmaker[Session]
) -> None:
    settings = example_settings(make_settings, tmp_path)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    pipeline.draft(settings, factory, now=MONDAY)
    with factory() as session, session.begin():
        issue = session.scalars(sa.select(Issue)).one()
        issue.status, issue.sent_at = IssueStatus.SENT, MONDAY
        # The organisers move the Mechelen conference to Antwerp after the issue went out.
        event = session.scalars(sa.select(Event).where(Event.summary.like("Globale%"))).one()
        event.location = "Antwerpen"
    nxt = pipeline.draft(settings, factory, now=MONDAY + timedelta(hours=1))
    assert nxt.number == 2 and nxt.slot == MONDAY + timedelta(days=7)
    items = {i.title: i for s in nxt.plan.variant("nl").sections for i in s.items}
    moved = items["Globale conferentie over steden en migratie"]
    assert (moved.change, moved.previous) == ("moved", "Mechelen, België")
    # News already sent in issue 1 is not repeated.
    assert "URBACT Networks" not in items
