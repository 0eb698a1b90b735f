"""Named accounts, API keys and the audit log, as rows: find, add, remove, list.

Hashing, roles and what each verb means live in `digest.pipeline.accounts`; this module only
reads and writes the tables, inside the caller's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest.store.models import Account, ApiKey, AuditEntry


def all_accounts(session: Session) -> Sequence[Account]:
    """Every account, by name."""
    return session.scalars(sa.select(Account).order_by(Account.name)).all()


def count_accounts(session: Session) -> int:
    """How many named accounts exist (none: the desk uses the shared password)."""
    return session.scalar(sa.select(sa.func.count()).select_from(Account)) or 0


def account_by_email(session: Session, email: str) -> Account | None:
    """The account with this (normalized) address, or None."""
    return session.scalar(sa.select(Account).where(Account.email == email))


def account_by_name(session: Session, name: str) -> Account | None:
    """The account called `name`, or None."""
    return session.scalar(sa.select(Account).where(Account.name == name))


def record(
    session: Session, *, at: datetime, actor: str, action: str, subject: str = "", detail: str = ""
) -> AuditEntry:
    """Add one entry to the audit log."""
    entry = AuditEntry(at=at, actor=actor, action=action, subject=subject, detail=detail)
    session.add(entry)
    return entry


def audit_entries(
    session: Session, *, limit: int = 100, action: str | None = None
) -> Sequence[AuditEntry]:
    """The latest audit entries, newest first (only `action` ones when given)."""
    query = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if action:
        query = query.where(AuditEntry.action == action)
    return session.scalars(query.limit(limit)).all()


def all_api_keys(session: Session) -> Sequence[ApiKey]:
    """Every API key, revoked ones included, by name."""
    return session.scalars(sa.select(ApiKey).order_by(ApiKey.name)).all()


def api_key_by_name(session: Session, name: str) -> ApiKey | None:
    """The API key called `name`, or None."""
    return session.scalar(sa.select(ApiKey).where(ApiKey.name == name))


def api_key_by_hash(session: Session, token_hash: str) -> ApiKey | None:
    """The API key whose token hashes to `token_hash`, revoked or not, or None."""
    return session.scalar(sa.select(ApiKey).where(ApiKey.token_hash == token_hash))
