"""`digest send --workers N`: one issue sent by N processes claiming batches from one ledger.

    digest send: lock, ledger, render each variant ─┬─ worker 1: claim ─ SMTP ─ record ─┐
                                                     ├─ worker 2: claim ─ SMTP ─ record ─┤
                                                     └─ …                                ┴─ conclude

The parent process does what one sender does before its first message (takes the issue's
send lock, builds or completes the ledger, settles what a crashed run left, renders each
variant once) and then starts N worker processes. Each runs the same loop as a single
sender (`sending._send_ledger`) with its own database connections, SMTP connections,
tokens and DKIM signer, and the variants rendered by the parent; they claim disjoint
batches from the ledger (a claim is one transaction: SQLite serializes writers, PostgreSQL
uses `FOR UPDATE SKIP LOCKED`). All of them append to the issue's one send journal
(`O_APPEND`: each line lands whole), so the exactly-once rules are those of one sender:
rows are claimed before their messages leave, each answer is journaled before the
connection sends again, and a crash can duplicate only the messages on the wire (at most
N × `connections`).

A worker dies with its parent (Linux: `PR_SET_PDEATHSIG`), so `kill -9` of `digest send`
leaves what a killed single sender leaves, and the next run resumes it. A worker killed on
its own is noticed when the round ends: its rows are settled from the journal (accepted
ones recorded, the rest sent again, the report says how many may arrive twice) and a new
round sends them. A pause decided by one worker (a refusal about us, the error budget)
stops the others at their next batch. The rate limit is shared by splitting it: each
worker sends at most `rate_per_second` / N.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver.smtp import SendPool
from digest.errors import DigestError
from digest.pipeline import claims, environment, recorders, sending
from digest.pipeline.transport import (
    check_transport,
    dkim_signer,
    open_sender,
    suppression_key,
    tokens,
)
from digest.store import db, deliveries, issues, senders
from digest.store.journal import journal_path
from digest.store.models import Issue, IssueStatus
from subscribers.tokens import Purpose

MAX_ROUNDS = 3
"""Rounds of workers in one run: a round whose worker was killed is followed by another."""


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def send(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    workers: int,
    number: int | None = None,
    now: datetime | None = None,
    progress: sending.Progress | None = None,
    stop: threading.Event | None = None,
    batch: int = sending.BATCH,
    breaker: bool = True,
) -> sending.SendReport:
    """Send an issue with up to `workers` processes; one process (`sending.send`) when
    `workers` is 1 or the ledger's open rows fit in one batch.

    Same guarantees and same report as `sending.send`; raises DeliveryError when another
    process is sending the issue, DigestError when a worker failed (after its answers were
    recorded)."""
    if workers < 1:
        raise DigestError(f"--workers must be at least 1 (got {workers})")

    def alone() -> sending.SendReport:
        return sending.send(
            settings, factory, number=number, now=now, progress=progress, stop=stop,
            batch=batch, breaker=breaker,
        )  # fmt: skip

    if workers == 1:
        return alone()
    started = time.monotonic()
    clock = sending._clock(now)
    check_transport(settings)
    keys = tokens(settings)
    stop = stop or threading.Event()
    with factory() as session:
        issue = sending.sendable_issue(settings, session, number)
        issue_id, plan, status = issue.id, issues.plan_of(issue), issue.status
    if status is IssueStatus.SENT or plan.is_empty:
        return alone()
    report = sending.SendReport(number=plan.number)
    variants = sending.Variants(
        settings, plan, environment(settings), keys.token_length(Purpose.UNSUBSCRIBE)
    )
    owner = deliveries.lock_owner()
    deliveries.acquire_lock(factory, issue_id, owner, now=clock())
    try:
        sending._start(settings, factory, issue_id, plan, variants, clock(), report)
        with factory() as session:
            keys_in_ledger = sorted(deliveries.variant_counts(session, issue_id))
            open_rows = sending._open_rows(session, issue_id)
        # Rendered once, here, for every worker: in parallel, one variant per core.
        job = _rendered_job(
            settings,
            variants,
            keys_in_ledger,
            workers,
            report,
            clock,
            issue_id=issue_id,
            number=plan.number,
            owner=owner,
            batch=batch,
            breaker=breaker,
        )
        count = min(workers, max(1, math.ceil(open_rows / batch)))
        _rounds(settings, factory, job, count, clock, stop, progress, report)
    finally:
        deliveries.release_lock(factory, issue_id, owner)
    report.render_seconds = dict(variants.rendered_at)
    report.workers = count
    return sending._finish(report, started)


def join(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    workers: int,
    number: int | None = None,
    now: datetime | None = None,
    progress: sending.Progress | None = None,
    stop: threading.Event | None = None,
    batch: int = sending.BATCH,
) -> sending.SendReport:
    """`digest send --join`: add `workers` processes (on this machine, maybe not the first
    sender's) to an issue being sent; they claim batches from the same ledger until it is
    done. PostgreSQL only. Each accepted message is committed before its connection sends
    again (`record = "commit"`), so if this machine dies, the others send its batch after
    the lease and only its messages on the wire can arrive twice."""
    if workers < 1:
        raise DigestError(f"--workers must be at least 1 (got {workers})")
    if factory.kw["bind"].dialect.name != "postgresql":
        raise DigestError(
            "--join needs PostgreSQL (workers on other machines share its ledger); with "
            "SQLite, use `digest send --workers N` on the one machine"
        )
    started = time.monotonic()
    clock = sending._clock(now)
    check_transport(settings)
    settings = replace(settings, delivery=replace(settings.delivery, record="commit"))
    keys = tokens(settings)
    stop = stop or threading.Event()
    with factory() as session:
        issue = sending.sendable_issue(settings, session, number)
        issue_id, plan = issue.id, issues.plan_of(issue)
        if issue.status is not IssueStatus.SENDING or issue.ledger_built_at is None:
            raise DigestError(
                f"issue #{plan.number} is not being sent ({issue.status.value}); start it "
                f"with `digest send {plan.number}`, then join it from other machines"
            )
        keys_in_ledger = sorted(deliveries.variant_counts(session, issue_id))
    report = sending.SendReport(number=plan.number)
    variants = sending.Variants(
        settings, plan, environment(settings), keys.token_length(Purpose.UNSUBSCRIBE)
    )
    job = _rendered_job(
        settings,
        variants,
        keys_in_ledger,
        workers,
        report,
        clock,
        issue_id=issue_id,
        number=plan.number,
        owner=None,
        batch=batch,
        breaker=True,
    )
    _rounds(settings, factory, job, workers, clock, stop, progress, report)
    report.render_seconds = dict(variants.rendered_at)
    report.workers = workers
    return sending._finish(report, started)


class _Job:
    """What a worker needs (pickled to it): the issue, the lock's owner, the templates."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    settings: Settings
    issue_id: int
    number: int
    owner: str | None
    """The send lock's holder; None for workers that joined (`join`)."""
    templates: dict[str, Any]
    batch: int
    breaker: bool
    offset: timedelta
    parent: int
    joined: bool


def _rendered_job(
    settings: Settings,
    variants: sending.Variants,
    keys: list[str],
    workers: int,
    report: sending.SendReport,
    clock: Callable[[], datetime],
    *,
    issue_id: int,
    number: int,
    owner: str | None,
    batch: int,
    breaker: bool,
) -> _Job:
    """Render every variant in the ledger once, here, for every worker (in parallel, one
    variant per core), and return the job the workers are given; `owner` None: joined."""
    rendering = time.monotonic()
    variants.render_all(keys, workers)
    report.render_wall_seconds = time.monotonic() - rendering
    return _Job(
        settings=settings,
        issue_id=issue_id,
        number=number,
        owner=owner,
        templates=dict(variants._templates),
        batch=batch,
        breaker=breaker,
        offset=clock() - sending.utcnow(),
        parent=os.getpid(),
        joined=owner is None,
    )


def _rounds(
    settings: Settings,
    factory: sessionmaker[Session],
    job: _Job,
    count: int,
    clock: Callable[[], datetime],
    stop: threading.Event,
    progress: sending.Progress | None,
    report: sending.SendReport,
) -> None:
    """Run rounds of `count` workers until none was killed; settle a killed one's rows."""
    fork = _can_fork()
    context = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
    path = journal_path(settings.delivery.journal_dir, job.issue_id)
    for _round in range(MAX_ROUNDS):
        halt = context.Event()
        answers: multiprocessing.Queue[tuple[int, Any]] = context.Queue()
        processes = [
            context.Process(target=_work, args=(job, index, halt, answers), daemon=True)
            for index in range(count)
        ]
        for process in processes:
            process.start()
        results: dict[int, Any] = {}
        with factory() as session:
            total = sum(deliveries.counts(session, job.issue_id).values())
        while len(results) < count:
            try:
                index, result = answers.get(timeout=0.5)
                results[index] = result
                continue
            except queue.Empty:
                pass
            if stop.is_set():
                halt.set()
            if progress:
                with factory() as session:
                    progress(total - sending._open_rows(session, job.issue_id), total)
            if not any(process.is_alive() for process in processes) and answers.empty():
                break
        for process in processes:
            process.join()
        failures = [r for r in results.values() if isinstance(r, str)]
        for result in results.values():
            if isinstance(result, sending.SendReport):
                _merge(report, result)
        killed = [p.exitcode for i, p in enumerate(processes) if i not in results]
        if killed or failures:
            # Settle what they left in flight, as a new run would after a crash.
            with db.transaction(factory) as session:
                resent = report.resent_after_crash
                twice = report.may_arrive_twice
                if job.joined:
                    # Only ours: the journal here may be the first sender's (same host).
                    count, _ = senders.reclaim(session, job.issue_id, now=clock())
                    report.resent_after_crash = count
                    report.may_arrive_twice = min(
                        count, len(killed) * settings.delivery.connections
                    )
                else:
                    claims.recover(settings, session, job.issue_id, clock(), report)
                report.resent_after_crash += resent
                report.may_arrive_twice += twice
        if failures:
            raise DigestError(f"a send worker failed: {failures[0]}")
        if not killed or stop.is_set() or report.paused:
            break
    if not report.paused and not job.joined:
        path.unlink(missing_ok=True)  # every answer is in the database
    sending._conclude(factory, job.issue_id, clock(), report)


def _can_fork() -> bool:
    """Fork when this process runs one thread (the CLI): workers start at once with the
    rendered variants and the imports already in memory. Otherwise (a test, the web app,
    the scheduler) spawn: forking a process with other threads can copy a held lock."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _merge(report: sending.SendReport, part: sending.SendReport) -> None:
    report.attempted += part.attempted
    report.unknown += part.unknown
    report.resent_after_crash += part.resent_after_crash  # a dead worker's rows taken back
    report.may_arrive_twice += part.may_arrive_twice
    if part.paused and not report.paused:
        report.paused, report.paused_kind = part.paused, part.paused_kind


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (as if killed with it)."""
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _work(job: _Job, index: int, halt: Any, answers: Any) -> None:
    """One worker: the single sender's loop on the shared ledger (runs in its own process)."""
    _die_with_parent()
    # Ctrl-C and systemd's SIGTERM reach the whole group: the parent stops us through
    # `halt`, after the messages in flight; if it dies, we die with it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    if os.getppid() != job.parent:
        return  # the parent died before we could ask to die with it
    settings = job.settings
    factory = None
    try:
        from digest.pipeline import open_database

        factory = open_database(settings)
        _lighter_commits(factory)
        answers.put((index, _send_part(job, factory, halt)))
    except BaseException as exc:
        answers.put((index, f"worker {index + 1}: {exc}\n{traceback.format_exc(limit=3)}"))
    finally:
        if factory is not None:
            factory.kw["bind"].dispose()


def _send_part(job: _Job, factory: sessionmaker[Session], halt: Any) -> sending.SendReport:
    settings = job.settings
    keys = tokens(settings)
    with factory() as session:
        plan = issues.plan_of(session.get_one(Issue, job.issue_id))
    variants = sending.Variants(
        settings, plan, environment(settings), keys.token_length(Purpose.UNSUBSCRIBE)
    )
    variants._templates.update(job.templates)
    report = sending.SendReport(number=job.number)
    stop = threading.Event()
    watching = threading.Thread(target=_watch, args=(job, factory, halt, stop), daemon=True)
    watching.start()
    pool = SendPool(
        lambda: open_sender(settings),
        settings.delivery.connections,
        pace=claims.shared_pace(settings, factory),
    )
    recorder = recorders.recorder(settings, factory, job.issue_id, _offset_clock(job.offset))
    try:
        with pool:  # its SMTP connections last the whole send, batch after batch
            sending._send_ledger(
                settings, factory, job.issue_id, job.number, job.owner, variants, keys,
                suppression_key(settings), dkim_signer(settings), pool,
                _offset_clock(job.offset), stop, job.batch, None, report, recorder,
                job.breaker, **_recording(settings, factory),
            )  # fmt: skip
    finally:
        recorder.close(done=False)  # the parent removes the journal once all are done
        stop.set()
    return report


SQLITE_RECORD_EVERY = 500
SQLITE_RECORD_SECONDS = 1.0


def _recording(settings: Settings, factory: sessionmaker[Session]) -> dict[str, Any]:
    """How often a worker writes its answers: on SQLite with the journal, in larger
    batches (one writer for all workers: fewer, bigger commits). The journal, on this
    machine like the SQLite file, keeps each answer before the next send, so after a crash
    nothing more can arrive twice; only the replay from the journal is longer."""
    if settings.delivery.record == "journal" and _is_sqlite(factory):
        return {"record_every": SQLITE_RECORD_EVERY, "record_seconds": SQLITE_RECORD_SECONDS}
    return {}


def _is_sqlite(factory: sessionmaker[Session]) -> bool:
    return bool(factory.kw["bind"].dialect.name == "sqlite")


def _lighter_commits(factory: sessionmaker[Session]) -> None:
    """SQLite: a worker's commits skip the fsync (`synchronous = NORMAL`, in WAL mode), as
    its journal does: safe against `kill -9` and crashes (the OS has every write), while a
    power cut may roll back the last commits, and the rows they recorded are then sent
    again. The writers take turns, so an fsync per commit was most of a worker's wait."""
    if not _is_sqlite(factory):
        return
    engine = factory.kw["bind"]

    @sa.event.listens_for(engine, "connect")
    def _normal(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # the connections opened so far (if any) reconnect with it


def _offset_clock(offset: timedelta) -> Callable[[], datetime]:
    return lambda: sending.utcnow() + offset


def _watch(job: _Job, factory: sessionmaker[Session], halt: Any, stop: threading.Event) -> None:
    """Stop this worker when the parent asks, or another worker paused the issue."""
    while not stop.wait(0.5):
        if halt.is_set() or os.getppid() != job.parent:
            stop.set()
            return
        try:
            with factory() as session:
                paused = session.get_one(Issue, job.issue_id).paused_at
        except Exception:  # noqa: S112 - a busy database: ask again at the next tick
            continue
        if paused is not None:
            stop.set()
            return
