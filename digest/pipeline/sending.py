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
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from digest import layout
from digest.compose import IssuePlan
from digest.compose.plan import for_topics
from digest.config import DeliverySettings, Settings
from digest.deliver import Outcome, Sender, SendResult, Stage, Verdict
from digest.deliver.dkim import DkimSigner
from digest.deliver.message import MessageTemplate, Personal, marker_links
from digest.deliver.outbox import OutboxSender, file_name
from digest.deliver.references import delivery_message_id, sign
from digest.deliver.replies import signature
from digest.deliver.smtp import Job, SendPool
from digest.errors import DeliveryError, DigestError
from digest.pipeline import environment, find_issue
from digest.pipeline.transport import (
    check_transport,
    dkim_signer,
    open_sender,
    reference_key,
    suppression_key,
    tokens,
)
from digest.store import db, deliveries, issues
from digest.store.deliveries import Claimed, parse_variant, variant_key
from digest.store.journal import Journal, journal_path, replay
from digest.store.models import DeliveryState, Issue, IssueStatus, PauseKind
from subscribers import registry
from subscribers.tokens import Purpose, Tokens

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)

BATCH = 500
"""Rows claimed per round (claimed rows that were never sent are simply sent later)."""
RECORD_EVERY = 50
"""Results are committed at least this often (and every 0.25 s): after a crash, at most
these and the messages on the wire can arrive twice."""
MAX_BACKOFF = timedelta(hours=2)
SAMPLE_PUBLIC_ID = "sample-subscriber-0000"  # 22 characters, like a real public_id


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


# --- variants --------------------------------------------------------------------------------


