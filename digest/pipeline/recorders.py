"""Where each answer is kept before its connection sends again: the send journal (a file,
read back after a crash) or one commit per accepted message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Outcome, SendResult
from digest.deliver.smtp import Job
from digest.store import db, deliveries
from digest.store.journal import Journal, journal_path

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


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
                mark_sent, delivery_id=int(str(job.key)), reply=result.reply, now=self.clock()
            )
            db.retrying(self.factory, work, what="recording an accepted message")


def recorder(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_id: int,
    clock: Callable[[], datetime],
) -> AnswerRecorder:
    if settings.delivery.record == "commit":
        return CommitRecorder(factory, clock)
    return JournalRecorder(Journal(journal_path(settings.delivery.journal_dir, issue_id)))


def mark_sent(session: Session, *, delivery_id: int, reply: str, now: datetime) -> None:
    deliveries.mark_sent(session, delivery_id, reply=reply, now=now)
