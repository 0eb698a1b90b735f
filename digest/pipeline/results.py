"""What an answer does to a ledger row (sent, retried with backoff, bounced, failed) and how
answers reach the database: in batches, failures held while they form a streak."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from digest.config import DeliverySettings, Settings
from digest.deliver import SendResult, Verdict
from digest.store import db, deliveries
from digest.store.deliveries import Claimed
from digest.store.models import DeliveryState
from subscribers import registry

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=2)
RECORD_EVERY = 50
RECORD_SECONDS = 0.25
"""Results are committed at least this often (and every 0.25 s): after a crash whose
journal is out of reach, at most these and the messages on the wire can arrive twice."""


def record_retrying(
    factory: sessionmaker[Session],
    answered: Sequence[Answer],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> None:
    """`_record` in a transaction of its own, waiting for the database if it is away: the
    results of accepted messages are never dropped (that would send them twice)."""
    work = partial(record, answered=answered, key=key, settings=settings, now=now)
    db.retrying(factory, work, what="recording the results of sent messages")


KEEP_ON_PAUSE = (Verdict.SENT, Verdict.UNKNOWN, Verdict.REFUSED)
"""Answers recorded even when the issue pauses: what reached (or may have reached) the
server, and what could not be built for one recipient."""

Answer = tuple[deliveries.Result, Claimed, Verdict]


def save_before_raising(
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
    kept = [a for a in answered if a[2] in KEEP_ON_PAUSE]
    failed = [a[0].id for a in answered if a[2] not in KEEP_ON_PAUSE]
    try:
        with db.transaction(factory) as session:
            record(session, kept, key, settings, now)
            deliveries.release(session, [*failed, *unstarted], now=now)
    except Exception as exc:
        # The journal still holds what was accepted; the next run reads it back.
        log.warning("event=send_record_failed error=%r", str(exc))


def flush(
    factory: sessionmaker[Session],
    answered: list[Answer],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> list[Answer]:
    """Record the answers up to the last success; return the failures after it (held)."""
    streak, settled = settle(answered)
    if settled:
        record_retrying(factory, settled, key, settings, now)
    return streak


def settle(answered: list[Answer]) -> tuple[list[Answer], list[Answer]]:
    """Split answers into (trailing failures since the last success, the rest). An unknown
    outcome ends a streak too: it must be recorded, or it would be sent again at once."""
    cut = len(answered)
    while cut and answered[cut - 1][2] not in (Verdict.SENT, Verdict.UNKNOWN):
        cut -= 1
    return answered[cut:], answered[:cut]


def record(
    session: Session,
    answered: Sequence[Answer],
    key: bytes,
    settings: Settings,
    now: datetime,
) -> None:
    deliveries.record(session, [result for result, _, _ in answered], now=now)
    for result, row, _ in answered:
        if result.state is DeliveryState.BOUNCED:
            count_bounce(session, row, key, settings, now)


def result_of(
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


def count_bounce(
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
