"""Store the web's sign-ups many to a transaction: group commit (and the mail sender's
claims and marks with them).

Each sign-up is one subscriber and one queued confirmation (`people.add_subscriber` with
`send_now=False` does the same, alone). A web process receives them concurrently; storing
each in its own transaction costs a commit (an fsync) each and, on SQLite, makes them
wait for one another's write lock. So one thread (`SignupWriter`) stores whatever
sign-ups are waiting in one transaction and answers each; a failure of the batch (an
address added by another process meanwhile) makes it store them one by one.

The thread starts with the first sign-up and ends after `IDLE` seconds without one. It
keeps one connection while batches come back to back (on PostgreSQL, a pool checkout
costs a pre-ping round trip), and gives it up after a batch the database failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import people, transport
from digest.store.confirmations import ConfirmationState, QueuedConfirmation
from subscribers import registry, suppression
from subscribers.addresses import normalize
from subscribers.errors import SubscriberError
from subscribers.model import ConsentSource, Subscriber, Suppression

log = logging.getLogger("digest.web")

_SUBSCRIBERS = cast(sa.Table, Subscriber.__table__)
_QUEUE = cast(sa.Table, QueuedConfirmation.__table__)
T = TypeVar("T")
Job = Callable[[Session], Any]
"""Work for the writer's transaction (the mail sender's claims and marks)."""
Waiting = tuple["Signup | Job", concurrent.futures.Future[Any]]
BATCH = 256
"""At most this many sign-ups in one transaction."""
IDLE = 5.0
"""Seconds the writer thread waits for a sign-up before it ends."""


@dataclass(frozen=True)
class Signup:
    """One checked sign-up to store."""

    email: str
    name: str = ""
    language: str | None = None
    topics: list[str] = field(default_factory=list)
    cadence: str = "weekly"


class SignupWriter:
    """One thread storing the sign-ups of this process, a batch per transaction."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        *,
        now: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.now = now
        self._waiting: queue.SimpleQueue[Waiting] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    async def store(self, signup: Signup) -> bool:
        """Store `signup` (with the next batch); return whether a confirmation was queued.
        An address already on the list or suppressed changes nothing: False."""
        return bool(await asyncio.wrap_future(self._submit(signup)))

    def run(self, job: Callable[[Session], T]) -> T:
        """Run `job` in the next batch's transaction and return what it returned, once
        committed (from a thread other than the writer's: the mail sender's claims and
        marks share the sign-ups' commits). `job` must write nothing before it may fail."""
        result: T = self._submit(job).result()
        return result

    def _submit(self, item: Signup | Job) -> concurrent.futures.Future[Any]:
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._guard:
            self._waiting.put((item, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="digest-writer", daemon=True)
                self._thread.start()
        return done

    def _run(self) -> None:
        while True:
            try:
                first = self._waiting.get(timeout=IDLE)
            except queue.Empty:
                with self._guard:
                    if self._waiting.empty():
                        self._thread = None
                        return
                continue
            # One connection for a busy spell (batches back to back), not one checkout,
            # and on PostgreSQL one pre-ping round trip, per batch; a batch that fails
            # ends the spell, so the next takes a fresh (checked) connection.
            with self._connection() as connection:
                batch = [first, *self._more()]
                while batch and self._write(batch, connection):
                    batch = self._more()

    def _more(self) -> list[Waiting]:
        """What waits now, up to a batch."""
        batch: list[Waiting] = []
        while len(batch) < BATCH:
            try:
                batch.append(self._waiting.get_nowait())
            except queue.Empty:
                break
        return batch

    def _connection(self) -> Any:
        """A connection from the factory's engine (its pool)."""
        return self.factory.kw["bind"].connect()

    def _write(self, batch: list[Waiting], connection: sa.Connection) -> bool:
        """Store `batch`, answer each of its futures; False when the database failed (the
        connection is then left for a fresh one)."""
        try:
            results = self._together([item for item, _ in batch], connection)
        except sa.exc.IntegrityError:
            # Someone else (another process) added one of these addresses meanwhile.
            results = []
            for item, done in batch:
                try:
                    results.extend(self._together([item], connection))
                except (sa.exc.SQLAlchemyError, DigestError) as exc:
                    if not isinstance(item, Signup):
                        done.set_exception(exc)
                        results.append(None)
                        continue
                    log.warning("a sign-up was not stored: %s", type(exc).__name__)
                    results.append(False)
        except BaseException as exc:
            for _, done in batch:
                done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return False
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)
        return True

    def _together(self, items: list[Signup | Job], connection: sa.Connection) -> list[Any]:
        """Store the sign-ups among `items` and run its jobs, in one transaction; return
        whether each sign-up queued a mail, and what each job returned.

        New addresses (neither on the list nor suppressed: nearly all) are looked up and
        inserted together, a few statements per batch; the others take the one-by-one
        path of `people.store` (pending again, a person who left signing up again)."""
        now = self.now()
        key = transport.suppression_key(self.settings)
        signups = [item for item in items if isinstance(item, Signup)]
        jobs = [item for item in items if not isinstance(item, Signup)]
        checked: list[dict[str, Any] | None] = []
        for signup in signups:
            try:
                checked.append(
                    registry.new_values(
                        normalize(signup.email),
                        name=signup.name,
                        language=signup.language,
                        topics=signup.topics,
                        cadence=signup.cadence,
                        source=ConsentSource.FORM,
                        consent_version=self.settings.subscribers.consent_version,
                        now=now,
                        languages=self.settings.publication.languages,
                    )
                )
            except SubscriberError:
                checked.append(None)
        hashes = {
            values["email"]: suppression.normalized_hash(values["email"], key)
            for values in checked
            if values is not None
        }
        results = [False] * len(signups)
        with self.factory(bind=connection) as session, session.begin():
            # Both lookups in one statement: a round trip fewer per batch on PostgreSQL.
            found = session.execute(
                sa.union_all(
                    sa.select(sa.literal("s"), Suppression.address_hash).where(
                        Suppression.address_hash.in_(set(hashes.values()))
                    ),
                    sa.select(sa.literal("k"), Subscriber.email).where(
                        Subscriber.email.in_(hashes)
                    ),
                )
            ).all()
            suppressed = {value for kind, value in found if kind == "s"}
            known = {value for kind, value in found if kind == "k"}
            fresh: dict[str, int] = {}
            others: list[int] = []
            for index, values in enumerate(checked):
                if values is None:
                    continue
                address = values["email"]
                if address in known or hashes[address] in suppressed or address in fresh:
                    others.append(index)
                else:
                    fresh[address] = index
            if fresh:
                rows = [values for index in fresh.values() if (values := checked[index])]
                added = session.execute(
                    sa.insert(_SUBSCRIBERS).returning(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.email),
                    rows,
                ).all()
                session.execute(
                    sa.insert(_QUEUE),
                    [
                        {
                            "subscriber_id": subscriber_id,
                            "state": ConfirmationState.QUEUED,
                            "attempts": 0,
                            "queued_at": now,
                            "next_attempt_at": now,
                        }
                        for subscriber_id, _ in added
                    ],
                )
                for _, address in added:
                    results[fresh[address]] = True
            for index in others:
                results[index] = self._one(session, signups[index], now, key)
            done = [job(session) for job in jobs]
        stored, ran = iter(results), iter(done)
        return [next(stored) if isinstance(item, Signup) else next(ran) for item in items]

    def _one(self, session: Session, signup: Signup, now: datetime, key: bytes) -> bool:
        """Store one sign-up of an address already known or suppressed."""
        fields = {
            "name": signup.name,
            "language": signup.language,
            "topics": signup.topics,
            "cadence": signup.cadence,
            "source": ConsentSource.FORM,
            "consent_version": self.settings.subscribers.consent_version,
            "consent_ip": None,
            "now": now,
            "languages": self.settings.publication.languages,
            "suppression_key": key,
        }
        try:
            # Every check comes before any write, so a refusal leaves the transaction as
            # it was for the others of the batch.
            _, _, queued, _ = people.store(
                session, signup.email, registry.resubscribe, fields, confirmed=False
            )
        except (SubscriberError, DigestError):
            return False  # on the list already, or suppressed: nothing happens
        return queued
