"""The confirmation queue: one row per pending subscriber whose double opt-in mail is due.

The sign-up request writes the row in the transaction that stores the subscriber, and
answers; a sender claims rows, sends, and marks them (`pipeline.confirmations`). Like the
delivery ledger, a row is claimed before its mail leaves and marked after, so a crash
before the send leaves it queued (the next drain sends it once), and a crash during the
send leaves it `sending`: tried again only after `CLAIM_LEASE`, the one mail that may
arrive twice.

One row per subscriber (unique): a flood of sign-ups for one address is at most one queued
mail, and once sent, no other for `registry.CONFIRMATION_INTERVAL`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from digest.store.models import Base
from subscribers.model import Subscriber, SubscriberStatus
from subscribers.registry import CONFIRMATION_INTERVAL

CLAIM_LEASE = timedelta(minutes=15)
"""A row claimed this long ago and not marked was cut off (a crash): it is sent again."""
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=4),
)
"""Waits after a refused or failed attempt; after the last, the row is given up (`failed`)."""


class ConfirmationState(enum.StrEnum):
    """Where a queued confirmation mail is."""

    QUEUED = "queued"
    """To send (after `next_attempt_at`, when an attempt failed)."""
    SENDING = "sending"
    """Claimed by a sender; after a crash, the one in flight."""
    SENT = "sent"
    FAILED = "failed"
    """Refused for good, or every retry failed; a new sign-up queues it again."""


class QueuedConfirmation(Base):
    """A subscriber's confirmation mail: queued, being sent, sent or failed."""

    __tablename__ = "confirmation_queue"
    __table_args__ = (sa.Index("ix_confirmation_queue_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[ConfirmationState] = mapped_column(
        sa.Enum(ConfirmationState, native_enum=False, length=20),
        default=ConfirmationState.QUEUED,
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    queued_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    """Not before this; a claim sets it to the end of its lease."""
    sent_at: Mapped[datetime | None]
    last_reply: Mapped[str | None] = mapped_column(sa.Text)
    """What the transport said last (the address taken out)."""


_TABLE = cast(sa.Table, QueuedConfirmation.__table__)
UNSENT = (ConfirmationState.QUEUED, ConfirmationState.SENDING)


def queue(
    session: Session, subscriber: Subscriber, *, now: datetime, retry_now: bool = False
) -> bool:
    """Queue the confirmation mail of pending `subscriber`, in the caller's transaction;
    return whether a mail is now queued.

    Nothing is queued when they are not pending, a mail is being sent, one was sent less
    than `CONFIRMATION_INTERVAL` ago, or one was given up less than that ago (a refusing
    address is not tried again for every sign-up). A mail already queued stays as it is;
    `retry_now` (the operator's own add) makes one waiting for a retry, or given up, due
    at once.
    """
    if subscriber.status is not SubscriberStatus.PENDING:
        return False
    found = session.execute(
        sa.select(_TABLE.c.id, _TABLE.c.state, _TABLE.c.queued_at).where(
            _TABLE.c.subscriber_id == subscriber.id
        )
    ).first()
    if found is not None and found.state is ConfirmationState.SENDING:
        return False
    if found is not None and found.state is ConfirmationState.QUEUED:
        if retry_now:
            session.execute(
                sa.update(_TABLE).where(_TABLE.c.id == found.id).values(next_attempt_at=now)
            )
        return True
    last = subscriber.last_confirmation_sent_at
    if last is not None and now - last < CONFIRMATION_INTERVAL:
        return False
    if found is None:
        session.execute(
            sa.insert(_TABLE).values(
                subscriber_id=subscriber.id,
                state=ConfirmationState.QUEUED,
                attempts=0,
                queued_at=now,
                next_attempt_at=now,
            )
        )
        return True
    if (
        found.state is ConfirmationState.FAILED
        and not retry_now
        and now - found.queued_at < CONFIRMATION_INTERVAL
    ):
        return False
    session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id == found.id)
        .values(
            state=ConfirmationState.QUEUED,
            attempts=0,
            queued_at=now,
            next_attempt_at=now,
            sent_at=None,
            last_reply=None,
        )
    )
    return True


@dataclass(frozen=True)
class Claimed:
    """A row this sender now owns until it marks it (or `CLAIM_LEASE` passes)."""

    id: int
    subscriber_id: int
    attempts: int
    """Attempts before this one."""


def due(session: Session, *, now: datetime, limit: int, only: int | None = None) -> list[int]:
    """Ids of rows to send now (queued and due, or cut off by a crash), oldest first."""
    query = (
        sa.select(_TABLE.c.id)
        .where(_TABLE.c.state.in_(UNSENT), _TABLE.c.next_attempt_at <= now)
        .order_by(_TABLE.c.id)
        .limit(limit)
    )
    if only is not None:
        query = query.where(_TABLE.c.subscriber_id == only)
    return list(session.scalars(query))


