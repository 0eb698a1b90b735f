"""What the scheduler did and who is doing what: job runs, leases and once-only marks.

    job_runs    one row per job run: job, started, finished, outcome, message (`digest status`)
    job_leases  one row per piece of work ("collect", "issue-weekly"): the process doing it
                now and until when; renewed while it works, taken over when it expires or
                its process is gone
    job_marks   things done or decided once across processes ("editors told about #12",
                "the weekly slot of 23 Nov skipped")

Every change here is a single conditional statement, so two processes racing for a lease
or a mark get one winner from the database itself (SQLite or PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from digest.store.models import Base
from digest.store.owners import owner_is_dead as owner_is_dead
from digest.store.owners import process_owner as process_owner
from digest.store.states import RunOutcome as RunOutcome


class JobRun(Base):
    """One run of a scheduler job."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.Index("ix_job_runs_job", "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[RunOutcome] = mapped_column(
        sa.Enum(RunOutcome, native_enum=False, length=20), default=RunOutcome.RUNNING
    )
    message: Mapped[str] = mapped_column(sa.Text, default="")
    owner: Mapped[str] = mapped_column(sa.String(200), default="")
    """"host:pid:nonce" of the process that ran it."""


class JobLease(Base):
    """Who does a piece of work now: one row per name, owner None when free."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class JobMark(Base):
    """Something done or decided once, whoever tries it again."""

    __tablename__ = "job_marks"

    key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    created_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(sa.Text, default="")


def _rows(result: Any) -> int:
    """The rows an INSERT, UPDATE or DELETE touched (a CursorResult; typed as plain Result)."""
    return int(result.rowcount)


def _insert_ignoring_duplicates(session: Session, table: Any, row: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; return whether the row went in (RETURNING says so:
    the driver's rowcount is not reliable for it)."""
    from sqlalchemy.dialects import postgresql, sqlite  # not for `digest status` on SQLite

    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    key = next(iter(table.primary_key.columns))
    statement = insert(table).values(**row).on_conflict_do_nothing().returning(key)
    return session.execute(statement).first() is not None


# --- leases ------------------------------------------------------------------------------------


def acquire(
    factory: sessionmaker[Session], name: str, owner: str, *, now: datetime, ttl: timedelta
) -> str | None:
    """Take the lease `name` for `owner` until now + ttl. Return None when taken, else the
    holder that keeps it (for the message)."""
    with factory() as session, session.begin():
        _insert_ignoring_duplicates(session, JobLease.__table__, {"name": name})
        holder, expires = session.execute(
            sa.select(JobLease.owner, JobLease.expires_at).where(JobLease.name == name)
        ).one()
        free = (
            holder is None
            or holder == owner
            or (expires is not None and expires <= now)
            or owner_is_dead(holder)
        )
        if not free:
            return str(holder)
        # Compare-and-set on the holder we saw: of two processes that both saw it free,
        # one wins.
        same = JobLease.owner.is_(None) if holder is None else JobLease.owner == holder
        taken = _rows(
            session.execute(
                sa.update(JobLease)
                .where(JobLease.name == name, same)
                .values(owner=owner, acquired_at=now, expires_at=now + ttl)
            )
        )
    return None if taken == 1 else "another process, a moment ago"


def renew(
    factory: sessionmaker[Session], name: str, owner: str, *, now: datetime, ttl: timedelta
) -> bool:
    """Extend `owner`'s lease; False when it is no longer theirs."""
    with factory() as session, session.begin():
        kept = _rows(
            session.execute(
                sa.update(JobLease)
                .where(JobLease.name == name, JobLease.owner == owner)
                .values(expires_at=now + ttl)
            )
        )
    return kept == 1


def release(factory: sessionmaker[Session], name: str, owner: str) -> None:
    """Give the lease back (a no-op when someone else holds it now)."""
    with factory() as session, session.begin():
        session.execute(
            sa.update(JobLease)
            .where(JobLease.name == name, JobLease.owner == owner)
            .values(owner=None, expires_at=None)
        )


# --- marks -------------------------------------------------------------------------------------


def mark_once(session: Session, key: str, *, now: datetime, note: str = "") -> bool:
    """Record `key`; True when this call recorded it, False when it was there already."""
    row = {"key": key, "created_at": now, "note": note}
    return _insert_ignoring_duplicates(session, JobMark.__table__, row)


def is_marked(session: Session, key: str) -> bool:
    """Whether `key` was recorded."""
    return session.get(JobMark, key) is not None


def unmark(session: Session, key: str) -> None:
    """Forget `key` (an attempt failed and should be made again)."""
    session.execute(sa.delete(JobMark).where(JobMark.key == key))


# --- runs --------------------------------------------------------------------------------------


def start_run(session: Session, job: str, *, owner: str, now: datetime) -> int:
    """Record that `job` started; return the run's id."""
    run = JobRun(job=job, started_at=now, owner=owner, outcome=RunOutcome.RUNNING, message="")
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session, run_id: int, outcome: RunOutcome, message: str, *, now: datetime
) -> None:
    """Record how run `run_id` ended."""
    session.execute(
        sa.update(JobRun)
        .where(JobRun.id == run_id)
        .values(outcome=outcome, message=message[:4000], finished_at=now)
    )


def record_run(
    session: Session, job: str, outcome: RunOutcome, message: str, *, owner: str, now: datetime
) -> None:
    """Record a run that did not execute (missed, skipped) in one go."""
    session.add(
        JobRun(
            job=job,
            started_at=now,
            finished_at=now,
            outcome=outcome,
            message=message[:4000],
            owner=owner,
        )
    )


def close_abandoned(session: Session, *, now: datetime) -> int:
    """Mark runs left RUNNING by a process of this host that is gone; return how many."""
    running = session.execute(
        sa.select(JobRun.id, JobRun.owner).where(JobRun.outcome == RunOutcome.RUNNING)
    ).all()
    gone = [run_id for run_id, owner in running if owner_is_dead(owner)]
    if gone:
        session.execute(
            sa.update(JobRun)
            .where(JobRun.id.in_(gone))
            .values(
                outcome=RunOutcome.FAILED,
                message="interrupted: the process ended before the run did",
                finished_at=now,
            )
        )
    return len(gone)


def last_runs(session: Session, jobs: Sequence[str]) -> dict[str, JobRun]:
    """Return the latest run of each of `jobs` (those that ever ran)."""
    latest = (
        sa.select(JobRun.job, sa.func.max(JobRun.id).label("id"))
        .where(JobRun.job.in_(list(jobs)))
        .group_by(JobRun.job)
        .subquery()
    )
    rows = session.scalars(sa.select(JobRun).join(latest, JobRun.id == latest.c.id)).all()
    return {run.job: run for run in rows}


def last_finished(session: Session) -> datetime | None:
    """When any job last finished (is a scheduler alive?)."""
    return session.scalar(sa.select(sa.func.max(JobRun.finished_at)))


def prune(session: Session, *, before: datetime) -> int:
    """Delete runs and marks older than `before`; return how many rows went."""
    runs = session.execute(sa.delete(JobRun).where(JobRun.started_at < before))
    marks = session.execute(sa.delete(JobMark).where(JobMark.created_at < before))
    return _rows(runs) + _rows(marks)
