"""Sending an issue: approve, build the ledger, send what it says, resume after anything.

    approved issue ─build_ledger─▶ deliveries (PENDING) ─claim─▶ SENDING ─SendPool─▶ server
                                          ▲                                          │
                                          └──────── record (SENT / retry / BOUNCED) ◀┘

Each variant (language × chosen topics) is rendered and serialized once (`Variants`); a
recipient's message is that template's bytes with their tokens joined in, signed when DKIM
is on. Rows are claimed in batches and committed before their messages leave; each answer
is kept (the send journal, `store/journal.py`) before its connection sends again, and the
results reach the database in batches, so a crash can duplicate only the messages on the
wire, one per connection. What a reply means is decided in `deliver/replies.py`: a refusal
about us pauses the issue for a person, one about the recipient bounces them, no reply to
the dot is an unknown outcome retried once later. The error budget (a streak, a failure
rate, the circuit breaker) pauses the issue with the reason, and the failures that tripped
it are not held against anyone.

This module is the send loop; its parts live beside it: `variants.py` (templates, jobs),
`recorders.py` (the journal), `results.py` (answers → rows), `budget.py` (when to pause),
`claims.py` (claims, leases, settling a crash), `samples.py` (dry run, test send), and
`workers.py` runs the loop in N processes (`--workers`, `--join`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from digest.compose import IssuePlan
from digest.config import Settings
from digest.deliver import Outcome, Sender, SendResult, Stage, Verdict
from digest.deliver.dkim import DkimSigner
from digest.deliver.smtp import SendPool
from digest.errors import DeliveryError, DigestError
from digest.pipeline import claims, environment, recorders
from digest.pipeline.budget import ErrorBudget, pause_text
from digest.pipeline.results import (
    KEEP_ON_PAUSE,
    RECORD_EVERY,
    RECORD_SECONDS,
    flush,
    record_retrying,
    result_of,
    save_before_raising,
)
from digest.pipeline.samples import DryRun, dry_run, send_test
from digest.pipeline.transport import (
    check_transport,
    dkim_signer,
    open_sender,
    reference_key,
    suppression_key,
    tokens,
)
from digest.pipeline.variants import (
    SAMPLE_PUBLIC_ID,
    Variants,
    build_message,
    message_id,
    personal_for,
    variant_jobs,
)
from digest.store import db, deliveries, issues, senders
from digest.store.deliveries import Claimed
from digest.store.models import DeliveryState, Issue, IssueStatus, PauseKind
from subscribers.tokens import Purpose, Tokens

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

__all__ = [
    "SAMPLE_PUBLIC_ID",
    "DryRun",
    "ErrorBudget",
    "SendReport",
    "Variants",
    "approve",
    "build_message",
    "dry_run",
    "message_id",
    "personal_for",
    "send",
    "send_test",
    "sendable_issue",
]

BATCH = 500
"""Rows claimed per round (claimed rows that were never sent are simply sent later)."""


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


# --- approval ------------------------------------------------------------------------------


def approve(
    settings: Settings, factory: sessionmaker[Session], number: int, *, now: datetime | None = None
) -> Issue:
    """Approve draft `number` for sending (what `approval = "editor"` waits for)."""
    now = now or utcnow()
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        if issue.status is IssueStatus.DRAFT:
            issue.status = IssueStatus.APPROVED
            issue.approved_at = now
        return issue


@dataclass
class SendReport:
    """What `send` did, and where the issue stands."""

    number: int
    counts: dict[DeliveryState, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    attempted: int = 0
    resent_after_crash: int = 0
    """Rows an earlier run left in flight, sent again by this one."""
    may_arrive_twice: int = 0
    """Of those, how many may have reached the server already (≤ its connections)."""
    recovered: int = 0
    """Answers an earlier run got but had not written to the database (from its journal)."""
    unknown: int = 0
    """Messages of this run whose final-dot reply never came."""
    unknown_total: int = 0
    """Deliveries of the issue that had an unknown outcome at least once."""
    paused: str | None = None
    paused_kind: PauseKind | None = None
    finished: bool = False
    next_retry_at: datetime | None = None
    seconds: float = 0.0
    ledger_seconds: float = 0.0
    """Of `seconds`, the time spent making the ledger (first run only)."""
    render_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds each variant took to render (in parallel with `--workers`)."""
    render_wall_seconds: float = 0.0
    """Of `seconds`, the time spent rendering the variants before the first message
    (`--workers`: all at once, in parallel; a single sender renders them as it goes)."""
    workers: int = 1
    """Processes that sent (`digest send --workers`, `pipeline/workers.py`)."""

    @property
    def rate(self) -> float:
        """Messages per second in this run."""
        return self.attempted / self.seconds if self.seconds else 0.0


Progress = Callable[[int, int], None]
"""Called with (rows done, rows in the ledger) as results come in."""