def claim(session: Session, row_id: int, *, now: datetime) -> Claimed | None:
    """Take row `row_id` for sending, or None when another sender took it first (or it is
    not due). The caller commits before sending: the claim is what a crash leaves."""
    claimed = session.execute(
        sa.update(_TABLE)
        .where(
            _TABLE.c.id == row_id,
            _TABLE.c.state.in_(UNSENT),
            _TABLE.c.next_attempt_at <= now,
        )
        .values(state=ConfirmationState.SENDING, next_attempt_at=now + CLAIM_LEASE)
        .returning(_TABLE.c.id, _TABLE.c.subscriber_id, _TABLE.c.attempts)
    ).first()
    if claimed is None:
        return None
    return Claimed(claimed.id, claimed.subscriber_id, claimed.attempts)


def claim_many(session: Session, row_ids: Sequence[int], *, now: datetime) -> list[Claimed]:
    """`claim` for many rows in one statement: those still due, oldest first (another
    sender took the others). A writer that holds SQLite's one write lock for a statement
    or two, not two per mail, keeps the sign-ups it shares the database with waiting less."""
    if not row_ids:
        return []
    found = session.execute(
        sa.update(_TABLE)
        .where(
            _TABLE.c.id.in_(list(row_ids)),
            _TABLE.c.state.in_(UNSENT),
            _TABLE.c.next_attempt_at <= now,
        )
        .values(state=ConfirmationState.SENDING, next_attempt_at=now + CLAIM_LEASE)
        .returning(_TABLE.c.id, _TABLE.c.subscriber_id, _TABLE.c.attempts)
    ).all()
    return sorted((Claimed(row.id, row.subscriber_id, row.attempts) for row in found), key=_id)


def _id(claimed: Claimed) -> int:
    return claimed.id


@dataclass(frozen=True)
class Mark:
    """What became of a claimed mail, to record (`record`)."""

    claimed: Claimed
    at: datetime
    sent: bool
    """Sent, or its outcome unknown (it may have arrived: not sent again)."""
    reply: str
    permanent: bool = False
    """A refusal for good (when not sent)."""


def record(session: Session, marks: Sequence[Mark]) -> None:
    """Record many mails' outcomes: the sent ones in two statements (`mark_sent` each),
    the others (few) one by one (`mark_unsent`)."""
    sent = [mark for mark in marks if mark.sent]
    if sent:
        session.execute(
            sa.update(_TABLE)
            .where(_TABLE.c.id == sa.bindparam("row_id"))
            .values(
                state=ConfirmationState.SENT,
                sent_at=sa.bindparam("at"),
                attempts=sa.bindparam("tries"),
                last_reply=sa.bindparam("reply"),
            ),
            [
                {
                    "row_id": mark.claimed.id,
                    "at": mark.at,
                    "tries": mark.claimed.attempts + 1,
                    "reply": mark.reply[:500],
                }
                for mark in sent
            ],
        )
        people = cast(sa.Table, Subscriber.__table__)
        session.execute(
            sa.update(people)
            .where(people.c.id == sa.bindparam("person"))
            .values(last_confirmation_sent_at=sa.bindparam("at")),
            [{"person": mark.claimed.subscriber_id, "at": mark.at} for mark in sent],
        )
    for mark in marks:
        if not mark.sent:
            mark_unsent(
                session, mark.claimed, now=mark.at, reply=mark.reply, permanent=mark.permanent
            )


def mark_sent(session: Session, claimed: Claimed, *, now: datetime, reply: str) -> None:
    """Record the mail as sent, and when (the subscriber's daily limit counts from it)."""
    session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id == claimed.id)
        .values(
            state=ConfirmationState.SENT,
            sent_at=now,
            attempts=claimed.attempts + 1,
            last_reply=reply[:500],
        )
    )
    session.execute(
        sa.update(Subscriber)
        .where(Subscriber.id == claimed.subscriber_id)
        .values(last_confirmation_sent_at=now)
    )


def gives_up(claimed: Claimed, *, permanent: bool) -> bool:
    """Whether a failed attempt of `claimed` ends its retries (`mark_unsent` then gives up)."""
    return permanent or claimed.attempts + 1 > len(RETRY_DELAYS)


def mark_unsent(
    session: Session, claimed: Claimed, *, now: datetime, reply: str, permanent: bool
) -> bool:
    """Record a refused or failed attempt; return True when the row was given up."""
    attempts = claimed.attempts + 1
    give_up = gives_up(claimed, permanent=permanent)
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id == claimed.id)
        .values(
            state=ConfirmationState.FAILED if give_up else ConfirmationState.QUEUED,
            attempts=attempts,
            next_attempt_at=now if give_up else now + delay,
            last_reply=reply[:500],
        )
    )
    return give_up


def release(session: Session, claimed: Claimed, *, now: datetime) -> None:
    """Put a claimed row back as it was (nothing was sent: the subscriber is no longer
    pending, or the sender stopped before sending)."""
    session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id == claimed.id)
        .values(state=ConfirmationState.QUEUED, next_attempt_at=now)
    )


def drop(session: Session, claimed: Claimed) -> None:
    """Forget a claimed row whose subscriber is no longer pending: no mail is due."""
    session.execute(sa.delete(_TABLE).where(_TABLE.c.id == claimed.id))


def state_of(session: Session, subscriber_id: int) -> QueuedConfirmation | None:
    """The queue row of a subscriber, if any."""
    return session.scalars(
        sa.select(QueuedConfirmation).where(QueuedConfirmation.subscriber_id == subscriber_id)
    ).one_or_none()
