"""The APScheduler 3 scheduler that runs the publication unattended, and its jobs.

    job id             trigger (publication time zone)          work
    collect            every [collect] every, and at start       upkeep.collect_tick
    issue-weekly       cron at [issue] schedule ("mon 08:00")    scheduling.issue_tick weekly
    issue-daily        cron at [issue] daily_schedule            scheduling.issue_tick daily
    issue-watch        every 5 minutes, and at start             both issue ticks: drafts ahead,
                                                                 approvals, deadlines, catch-up
    retry-deliveries   every 10 minutes, and at start            retries.retry_tick
    resume-paused      every minute, and at start                resuming.resume_tick: relay
                                                                 pauses tried again (backoff)
    bounces            every [bounces] every, and at start       upkeep.bounces_tick
    purge-pending      cron daily 03:30                          upkeep.purge_tick
    publish            cron daily 04:30                          upkeep.publish_tick

Jobs live in the project's database (APScheduler's SQLAlchemyJobStore, table
`apscheduler_jobs`) under these stable ids, added with `replace_existing=True`,
`coalesce=True`, `max_instances=1` and a misfire grace of `[issue] grace_hours` (APScheduler's
default of 1 second would silently skip the issue of a restart at send time). A restart
keeps a cron job's stored next run time when its trigger did not change, so a run the
process was down for is still made once within the grace, and reported as missed beyond it.

Each run goes through `execute`: it takes a lease per piece of work in the database (two
schedulers started by mistake do each thing once), records the run for `digest status`,
and logs one structured line. SIGTERM and SIGINT stop it gracefully (`serve`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import sqlalchemy as sa
from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import STATE_STOPPED  # type: ignore[import-untyped]
from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.config import Settings
from digest.deliver import Sender
from digest.pipeline import resuming, retries, scheduling, tick_report, upkeep
from digest.pipeline.jobs import JOBS_TABLE, JobSpec, job_specs
from digest.pipeline.logfmt import fields
from digest.pipeline.scheduling import Notify
from digest.pipeline.tick_report import TickReport
from digest.store import db, runs
from digest.store.runs import RunOutcome

log = logging.getLogger(__name__)

WORKERS = 8
LEASE_TTL = timedelta(minutes=10)
"""A lease not renewed for this long is free (its process froze or died on another host);
a live holder renews it every third of that."""
MAX_MISSED_REPORTED = 20


# --- what a run does ---------------------------------------------------------------------------


@dataclass
class Runtime:
    """What the jobs of this process work with (the job store keeps only their ids)."""

    settings: Settings
    factory: sessionmaker[Session]
    stop: threading.Event = field(default_factory=threading.Event)
    notify: Notify = scheduling.notify_editors
    make_sender: Callable[[], Sender] | None = None
    reported_missed: set[tuple[str, datetime]] = field(default_factory=set)


Tick = Callable[[Runtime, datetime], TickReport]


def _issue(cadence: str) -> Tick:
    def tick(rt: Runtime, now: datetime) -> TickReport:
        return scheduling.issue_tick(
            rt.settings,
            rt.factory,
            cadence,
            now=now,
            stop=rt.stop,
            notify=rt.notify,
            make_sender=rt.make_sender,
        )

    return tick


def _retry(rt: Runtime, now: datetime) -> TickReport:
    return retries.retry_tick(
        rt.settings, rt.factory, now=now, stop=rt.stop, make_sender=rt.make_sender
    )


def _resume(rt: Runtime, now: datetime) -> TickReport:
    return resuming.resume_tick(
        rt.settings, rt.factory, now=now, stop=rt.stop, make_sender=rt.make_sender
    )


WORK: dict[str, tuple[tuple[str, Tick], ...]] = {
    "collect": (
        ("collect", lambda rt, now: upkeep.collect_tick(rt.settings, rt.factory, now=now)),
    ),
    "issue-weekly": (("issue-weekly", _issue("weekly")),),
    "issue-daily": (("issue-daily", _issue("daily")),),
    "issue-watch": (("issue-weekly", _issue("weekly")), ("issue-daily", _issue("daily"))),
    "retry-deliveries": (("retry-deliveries", _retry),),
    "resume-paused": (("resume-paused", _resume),),
    "bounces": (
        ("bounces", lambda rt, now: upkeep.bounces_tick(rt.settings, rt.factory, now=now)),
    ),
    "purge-pending": (
        ("purge-pending", lambda rt, now: upkeep.purge_tick(rt.settings, rt.factory, now=now)),
    ),
    "publish": (
        ("publish", lambda rt, now: upkeep.publish_tick(rt.settings, rt.factory, now=now)),
    ),
}
"""Each job's work: (lease name, tick). The watch shares the issue jobs' leases."""
JOB_IDS = tuple(WORK)


class _Renewal:
    """Keep a lease alive from a background thread while the work runs."""

    def __init__(self, factory: sessionmaker[Session], name: str, owner: str) -> None:
        self.factory, self.name, self.owner = factory, name, owner
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def __enter__(self) -> _Renewal:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        runs.release(self.factory, self.name, self.owner)

    def _run(self) -> None:
        while not self._done.wait(LEASE_TTL.total_seconds() / 3):
            try:
                runs.renew(
                    self.factory, self.name, self.owner, now=pipeline.utcnow(), ttl=LEASE_TTL
                )
            except Exception:
                log.warning(
                    f"could not renew the lease {self.name}",
                    exc_info=True,
                    extra=fields(event="lease.renew_failed", lease=self.name),
                )


@dataclass
class _Run:
    """One run of a job as it goes."""

    lines: list[str] = field(default_factory=list)
    outcome: RunOutcome = RunOutcome.OK
    loud: bool = False
    """Worth an INFO line."""
    told: bool = False
    """Its ticks logged their own lines at INFO (the closing line need not repeat them)."""

    @property
    def message(self) -> str:
        return "; ".join(self.lines) or "nothing to do"


def execute(runtime: Runtime, job_id: str, *, now: datetime | None = None) -> str:
    """Run job `job_id` once as the scheduler does, at `now` (default: the clock): take the
    lease of each piece of its work, run the tick, record the run; return its message."""
    if job_id not in WORK:
        raise ValueError(f"unknown job {job_id!r}; jobs: {', '.join(JOB_IDS)}")
    now = now or pipeline.utcnow()
    owner = runs.process_owner()
    factory = runtime.factory
    if runtime.stop.is_set():
        with db.transaction(factory) as session:
            runs.record_run(
                session, job_id, RunOutcome.SKIPPED, "shutting down", owner=owner, now=now
            )
        return "shutting down"
    started = time.monotonic()
    with db.transaction(factory) as session:
        run_id = runs.start_run(session, job_id, owner=owner, now=now)
    run = _Run()
    for lease, tick in WORK[job_id]:
        _work(runtime, job_id, lease, tick, owner, now, run)
    seconds = time.monotonic() - started
    with db.transaction(factory) as session:
        runs.finish_run(
            session, run_id, run.outcome, run.message, now=now + timedelta(seconds=seconds)
        )
    log.log(
        logging.INFO if run.loud else logging.DEBUG,
        f"{job_id} {run.outcome.value} in {seconds:.1f}s"
        + ("" if run.told else f": {run.message}"),
        extra=fields(
            event="job.done", job=job_id, outcome=run.outcome.value, seconds=round(seconds, 3)
        ),
    )
    return run.message


def _work(
    runtime: Runtime, job_id: str, lease: str, tick: Tick, owner: str, now: datetime, run: _Run
) -> None:
    """Do one piece of a job's work under its lease."""
    factory = runtime.factory
    holder = runs.acquire(factory, lease, owner, now=pipeline.utcnow(), ttl=LEASE_TTL)
    if holder is not None:
        run.lines.append(f"{lease} is being done by another run ({holder})")
        if run.outcome is RunOutcome.OK and len(WORK[job_id]) == 1:
            run.outcome = RunOutcome.SKIPPED
        # Within one process the watch meets the issue jobs: normal. Another process doing
        # the same work is worth a line (two schedulers started by mistake?).
        run.loud = run.loud or not holder.startswith(owner.rsplit(":", 1)[0] + ":")
        return
    with _Renewal(factory, lease, owner):
        try:
            report = tick(runtime, now)
        except Exception as exc:
            log.exception(
                f"{job_id}: {lease} failed: {exc!r}",
                extra=fields(event="job.failed", job=job_id, work=lease),
            )
            run.lines.append(f"{lease} failed: {exc!r}")
            run.outcome = RunOutcome.FAILED
            run.loud = run.told = True
            return
    if report.lines:
        run.lines.append(report.message)
    run.loud = run.loud or report.noteworthy
    run.told = run.told or report.noteworthy
    if report.failed:
        run.outcome = RunOutcome.FAILED


