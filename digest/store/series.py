"""Recurring events as their calendars define them: stored at collect, read at publish.

A calendar source's series (`collect.Series`) replace what was stored for that source: a
series whose VEVENTs did not change keeps its row and its `changed_at` (so `events.ics`
keeps its bytes); one the calendar no longer defines is deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest import collect
from digest.render.ics import SeriesSource
from digest.store.models import EventSeries, Source


def record(
    session: Session, source: Source, defined: Iterable[collect.Series], *, now: datetime
) -> int:
    """Store the series `source` defines now; return how many were added or changed."""
    stored = {
        row.uid: row
        for row in session.scalars(sa.select(EventSeries).where(EventSeries.source_id == source.id))
    }
    changed = 0
    seen: set[str] = set()
    for one in defined:
        seen.add(one.uid)
        digest = hashlib.sha256(one.ics.encode("utf-8")).hexdigest()
        row = stored.get(one.uid)
        if row is None:
            session.add(
                EventSeries(
                    source=source,
                    uid=one.uid,
                    ics=one.ics,
                    content_hash=digest,
                    first_seen_at=now,
                    changed_at=now,
                )
            )
            changed += 1
        elif row.content_hash != digest:
            row.ics, row.content_hash, row.changed_at = one.ics, digest, now
            changed += 1
    for uid, row in stored.items():
        if uid not in seen:
            session.delete(row)
    return changed


def by_uid(session: Session) -> dict[str, SeriesSource]:
    """Every stored series by UID (of two sources defining one UID, the later-changed)."""
    found: dict[str, SeriesSource] = {}
    query = sa.select(EventSeries).order_by(EventSeries.changed_at, EventSeries.id)
    for row in session.scalars(query):
        found[row.uid] = SeriesSource(uid=row.uid, ics=row.ics, changed_at=row.changed_at)
    return found
