"""What compose reads: the news and events an issue may hold, as `compose` values.

Read with plain column queries, one for the entries, one for the sources that carry them
and one for the events (no ORM objects, no query per row), so reading 10,000 candidates
costs little more than the rows themselves. `plan_items` looks up by key the items a
stored plan holds only the keys of (`Section.rest_keys`), for the archive page and desk.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest import compose
from digest.store.models import Entry, EntrySource, Event, Source

CHUNK = 500
"""Ids per `IN (…)` when items are looked up by key (well under every database's limit)."""

_ENTRY_COLUMNS = (
    Entry.id,
    Entry.title,
    Entry.link,
    Entry.summary_html,
    Entry.summary_text,
    Entry.language,
    Entry.published_at,
    Entry.first_seen_at,
    Entry.changed_at,
    Entry.single_document,
    Entry.image_url,
    Entry.author,
    Entry.backlog,
    Entry.alternates,
)
_EVENT_COLUMNS = (
    Event.id,
    Event.uid,
    Event.recurrence_id,
    Event.summary,
    Event.description,
    Event.location,
    Event.url,
    Event.language,
    Event.all_day,
    Event.starts_at,
    Event.ends_at,
    Event.start_date,
    Event.end_date,
    Event.timezone,
    Event.status,
    Event.organizer,
    Event.sequence,
    Event.withdrawn_at,
    Event.changed_at,
    Event.first_seen_at,
)
_CARRIER_COLUMNS = (
    EntrySource.entry_id,
    Source.id,
    Source.name,
    Source.section,
    Source.topics,
    Source.title,
)


def news_candidates(session: Session, *, since: datetime) -> list[compose.NewsCandidate]:
    """Return the non-backlog entries first seen since `since`, with their sources' data;
    a single-document page changed since `since` counts as seen when it changed."""
    changed_page = sa.and_(Entry.single_document.is_(True), Entry.changed_at >= since)
    where = sa.and_(sa.or_(Entry.first_seen_at >= since, changed_page), Entry.backlog.is_(False))
    return _news(session, where, since)


def event_candidates(
    session: Session, *, after: datetime, announced: dict[int, compose.AnnouncedEvent]
) -> list[compose.EventCandidate]:
    """Return the occurrences not over by `after`, plus any an earlier issue announced."""
    not_over = sa.or_(
        sa.and_(Event.all_day.is_(False), sa.func.coalesce(Event.ends_at, Event.starts_at) > after),
        sa.and_(Event.all_day.is_(True), Event.end_date > after.date()),
    )
    return _events(session, not_over, announced)


def plan_items(
    session: Session, keys: Iterable[str], *, rules: compose.Rules
) -> dict[str, compose.PlanItem]:
    """The plan items of `keys` ("entry:12", "event:3") that are still stored, by key."""
    from digest.compose.plan import plan_items as made

    ids: dict[str, set[int]] = {"entry": set(), "event": set()}
    for key in keys:
        kind, _, number = key.partition(":")
        if kind in ids and number.isdigit():
            ids[kind].add(int(number))
    entries, events = ids["entry"], ids["event"]
    news = [n for chunk in _chunks(entries) for n in _news(session, Entry.id.in_(chunk), None)]
    found = [e for chunk in _chunks(events) for e in _events(session, Event.id.in_(chunk), {})]
    return made(news, found, rules=rules)


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _news(
    session: Session, where: sa.ColumnElement[bool], since: datetime | None
) -> list[compose.NewsCandidate]:
    carriers: dict[int, list[Any]] = {}
    query = (
        sa.select(*_CARRIER_COLUMNS)
        .join(Source, Source.id == EntrySource.source_id)
        .join(Entry, Entry.id == EntrySource.entry_id)
        .where(where)
    )
    for entry_id, *source in session.execute(query):
        carriers.setdefault(entry_id, []).append(source)
    found = []
    for row in session.execute(sa.select(*_ENTRY_COLUMNS).where(where)):
        sources = sorted(carriers.get(row.id, ()), key=lambda s: s[0])
        if not sources:
            continue
        seen = _news_since(row, since)
        found.append(
            compose.NewsCandidate(
                id=row.id,
                title=row.title,
                link=row.link,
                summary_html=row.summary_html,
                summary_text=row.summary_text,
                language=row.language,
                published_at=seen if row.single_document else row.published_at,
                first_seen_at=seen,
                section=sources[0][2],
                topics=tuple(dict.fromkeys(t for s in sources for t in s[3])),
                sources=tuple(s[1] for s in sources),
                image_url=row.image_url,
                author=row.author,
                backlog=row.backlog,
                source_title=sources[0][4] or "",
                alternates=tuple(row.alternates or ()),
            )
        )
    return found


def _news_since(row: Any, since: datetime | None) -> datetime:
    """When an entry became news: first seen, or for a changed single page its change."""
    first_seen: datetime = row.first_seen_at
    changed: datetime | None = row.changed_at
    if row.single_document and changed is not None and (since is None or changed >= since):
        return max(first_seen, changed)
    return first_seen


def _events(
    session: Session,
    where: sa.ColumnElement[bool],
    announced: dict[int, compose.AnnouncedEvent],
) -> list[compose.EventCandidate]:
    query = (
        sa.select(
            *_EVENT_COLUMNS,
            Source.name.label("source_name"),
            Source.section.label("source_section"),
            Source.topics.label("source_topics"),
        )
        .join(Source, Source.id == Event.source_id)
        .where(where)
    )
    found = []
    for event in session.execute(query):
        found.append(
            compose.EventCandidate(
                id=event.id,
                key=str(event.id),
                uid=event.uid,
                recurrence_id=event.recurrence_id,
                summary=event.summary,
                description=event.description,
                location=event.location,
                url=event.url,
                language=event.language,
                all_day=event.all_day,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                start_date=event.start_date,
                end_date=event.end_date,
                timezone=event.timezone,
                status=event.status.value,
                section=event.source_section,
                topics=tuple(event.source_topics),
                sources=(event.source_name,),
                organizer=event.organizer,
                sequence=event.sequence,
                withdrawn=event.withdrawn_at is not None,
                announced_as=announced.get(event.id),
                changed_at=max(
                    filter(None, (event.changed_at, event.withdrawn_at, event.first_seen_at))
                ),
            )
        )
    return found
