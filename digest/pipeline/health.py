"""What `digest status` shows: the scheduler's jobs (next run, last result), the sources
that fail, the issues under way and any delivery problem. Plain values, gathered from the
database only (the job store's table included); nothing is changed.

Every finding has a level, and the worst one is the exit status of `digest status`
(Nagios plugin convention, usable from cron):

    0 OK        all is well
    1 WARNING   a source failing, deliveries waiting for a retry or failed, a job whose
                last run failed (the bounce mailbox unreadable, publishing failed)
    2 CRITICAL  an issue paused, late or stuck in `sending` with no live sender, rows in
                flight with no sender, the scheduler not seen for a while, the database
                behind the code (tables or columns missing), or the database unreachable
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.pipeline import pauses
from digest.pipeline.jobs import JOBS_TABLE, WATCH_EVERY, job_specs
from digest.store import deliveries, issues, runs, senders, sources
from digest.store.models import Base, Delivery, DeliveryState, Issue, IssueStatus

RECENT = timedelta(days=30)
"""Sent issues this recent have their failed and bounced deliveries shown."""
LATE = timedelta(minutes=30)
"""An approved issue whose slot passed this long ago and that is not being sent is late."""

OK, WARNING, CRITICAL = 0, 1, 2
LEVELS = {OK: "ok", WARNING: "warning", CRITICAL: "critical"}


@dataclass(frozen=True)
class Finding:
    """One thing that needs attention, with its level (WARNING or CRITICAL)."""

    level: int
    text: str


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
    paused_kind: str | None = None
    pause_advice: str = ""
    sender: str | None = None
    """The process holding the send lock, when it is alive."""
    stuck: bool = False
    """Being sent, not paused, rows due now, and no live sender."""
    in_flight_orphans: int = 0
    """Rows marked in flight while no live process sends the issue."""
    late: bool = False
    chosen_at: datetime | None = None
    """The time an editor chose for it to go out (`pipeline.send_times`), if any."""

    @property
    def findings(self) -> list[Finding]:
        """What needs someone's attention, with its level."""
        found = []
        if self.paused_reason:
            advice = f" ({self.pause_advice})" if self.pause_advice else ""
            found.append(Finding(CRITICAL, f"paused: {self.paused_reason}{advice}"))
        if self.stuck:
            found.append(
                Finding(
                    CRITICAL,
                    "stuck in sending: deliveries are due and no live process sends it; "
                    f"is the scheduler running? `digest send {self.number}` resumes it",
                )
            )
        if self.in_flight_orphans:
            found.append(
                Finding(
                    CRITICAL,
                    f"{self.in_flight_orphans} in flight with no live sender (a send was cut "
                    f"off; `digest send {self.number}` sends them again)",
                )
            )
        if self.late:
            found.append(
                Finding(
                    CRITICAL,
                    f"late: approved, its time came at "
                    f"{self.chosen_at or self.slot:%Y-%m-%d %H:%M} UTC and it "
                    f"is not being sent; `digest send {self.number}`",
                )
            )
        found.extend(Finding(WARNING, f"does not render: {line}") for line in self.render_problems)
        pending = self.counts.get(DeliveryState.PENDING.value, 0)
        if self.status == IssueStatus.SENDING.value and pending:
            when = (
                f" (next at {self.next_retry_at:%Y-%m-%d %H:%M} UTC)" if self.next_retry_at else ""
            )
            found.append(Finding(WARNING, f"{pending} waiting for a retry{when}"))
        if self.counts.get(DeliveryState.FAILED.value, 0):
            found.append(Finding(WARNING, f"{self.counts[DeliveryState.FAILED.value]} failed"))
        if self.counts.get(DeliveryState.BOUNCED.value, 0):
            found.append(Finding(OK, f"{self.counts[DeliveryState.BOUNCED.value]} bounced"))
        return found

    @property
    def problems(self) -> list[str]:
        """What needs someone's attention, in words."""
        return [finding.text for finding in self.findings]

    @property
    def level(self) -> int:
        """The worst level among the findings."""
        return max((f.level for f in self.findings), default=OK)


