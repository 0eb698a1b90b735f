"""The send rate every worker shares, kept in the database (`send_rates`, one row).

    next_free ──reserve(n)──▶ start = max(next_free, now); next_free = start + n / rate

A worker reserves a block of n send permits in one statement and spaces its n sends over
[start, start + n / rate): blocks never overlap, so all workers together, on any number of
machines, send at most `rate` a second (plus one send at a block's edge). Nothing is held:
a worker that dies wastes at most the rest of its last block, never more (the time moves
on without it). Wall-clock seconds: machines sharing a rate must keep NTP time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digest.store import db
from digest.store.models import SendRate

DELIVERY = "delivery"
"""The row of `[delivery] rate_per_second`: every issue sent at once shares it."""
BLOCK_SECONDS = 0.25
"""A block holds this many seconds of sends (at least one): one round trip per block."""


def reserve(session: Session, name: str, count: int, rate: float, now: float) -> float:
    """Reserve `count` permits at `rate` a second; return when the first may be used
    (seconds since the epoch). Atomic: the row's UPDATE serializes reservations."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(SendRate)
        .values(name=name, next_free=0.0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    span = count / rate
    later = sa.case((SendRate.next_free < now, now), else_=SendRate.next_free) + span
    ends = session.execute(
        sa.update(SendRate)
        .where(SendRate.name == name)
        .values(next_free=later)
        .returning(SendRate.next_free)
    ).scalar_one()
    return float(ends) - span


class SharedPace:
    """`SendPool`'s pace drawn from the database: permits come in blocks (`reserve`),
    handed out one by one, each at its time (`time.monotonic()` seconds)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        rate: float,
        *,
        name: str = DELIVERY,
        block: int | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("a shared pace needs a rate above 0")
        self.factory = factory
        self.rate = rate
        self.name = name
        self.block = block or max(1, math.ceil(rate * BLOCK_SECONDS))
        self.reservations = 0
        """Round trips made (one per block)."""
        self._wall = wall
        self._monotonic = monotonic
        self._slots: list[float] = []
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Return the `time.monotonic()` at which the caller's send may start."""
        with self._lock:
            if not self._slots:
                now = self._wall()
                start = db.retrying(
                    self.factory,
                    lambda session: reserve(session, self.name, self.block, self.rate, now),
                    what="reserving send permits",
                )
                self.reservations += 1
                offset = self._monotonic() - now  # wall → monotonic
                self._slots = [start + offset + i / self.rate for i in reversed(range(self.block))]
            return self._slots.pop()