def sendable_issue(settings: Settings, session: Session, number: int | None) -> Issue:
    """Return the issue `digest send` works on: `number`, else the latest approved or
    sending one; explain when it cannot be sent."""
    if number is not None:
        issue = issues.by_number(session, number)
    else:
        found = issues.latest(session, status=IssueStatus.SENDING) or issues.latest(
            session, status=IssueStatus.APPROVED
        )
        if found is None:
            draft = issues.latest(session, status=IssueStatus.DRAFT)
            hint = (
                f"approve #{draft.number} with `digest approve {draft.number}`"
                if draft
                else ("run `digest draft` first")
            )
            raise DigestError(f"no issue is approved for sending; {hint}")
        issue = found
    if issue.status is IssueStatus.DRAFT:
        raise DigestError(
            f"issue #{issue.number} is a draft; approve it first (`digest approve "
            f'{issue.number}`), or let `digest run` do it when [issue] approval = "auto"'
        )
    return issue


def send(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    number: int | None = None,
    now: datetime | None = None,
    make_sender: Callable[[], Sender] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    batch: int = BATCH,
    breaker: bool = True,
) -> SendReport:
    """Send an approved issue to everyone its ledger lists; resume one that was cut off.

    Safe to run again at any time: a sent issue reports its counts; a paused or crashed one
    continues where it stopped. Raises DeliveryError when another process is sending it.
    `breaker` False turns the circuit breaker off for this run (the operator checked that
    the refusals that tripped it are real).
    """
    started = time.monotonic()
    clock = _clock(now)
    if make_sender is None:
        check_transport(settings)
    keys = tokens(settings)
    key = suppression_key(settings)
    # An override template that does not parse is named (file, line) before anything goes.
    from digest.render.overrides import check_overrides  # (the renderer: not for status)

    check_overrides(settings.render.templates_dir)
    signer = dkim_signer(settings)
    stop = stop or threading.Event()
    with factory() as session:
        issue = sendable_issue(settings, session, number)
        issue_id, plan = issue.id, issues.plan_of(issue)
    report = SendReport(number=plan.number)
    if issue.status is IssueStatus.SENT:
        with factory() as session:
            report.counts = deliveries.counts(session, issue_id)
            report.variants = deliveries.variant_counts(session, issue_id)
        report.finished = True
        return _finish(report, started)
    if plan.is_empty:
        raise DigestError(f"issue #{plan.number} is empty: nothing new to send; it is skipped")
    length = keys.token_length(Purpose.UNSUBSCRIBE)
    variants = Variants(settings, plan, environment(settings), length)
    owner = deliveries.lock_owner()
    deliveries.acquire_lock(factory, issue_id, owner, now=clock())
    try:
        _start(settings, factory, issue_id, plan, variants, clock(), report)
        pool = SendPool(
            make_sender or (lambda: open_sender(settings)),
            settings.delivery.connections,
            pace=claims.shared_pace(settings, factory),
        )
        recorder = recorders.recorder(settings, factory, issue_id, clock)
        try:
            with pool:  # its SMTP connections last the whole send, batch after batch
                _send_ledger(
                    settings, factory, issue_id, plan.number, owner, variants, keys, key,
                    signer, pool, clock, stop, batch, progress, report, recorder, breaker,
                )  # fmt: skip
        except BaseException:
            recorder.close(done=False)  # the journal stays for the next run to read
            raise
        recorder.close(done=True)
    finally:
        deliveries.release_lock(factory, issue_id, owner)
    report.render_seconds = dict(variants.rendered_at)
    return _finish(report, started)


def _finish(report: SendReport, started: float) -> SendReport:
    report.seconds = time.monotonic() - started
    return report


def _clock(now: datetime | None) -> Callable[[], datetime]:
    """The run's clock: real time, or --as-of moving forward with real time."""
    if now is None:
        return utcnow
    offset = now - utcnow()
    return lambda: utcnow() + offset


def _start(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_id: int,
    plan: IssuePlan,
    variants: Variants,
    now: datetime,
    report: SendReport,
) -> None:
    """Move the issue to SENDING and make (or complete) its ledger; release rows a crashed
    run left in flight."""
    with db.transaction(factory) as session:
        issue = session.get_one(Issue, issue_id)
        if issue.status is IssueStatus.APPROVED:
            issue.status = IssueStatus.SENDING
        issue.paused_reason = issue.paused_kind = issue.paused_at = None
        built = issue.ledger_built_at is not None
        claims.recover(settings, session, issue_id, now, report)
    if not built:
        started = time.monotonic()
        deliveries.build_ledger(
            factory,
            issue_id,
            cadence=plan.cadence,
            languages=settings.publication.languages,
            variant_of=variants.key_for,
            now=now,
        )
        with db.transaction(factory) as session:
            session.get_one(Issue, issue_id).ledger_built_at = now
        report.ledger_seconds = time.monotonic() - started