@dataclass
class Status:
    """Everything `digest status` prints."""

    now: datetime
    jobs: list[JobStatus] = field(default_factory=list)
    last_activity: datetime | None = None
    sources_total: int = 0
    source_problems: list[SourceProblem] = field(default_factory=list)
    issues: list[IssueState] = field(default_factory=list)
    schema_missing: list[str] = field(default_factory=list)
    """Tables and columns the code expects that the database lacks (behind the code)."""
    extra: list[Finding] = field(default_factory=list)
    """Findings of other parts (the bounce mailbox)."""

    @property
    def scheduler_quiet(self) -> bool:
        """Whether no job finished lately although a scheduler ran here before."""
        if self.last_activity is None:
            return False
        return self.now - self.last_activity > 3 * WATCH_EVERY

    @property
    def delivery_problems(self) -> list[IssueState]:
        """Issues with something to look at (a bounce alone is not a problem)."""
        return [issue for issue in self.issues if issue.level > OK]

    @property
    def findings(self) -> list[Finding]:
        """Everything that needs attention, issues and jobs aside from their own lines."""
        found: list[Finding] = []
        if self.scheduler_quiet:
            found.append(
                Finding(
                    CRITICAL,
                    f"no scheduler job finished since {self.last_activity:%Y-%m-%d %H:%M} UTC: "
                    "is `digest schedule` running?",
                )
            )
        if self.schema_missing:
            found.append(
                Finding(
                    CRITICAL,
                    "the database is behind this version of digest (missing: "
                    + ", ".join(self.schema_missing[:8])
                    + ("…" if len(self.schema_missing) > 8 else "")
                    + "); run `digest upgrade`",
                )
            )
        for job in self.jobs:
            if job.last_outcome == "failed":
                found.append(Finding(WARNING, f"job {job.id} failed: {job.last_message}"))
        for source in self.source_problems:
            state = "inactive" if not source.active else f"failing x{source.failures}"
            found.append(Finding(WARNING, f"source {source.name} {state}"))
        for issue in self.issues:
            found += [
                Finding(f.level, f"issue #{issue.number}: {f.text}")
                for f in issue.findings
                if f.level > OK
            ]
        found += self.extra
        return found

    @property
    def level(self) -> int:
        """The exit status of `digest status`: 0 ok, 1 warning, 2 critical."""
        return max((f.level for f in self.findings), default=OK)


def gather(settings: Settings, factory: sessionmaker[Session], *, now: datetime) -> Status:
    """Read the scheduler's, the sources' and the deliveries' state."""
    status = Status(now=now)
    engine = factory.kw["bind"]
    status.schema_missing = schema_missing(engine)
    if status.schema_missing:
        return status  # the rest reads through the models, which the database lacks
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


def issue_findings(session: Session, now: datetime) -> list[Finding]:
    """What the issues under way need (paused, stuck, in flight, late, retries waiting,
    failed), worst first: the desk shows the same as `digest status`."""
    found = [
        Finding(f.level, f"issue #{issue.number}: {f.text}")
        for issue in _issues(session, now)
        for f in issue.findings
        if f.level > OK
    ]
    return sorted(found, key=lambda f: -f.level)


def schema_missing(engine: sa.Engine) -> list[str]:
    """Tables and columns of this version's models that the database does not have."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names())
    missing: list[str] = []
    for table in Base.metadata.sorted_tables:
        if table.name not in present:
            missing.append(table.name)
            continue
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
    return missing


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
        # The lock's holder, or workers that joined it from other machines (`--join`).
        alive = _sender_alive(issue, now) or bool(senders.live(session, issue.id, now=now))
        sending = issue.status is IssueStatus.SENDING
        in_flight = counts.get(DeliveryState.SENDING, 0)
        due = sending and issue.paused_reason is None and _has_due_rows(session, issue.id, now)
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
                paused_kind=issue.paused_kind if issue.paused_reason else None,
                pause_advice=pauses.advice(issue),
                sender=issue.sender_lock if alive else None,
                stuck=bool(due and not alive),
                in_flight_orphans=0 if alive else in_flight,
                late=issue.status is IssueStatus.APPROVED
                and now - (issue.send_at or issue.slot) > LATE,
                chosen_at=issue.send_at,
            )
        )
    return states


def _sender_alive(issue: Issue, now: datetime) -> bool:
    """Whether a process holds the issue's send lock and is alive (or beat lately)."""
    lock = issue.sender_lock
    if lock is None or runs.owner_is_dead(lock):
        return False
    beat = issue.sender_heartbeat_at
    return beat is not None and now - beat <= deliveries.STALE_LOCK


def _has_due_rows(session: Session, issue_id: int, now: datetime) -> bool:
    """Rows in flight, or pending with their retry time come."""
    found = session.scalar(
        sa.select(Delivery.id)
        .where(
            Delivery.issue_id == issue_id,
            sa.or_(
                Delivery.state == DeliveryState.SENDING,
                sa.and_(
                    Delivery.state == DeliveryState.PENDING,
                    sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                ),
            ),
        )
        .limit(1)
    )
    return found is not None