class Variants:
    """Each variant's message template, built on first use and then reused for everyone."""

    def __init__(
        self,
        settings: Settings,
        plan: IssuePlan,
        env: jinja2.Environment,
        token_length: int,
        subject_prefix: str = "",
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.env = env
        self.token_length = token_length
        self.subject_prefix = subject_prefix
        self._templates: dict[str, MessageTemplate] = {}
        self.rendered_at: dict[str, float] = {}
        """Seconds each variant took to render and serialize (for the summary)."""

    def key_for(self, language: str, topics: Sequence[str]) -> str | None:
        """Name the variant a subscriber gets, or None when it would be empty for them."""
        if language not in self.settings.publication.languages:
            return None
        if for_topics(self.plan, topics).variant(language).item_count == 0:
            return None
        return variant_key(language, topics)

    def template(self, key: str) -> MessageTemplate:
        """Return the template of variant `key`, rendering it the first time."""
        found = self._templates.get(key)
        if found is None:
            started = time.perf_counter()
            found = self._templates[key] = self._build(key)
            self.rendered_at[key] = time.perf_counter() - started
        return found

    def _build(self, key: str) -> MessageTemplate:
        language, topics = parse_variant(key)
        pub = self.settings.publication
        delivery = self.settings.delivery
        base = pub.base_url.rstrip("/")
        archive = layout.url(base, layout.issue_page(self.plan.number, language))
        links = marker_links(base, language, archive, self.token_length)
        from digest.render.email import render_for_inbox  # (premailer: not for `digest status`)

        rendered = render_for_inbox(for_topics(self.plan, topics), language, links, self.env)
        if self.subject_prefix:
            rendered = replace(rendered, subject=f"{self.subject_prefix}{rendered.subject}")
        host = urlsplit(base).hostname or "digest.invalid"
        return MessageTemplate.build(
            rendered,
            sender=pub.sender_in(language),
            list_id=f"{language}.{host}",
            base_url=base,
            unsubscribe_mailto=delivery.unsubscribe_mailto or None,
            language=language,
            token_length=self.token_length,
            bounce_local=delivery.bounce_local_part,
        )


def message_id(key: bytes, number: int, delivery_id: int) -> str:
    """The Message-ID's left part: stable per delivery, so a re-send after a crash carries
    the same id (receivers may fold the two), and signed, so a bounce or complaint naming
    it can be trusted to be about our message ("digest.3.d41.<tag>")."""
    return delivery_message_id(key, number, delivery_id)


def build_message(
    template: MessageTemplate,
    personal: Personal,
    signer: DkimSigner | None,
    now: datetime,
) -> bytes:
    """Return the SMTP DATA payload of one recipient's message, DKIM-signed when on."""
    headers = signer.sign(template.render(personal), now) if signer else b""
    return template.render_stuffed(personal, headers)


def personal_for(
    template: MessageTemplate,
    keys: Tokens,
    *,
    email: str,
    name: str,
    public_id: str,
    message_left: str,
    now: datetime,
    reference: str = "",
) -> Personal:
    """What one recipient's copy holds of them; `reference` is the signed reference the
    VERP envelope sender carries (see `deliver/references.py`)."""
    return Personal(
        to_address=email,
        to_name=name,
        unsubscribe_token=keys.unsubscribe_token(public_id),
        preferences_token=keys.preferences_token(public_id),
        message_id=message_left,
        date=format_datetime(now),
        envelope_from=template.envelope_from(email, reference),
    )


# --- the send ------------------------------------------------------------------------------


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
            settings.delivery.rate_per_second,
        )
        recorder = _recorder(settings, factory, issue_id, clock)
        try:
            _send_ledger(
                settings, factory, issue_id, plan.number, owner, variants, keys, key, signer,
                pool, clock, stop, batch, progress, report, recorder, breaker,
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
        _recover(settings, session, issue_id, now, report)
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


def _recover(
    settings: Settings, session: Session, issue_id: int, now: datetime, report: SendReport
) -> None:
    """Settle the rows a crashed run left SENDING: what its journal says was accepted is
    recorded; the rest is sent again, and the report says how many may arrive twice."""
    delivery = settings.delivery
    path = journal_path(delivery.journal_dir, issue_id)
    found = replay(path)
    in_flight = set(deliveries.in_flight(session, issue_id))
    report.recovered = deliveries.recover(
        session,
        issue_id,
        sent=found.sent,
        unknown=found.unknown,
        now=now,
        unknown_retry=timedelta(minutes=delivery.unknown_retry_minutes),
    )
    report.resent_after_crash = deliveries.release_in_flight(session, issue_id, now=now)
    if path.exists():
        # Started, never answered: on the wire when the run died (one per connection).
        report.may_arrive_twice = len(found.open & in_flight)
    else:
        # No journal here (record = "commit", or the run was on another machine): each
        # connection had at most one message on the wire.
        report.may_arrive_twice = min(report.resent_after_crash, delivery.connections)
    path.unlink(missing_ok=True)


class AnswerRecorder:
    """Keeps each answer before the connection sends again (`SendPool.map`); this one
    keeps nothing (answers reach the database in batches)."""

    def started(self, job: Job) -> None:
        """A connection is about to send `job`."""

    def answered(self, job: Job, result: SendResult) -> None:
        """The server answered `job`."""

    def close(self, *, done: bool) -> None:
        """The run ended; `done`: every answer is in the database."""


class JournalRecorder(AnswerRecorder):
    """Appends to the issue's journal file (see `store/journal.py`)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def started(self, job: Job) -> None:
        self.journal.note("start", int(str(job.key)))

    def answered(self, job: Job, result: SendResult) -> None:
        if result.ok:
            self.journal.note("sent", int(str(job.key)))
        elif result.outcome is Outcome.UNKNOWN:
            self.journal.note("unknown", int(str(job.key)))
        # Refusals need no journal: sending them again duplicates nothing.

    def close(self, *, done: bool) -> None:
        if done:
            self.journal.remove()
        else:
            self.journal.close()


class CommitRecorder(AnswerRecorder):
    """Commits each accepted message to the database from the connection's thread."""

    def __init__(self, factory: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def answered(self, job: Job, result: SendResult) -> None:
        if result.ok:
            work = partial(
                _mark_sent, delivery_id=int(str(job.key)), reply=result.reply, now=self.clock()
            )
            db.retrying(self.factory, work, what="recording an accepted message")


def _recorder(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_id: int,
    clock: Callable[[], datetime],
) -> AnswerRecorder:
    if settings.delivery.record == "commit":
        return CommitRecorder(factory, clock)
    return JournalRecorder(Journal(journal_path(settings.delivery.journal_dir, issue_id)))


def _send_ledger(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_id: int,
    number: int,
    owner: str,
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
    recorder: AnswerRecorder,
    breaker: bool,
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
        claimed = db.retrying(
            factory,
            partial(_claim, issue_id=issue_id, owner=owner, now=now, batch=limit),
            what=f"claiming messages of issue #{number}",
        )
        if not claimed:
            if streak:
                # Nothing left to try now: the held failures are what they seem.
                _record_retrying(factory, streak, key, settings, clock())
                streak = []
            if not _wait_for_retry(factory, issue_id, clock, stop, delivery.retry_seconds):
                break
            continue
        by_id = {c.id: c for c in claimed}
        answered: list[tuple[deliveries.Result, Claimed, Verdict]] = []
        seen: set[int] = set()
        flushed = time.monotonic()
        unbuilt: list[tuple[Claimed, str]] = []
        try:
            jobs = _jobs(claimed, number, variants, keys, signer, now, unbuilt, refkey)
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
                        _result(
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
                            _result(
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
                elif len(answered) >= RECORD_EVERY or time.monotonic() - flushed > 0.25:
                    streak = _flush(factory, streak + answered, key, settings, clock())
                    answered, flushed = [], time.monotonic()
            for bad, why in unbuilt:  # the last rows of the batch, with nothing after them
                seen.add(bad.id)
                failed = SendResult(Outcome.PERMANENT, 554, why, Stage.LOCAL)
                budget.add(failed, Verdict.REFUSED)
                answered.append(
                    (
                        _result(
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
            report.paused = _pause_text(number, str(exc))
            report.paused_kind = PauseKind.OPERATOR
        except BaseException:
            # Whatever went wrong, the answers already in are written before it goes up,
            # and the rows never tried go back to the queue.
            unstarted = [i for i in by_id if i not in seen]
            _save_before_raising(factory, streak + answered, unstarted, key, settings, clock())
            raise
        if budget.exhausted and report.paused is None:
            report.paused = budget.reason(number)
            report.paused_kind = budget.kind
        if report.paused:
            # Every failure not yet recorded goes back uncounted: nobody is marked for
            # what may be the server's fault. Accepted and unknown answers are kept.
            kept = [a for a in streak + answered if a[2] in _KEEP_ON_PAUSE]
            held = [a[0].id for a in streak + answered if a[2] not in _KEEP_ON_PAUSE]
            if kept:
                _record_retrying(factory, kept, key, settings, clock())
            streak = []
        else:
            held = []
            streak = _flush(factory, streak + answered, key, settings, clock())
        unstarted = [i for i in by_id if i not in seen]
        released = partial(
            _release,
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
                _release, ids=[r.id for r, _, _ in streak], issue_id=issue_id, paused=None,
                kind=PauseKind.RELAY, now=clock(),
            )  # fmt: skip
            db.retrying(factory, released, what=f"releasing messages of issue #{number}")
        else:
            _record_retrying(factory, streak, key, settings, clock())
    _conclude(factory, issue_id, clock(), report)


def _mark_sent(session: Session, *, delivery_id: int, reply: str, now: datetime) -> None:
    deliveries.mark_sent(session, delivery_id, reply=reply, now=now)


def _claim(
    session: Session, *, issue_id: int, owner: str, now: datetime, batch: int
) -> list[Claimed]:
    deliveries.heartbeat(session, issue_id, owner, now=now)
    return deliveries.claim(session, issue_id, now=now, limit=batch)


def _release(
    session: Session,
    *,
    ids: list[int],
    issue_id: int,
    paused: str | None,
    kind: PauseKind,
    now: datetime,
) -> None:
    deliveries.release(session, ids, now=now)
    if paused:
        issue = session.get_one(Issue, issue_id)
        issue.paused_reason = paused
        issue.paused_kind = kind
        issue.paused_at = now


def _record_retrying(
    factory: sessionmaker[Session],
    answered: Sequence[Answer],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> None:
    """`_record` in a transaction of its own, waiting for the database if it is away: the
    results of accepted messages are never dropped (that would send them twice)."""
    work = partial(_record, answered=answered, key=key, settings=settings, now=now)
    db.retrying(factory, work, what="recording the results of sent messages")


_KEEP_ON_PAUSE = (Verdict.SENT, Verdict.UNKNOWN, Verdict.REFUSED)
"""Answers recorded even when the issue pauses: what reached (or may have reached) the
server, and what could not be built for one recipient."""

Answer = tuple[deliveries.Result, Claimed, Verdict]


def _pause_text(number: int, problem: str) -> str:
    return (
        f"paused issue #{number}: {problem}; fix it, then run `digest send {number}` to "
        "resume (nothing is lost, nobody was marked bounced)"
    )


def _save_before_raising(
    factory: sessionmaker[Session],
    answered: list[Answer],
    unstarted: list[int],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> None:
    """Record what the server accepted (or may have) before an error leaves `send`; the
    failures and the rows never tried go back to PENDING. Never raises over the original
    error."""
    kept = [a for a in answered if a[2] in _KEEP_ON_PAUSE]
    failed = [a[0].id for a in answered if a[2] not in _KEEP_ON_PAUSE]
    try:
        with db.transaction(factory) as session:
            _record(session, kept, key, settings, now)
            deliveries.release(session, [*failed, *unstarted], now=now)
    except Exception as exc:
        # The journal still holds what was accepted; the next run reads it back.
        log.warning("event=send_record_failed error=%r", str(exc))


def _flush(
    factory: sessionmaker[Session],
    answered: list[Answer],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> list[Answer]:
    """Record the answers up to the last success; return the failures after it (held)."""
    streak, settled = _settle(answered)
    if settled:
        _record_retrying(factory, settled, key, settings, now)
    return streak


def _settle(answered: list[Answer]) -> tuple[list[Answer], list[Answer]]:
    """Split answers into (trailing failures since the last success, the rest). An unknown
    outcome ends a streak too: it must be recorded, or it would be sent again at once."""
    cut = len(answered)
    while cut and answered[cut - 1][2] not in (Verdict.SENT, Verdict.UNKNOWN):
        cut -= 1
    return answered[cut:], answered[:cut]


def _record(
    session: Session,
    answered: Sequence[Answer],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> None:
    deliveries.record(session, [result for result, _, _ in answered], now=now)
    for result, row, _ in answered:
        if result.state is DeliveryState.BOUNCED:
            _count_bounce(session, row, key, settings, now)


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


def _jobs(
    claimed: Sequence[Claimed],
    number: int,
    variants: Variants,
    keys: Tokens,
    signer: DkimSigner | None,
    now: datetime,
    unbuilt: list[tuple[Claimed, str]],
    refkey: bytes,
) -> Iterator[Job]:
    """The claimed rows as transport jobs, built lazily (the pool pulls as it sends). A row
    whose message cannot be built goes to `unbuilt` with the reason, and the rest go on."""
    for row in claimed:
        # A variant that cannot render is everyone's problem: that error stops the send.
        template = variants.template(row.variant)
        try:
            personal = personal_for(
                template,
                keys,
                email=row.email,
                name=row.name,
                public_id=row.public_id,
                message_left=message_id(refkey, number, row.id),
                now=now,
                reference=sign(refkey, "d", row.id),
            )
            data = build_message(template, personal, signer, now)
        except (ValueError, UnicodeError) as exc:
            unbuilt.append((row, f"554 5.6.0 not sent: the message could not be built ({exc})"))
            continue
        yield Job(key=row.id, envelope_from=personal.envelope_from, recipient=row.email, data=data)


def _result(
    row: Claimed,
    result: SendResult,
    verdict: Verdict,
    left: str,
    now: datetime,
    delivery: DeliverySettings,
) -> deliveries.Result:
    """Turn a transport answer into the row's new state (retry with backoff on 4xx)."""
    attempts = row.attempts + 1
    unknown = row.unknown_outcomes
    state = DeliveryState.SENT
    retry_at = None
    if verdict is Verdict.BOUNCE:
        state = DeliveryState.BOUNCED
    elif verdict is Verdict.REFUSED:
        state = DeliveryState.FAILED
    elif verdict is Verdict.PAUSE:
        # Not held against the recipient: back in the queue, the attempt uncounted.
        state, attempts = DeliveryState.PENDING, row.attempts
    elif verdict is Verdict.UNKNOWN:
        unknown += 1
        if unknown > 1:
            state = DeliveryState.UNKNOWN  # retried once already: a person may look
        else:
            state = DeliveryState.PENDING
            retry_at = now + timedelta(minutes=delivery.unknown_retry_minutes)
    elif verdict is Verdict.RETRY:
        if attempts >= delivery.max_attempts:
            state = DeliveryState.FAILED
        else:
            state = DeliveryState.PENDING
            backoff = timedelta(seconds=delivery.retry_seconds * 2 ** (attempts - 1))
            retry_at = now + min(backoff, MAX_BACKOFF)
    return deliveries.Result(
        id=row.id,
        state=state,
        attempts=attempts,
        code=result.code,
        reply=result.reply,
        message_id=left,
        next_attempt_at=retry_at,
        unknown_outcomes=unknown,
    )


def _count_bounce(
    session: Session, row: Claimed, key: bytes, settings: Settings, now: datetime
) -> None:
    subscriber = registry.by_public_id(session, row.public_id)
    if subscriber is not None:
        registry.record_bounce(
            session,
            subscriber,
            permanent=True,
            now=now,
            suppression_key=key,
            threshold=settings.subscribers.bounce_threshold,
        )


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


class ErrorBudget:
    """When to stop sending and pause the issue, from the answers as they come.

    - a reply about us or the session (`Verdict.PAUSE`): at once, for a person;
    - the circuit breaker: `breaker` recipients in a row refused for good with the same
      reply (addresses and ids aside): a misconfigured relay, not dead mailboxes; for a
      person;
    - `limit` failures in a row (no success in between): the server is down or refusing;
    - a failure rate: at least `max_rate` of the last `window` answers failed, even with
      successes in between (a relay failing every other message).
    The last two are the relay's trouble and resume by themselves (`PauseKind.RELAY`).
    """

    def __init__(
        self, limit: int, *, window: int = 200, max_rate: float = 1.0, breaker: int = 0
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_rate = max_rate
        self.breaker = breaker
        self.streak: list[SendResult] = []
        self.recent: collections.deque[bool] = collections.deque(maxlen=window)
        self.successes = 0
        self._tripped: tuple[str, PauseKind] | None = None

    def add(self, result: SendResult, verdict: Verdict | None = None) -> None:
        """Count one answer."""
        verdict = verdict or result.verdict
        failed = verdict is not Verdict.SENT
        self.recent.append(failed)
        if not failed:
            self.successes += 1
            self.streak.clear()
            return
        self.streak.append(result)
        if self._tripped is not None:
            return
        reply = " ".join(result.reply.split())
        if verdict is Verdict.PAUSE:
            self._tripped = (
                f"the server refused the message because of us: {reply}",
                PauseKind.OPERATOR,
            )
        elif self.breaker and self._same_refusals():
            self._tripped = (
                f"the circuit breaker tripped: {self.breaker} recipients in a row were refused "
                f"for good with the same reply ({reply}), which looks like the server, not "
                "the list; nobody was marked bounced. If the addresses really are dead, run "
                f"`digest send --accept-bounces` to count them",
                PauseKind.OPERATOR,
            )
        elif len(self.streak) >= self.limit:
            self._tripped = (
                f"{len(self.streak)} messages in a row failed (last reply: {reply}); "
                "check the SMTP server and [delivery] settings",
                PauseKind.RELAY,
            )
        elif len(self.recent) >= self.window and self._rate() >= self.max_rate:
            self._tripped = (
                f"{self._rate():.0%} of the last {len(self.recent)} messages failed "
                f"(max_failure_rate {self.max_rate:.0%}; last reply: {reply}); check the "
                "SMTP server",
                PauseKind.RELAY,
            )

    def _rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def _same_refusals(self) -> bool:
        tail = self.streak[-self.breaker :]
        if len(tail) < self.breaker:
            return False
        if any(r.verdict is not Verdict.BOUNCE for r in tail):
            return False
        return len({signature(r.reply) for r in tail}) == 1

    @property
    def exhausted(self) -> bool:
        """Whether to pause."""
        return self._tripped is not None

    @property
    def kind(self) -> PauseKind:
        """Who can end the pause."""
        return self._tripped[1] if self._tripped else PauseKind.RELAY

    def reason(self, number: int) -> str:
        """The pause message."""
        problem = self._tripped[0] if self._tripped else "no reply"
        return _pause_text(number, problem)


# --- dry run and test sends ----------------------------------------------------------------


@dataclass
class DryRun:
    """What a send would do, without a ledger."""

    number: int
    variants: dict[str, int]
    samples: dict[str, str]
    """Variant → the .eml file of its sample in the outbox."""


def dry_run(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    number: int | None = None,
    now: datetime | None = None,
) -> DryRun:
    """Count the recipients per variant and write one sample per variant to the outbox."""
    now = now or utcnow()
    keys = tokens(settings)
    with factory() as session:
        issue = find_issue(session, number)
        plan = issues.plan_of(issue)
        counts: dict[str, int] = {}
        variants = Variants(settings, plan, environment(settings), _length(keys))
        for subscriber in registry.iter_recipients(
            session, cadence=plan.cadence, languages=settings.publication.languages
        ):
            found = variants.key_for(subscriber.language, subscriber.topics)
            if found is not None:
                counts[found] = counts.get(found, 0) + 1
    outbox = OutboxSender(settings.delivery.outbox_dir / "dry-run")
    samples = {}
    for name in sorted(counts):
        template = variants.template(name)
        personal = personal_for(
            template,
            keys,
            email="sample.subscriber@example.org",
            name="Sample Subscriber",
            public_id=SAMPLE_PUBLIC_ID,
            message_left=f"digest.{plan.number}.dry-run.{name.replace(':', '.').replace(',', '.')}",
            now=now,
        )
        data = build_message(template, personal, dkim_signer(settings), now)
        result = outbox.send(personal.envelope_from, personal.to_address, data)
        if not result.ok:
            raise DeliveryError(f"cannot write the dry-run sample: {result.reply}")
        identifier = f"{personal.message_id}@{template.domain}"
        samples[name] = str(outbox.folder / file_name(identifier))
    return DryRun(number=plan.number, variants=counts, samples=samples)


def _length(keys: Tokens) -> int:
    return keys.token_length(Purpose.UNSUBSCRIBE)


def send_test(
    settings: Settings,
    factory: sessionmaker[Session],
    address: str,
    *,
    number: int | None = None,
    language: str | None = None,
    now: datetime | None = None,
    sender: Sender | None = None,
) -> SendResult:
    """Send one copy of an issue (default: the latest draft) to `address`, marked as a
    test in its subject; no ledger row, no effect on the issue."""
    now = now or utcnow()
    keys = tokens(settings)
    language = language or settings.default_language
    with factory() as session:
        plan = issues.plan_of(find_issue(session, number))
    variants = Variants(
        settings, plan, environment(settings), _length(keys), subject_prefix="[TEST] "
    )
    template = variants.template(variant_key(language, ()))
    personal = personal_for(
        template,
        keys,
        email=address,
        name="",
        public_id=SAMPLE_PUBLIC_ID,
        message_left=f"digest.{plan.number}.test.{int(now.timestamp())}",
        now=now,
    )
    data = build_message(template, personal, dkim_signer(settings), now)
    transport = sender or open_sender(settings)
    try:
        return transport.send(personal.envelope_from, address, data)
    finally:
        close = getattr(transport, "close", None)
        if callable(close):
            close()
