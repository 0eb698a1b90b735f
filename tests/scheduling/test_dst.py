"""Daylight saving in Europe/Brussels (last Sunday of March: 02:00 → 03:00; last Sunday of
October: 03:00 → 02:00): the weekly and daily 08:00 jobs fire at the right UTC instants
on both sides, agree with the issue slots, and the issue tick sends each slot's issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.compose import slots
from digest.pipeline import scheduling
from digest.pipeline.jobs import job_specs
from digest.store.models import IssueStatus
from tests.scheduling.conftest import add_readers, issues_of


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire_times(trigger: Any, start: datetime, count: int) -> list[datetime]:
    """The trigger's next `count` fire times after `start`, as APScheduler computes them."""
    times: list[datetime] = []
    previous = None
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, start)
        times.append(fire.astimezone(UTC))
        previous = start = fire
    return times


SPRING = {  # 29 March 2026
    "issue-weekly": [
        utc(2026, 3, 16, 7),
        utc(2026, 3, 23, 7),
        utc(2026, 3, 30, 6),
        utc(2026, 4, 6, 6),
    ],
    "issue-daily": [
        utc(2026, 3, 27, 7),
        utc(2026, 3, 28, 7),
        utc(2026, 3, 29, 6),
        utc(2026, 3, 30, 6),
    ],
}
AUTUMN = {  # 25 October 2026
    "issue-weekly": [
        utc(2026, 10, 12, 6),
        utc(2026, 10, 19, 6),
        utc(2026, 10, 26, 7),
        utc(2026, 11, 2, 7),
    ],
    "issue-daily": [
        utc(2026, 10, 23, 6),
        utc(2026, 10, 24, 6),
        utc(2026, 10, 25, 7),
        utc(2026, 10, 26, 7),
    ],
}


@pytest.mark.parametrize("expected", [SPRING, AUTUMN], ids=["march", "october"])
@pytest.mark.parametrize("job", ["issue-weekly", "issue-daily"])
def test_the_08_00_jobs_fire_at_the_right_utc_instants_across_dst(
    make_settings: Any, expected: dict[str, list[datetime]], job: str
) -> None:
    settings = make_settings('[issue]\nschedule = "mon 08:00"\ndaily_schedule = "08:00"\n')
    (spec,) = [s for s in job_specs(settings) if s.id == job]
    begin = expected[job][0] - timedelta(minutes=1)
    times = fire_times(spec.trigger, begin, 4)
    assert times == expected[job]
    # The trigger and the issue slots agree: the job fires exactly at the slot's instant.
    schedule = pipeline.schedule_of(settings, "weekly" if job == "issue-weekly" else "daily")
    for fire in times:
        assert (
            slots.slot_on_or_after(schedule, fire - timedelta(minutes=1), "Europe/Brussels") == fire
        )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (utc(2026, 3, 23, 7), utc(2026, 3, 30, 6)),  # CET, then CEST
        (utc(2026, 10, 19, 6), utc(2026, 10, 26, 7)),  # CEST, then CET
    ],
    ids=["march", "october"],
)
def test_the_issue_tick_sends_each_slot_at_its_instant_across_dst(
    publication: Any, factory: sessionmaker[Session], before: datetime, after: datetime
) -> None:
    settings = publication(before.date())
    add_readers(settings, factory, since=before - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=before - timedelta(days=1))

    assert "issue #1 sent" in scheduling.issue_tick(settings, factory, "weekly", now=before).message
    # One minute before 08:00 local on the Monday after the change: not yet.
    scheduling.issue_tick(settings, factory, "weekly", now=after - timedelta(minutes=1))
    assert [i.slot for i in issues_of(factory)] == [before]
    pipeline.collect_sources(settings, factory, now=after - timedelta(hours=2), force=True)
    assert "issue #2 sent" in scheduling.issue_tick(settings, factory, "weekly", now=after).message
    assert [(i.slot, i.status) for i in issues_of(factory)] == [
        (before, IssueStatus.SENT),
        (after, IssueStatus.SENT),
    ]


def test_a_time_in_the_missing_or_repeated_hour(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    """02:30 daily: in March it does not exist (fired at 03:30 CEST, the slot agrees); in
    October it exists twice (fired twice; the second run finds the slot's issue sent)."""
    settings = publication(datetime(2026, 10, 25).date(), issue={"daily_schedule": "02:30"})
    (spec,) = [s for s in job_specs(settings) if s.id == "issue-daily"]
    schedule = pipeline.schedule_of(settings, "daily")
    spring = fire_times(spec.trigger, utc(2026, 3, 28, 12), 2)
    assert spring == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert slots.slot_on_or_after(schedule, utc(2026, 3, 28, 12), "Europe/Brussels") == spring[0]

    autumn = fire_times(spec.trigger, utc(2026, 10, 24, 12), 3)
    assert autumn == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)]
    add_readers(
        settings, factory, [("eva@example.org", "en", ())], cadence="daily",
        since=autumn[0] - timedelta(days=30),
    )  # fmt: skip
    pipeline.collect_sources(settings, factory, now=autumn[0] - timedelta(hours=3))
    first = scheduling.issue_tick(settings, factory, "daily", now=autumn[0]).message
    second = scheduling.issue_tick(settings, factory, "daily", now=autumn[1]).message
    assert "issue #1 sent: 1 sent" in first
    assert second == "issue #1 was sent"
    assert [(i.slot, i.status) for i in issues_of(factory)] == [(autumn[0], IssueStatus.SENT)]
