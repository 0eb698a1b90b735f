"""Events in the database: one row per source + UID + RECURRENCE-ID; a changed time, place
or status is recorded as an `EventChange`, and an occurrence the calendar no longer has
(inside the span it was expanded over) is marked withdrawn.

Every string is cleaned here, once, before it is stored (`clean_event`). Every event is
stored in its own savepoint: one the database refuses is left out and named in
`Counts.skipped`, the others are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest import collect
from digest.collect.clean import clean_optional, clean_text, clean_title
from digest.store.models import (
    ChangeKind,
    Event,
    EventChange,
    EventStatus,
    Source,
)
from digest.store.recording import REFUSALS, Counts, content_digest, language_tag, note_refused


def clean_event(item: collect.Event) -> collect.Event:
    """Return `item` with every string cleaned for storage."""
    return dataclasses.replace(
        item,
        uid=clean_text(item.uid),
        recurrence_id=clean_text(item.recurrence_id),
        summary=clean_title(item.summary),
        description=clean_text(item.description),
        location=clean_title(item.location),
        url=clean_optional(item.url),
        timezone=clean_optional(item.timezone),
        status=clean_text(item.status),
        language=language_tag(item.language),
        organizer=clean_optional(item.organizer, title=True),
        categories=tuple(c for c in (clean_title(c).strip() for c in item.categories) if c),
    )


def _when(event: collect.Event | Event) -> str:
    """A readable, comparable rendering of an occurrence's time (for change records)."""
    if event.all_day:
        return f"{_iso(event.start_date)}/{_iso(event.end_date)}"
    return f"{_iso(event.starts_at)}/{_iso(event.ends_at)}"


def _iso(value: date | datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _event_hash(item: collect.Event) -> str:
    return content_digest(
        item.summary,
        item.description,
        item.location,
        item.url,
        _when(item),
        item.status,
        item.organizer,
        ",".join(item.categories),
    )


def record_events(
    session: Session,
    source: Source,
    events: Iterable[collect.Event],
    *,
    now: datetime,
    window: tuple[datetime, datetime],
) -> Counts:
    """Store a calendar's occurrences; record reschedules, moves, cancellations, removals.

    `window` is the span the calendar was expanded over: a stored occurrence inside it that
    the calendar no longer has is marked withdrawn (and un-marked if it comes back).
    """
    counts = Counts()
    seen: set[int] = set()
    refused: set[tuple[str, str]] = set()
    for raw in events:
        item = clean_event(raw)
        try:
            with session.begin_nested():
                kind, event_id = _record_event(session, source, item, now)
        except REFUSALS as exc:
            refused.add((item.uid, item.recurrence_id))
            note_refused(counts, item.summary, exc)
        else:
            setattr(counts, kind, getattr(counts, kind) + 1)
            seen.add(event_id)
    _withdraw_missing(session, source, seen, now=now, window=window, refused=refused)
    return counts


def _record_event(
    session: Session, source: Source, item: collect.Event, now: datetime
) -> tuple[str, int]:
    """Store one (clean) occurrence; return "new", "changed" or "unchanged" and its id."""
    event = session.scalar(
        sa.select(Event).where(
            Event.source_id == source.id,
            Event.uid == item.uid,
            Event.recurrence_id == item.recurrence_id,
        )
    )
    content = _event_hash(item)
    if event is None:
        event = Event(
            source=source,
            uid=item.uid,
            recurrence_id=item.recurrence_id,
            first_seen_at=now,
            changed_at=None,
        )
        _copy_event(event, item, source, now, content)
        session.add(event)
        kind = "new"
    elif item.sequence < event.sequence:
        # An older revision (RFC 5545: the higher SEQUENCE wins): keep what we have.
        event.last_seen_at = now
        kind = "unchanged"
    elif event.content_hash != content or event.withdrawn_at is not None:
        for change, old, new in _changes(event, item):
            event.changes.append(
                EventChange(kind=change, old_value=old, new_value=new, detected_at=now)
            )
        _copy_event(event, item, source, now, content)
        event.changed_at = now
        kind = "changed"
    else:
        event.last_seen_at = now
        kind = "unchanged"
    session.flush()
    return kind, event.id


def _changes(event: Event, item: collect.Event) -> list[tuple[ChangeKind, str, str]]:
    found: list[tuple[ChangeKind, str, str]] = []
    if event.withdrawn_at is not None:
        found.append((ChangeKind.REINSTATED, "withdrawn", item.status))
    old_time, new_time = _when(event), _when(item)
    if old_time != new_time:
        found.append((ChangeKind.RESCHEDULED, old_time, new_time))
    if event.location.strip() != item.location.strip() and event.location.strip():
        found.append((ChangeKind.MOVED, event.location, item.location))
    was_cancelled = event.status is EventStatus.CANCELLED
    if item.status == EventStatus.CANCELLED and not was_cancelled:
        found.append((ChangeKind.CANCELLED, event.status.value, item.status))
    elif was_cancelled and item.status != EventStatus.CANCELLED:
        found.append((ChangeKind.REINSTATED, event.status.value, item.status))
    return found


def _copy_event(
    event: Event, item: collect.Event, source: Source, now: datetime, content: str
) -> None:
    event.summary = item.summary
    event.description = item.description
    event.location = item.location
    event.url = item.url
    event.organizer = item.organizer
    event.categories = list(item.categories)
    event.language = item.language or source.language
    event.all_day = item.all_day
    event.starts_at, event.ends_at = item.starts_at, item.ends_at
    event.start_date, event.end_date = item.start_date, item.end_date
    event.timezone = item.timezone
    event.status = (
        EventStatus(item.status)
        if item.status in EventStatus.__members__
        else (EventStatus.CONFIRMED)
    )
    event.sequence = item.sequence
    event.last_modified = item.last_modified
    event.last_seen_at = now
    event.withdrawn_at = None
    event.content_hash = content


def _withdraw_missing(
    session: Session,
    source: Source,
    seen: set[int],
    *,
    now: datetime,
    window: tuple[datetime, datetime],
    refused: Collection[tuple[str, str]] = (),
) -> None:
    start, end = window
    in_window = sa.or_(
        sa.and_(Event.all_day.is_(False), Event.starts_at >= start, Event.starts_at < end),
        sa.and_(
            Event.all_day.is_(True), Event.start_date >= start.date(), Event.start_date < end.date()
        ),
    )
    query = sa.select(Event).where(
        Event.source_id == source.id, Event.withdrawn_at.is_(None), in_window
    )
    for event in session.scalars(query):
        # An occurrence the database refused this time is still in the calendar.
        if event.id not in seen and (event.uid, event.recurrence_id) not in refused:
            event.withdrawn_at = now
            event.changed_at = now