def _send_ledger(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_id: int,
    number: int,
    owner: str | None,
    *args: Any,
    worker: str | None = None,
    **every: Any,
) -> None:
    """Send the ledger's rows as worker `worker` (registered, alive while it sends); `owner`
    holds the issue's send lock (None: a joined worker)."""
    worker = worker or deliveries.lock_owner()
    clock: Callable[[], datetime] = args[5]
    db.retrying(
        factory,
        partial(senders.register, issue_id=issue_id, owner=worker, now=clock()),
        what="registering a send worker",
    )
    done = threading.Event()
    beating = threading.Thread(
        target=claims.beat, args=(factory, worker, clock, done), name="send-heartbeat", daemon=True
    )
    beating.start()
    try:
        _send_rows(settings, factory, issue_id, number, owner, *args, worker=worker, **every)
    finally:
        done.set()
        beating.join()
        db.retrying(factory, partial(senders.leave, owner=worker), what="leaving the send")


def _send_rows(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_id: int,
    number: int,
    owner: str | None,
    variants: Variants,
    keys: Tokens,
    key: bytes,
    signer: DkimSigner | None,
    pool: SendPool,
    clock: Callable[[], datetime],
    stop: threading.Event,
    batch: int,
    progress: Progress | None,
    report: SendReport,
    recorder: recorders.AnswerRecorder,
    breaker: bool,
    *,
    worker: str,
    record_every: int = RECORD_EVERY,
    record_seconds: float = RECORD_SECONDS,
) -> None:
    delivery = settings.delivery
    refkey = reference_key(settings)
    budget = ErrorBudget(
        delivery.max_consecutive_failures,
        window=delivery.failure_window,
        max_rate=delivery.max_failure_rate,
        breaker=delivery.circuit_breaker if breaker else 0,
    )
    # Failures since the last success stay unrecorded (their rows SENDING) until the streak
    # ends: with a success they are recorded as they came; if the issue pauses they go back
    # to PENDING uncounted, so a server refusing everyone bounces no one.
    streak: list[tuple[deliveries.Result, Claimed, Verdict]] = []
    with factory() as session:
        total = sum(deliveries.counts(session, issue_id).values())
        done = total - _open_rows(session, issue_id)
    # The first round of a run is small: a server refusing everyone for one reason trips
    # the circuit breaker before more than a handful of people were tried.
    canary = max(delivery.circuit_breaker, 1) if breaker else batch
    while not stop.is_set():
        now = clock()
        limit = batch if budget.successes else min(batch, canary)
        claimed, (resent, twice) = db.retrying(
            factory,
            partial(
                claims.claim,
                settings=settings,
                issue_id=issue_id,
                owner=owner,
                worker=worker,
                now=now,
                batch=limit,
            ),
            what=f"claiming messages of issue #{number}",
        )
        report.resent_after_crash += resent
        report.may_arrive_twice += twice
        if not claimed:
            if streak:
                # Nothing left to try now: the held failures are what they seem.
                record_retrying(factory, streak, key, settings, clock())
                streak = []
            pool.close()  # no connection idles through the wait (a relay would drop it)
            if not _wait_for_retry(factory, issue_id, clock, stop, delivery.retry_seconds):
                break
            continue
        by_id = {c.id: c for c in claimed}
        answered: list[tuple[deliveries.Result, Claimed, Verdict]] = []
        seen: set[int] = set()
        flushed = time.monotonic()
        unbuilt: list[tuple[Claimed, str]] = []
        try:
            jobs = variant_jobs(claimed, number, variants, keys, signer, now, unbuilt, refkey)
            for job, result in pool.map(jobs, recorder):
                row = by_id[int(str(job.key))]
                seen.add(row.id)
                report.attempted += 1
                verdict = result.verdict
                budget.add(result, verdict)
                if verdict is Verdict.UNKNOWN:
                    report.unknown += 1
                answered.append(
                    (
                        result_of(
                            row,
                            result,
                            verdict,
                            message_id(refkey, number, row.id),
                            clock(),
                            delivery,
                        ),
                        row,
                        verdict,
                    )
                )
                done += 1
                if progress:
                    progress(done, total)
                while unbuilt:
                    # Cannot be built for this recipient (an address no server takes, a
                    # value the template refuses): that recipient fails, nobody else.
                    bad, why = unbuilt.pop()
                    seen.add(bad.id)
                    failed = SendResult(Outcome.PERMANENT, 554, why, Stage.LOCAL)
                    budget.add(failed, Verdict.REFUSED)
                    answered.append(
                        (
                            result_of(
                                bad,
                                failed,
                                Verdict.REFUSED,
                                message_id(refkey, number, bad.id),
                                clock(),
                                delivery,
                            ),
                            bad,
                            Verdict.REFUSED,
                        )
                    )
                    done += 1
                if budget.exhausted or stop.is_set():
                    pool.stop()  # the messages under way finish; nothing new starts
                elif len(answered) >= record_every or time.monotonic() - flushed > record_seconds:
                    streak = flush(factory, streak + answered, key, settings, clock())
                    answered, flushed = [], time.monotonic()
            for bad, why in unbuilt:  # the last rows of the batch, with nothing after them
                seen.add(bad.id)
                failed = SendResult(Outcome.PERMANENT, 554, why, Stage.LOCAL)
                budget.add(failed, Verdict.REFUSED)
                answered.append(
                    (
                        result_of(
                            bad,
                            failed,
                            Verdict.REFUSED,
                            message_id(refkey, number, bad.id),
                            clock(),
                            delivery,
                        ),
                        bad,
                        Verdict.REFUSED,
                    )
                )
        except DeliveryError as exc:
            # The server cannot be used as configured (login refused, TLS): a person's job.
            report.paused = pause_text(number, str(exc))
            report.paused_kind = PauseKind.OPERATOR
        except BaseException:
            # Whatever went wrong, the answers already in are written before it goes up,
            # and the rows never tried go back to the queue.
            unstarted = [i for i in by_id if i not in seen]
            save_before_raising(factory, streak + answered, unstarted, key, settings, clock())
            raise
        if budget.exhausted and report.paused is None:
            report.paused = budget.reason(number)
            report.paused_kind = budget.kind
        if report.paused:
            # Every failure not yet recorded goes back uncounted: nobody is marked for
            # what may be the server's fault. Accepted and unknown answers are kept.
            kept = [a for a in streak + answered if a[2] in KEEP_ON_PAUSE]
            held = [a[0].id for a in streak + answered if a[2] not in KEEP_ON_PAUSE]
            if kept:
                record_retrying(factory, kept, key, settings, clock())
            streak = []
        else:
            held = []
            streak = flush(factory, streak + answered, key, settings, clock())
        unstarted = [i for i in by_id if i not in seen]
        released = partial(
            claims.release,
            ids=[*unstarted, *held],
            issue_id=issue_id,
            paused=report.paused,
            kind=report.paused_kind or PauseKind.RELAY,
            now=clock(),
        )
        db.retrying(factory, released, what=f"releasing messages of issue #{number}")
        if report.paused:
            break
    if streak:
        if stop.is_set():
            released = partial(
                claims.release, ids=[r.id for r, _, _ in streak], issue_id=issue_id, paused=None,
                kind=PauseKind.RELAY, now=clock(),
            )  # fmt: skip
            db.retrying(factory, released, what=f"releasing messages of issue #{number}")
        else:
            record_retrying(factory, streak, key, settings, clock())
    _conclude(factory, issue_id, clock(), report)


