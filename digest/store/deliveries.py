"""The delivery ledger: one row per (issue, subscriber), the send's single source of truth.

    build_ledger ──▶ PENDING ──claim──▶ SENDING ──record──▶ SENT | PENDING (retry) | FAILED
                                                                    | BOUNCED

Exactly once, as far as SMTP allows: a row is claimed (SENDING, committed) before its
message goes out and recorded after the server answered. A crash leaves only the claimed
rows unresolved; the next run first applies what the send journal says was accepted
(`recover`), then sends the rest again (`release_in_flight`), so at most the messages on
the wire at the crash can arrive twice, and nobody is skipped. One process sends
an issue at a time (`acquire_lock`): a second one is refused while the first is alive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DeliveryError
from digest.store.models import Delivery, DeliveryState, Issue
from digest.store.runs import JobRun, owner_is_dead, process_owner
from digest.store.states import STALE_LOCK as STALE_LOCK
from subscribers.model import Cadence, Subscriber, SubscriberStatus


def variant_key(language: str, topics: Iterable[str]) -> str:
    """Name the rendering a subscriber gets: "nl", or "nl:housing,work" with topics."""
    chosen = sorted({t.strip().lower() for t in topics if t.strip()})
    return f"{language}:{','.join(chosen)}" if chosen else language


def parse_variant(key: str) -> tuple[str, tuple[str, ...]]:
    """Return (language, topics) of a `variant_key`."""
    language, _, topics = key.partition(":")
    return language, tuple(t for t in topics.split(",") if t)


# --- one sender per issue ------------------------------------------------------------------

lock_owner = process_owner
"""This process's name in a lock: host, pid and a nonce (pids get reused)."""


def acquire_lock(
    factory: sessionmaker[Session], issue_id: int, owner: str, *, now: datetime
) -> None:
    """Make `owner` the one sender of the issue, or raise DeliveryError naming the holder."""
    with factory() as session, session.begin():
        current = session.scalar(sa.select(Issue.sender_lock).where(Issue.id == issue_id))
        heartbeat = session.scalar(sa.select(Issue.sender_heartbeat_at).where(Issue.id == issue_id))
        free = (
            current is None
            or current == owner
            or owner_is_dead(current)
            or (heartbeat is not None and now - heartbeat > STALE_LOCK)
        )
        if not free:
            raise DeliveryError(
                f"another process ({current}) is sending this issue since "
                f"{heartbeat:%Y-%m-%d %H:%M} UTC; wait for it, or stop it and run "
                "`digest send` again (a dead sender's lock is taken over at once on its host, "
                f"after {int(STALE_LOCK.total_seconds() // 60)} minutes elsewhere)"
            )
        # Compare-and-set: of two processes that both saw the lock free, one wins.
        taken = _rows(
            session.execute(
                sa.update(Issue)
                .where(Issue.id == issue_id, _same(Issue.sender_lock, current))
                .values(sender_lock=owner, sender_heartbeat_at=now)
            )
        )
    if taken != 1:
        raise DeliveryError("another process took the send of this issue a moment ago")


def _rows(result: Any) -> int:
    """The rows an UPDATE or INSERT touched (a CursorResult; typed as plain Result)."""
    return int(result.rowcount)


def _same(column: Any, value: str | None) -> Any:
    """`column = value`, spelled `IS NULL` for None."""
    return column.is_(None) if value is None else column == value


def heartbeat(session: Session, issue_id: int, owner: str, *, now: datetime) -> None:
    """Say we are alive; raise DeliveryError if the lock was taken over meanwhile."""
    kept = _rows(
        session.execute(
            sa.update(Issue)
            .where(Issue.id == issue_id, Issue.sender_lock == owner)
            .values(sender_heartbeat_at=now)
        )
    )
    if kept != 1:
        raise DeliveryError("this process lost the send lock (presumed dead); stopping")


def release_lock(factory: sessionmaker[Session], issue_id: int, owner: str) -> None:
    """Give the issue's send lock back."""
    with factory() as session, session.begin():
        session.execute(
            sa.update(Issue)
            .where(Issue.id == issue_id, Issue.sender_lock == owner)
            .values(sender_lock=None)
        )


# --- making the ledger ---------------------------------------------------------------------