_runtime: Runtime | None = None


def current_runtime() -> Runtime:
    """The runtime `build_scheduler` set up in this process."""
    if _runtime is None:
        raise RuntimeError("no scheduler was built in this process; call build_scheduler first")
    return _runtime


def run_job(job_id: str) -> str:
    """What the job store calls (by the reference `digest.pipeline.scheduler:run_job`).

    A database that is away when the job starts or records its run is said in one line,
    without a traceback; the job runs again at its next time."""
    try:
        return execute(current_runtime(), job_id)
    except sa.exc.SQLAlchemyError as exc:
        if not db.is_transient(exc):
            raise
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.error(
            f"{job_id} could not run: the database is unavailable "
            f"({text[0] if text else type(exc).__name__}); it runs again at its next time",
            extra=fields(event="job.failed", job=job_id, reason="database"),
        )
        return "database unavailable"


# --- the scheduler -----------------------------------------------------------------------------


class _TakesNoJobAfterShutdown:
    """The main loop of APScheduler's BlockingScheduler (and BackgroundScheduler), except
    that it takes no job once shutdown began: the stock loop looks for due jobs once more
    after `shutdown`, hands them to an executor already closed, and so uses up their run
    (a cron job's next run moves on without it having run)."""

    state: int
    _event: threading.Event
    _process_jobs: Callable[[], float | None]

    def _main_loop(self) -> None:
        wait_seconds: float | None = threading.TIMEOUT_MAX
        while self.state != STATE_STOPPED:
            self._event.wait(wait_seconds)
            self._event.clear()
            if self.state == STATE_STOPPED:
                break
            wait_seconds = self._process_jobs()


