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
from typing import TYPE_CHECKING

from digest.pipeline import pauses
from digest.pipeline.jobs import JOBS_TABLE, WATCH_EVERY, job_specs
from digest.store.columns import COLUMNS
from digest.store.owners import owner_is_dead, zombie
from digest.store.plainsql import Reader, on_connection
from digest.store.states import LEASE, STALE_LOCK, DeliveryState, IssueStatus, RunOutcome

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from digest.config import Settings

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


def gather(settings: Settings, source: Reader | sessionmaker[Session], *, now: datetime) -> Status:
    """Read the scheduler's, the sources' and the deliveries' state (from a reader, or
    through a session factory's engine)."""
    if not isinstance(source, Reader):
        with source.kw["bind"].connect() as connection:
            return gather(settings, on_connection(connection), now=now)
    read = source
    status = Status(now=now)
    tables = read.columns()
    status.schema_missing = schema_missing(tables)
    if status.schema_missing:
        return status  # the rest reads columns the database lacks
    stored = _stored_next_runs(read) if JOBS_TABLE in tables else {}
    specs = job_specs(settings)
    last = _last_runs(read, [spec.id for spec in specs])
    status.last_activity = read.time(read.value("SELECT MAX(finished_at) FROM job_runs"))
    for spec in specs:
        run = last.get(spec.id)
        status.jobs.append(
            JobStatus(
                id=spec.id,
                when=spec.when,
                what=spec.what,
                next_run=stored.get(spec.id),
                stored=spec.id in stored,
                last_started=run.last_started if run else None,
                last_outcome=run.last_outcome if run else None,
                last_message=run.last_message if run else None,
            )
        )
    every = read.rows(
        "SELECT name, url, active, consecutive_failures, last_error, last_success_at, "
        "next_fetch_at FROM sources ORDER BY name"
    )
    status.sources_total = len(every)
    status.source_problems = [
        SourceProblem(
            name=name,
            url=url,
            active=bool(active),
            failures=failures,
            last_error=error,
            last_success_at=read.time(success),
            next_fetch_at=read.time(next_fetch),
        )
        for name, url, active, failures, error, success, next_fetch in every
        if failures or not active
    ]
    status.issues = _issues(read, now)
    return status


def issue_findings(session: Session, now: datetime) -> list[Finding]:
    """What the issues under way need (paused, stuck, in flight, late, retries waiting,
    failed), worst first: the desk shows the same as `digest status`."""
    found = [
        Finding(f.level, f"issue #{issue.number}: {f.text}")
        for issue in _issues(on_connection(session.connection()), now)
        for f in issue.findings
        if f.level > OK
    ]
    return sorted(found, key=lambda f: -f.level)


def schema_missing(tables: dict[str, set[str]]) -> list[str]:
    """Tables and columns of this version's models (`store.columns`) that `tables` (a
    database's, `Reader.columns`) lack."""
    missing: list[str] = []
    for table, columns in COLUMNS.items():
        if table not in tables:
            missing.append(table)
            continue
        missing += [f"{table}.{column}" for column in columns if column not in tables[table]]
    return missing


def _stored_next_runs(read: Reader) -> dict[str, datetime | None]:
    """Job id → next run time, read from APScheduler's table."""
    return {
        str(job_id): datetime.fromtimestamp(float(stamp), UTC) if stamp is not None else None
        for job_id, stamp in read.rows(f"SELECT id, next_run_time FROM {JOBS_TABLE}")  # noqa: S608
    }


def _last_runs(read: Reader, jobs: list[str]) -> dict[str, JobStatus]:
    """The latest run of each of `jobs` that ever ran (only its `last_*` fields are set)."""
    found = read.rows(
        "SELECT r.job, r.started_at, r.outcome, r.message FROM job_runs AS r "
        "JOIN (SELECT MAX(id) AS id FROM job_runs GROUP BY job) AS latest ON r.id = latest.id"
    )
    return {
        job: JobStatus(
            id=job,
            when="",
            what="",
            next_run=None,
            stored=False,
            last_started=read.time(started),
            last_outcome=RunOutcome[outcome].value,
            last_message=message,
        )
        for job, started, outcome, message in found
        if job in jobs
    }


@dataclass(frozen=True)
class _IssueRow:
    """What `digest status` reads of an issue (the pause rules read it as they read an
    `Issue`: `pauses.Paused`)."""

    id: int
    number: int
    cadence: str
    slot: datetime
    status: IssueStatus
    paused_reason: str | None
    paused_kind: str | None
    paused_at: datetime | None
    resume_at: datetime | None
    resume_attempts: int
    render_problems: tuple[str, ...]
    sender_lock: str | None
    sender_heartbeat_at: datetime | None
    send_at: datetime | None


