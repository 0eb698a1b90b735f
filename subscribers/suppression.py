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
from subscribers.model import Suppression, SuppressionReason


def address_hash(address: str, key: bytes) -> str:
    """Return the hex HMAC-SHA256 of the normalized `address` under `key`."""
    if not key:
        raise ValueError("the suppression key is empty; configure a long random secret")
    return hmac.new(key, normalize(address).encode("utf-8"), hashlib.sha256).hexdigest()


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
