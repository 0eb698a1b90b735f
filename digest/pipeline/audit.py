"""The audit log: who drafted, edited, approved, sent, imported, erased, and when.

Actors are written as "account:NAME" (a named account on the desk), "desk" (the shared
password), "cli:USER" (the OS user, or `digest --by NAME`) and "api:KEY" (an API key's
name). An entry never names a subscriber's address: an erasure must leave no trace of it.
A failure to write the log never undoes the action it records (it is its own transaction,
written after the action), so the log is a record, not a lock.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.pipeline import utcnow
from digest.store import accounts, db

__all__ = ["ACTIONS", "AuditRow", "cli_actor", "entries", "record", "record_in"]

log = logging.getLogger("digest.audit")

ACTIONS = (
    "drafted",
    "edited",
    "approved",
    "sent",
    "scheduled",
    "unscheduled",
    "test_sent",
    "imported",
    "erased",
    "subscribed",
    "collected",
    "account_added",
    "account_removed",
    "api_key_added",
    "api_key_revoked",
)
"""Every action the log records."""


@dataclass(frozen=True)
class AuditRow:
    """One entry as shown."""

    at: datetime
    actor: str
    action: str
    subject: str
    detail: str


def cli_actor(by: str | None = None) -> str:
    """The actor of a command: `--by NAME` (or $DIGEST_BY), else the OS user."""
    name = by or os.environ.get("DIGEST_BY", "")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return f"cli:{name}"


def record_in(
    session: Session, at: datetime, actor: str, action: str, subject: str = "", detail: str = ""
) -> None:
    """Add an entry inside the caller's transaction (it commits or rolls back with it)."""
    accounts.record(
        session, at=at, actor=actor[:200], action=action, subject=subject[:200], detail=detail
    )


def record(
    factory: sessionmaker[Session],
    actor: str,
    action: str,
    subject: str = "",
    detail: str = "",
    *,
    now: datetime | None = None,
) -> None:
    """Add an entry in a transaction of its own, after the action it records; a database
    failure here is logged, not raised (the action itself is done)."""
    try:
        with db.transaction(factory) as session:
            record_in(session, now or utcnow(), actor, action, subject, detail)
    except SQLAlchemyError as exc:
        log.error("the audit log could not record %s %s by %s: %s", action, subject, actor, exc)


def entries(
    factory: sessionmaker[Session], *, limit: int = 100, action: str | None = None
) -> list[AuditRow]:
    """The latest entries, newest first."""
    with factory() as session:
        return [
            AuditRow(e.at, e.actor, e.action, e.subject, e.detail)
            for e in accounts.audit_entries(session, limit=limit, action=action)
        ]