def _issues(read: Reader, now: datetime) -> list[IssueState]:
    """Issues not sent yet (drafts of past slots aside), and those sent lately."""
    found = read.rows(
        "SELECT id, number, cadence, slot, status, paused_reason, paused_kind, paused_at, "
        "resume_at, resume_attempts, render_problems, sender_lock, sender_heartbeat_at, "
        "send_at FROM issues "
        "WHERE status IN (?, ?) OR (status = ? AND slot >= ?) OR (status = ? AND sent_at >= ?) "
        "ORDER BY number DESC",
        IssueStatus.APPROVED.name,
        IssueStatus.SENDING.name,
        IssueStatus.DRAFT.name,
        now - RECENT,
        IssueStatus.SENT.name,
        now - RECENT,
    )
    states = []
    for row in found:
        problems = read.json(row[10])
        issue = _IssueRow(
            id=row[0],
            number=row[1],
            cadence=row[2],
            slot=_aware(read.time(row[3])),
            status=IssueStatus[row[4]],
            paused_reason=row[5],
            paused_kind=row[6],
            paused_at=read.time(row[7]),
            resume_at=read.time(row[8]),
            resume_attempts=row[9] or 0,
            render_problems=tuple(str(x) for x in problems) if isinstance(problems, list) else (),
            sender_lock=row[11],
            sender_heartbeat_at=read.time(row[12]),
            send_at=read.time(row[13]),
        )
        states.append(_state(read, issue, now))
    return states


def _state(read: Reader, issue: _IssueRow, now: datetime) -> IssueState:
    """One issue's state, with its ledger's counts and whether someone sends it."""
    counts = {
        DeliveryState[state].value: n
        for state, n in read.rows(
            "SELECT state, COUNT(*) FROM deliveries WHERE issue_id = ? GROUP BY state", issue.id
        )
        if n
    }
    # The lock's holder, or workers that joined it from other machines (`--join`).
    alive = _sender_alive(issue, now) or _workers_alive(read, issue.id, now)
    sending = issue.status is IssueStatus.SENDING
    in_flight = counts.get(DeliveryState.SENDING.value, 0)
    due = sending and issue.paused_reason is None and _has_due_rows(read, issue.id, now)
    return IssueState(
        number=issue.number,
        cadence=issue.cadence,
        slot=issue.slot,
        status=issue.status.value,
        paused_reason=issue.paused_reason,
        counts=counts,
        next_retry_at=read.time(
            read.value(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE issue_id = ? AND state = ?",
                issue.id,
                DeliveryState.PENDING.name,
            )
        ),
        render_problems=issue.render_problems,
        paused_kind=issue.paused_kind if issue.paused_reason else None,
        pause_advice=pauses.advice(issue),
        sender=issue.sender_lock if alive else None,
        stuck=bool(due and not alive),
        in_flight_orphans=0 if alive else in_flight,
        late=issue.status is IssueStatus.APPROVED and now - (issue.send_at or issue.slot) > LATE,
        chosen_at=issue.send_at,
    )


def _aware(moment: datetime | None) -> datetime:
    if moment is None:  # a NOT NULL column
        raise ValueError("a time the schema requires is missing")
    return moment


def _sender_alive(issue: _IssueRow, now: datetime) -> bool:
    """Whether a process holds the issue's send lock and is alive (or beat lately)."""
    lock = issue.sender_lock
    if lock is None or owner_is_dead(lock):
        return False
    beat = issue.sender_heartbeat_at
    return beat is not None and now - beat <= STALE_LOCK


def _workers_alive(read: Reader, issue_id: int, now: datetime) -> bool:
    """Whether a worker sending the issue is alive (lease not run out, pid not gone): what
    `store.senders.live` tells the senders."""
    for owner, heartbeat in read.rows(
        "SELECT owner, heartbeat_at FROM send_workers WHERE issue_id = ?", issue_id
    ):
        beat = read.time(heartbeat)
        fresh = beat is not None and now - beat <= LEASE
        if fresh and not owner_is_dead(owner) and not zombie(owner):
            return True
    return False


def _has_due_rows(read: Reader, issue_id: int, now: datetime) -> bool:
    """Rows in flight, or pending with their retry time come."""
    found = read.value(
        "SELECT id FROM deliveries WHERE issue_id = ? AND (state = ? OR (state = ? AND "
        "(next_attempt_at IS NULL OR next_attempt_at <= ?))) LIMIT 1",
        issue_id,
        DeliveryState.SENDING.name,
        DeliveryState.PENDING.name,
        now,
    )
    return found is not None
