"""Suppression: keyed hashes of addresses that must never be added again, and why.

An unsubscribed, erased, bounced or complaining address leaves only an HMAC-SHA256 of its
normalized form behind, so imports and re-adds can be refused without keeping the address.
The key must stay the same for the life of the list: hashes made with a lost or rotated
key no longer match, and the addresses to re-hash them are gone by design.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from subscribers.addresses import normalize
from subscribers.model import Suppression, SuppressionLift, SuppressionReason


def address_hash(address: str, key: bytes) -> str:
    """Return the hex HMAC-SHA256 of the normalized `address` under `key`."""
    if not key:
        raise ValueError("the suppression key is empty; configure a long random secret")
    return normalized_hash(normalize(address), key)


def normalized_hash(address: str, key: bytes) -> str:
    """Return the hex HMAC-SHA256 of an `address` already normalized (bulk imports)."""
    if not key:
        raise ValueError("the suppression key is empty; configure a long random secret")
    return hmac.new(key, address.encode("utf-8"), hashlib.sha256).hexdigest()


def find(session: Session, address: str, *, key: bytes) -> Suppression | None:
    """Return the suppression of `address`, or None when it may be added."""
    return session.scalars(
        sa.select(Suppression).where(Suppression.address_hash == address_hash(address, key))
    ).one_or_none()


def is_suppressed(session: Session, address: str, *, key: bytes) -> bool:
    """Return whether `address` must never be added again."""
    return find(session, address, key=key) is not None


def suppress(
    session: Session, address: str, *, key: bytes, reason: SuppressionReason, now: datetime
) -> Suppression:
    """Record that `address` must never be re-added; the first recorded reason stands."""
    existing = find(session, address, key=key)
    if existing is not None:
        return existing
    row = Suppression(address_hash=address_hash(address, key), reason=reason, created_at=now)
    session.add(row)
    session.flush()
    return row


def lift(
    session: Session, address: str, *, key: bytes, by: str, why: str, now: datetime
) -> SuppressionLift | None:
    """Lift the suppression of `address`, keeping who/when/why; None when it had none."""
    found = find(session, address, key=key)
    if found is None:
        return None
    if not by.strip() or not why.strip():
        raise ValueError("lifting a suppression needs who does it and why")
    lifted = SuppressionLift(
        address_hash=found.address_hash,
        reason=found.reason,
        suppressed_at=found.created_at,
        lifted_at=now,
        lifted_by=by.strip()[:200],
        why=why.strip(),
    )
    session.add(lifted)
    session.delete(found)
    session.flush()
    return lifted


def history(session: Session, address: str, *, key: bytes) -> list[SuppressionLift]:
    """Return the lifted suppressions of `address`, oldest first."""
    return list(
        session.scalars(
            sa.select(SuppressionLift)
            .where(SuppressionLift.address_hash == address_hash(address, key))
            .order_by(SuppressionLift.id)
        )
    )
