"""What `digest status` shows: the scheduler's jobs (next run, last result), the sources
that fail, the issues under way and any delivery problem. Plain values, gathered from the
database only (the job store's table included); nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.pipeline.scheduler import JOBS_TABLE, WATCH_EVERY, job_specs
from digest.store import deliveries, issues, runs, sources
from digest.store.models import DeliveryState, Issue, IssueStatus

RECENT = timedelta(days=30)
"""Sent issues this recent have their failed and bounced deliveries shown."""


@dataclass(frozen=True)
class JobStatus:
    """One job: when it runs next and how its last run went."""

    id: str
    when: str
    what: str
    next_run: datetime | None
    """From the job store; None when the job is not stored (or paused)."""
    stored: bool
    """Whether a scheduler ever stored the job in this database."""
    last_started: datetime | None = None
    last_outcome: str | None = None
    last_message: str | None = None


@dataclass(frozen=True)
class SourceProblem:
    """A source that failed at its last fetch, or was turned off."""

    name: str
    url: str
    active: bool
    failures: int
    last_error: str | None
    last_success_at: datetime | None
    next_fetch_at: datetime | None


@dataclass(frozen=True)
class IssueState:
    """An issue that is not done, or was sent recently, with its ledger's counts."""

    number: int
    cadence: str
    slot: datetime
    status: str
    paused_reason: str | None
    counts: dict[str, int]
    next_retry_at: datetime | None
    render_problems: tuple[str, ...] = ()
    """What did not render when it was drafted (`issues.render_problems`)."""

    @property
    def problems(self) -> list[str]:
        """What needs someone's attention, in words."""
        found = []
        if self.paused_reason:
            found.append(f"paused: {self.paused_reason}")
        found.extend(f"does not render: {line}" for line in self.render_problems)
        pending = self.counts.get(DeliveryState.PENDING.value, 0)
        if self.status == IssueStatus.SENDING.value and pending:
            when = (
                f" (next at {self.next_retry_at:%Y-%m-%d %H:%M} UTC)" if self.next_retry_at else ""
            )
            found.append(f"{pending} waiting for a retry{when}")
        for state in (DeliveryState.FAILED, DeliveryState.BOUNCED):
            if self.counts.get(state.value, 0):
                found.append(f"{self.counts[state.value]} {state.value}")
        return found


@dataclass
class Status:
    """Everything `digest status` prints."""

    now: datetime
    jobs: list[JobStatus] = field(default_factory=list)
    last_activity: datetime | None = None
    sources_total: int = 0
    source_problems: list[SourceProblem] = field(default_factory=list)
    issues: list[IssueState] = field(default_factory=list)

    @property
    def scheduler_quiet(self) -> bool:
        """Whether no job finished lately although a scheduler ran here before."""
        if self.last_activity is None:
            return False
        return self.now - self.last_activity > 3 * WATCH_EVERY

    @property
    def delivery_problems(self) -> list[IssueState]:
        """Issues with something to look at."""
        return [issue for issue in self.issues if issue.problems]


def gather(settings: Settings, factory: sessionmaker[Session], *, now: datetime) -> Status:
    """Read the scheduler's, the sources' and the deliveries' state."""
    status = Status(now=now)
    engine = factory.kw["bind"]
    stored = _stored_next_runs(engine)
    specs = job_specs(settings)
    with factory() as session:
        last = runs.last_runs(session, [spec.id for spec in specs])
        status.last_activity = runs.last_finished(session)
        for spec in specs:
            run = last.get(spec.id)
            status.jobs.append(
                JobStatus(
                    id=spec.id,
                    when=spec.when,
                    what=spec.what,
                    next_run=stored.get(spec.id),
                    stored=spec.id in stored,
                    last_started=run.started_at if run else None,
                    last_outcome=run.outcome.value if run else None,
                    last_message=run.message if run else None,
                )
            )
        every = sources.all_sources(session)
        status.sources_total = len(every)
        status.source_problems = [
            SourceProblem(
                name=s.name,
                url=s.url,
                active=s.active,
                failures=s.consecutive_failures,
                last_error=s.last_error,
                last_success_at=s.last_success_at,
                next_fetch_at=s.next_fetch_at,
            )
            for s in every
            if s.consecutive_failures or not s.active
        ]
        status.issues = _issues(session, now)
    return status


def _stored_next_runs(engine: sa.Engine) -> dict[str, datetime | None]:
    """Job id → next run time, read from APScheduler's table (empty if it never ran here)."""
    if not sa.inspect(engine).has_table(JOBS_TABLE):
        return {}
    table = sa.table(JOBS_TABLE, sa.column("id"), sa.column("next_run_time"))
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.id, table.c.next_run_time)).all()
    return {
        str(job_id): datetime.fromtimestamp(float(stamp), UTC) if stamp is not None else None
        for job_id, stamp in rows
    }


def _issues(session: Session, now: datetime) -> list[IssueState]:
    """Issues not sent yet (drafts of past slots aside), and those sent lately."""
    found = session.scalars(
        sa.select(Issue)
        .where(
            sa.or_(
                Issue.status.in_([IssueStatus.APPROVED, IssueStatus.SENDING]),
                sa.and_(Issue.status == IssueStatus.DRAFT, Issue.slot >= now - RECENT),
                sa.and_(Issue.status == IssueStatus.SENT, Issue.sent_at >= now - RECENT),
            )
        )
        .order_by(Issue.number.desc())
    ).all()
    states = []
    for issue in found:
        counts = deliveries.counts(session, issue.id)
        states.append(
            IssueState(
                number=issue.number,
                cadence=issue.cadence,
                slot=issue.slot,
                status=issue.status.value,
                paused_reason=issue.paused_reason,
                counts={state.value: n for state, n in counts.items() if n},
                next_retry_at=deliveries.next_retry(session, issue.id),
                render_problems=tuple(issues.render_problems(issue)),
            )
        )
    return states