def _open_rows(session: Session, issue_id: int) -> int:
    counts = deliveries.counts(session, issue_id)
    return counts[DeliveryState.PENDING] + counts[DeliveryState.SENDING]


def _wait_for_retry(
    factory: sessionmaker[Session],
    issue_id: int,
    clock: Callable[[], datetime],
    stop: threading.Event,
    retry_seconds: float,
) -> bool:
    """Wait for the next deferred retry when it is due soon; False when there is none or
    it is left to a later run (the scheduler retries pending deliveries). Messages of
    unknown outcome are never waited for: they are retried by a later run."""
    with factory() as session:
        due = deliveries.next_retry(session, issue_id, unknown=False)
    if due is None:
        return False
    wait = (due - clock()).total_seconds()
    if wait > 2 * retry_seconds:
        return False
    stop.wait(max(wait, 0.0))
    return not stop.is_set()


def _conclude(
    factory: sessionmaker[Session], issue_id: int, now: datetime, report: SendReport
) -> None:
    """Mark the issue sent (and public) once no row is open; fill the report's counts."""
    work = partial(_conclude_in, issue_id=issue_id, now=now, report=report)
    db.retrying(factory, work, what="concluding the send")


def _conclude_in(session: Session, *, issue_id: int, now: datetime, report: SendReport) -> None:
    counts = deliveries.counts(session, issue_id)
    report.counts = counts
    report.variants = deliveries.variant_counts(session, issue_id)
    report.next_retry_at = deliveries.next_retry(session, issue_id)
    report.unknown_total = deliveries.unknown_count(session, issue_id)
    issue = session.get_one(Issue, issue_id)
    if counts[DeliveryState.PENDING] == counts[DeliveryState.SENDING] == 0 and not (report.paused):
        issue.status = IssueStatus.SENT
        issue.sent_at = issue.sent_at or now
        issue.published_at = issue.published_at or now
        report.finished = True