class GracefulScheduler(_TakesNoJobAfterShutdown, BlockingScheduler):  # type: ignore[misc]
    """The BlockingScheduler `digest schedule` runs in the foreground."""


class GracefulBackgroundScheduler(_TakesNoJobAfterShutdown, BackgroundScheduler):  # type: ignore[misc]
    """The same in a background thread, for a process that does something else too."""


def build_scheduler(
    settings: Settings,
    *,
    factory: sessionmaker[Session] | None = None,
    runtime: Runtime | None = None,
    scheduler_class: type[Any] = GracefulScheduler,
) -> Any:
    """Return a configured, unstarted scheduler whose jobs live in the project's database.

    Stored cron jobs keep their next run time (when their trigger is unchanged), so a run
    missed while the process was down happens once at start within the grace, and is
    logged as missed beyond it; the interval jobs run once at start.
    """
    global _runtime
    factory = factory or (runtime.factory if runtime else pipeline.open_database(settings))
    runtime = runtime or Runtime(settings, factory)
    _runtime = runtime
    engine = factory.kw["bind"]
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)
    store.jobs_t.create(engine, checkfirst=True)
    zone = zoneinfo.ZoneInfo(settings.publication.timezone)
    grace = int(settings.issue.grace_hours * 3600)
    scheduler = scheduler_class(
        timezone=zone,
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(WORKERS)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
    )
    now = datetime.now(zone)
    specs = job_specs(settings)
    with db.transaction(factory) as session:
        runs.close_abandoned(session, now=now)
    for spec in specs:
        options: dict[str, Any] = {}
        if spec.at_start:
            options["next_run_time"] = now
        else:
            kept = _kept_next_run(store, spec)
            if kept is not None:
                options["next_run_time"] = kept
                _report_missed(runtime, spec, kept, now, timedelta(seconds=grace))
        scheduler.add_job(
            run_job,
            trigger=spec.trigger,
            args=(spec.id,),
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
            **options,
        )
    _forget_other_jobs(engine, store, [spec.id for spec in specs])
    scheduler.add_listener(
        _listener(runtime, scheduler, grace),
        EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR | EVENT_SCHEDULER_STARTED,
    )
    return scheduler


def _kept_next_run(store: Any, spec: JobSpec) -> datetime | None:
    """The stored next run time of `spec`'s job, if stored with the same trigger."""
    try:
        stored = store.lookup_job(spec.id)
    except Exception:  # a job of an older version that no longer loads: replace it
        log.warning(
            f"the stored job {spec.id} could not be read; it is replaced",
            exc_info=True,
            extra=fields(event="job.replaced", job=spec.id),
        )
        return None
    if stored is None or stored.next_run_time is None:
        return None
    if not _same_trigger(stored.trigger, spec.trigger):
        return None
    return stored.next_run_time  # type: ignore[no-any-return]


