"""The processes sending an issue now (`send_workers`), each with a lease on its claims.

    register ──▶ beat, beat, … (every claim, and every LEASE / 6 in between) ──▶ leave
                       │ silent for LEASE, or its pid gone on this host
                       ▼
               dead: its SENDING rows go back to PENDING (`reclaim`)

Any number of processes, on any number of machines, may send one issue (PostgreSQL:
`digest send --join`). Each says it is alive; a claim by anyone first settles the workers
that stopped saying so, so a dead worker's batch is sent by the others after its lease.
Only its messages on the wire (one per connection) can then arrive twice: a joined worker
commits each accepted message before its connection sends again (`record = "commit"`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest.errors import DeliveryError
from digest.store.models import Delivery, DeliveryState, SendWorker
from digest.store.owners import owner_is_dead, zombie
from digest.store.states import LEASE as LEASE

BEAT_SECONDS = LEASE.total_seconds() / 6
"""How often a worker says it is alive between claims."""


def register(session: Session, issue_id: int, owner: str, *, now: datetime) -> None:
    """Say `owner` sends the issue from now on."""
    session.merge(SendWorker(owner=owner, issue_id=issue_id, started_at=now, heartbeat_at=now))


def beat(session: Session, owner: str, *, now: datetime) -> None:
    """Say `owner` is alive; raise DeliveryError when it was presumed dead meanwhile (its
    rows went to others: it must stop, not send them too)."""
    kept = _rows(
        session.execute(
            sa.update(SendWorker).where(SendWorker.owner == owner).values(heartbeat_at=now)
        )
    )
    if kept != 1:
        raise DeliveryError(
            f"this worker ({owner}) was silent for over {int(LEASE.total_seconds())} s and "
            "its messages went to others; stopping"
        )


def leave(session: Session, owner: str) -> None:
    """`owner` stopped sending (its rows are recorded or released)."""
    session.execute(sa.delete(SendWorker).where(SendWorker.owner == owner))


def live(session: Session, issue_id: int, *, now: datetime) -> list[str]:
    """The workers of the issue that are alive (lease not run out, pid not gone)."""
    alive, _ = _split(session, issue_id, now)
    return alive


def dead(session: Session, issue_id: int, *, now: datetime) -> list[str]:
    """The workers of the issue presumed dead (silent for the lease, or pid gone here)."""
    _, gone = _split(session, issue_id, now)
    return gone


def reclaim(
    session: Session, issue_id: int, *, now: datetime, owners: Iterable[str] | None = None
) -> tuple[int, list[str]]:
    """Put the rows dead workers of the issue (or these `owners`) left SENDING back to
    PENDING and forget the workers; return (rows, their owners). What a local journal
    says they sent is to be recorded first (`sending._claim` does)."""
    dead = list(owners) if owners is not None else _split(session, issue_id, now)[1]
    if not dead:
        return 0, []
    count = _rows(
        session.execute(
            sa.update(Delivery)
            .where(
                Delivery.issue_id == issue_id,
                Delivery.state == DeliveryState.SENDING,
                Delivery.claimed_by.in_(dead),
            )
            .values(state=DeliveryState.PENDING, claimed_by=None, updated_at=now)
        )
    )
    forget(session, dead)
    return count, dead


def forget(session: Session, owners: Iterable[str]) -> None:
    """Remove these workers' rows (they are known to be gone)."""
    names = list(owners)
    if names:
        session.execute(sa.delete(SendWorker).where(SendWorker.owner.in_(names)))


def _split(session: Session, issue_id: int, now: datetime) -> tuple[list[str], list[str]]:
    alive: list[str] = []
    dead: list[str] = []
    for owner, heartbeat in session.execute(
        sa.select(SendWorker.owner, SendWorker.heartbeat_at).where(SendWorker.issue_id == issue_id)
    ):
        gone = now - heartbeat > LEASE or owner_is_dead(owner) or zombie(owner)
        (dead if gone else alive).append(owner)
    return alive, dead


def _rows(result: Any) -> int:
    return int(result.rowcount)