def build_ledger(
    factory: sessionmaker[Session],
    issue_id: int,
    *,
    cadence: str,
    languages: Sequence[str],
    variant_of: Callable[[str, Sequence[str]], str | None],
    now: datetime,
    batch: int = 1000,
) -> int:
    """Add a PENDING row for every confirmed, unpaused subscriber of `cadence` whose
    language is one of `languages` and for whom `variant_of(language, topics)` names a
    variant (None: nothing in this issue for them). Return the rows the ledger holds.

    Pages through subscribers by id, one short transaction per page, so memory stays flat
    and nothing holds the database for long; re-running after a crash adds only the
    missing rows (the (issue, subscriber) pair is unique).
    """
    after = 0
    while True:
        with factory() as session, session.begin():
            page = session.execute(
                sa.select(Subscriber.id, Subscriber.language, Subscriber.topics)
                .where(
                    Subscriber.status == SubscriberStatus.CONFIRMED,
                    Subscriber.paused.is_(False),
                    Subscriber.cadence == Cadence.parse(cadence),
                    Subscriber.language.in_(list(languages)),
                    Subscriber.id > after,
                )
                .order_by(Subscriber.id)
                .limit(batch)
            ).all()
            if not page:
                return (
                    session.scalar(
                        sa.select(sa.func.count())
                        .select_from(Delivery)
                        .where(Delivery.issue_id == issue_id)
                    )
                    or 0
                )
            after = page[-1].id
            rows = []
            for subscriber_id, language, topics in page:
                variant = variant_of(language, topics or ())
                if variant is not None:
                    rows.append(
                        {
                            "issue_id": issue_id,
                            "subscriber_id": subscriber_id,
                            "variant": variant,
                            "state": DeliveryState.PENDING,
                            "attempts": 0,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            if rows:
                _insert_new(session, rows)


def _insert_new(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert the rows whose (issue, subscriber) pair is not in the ledger yet."""
    # Here, not at the top: the PostgreSQL dialect is a large import `digest status` on
    # SQLite need not pay for.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if dialect not in ("postgresql", "sqlite"):
        raise DeliveryError(f"the delivery ledger supports SQLite and PostgreSQL, not {dialect}")
    statement = insert(Delivery).on_conflict_do_nothing(
        index_elements=["issue_id", "subscriber_id"]
    )
    session.execute(statement, rows)


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery with what its message needs to know of the subscriber."""

    id: int
    variant: str
    attempts: int
    email: str
    name: str
    public_id: str
    unknown_outcomes: int = 0


def _left(issue_id: int, live: Iterable[str] = (), dead: Iterable[str] | None = None) -> Any:
    """The issue's rows left SENDING by no live worker (`live`: owners still sending), or
    only those of the `dead` workers."""
    owners = list(live)
    condition = sa.and_(Delivery.issue_id == issue_id, Delivery.state == DeliveryState.SENDING)
    if dead is not None:
        condition = sa.and_(condition, Delivery.claimed_by.in_(list(dead)))
    if owners:
        condition = sa.and_(
            condition, sa.or_(Delivery.claimed_by.is_(None), Delivery.claimed_by.not_in(owners))
        )
    return condition


def release_in_flight(
    session: Session, issue_id: int, *, now: datetime, live: Iterable[str] = ()
) -> int:
    """Put rows left SENDING by a crashed run back to PENDING; return how many. Rows of
    the `live` workers (still sending, e.g. joined from another machine) stay theirs.

    Their messages may or may not have reached the server: sending them again is the only
    way not to skip anyone, and these are all that can be duplicated.
    """
    return _rows(
        session.execute(
            sa.update(Delivery)
            .where(_left(issue_id, live))
            .values(state=DeliveryState.PENDING, claimed_by=None, updated_at=now)
        )
    )


def in_flight(
    session: Session,
    issue_id: int,
    *,
    live: Iterable[str] = (),
    dead: Iterable[str] | None = None,
) -> list[int]:
    """Return the ids of the issue's rows left SENDING (by no `live` worker; or by the
    `dead` ones)."""
    return list(session.scalars(sa.select(Delivery.id).where(_left(issue_id, live, dead))))


def mark_sent(session: Session, delivery_id: int, *, reply: str, now: datetime) -> None:
    """Record at once that the server accepted a claimed row's message."""
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.SENDING)
        .values(
            state=DeliveryState.SENT,
            attempts=Delivery.attempts + 1,
            last_code=250,
            last_reply=reply[:1000],
            sent_at=now,
            updated_at=now,
        )
    )


def release(session: Session, ids: Sequence[int], *, now: datetime) -> None:
    """Put claimed rows that were never attempted (or whose answers are set aside) back to
    PENDING, as they were."""
    if ids:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(list(ids)), Delivery.state == DeliveryState.SENDING)
            .values(state=DeliveryState.PENDING, updated_at=now)
        )