def _same_trigger(old: Any, new: Any) -> bool:
    if type(old) is not type(new) or str(old.timezone) != str(new.timezone):
        return False
    if isinstance(new, IntervalTrigger):
        return bool(old.interval == new.interval)
    return str(old) == str(new)


def _report_missed(
    runtime: Runtime, spec: JobSpec, first: datetime, now: datetime, grace: timedelta
) -> None:
    """Log (and record) every run of `spec` that came while the process was down and is now
    beyond the grace: APScheduler drops all but the last silently (coalesce)."""
    missed: list[datetime] = []
    moment: datetime | None = first
    for _ in range(10_000):  # a year of daily runs and then some
        if moment is None or moment > now:
            break
        if now - moment > grace:
            missed.append(moment)
        moment = spec.trigger.get_next_fire_time(moment, now)
    for when in missed[-MAX_MISSED_REPORTED:]:
        _missed(runtime, spec.id, when, now, grace)


def _missed(runtime: Runtime, job_id: str, when: datetime, now: datetime, grace: timedelta) -> None:
    key = (job_id, when)
    if key in runtime.reported_missed:
        return
    runtime.reported_missed.add(key)
    message = (
        f"{job_id} did not run at {when.isoformat()}: the scheduler was not running, and "
        f"{tick_report.span(now - when)} late is beyond the grace of "
        f"{tick_report.span(grace)}; skipped"
    )
    log.warning(
        message,
        extra=fields(event="job.missed", job=job_id, scheduled=when, late=now - when, grace=grace),
    )
    with db.transaction(runtime.factory) as session:
        runs.record_run(
            session, job_id, RunOutcome.MISSED, message, owner=runs.process_owner(), now=now
        )


def _listener(runtime: Runtime, scheduler: Any, grace: int) -> Callable[[Any], None]:
    def on_event(event: Any) -> None:
        if event.code == EVENT_SCHEDULER_STARTED:
            for job in scheduler.get_jobs():
                log.info(
                    f"{job.id}: next run {job.next_run_time:%a %d %b %Y %H:%M %Z}",
                    extra=fields(
                        event="job.scheduled",
                        job=job.id,
                        trigger=str(job.trigger),
                        next=job.next_run_time,
                    ),
                )
            return
        assert isinstance(event, JobEvent)
        if event.code == EVENT_JOB_MISSED:
            now = datetime.now(scheduler.timezone)
            _missed(runtime, event.job_id, event.scheduled_run_time, now, timedelta(seconds=grace))
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.info(
                f"{event.job_id} is still running from its previous time; this run is skipped",
                extra=fields(event="job.busy", job=event.job_id),
            )
        elif event.code == EVENT_JOB_ERROR:
            log.error(
                f"{event.job_id} raised {event.exception!r}",
                extra=fields(event="job.failed", job=event.job_id),
            )

    return on_event


def _forget_other_jobs(engine: sa.Engine, store: Any, ids: Sequence[str]) -> None:
    """Remove stored jobs this version does not define (renamed or retired ids)."""
    table = store.jobs_t
    with engine.begin() as connection:
        connection.execute(table.delete().where(table.c.id.not_in(list(ids))))


def serve(scheduler: Any) -> None:
    """Run `scheduler` in the foreground until SIGTERM or SIGINT, then stop gracefully: no
    new job starts, a send under way stops after the messages in flight (recorded in the
    ledger), other running jobs finish; then return."""
    runtime = current_runtime()
    stoppers: list[threading.Thread] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if runtime.stop.is_set():
            return
        if scheduler.state == STATE_STOPPED:  # not started yet: nothing runs
            raise SystemExit(0)
        runtime.stop.set()
        log.info(
            f"{signal.Signals(signum).name}: stopping after the work under way",
            extra=fields(event="scheduler.stopping", signal=signal.Signals(signum).name),
        )
        stopper = threading.Thread(target=scheduler.shutdown, name="digest-shutdown")
        stopper.start()
        stoppers.append(stopper)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    log.info(
        "scheduler starting",
        extra=fields(event="scheduler.start", jobs=len(scheduler.get_jobs())),
    )
    try:
        scheduler.start()
        for stopper in stoppers:
            stopper.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("scheduler stopped", extra=fields(event="scheduler.stopped"))
