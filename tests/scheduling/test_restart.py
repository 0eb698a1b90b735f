"""The scheduler as configured (jobs, ids, triggers, grace) and across a restart, with
APScheduler's own SQLAlchemy job store on the test database.

A restart keeps a cron job's stored next run time, so a run the process was down for is
made once at start within the grace (APScheduler's misfire handling, coalesced), and is
logged as missed beyond it. The ticks' own handling of late runs is tested with `now` in
test_issue_tick.py; here one test also runs the real scheduler end to end, with the real
clock (its schedule is put just before now)."""

from __future__ import annotations

import logging
import threading
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.compose import slots
from digest.pipeline import scheduler
from digest.store.runs import JobRun, RunOutcome
from tests.scheduling.conftest import add_readers, issues_of, outbox

BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")


def started(settings: Any, factory: sessionmaker[Session]) -> Any:
    """A scheduler built as `digest schedule` builds it, started paused (nothing runs)."""
    built = scheduler.build_scheduler(
        settings, factory=factory, scheduler_class=scheduler.GracefulBackgroundScheduler
    )
    built.start(paused=True)
    return built


def test_jobs_ids_triggers_and_misfire_settings(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    settings = make_settings(
        'every = "45m"\n'  # [collect], which the test config opens last
        '[issue]\nschedule = "tue 07:30"\ndaily_schedule = "06:15"\ngrace_hours = 5\n'
    )
    running = started(settings, factory)
    try:
        jobs = {job.id: job for job in running.get_jobs()}
        assert sorted(jobs) == sorted(scheduler.JOB_IDS)
        for job in jobs.values():
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 5 * 3600)
            assert job.func_ref == "digest.pipeline.scheduler:run_job"
            assert job.args == (job.id,)
            assert str(job.trigger.timezone) == "Europe/Brussels"
        assert str(jobs["issue-weekly"].trigger) == (
            "cron[day_of_week='tue', hour='7', minute='30', second='0']"
        )
        assert str(jobs["issue-daily"].trigger) == "cron[hour='6', minute='15', second='0']"
        assert jobs["collect"].trigger.interval == timedelta(minutes=45)
    finally:
        running.shutdown(wait=False)
    engine = factory.kw["bind"]
    with engine.connect() as connection:
        stored = connection.execute(sa.text(f"SELECT id FROM {scheduler.JOBS_TABLE}")).scalars()
        assert sorted(stored) == sorted(scheduler.JOB_IDS), "in the project's database"


def test_a_restart_keeps_stored_run_times_replaces_jobs_and_drops_unknown_ones(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    settings = make_settings()
    first = started(settings, factory)
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    first.modify_job("issue-weekly", next_run_time=due)  # down since its run time
    first.add_job(scheduler.run_job, "interval", args=("collect",), id="retired-job", hours=1)
    first.shutdown(wait=False)

    again = started(settings, factory)
    try:
        jobs = {job.id: job for job in again.get_jobs()}
        assert sorted(jobs) == sorted(scheduler.JOB_IDS), "one of each, the retired one gone"
        kept = jobs["issue-weekly"].next_run_time
        assert kept == due, "kept, so APScheduler makes the run once (within the grace)"
        assert datetime.now(UTC) - kept <= timedelta(
            seconds=jobs["issue-weekly"].misfire_grace_time
        )
        # The interval jobs run once at start, to catch up.
        assert jobs["issue-watch"].next_run_time <= datetime.now(UTC)
    finally:
        again.shutdown(wait=False)

    # A changed schedule is a new trigger: the stored time no longer applies.
    changed = make_settings('[issue]\nschedule = "wed 09:00"\n')
    third = started(changed, factory)
    try:
        nxt = third.get_job("issue-weekly").next_run_time
        assert nxt > datetime.now(UTC) and nxt.astimezone(BRUSSELS).strftime("%a %H:%M") == (
            "Wed 09:00"
        )
    finally:
        third.shutdown(wait=False)


def test_runs_missed_beyond_the_grace_are_logged_at_restart(
    make_settings: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    first = started(settings, factory)
    missed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=7)
    first.modify_job("issue-daily", next_run_time=missed)
    first.shutdown(wait=False)

    with caplog.at_level(logging.WARNING, logger="digest"):
        again = started(settings, factory)
        again.shutdown(wait=False)
    (line,) = [
        r for r in caplog.records if getattr(r, "digest_fields", {}).get("event") == "job.missed"
    ]
    assert line.getMessage().startswith(f"issue-daily did not run at {missed.isoformat()}")
    assert "beyond the grace of 6h00m; skipped" in line.getMessage()
    with factory() as session:
        run = session.scalars(sa.select(JobRun).where(JobRun.job == "issue-daily")).one()
        assert run.outcome is RunOutcome.MISSED


@pytest.mark.parametrize(
    ("down", "sent"), [(timedelta(hours=1), True), (timedelta(hours=7), False)]
)
def test_the_real_scheduler_after_being_down_at_send_time(
    publication: Any,
    factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    down: timedelta,
    sent: bool,
) -> None:
    """End to end, on the real clock: the weekly slot is put `down` ago; the stored job
    says its run is due then; the scheduler starts (for real) and either sends the issue
    once (within the 6 h grace) or reports the run missed and sends nothing."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    local = (now - down).astimezone(BRUSSELS)
    schedule = f"{slots.DAYS[local.weekday()]} {local:%H:%M}"
    settings = publication(local.date(), issue={"schedule": schedule})
    slot = slots.slot_on_or_after(slots.parse_weekly(schedule), now - down, "Europe/Brussels")
    add_readers(settings, factory, since=slot - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=slot - timedelta(hours=1))
    first = started(settings, factory)
    first.modify_job("issue-weekly", next_run_time=slot)
    first.shutdown(wait=False)

    restarted = scheduler.build_scheduler(
        settings, factory=factory, scheduler_class=scheduler.GracefulBackgroundScheduler
    )
    seen: dict[str, int] = {}
    weekly_done = threading.Event()

    def listen(event: Any) -> None:
        if event.job_id == "issue-weekly":
            seen[event.code] = seen.get(event.code, 0) + 1
            weekly_done.set()

    restarted.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    with caplog.at_level(logging.INFO, logger="digest"):
        restarted.start()
        try:
            assert weekly_done.wait(120), "the stored run was neither run nor missed"
        finally:
            restarted.shutdown(wait=True)  # the at-start jobs finish too
    if sent:
        assert seen == {EVENT_JOB_EXECUTED: 1}
        assert len(outbox(settings)) == 4, "sent once, whichever job got to it first"
        assert [i.slot for i in issues_of(factory)] == [slot]
    else:
        assert seen == {EVENT_JOB_MISSED: 1}
        assert not outbox(settings)
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("issue-weekly did not run at") for m in messages), messages
        assert any(
            "no weekly issue for" in m and "beyond [issue] grace_hours = 6" in m for m in messages
        )