def claim(
    session: Session, issue_id: int, *, now: datetime, limit: int, worker: str | None = None
) -> list[Claimed]:
    """Mark up to `limit` due PENDING rows SENDING (claimed by `worker`) and return them,
    in id order."""
    due = (
        sa.select(Delivery.id)
        .where(
            Delivery.issue_id == issue_id,
            Delivery.state == DeliveryState.PENDING,
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(state=DeliveryState.SENDING, claimed_by=worker, updated_at=now)
    )
    rows = session.execute(
        sa.select(
            Delivery.id,
            Delivery.variant,
            Delivery.attempts,
            Delivery.unknown_outcomes,
            Subscriber.email,
            Subscriber.name,
            Subscriber.public_id,
            Subscriber.status,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id, isouter=True)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    claimed = []
    gone = []
    for row in rows:
        # Erased, unsubscribed or bounced since the ledger was made: nothing goes out.
        if row.email is None or row.status is not SubscriberStatus.CONFIRMED:
            gone.append(row.id)
            continue
        claimed.append(
            Claimed(
                row.id,
                row.variant,
                row.attempts,
                row.email,
                row.name,
                row.public_id,
                row.unknown_outcomes or 0,
            )
        )
    if gone:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(gone))
            .values(
                state=DeliveryState.FAILED,
                last_reply="not sent: the subscriber left before their turn",
                updated_at=now,
            )
        )
    return claimed


@dataclass(frozen=True)
class Result:
    """What happened to one claimed delivery."""

    id: int
    state: DeliveryState
    attempts: int
    """Including this one."""
    code: int
    reply: str
    message_id: str
    next_attempt_at: datetime | None = None
    unknown_outcomes: int = 0


def record(session: Session, results: Sequence[Result], *, now: datetime) -> None:
    """Write the transport's answers for claimed rows (one statement per batch)."""
    if not results:
        return
    session.execute(
        sa.update(Delivery),
        [
            {
                "id": r.id,
                "state": r.state,
                "attempts": r.attempts,
                "last_code": r.code,
                "last_reply": r.reply[:1000],
                "message_id": r.message_id,
                "next_attempt_at": r.next_attempt_at,
                "sent_at": now if r.state is DeliveryState.SENT else None,
                "unknown_outcomes": r.unknown_outcomes,
                "updated_at": now,
            }
            for r in results
        ],
    )


def counts(session: Session, issue_id: int) -> dict[DeliveryState, int]:
    """Return the number of rows per state (every state present, zero or not)."""
    found = dict(
        session.execute(
            sa.select(Delivery.state, sa.func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.state)
        ).all()
    )
    return {state: found.get(state, 0) for state in DeliveryState}


def next_retry(session: Session, issue_id: int, *, unknown: bool | None = None) -> datetime | None:
    """Return when the earliest deferred PENDING row is due, or None when none waits;
    `unknown` False leaves out rows waiting after an unknown outcome (True: only those)."""
    query = sa.select(sa.func.min(Delivery.next_attempt_at)).where(
        Delivery.issue_id == issue_id, Delivery.state == DeliveryState.PENDING
    )
    if unknown is not None:
        query = query.where(
            Delivery.unknown_outcomes > 0 if unknown else Delivery.unknown_outcomes == 0
        )
    return session.scalar(query)


