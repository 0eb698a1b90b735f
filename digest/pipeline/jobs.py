"""The scheduler's jobs as data: ids, when they run and what for (see `scheduler`).

Kept apart from `scheduler` so that `digest status`, which lists the jobs, does not load
APScheduler: a job's APScheduler trigger is built the first time it is asked for.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from digest.compose import slots
from digest.config import Settings

JOBS_TABLE = "apscheduler_jobs"
WATCH_EVERY = timedelta(minutes=5)
RETRY_EVERY = timedelta(minutes=10)
RESUME_EVERY = timedelta(minutes=1)
PURGE_AT = (3, 30)
PUBLISH_AT = (4, 30)


@dataclass(frozen=True)
class JobSpec:
    """One job of the scheduler: its stable id, trigger and what it is for."""

    id: str
    when: str
    """The trigger as people say it ("every 30m", "mon 08:00")."""
    at_start: bool
    """Run once as soon as the scheduler starts (catch-up), then on the trigger."""
    what: str
    timezone: str
    """The publication's time zone, the trigger's."""
    every: timedelta | None = None
    """An interval trigger of this period, or else"""
    cron: tuple[tuple[str, int | str], ...] = ()
    """a cron trigger of these fields (hour, minute, day_of_week)."""

    @functools.cached_property
    def trigger(self) -> Any:
        """The APScheduler trigger, in the publication time zone."""
        from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
        from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

        zone = zoneinfo.ZoneInfo(self.timezone)
        if self.every is not None:
            return IntervalTrigger(seconds=int(self.every.total_seconds()), timezone=zone)
        return CronTrigger(**dict(self.cron), second=0, timezone=zone)


def _every(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


def job_specs(settings: Settings) -> list[JobSpec]:
    """The scheduler's jobs for these settings."""
    zone = settings.publication.timezone
    weekly = slots.parse_weekly(settings.issue.schedule)
    daily = slots.parse_daily(settings.issue.daily_schedule)
    assert weekly.weekday is not None
    day = slots.DAYS[weekly.weekday]

    def interval(job: str, delta: timedelta, what: str) -> JobSpec:
        return JobSpec(job, _every(delta), True, what, zone, every=delta)

    def cron(job: str, hour: int, minute: int, when: str, what: str, day: str = "") -> JobSpec:
        fields: tuple[tuple[str, int | str], ...] = (("hour", hour), ("minute", minute))
        if day:
            fields += (("day_of_week", day),)
        return JobSpec(job, when, False, what, zone, cron=fields)

    return [
        interval("collect", settings.collect.every, "fetch the sources that are due"),
        cron(
            "issue-weekly",
            weekly.at.hour,
            weekly.at.minute,
            f"{day} {weekly.at:%H:%M}",
            "the weekly issue: draft, approve, send, publish",
            day,
        ),
        cron(
            "issue-daily",
            daily.at.hour,
            daily.at.minute,
            f"daily {daily.at:%H:%M}",
            "the daily issue, for daily subscribers",
        ),
        interval(
            "issue-watch",
            WATCH_EVERY,
            "both issues between their times: drafts ahead, approvals, deadlines, catch-up",
        ),
        interval(
            "retry-deliveries",
            RETRY_EVERY,
            "deliveries waiting for a retry, sends cut off by a stop",
        ),
        interval(
            "resume-paused",
            RESUME_EVERY,
            "issues the relay paused, tried again after 1, 2, 5, 10, 30, 60 min",
        ),
        interval(
            "bounces",
            settings.bounces.every,
            "read the bounce mailbox ([bounces]), move processed mail aside",
        ),
        cron(
            "purge-pending",
            *PURGE_AT,
            f"daily {PURGE_AT[0]:02d}:{PURGE_AT[1]:02d}",
            "unconfirmed subscribers, and [retention]: old deliveries, items, outbox, people",
        ),
        cron(
            "publish",
            *PUBLISH_AT,
            f"daily {PUBLISH_AT[0]:02d}:{PUBLISH_AT[1]:02d}",
            "write the public files again (events.ics follows the days)",
        ),
    ]
