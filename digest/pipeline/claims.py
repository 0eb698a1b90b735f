"""Claims on the ledger: a worker claims batches under a lease it renews (`beat`); the
rows of a worker that died are taken back by the next claim (`reclaim_dead`), and what a crashed
run left is settled when a send starts (`recover`), from the send journal when it is here.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.pipeline.results import RECORD_EVERY
from digest.store import db, deliveries, senders
from digest.store.deliveries import Claimed
from digest.store.journal import journal_path, replay
from digest.store.models import Issue, PauseKind
from digest.store.rates import SharedPace

if TYPE_CHECKING:
    from digest.pipeline.sending import SendReport

log = logging.getLogger(__name__)


def recover(
    settings: Settings, session: Session, issue_id: int, now: datetime, report: SendReport
) -> None:
    """Settle the rows a crashed run left SENDING: what its journal says was accepted is
    recorded; the rest is sent again, and the report says how many may arrive twice."""
    delivery = settings.delivery
    path = journal_path(delivery.journal_dir, issue_id)
    found = replay(path)
    # Workers still sending (joined from another machine) keep their rows.
    live = senders.live(session, issue_id, now=now)
    in_flight = set(deliveries.in_flight(session, issue_id, live=live))
    report.recovered = deliveries.recover(
        session,
        issue_id,
        sent=found.sent,
        unknown=found.unknown,
        now=now,
        unknown_retry=timedelta(minutes=delivery.unknown_retry_minutes),
        live=live,
    )
    report.resent_after_crash = deliveries.release_in_flight(session, issue_id, now=now, live=live)
    senders.reclaim(session, issue_id, now=now)  # the dead ones' rows are released above
    if path.exists():
        # Started, never answered: on the wire when the run died (one per connection).
        report.may_arrive_twice = len(found.open & in_flight)
    else:
        # No journal here (record = "commit", or the run was on another machine): each
        # connection had at most one message on the wire.
        report.may_arrive_twice = min(report.resent_after_crash, delivery.connections)
    if not deliveries.in_flight(session, issue_id):
        path.unlink(missing_ok=True)  # else a live worker of this machine may still need it


def beat(
    factory: sessionmaker[Session],
    worker: str,
    clock: Callable[[], datetime],
    done: threading.Event,
) -> None:
    """Say the worker is alive between claims (a slow batch outlasts no lease)."""
    while not done.wait(senders.BEAT_SECONDS):
        try:
            with db.transaction(factory) as session:
                senders.beat(session, worker, now=clock())
        except Exception as exc:  # the next claim says it again, or stops the worker
            log.warning("event=send_heartbeat_failed error=%r", str(exc))


def claim(
    session: Session,
    *,
    settings: Settings,
    issue_id: int,
    owner: str | None,
    worker: str,
    now: datetime,
    batch: int,
) -> tuple[list[Claimed], tuple[int, int]]:
    """Claim a batch as `worker`, first taking back the rows of dead workers; return the
    batch and (rows taken back, of which may arrive twice)."""
    if owner is not None:  # the process holding the issue's send lock (not a joiner)
        deliveries.heartbeat(session, issue_id, owner, now=now)
    senders.beat(session, worker, now=now)
    dead = senders.dead(session, issue_id, now=now)
    taken_back = reclaim_dead(settings, session, issue_id, dead, now) if dead else (0, 0)
    return deliveries.claim(session, issue_id, now=now, limit=batch, worker=worker), taken_back


def reclaim_dead(
    settings: Settings, session: Session, issue_id: int, dead: list[str], now: datetime
) -> tuple[int, int]:
    """Settle the rows `dead` workers left SENDING, as after a crash: what this machine's
    journal says they sent is recorded (a worker of this machine); the rest goes back to
    PENDING. Return (rows sent again, of which may arrive twice)."""
    delivery = settings.delivery
    path = journal_path(delivery.journal_dir, issue_id)
    found = replay(path)
    rows = set(deliveries.in_flight(session, issue_id, dead=dead))
    deliveries.recover(
        session,
        issue_id,
        sent=found.sent & rows,
        unknown=found.unknown & rows,
        now=now,
        unknown_retry=timedelta(minutes=delivery.unknown_retry_minutes),
        dead=dead,
    )
    count, _ = senders.reclaim(session, issue_id, now=now, owners=dead)
    here = socket.gethostname()
    if path.exists() and all(owner.partition(":")[0] == here for owner in dead):
        twice = len(found.open & rows)  # started here, never answered: on the wire
    else:  # another machine's: at most one per connection on the wire, and the answers
        # it had not written yet (a joined worker writes each at once)
        twice = min(count, len(dead) * (delivery.connections + RECORD_EVERY))
    log.warning(
        "event=send_reclaimed issue_id=%d rows=%d may_arrive_twice=%d workers=%s",
        issue_id, count, twice, ",".join(dead),
    )  # fmt: skip
    return count, twice


def shared_pace(settings: Settings, factory: sessionmaker[Session]) -> SharedPace | None:
    """The rate every sender shares through the database, or None when there is none."""
    rate = settings.delivery.rate_per_second
    return SharedPace(factory, rate) if rate > 0 else None


def release(
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