def unknown_count(session: Session, issue_id: int) -> int:
    """Return how many deliveries of the issue had no reply to their final dot at least once."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(Delivery.issue_id == issue_id, Delivery.unknown_outcomes > 0)
        )
        or 0
    )


def recover(
    session: Session,
    issue_id: int,
    *,
    sent: set[int],
    unknown: set[int],
    now: datetime,
    unknown_retry: timedelta,
    live: Iterable[str] = (),
    dead: Iterable[str] | None = None,
) -> int:
    """Write what a crashed run's journal says about rows it left SENDING (rows of the
    `live` workers aside; or only those of the `dead` ones): accepted ones become SENT,
    unknown ones wait `unknown_retry` for their one retry. Return how many."""
    done = 0
    in_flight = _left(issue_id, live, dead)
    for ids in _chunks(sorted(sent)):
        done += _rows(
            session.execute(
                sa.update(Delivery)
                .where(in_flight, Delivery.id.in_(ids))
                .values(
                    state=DeliveryState.SENT,
                    attempts=Delivery.attempts + 1,
                    last_code=250,
                    last_reply="250 accepted (read back from the send journal after a crash)",
                    sent_at=now,
                    updated_at=now,
                )
            )
        )
    for ids in _chunks(sorted(unknown)):
        for again, state in ((True, DeliveryState.UNKNOWN), (False, DeliveryState.PENDING)):
            seen_before = Delivery.unknown_outcomes > 0 if again else Delivery.unknown_outcomes == 0
            done += _rows(
                session.execute(
                    sa.update(Delivery)
                    .where(in_flight, Delivery.id.in_(ids), seen_before)
                    .values(
                        state=state,
                        attempts=Delivery.attempts + 1,
                        unknown_outcomes=Delivery.unknown_outcomes + 1,
                        last_code=0,
                        last_reply="no reply to the final dot (read back from the send journal)",
                        next_attempt_at=None if again else now + unknown_retry,
                        updated_at=now,
                    )
                )
            )
    return done


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def variant_counts(session: Session, issue_id: int) -> dict[str, int]:
    """Return the number of rows per variant."""
    return dict(
        session.execute(
            sa.select(Delivery.variant, sa.func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.variant)
        ).all()
    )


def by_message_id(session: Session, message_id: str) -> Delivery | None:
    """Return the delivery whose message had this Message-ID ("digest.3.41@example.org",
    with or without <>; the ledger keeps the part before "@")."""
    left = message_id.strip().strip("<>").partition("@")[0]
    return session.scalar(sa.select(Delivery).where(Delivery.message_id == left))


def mark_bounced(session: Session, delivery: Delivery, *, reply: str, now: datetime) -> None:
    """Record a bounce report against a delivery the server had accepted."""
    delivery.state = DeliveryState.BOUNCED
    delivery.last_reply = reply[:1000]
    delivery.updated_at = now


ERASED = "<erased address>"


def scrub_address(session: Session, address: str, subscriber_id: int | None) -> int:
    """Take an erased person's address out of what the ledger, the issues and the
    scheduler kept: reply texts on deliveries (theirs, and any other that quotes it), pause
    reasons, job run messages. Return how many rows changed. Call it before the subscriber
    row is deleted."""
    changed = 0
    pattern = f"%{_like_escape(address)}%"
    mentions = sa.func.lower(Delivery.last_reply).like(pattern.lower(), escape="\\")
    where = (
        mentions
        if subscriber_id is None
        else sa.or_(Delivery.subscriber_id == subscriber_id, mentions)
    )
    for row in session.scalars(sa.select(Delivery).where(where, Delivery.last_reply.is_not(None))):
        scrubbed = _scrub(row.last_reply or "", address)
        if scrubbed != row.last_reply:
            row.last_reply = scrubbed
            changed += 1
    paused = sa.func.lower(Issue.paused_reason).like(pattern.lower(), escape="\\")
    for issue in session.scalars(sa.select(Issue).where(paused)):
        issue.paused_reason = _scrub(issue.paused_reason or "", address)
        changed += 1
    # What the scheduler's jobs said (a send tick quotes the pause reason), which
    # `digest status` shows again later.
    said = sa.func.lower(JobRun.message).like(pattern.lower(), escape="\\")
    for run in session.scalars(sa.select(JobRun).where(said)):
        run.message = _scrub(run.message, address)
        changed += 1
    session.flush()
    return changed


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _scrub(text: str, address: str) -> str:
    """`text` with every spelling of `address` (any case, in or out of <>) replaced."""
    local, _, domain = address.rpartition("@")
    spelled = re.escape(address)
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = domain
    if ascii_domain != domain:
        spelled += "|" + re.escape(f"{local}@{ascii_domain}")
    return re.sub(spelled, ERASED, text, flags=re.IGNORECASE)
