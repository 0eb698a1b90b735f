"""Both cadences from one entry point (`digest run`), the daily issue's short agenda, and
event changes announced to the readers of each cadence that were told of the event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.compose import IssuePlan, PlanItem
from digest.pipeline import scheduling
from digest.store import issues
from digest.store.models import Event, Issue, IssueStatus
from tests.scheduling.conftest import PEOPLE, add_readers, issues_of, outbox

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Brussels: both slots
DAILY_READER = ("dora@example.org", "en", ())


def events_of(plan: IssuePlan) -> dict[int, PlanItem]:
    found = {}
    for variant in plan.variants:
        for section in variant.sections:
            for item in section.items:
                if item.kind == "event":
                    found[int(item.key.split(":", 1)[1])] = item
    return found


def plan_of(factory: sessionmaker[Session], number: int) -> IssuePlan:
    with factory() as session:
        return issues.plan_of(issues.by_number(session, number))


def ready(publication: Any, factory: sessionmaker[Session]) -> Any:
    # The example's agenda starts four days after that Monday: a five-day daily agenda.
    settings = publication(MONDAY.date(), issue={"daily_event_horizon_days": 5})
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    add_readers(settings, factory, [DAILY_READER], cadence="daily", since=MONDAY - timedelta(30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(hours=2))
    return settings


def test_digest_run_sends_the_weekly_and_the_daily_issue_when_their_time_comes(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = ready(publication, factory)
    runner = CliRunner()

    def run(moment: datetime) -> str:
        result = runner.invoke(
            cli_main(), ["--config", str(settings.path), "run", "--as-of", moment.isoformat()]
        )
        assert result.exit_code == 0, result.output
        return result.output

    run(MONDAY + timedelta(minutes=5))
    sent = {(i.cadence, i.slot): i for i in issues_of(factory) if i.status is IssueStatus.SENT}
    assert set(sent) == {("weekly", MONDAY), ("daily", MONDAY)}
    assert len(outbox(settings)) == len(PEOPLE) + 1

    # The daily agenda is the next few days ([issue] daily_event_horizon_days); the weekly
    # one reaches further ([issue] event_horizon_days).
    daily = events_of(plan_of(factory, sent["daily", MONDAY].number))
    weekly = events_of(plan_of(factory, sent["weekly", MONDAY].number))
    horizon = MONDAY + timedelta(days=5)
    assert daily and all(
        (item.starts_at or datetime.combine(item.start_date, datetime.min.time(), UTC)) <= horizon
        for item in daily.values()
        if item.change is None
    )
    assert len(weekly) > len(daily)

    run(MONDAY + timedelta(days=1, minutes=5))  # Tuesday: the daily issue only
    tuesday = [i for i in issues_of(factory) if i.slot == MONDAY + timedelta(days=1)]
    assert [(i.cadence, i.status) for i in tuesday] == [("daily", IssueStatus.SENT)]
    assert len(outbox(settings)) == len(PEOPLE) + 2


def cli_main() -> Any:
    from digest.cli import cli

    return cli


def test_a_change_is_announced_to_each_cadence_that_was_told_and_only_there(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = ready(publication, factory)
    for cadence in ("weekly", "daily"):
        scheduling.issue_tick(settings, factory, cadence, now=MONDAY + timedelta(minutes=1))
    by_cadence = {i.cadence: i for i in issues_of(factory)}
    weekly_events = events_of(plan_of(factory, by_cadence["weekly"].number))
    daily_events = events_of(plan_of(factory, by_cadence["daily"].number))
    both = sorted(set(weekly_events) & set(daily_events))
    weekly_only = sorted(set(weekly_events) - set(daily_events))
    assert both and weekly_only, (weekly_events, daily_events)
    told_both, told_weekly = both[0], weekly_only[0]

    # Both events move to Thursday of next week, 18:00 UTC.
    moved_to = MONDAY + timedelta(days=10, hours=11)
    with factory() as session, session.begin():
        for event_id in (told_both, told_weekly):
            event = session.get_one(Event, event_id)
            event.all_day, event.start_date, event.end_date = False, None, None
            event.starts_at, event.ends_at = moved_to, moved_to + timedelta(hours=2)
            event.changed_at = MONDAY + timedelta(hours=5)

    tuesday = MONDAY + timedelta(days=1, minutes=1)
    scheduling.issue_tick(settings, factory, "daily", now=tuesday)
    (daily2,) = [i for i in issues_of(factory) if i.slot == MONDAY + timedelta(days=1)]
    assert daily2.status is IssueStatus.SENT
    shown = events_of(plan_of(factory, daily2.number))
    assert shown[told_both].change == "rescheduled", "the daily readers were told of it"
    assert told_weekly not in shown or shown[told_weekly].change is None, (
        "the daily readers never heard of this one: no change to announce to them"
    )

    # The next weekly issue still tells its readers, although a daily one announced the
    # new time in between (it must not use the change up).
    next_monday = MONDAY + timedelta(days=7, minutes=1)
    with factory() as session:
        slot = session.scalar(
            sa.select(Issue.slot).where(Issue.cadence == "weekly").order_by(Issue.slot.desc())
        )
    assert slot == MONDAY
    drafted = pipeline.draft(settings, factory, now=next_monday - timedelta(hours=2))
    items = events_of(drafted.plan)
    assert items[told_both].change == "rescheduled"
    assert items[told_weekly].change == "rescheduled"
