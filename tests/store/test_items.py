"""Storing entries and events: dedupe across sources, guid churn, backlog, event changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest import collect
from digest.store import items
from digest.store.models import (
    ChangeKind,
    Entry,
    Event,
    EventStatus,
    Source,
    SourceKind,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=14)


def source(session: Session, name: str, kind: SourceKind = SourceKind.FEED) -> Source:
    made = Source(
        name=name,
        url=f"https://{name}.example.org/feed",
        kind=kind,
        language="en",
        topics=["governance"],
        created_at=NOW,
    )
    session.add(made)
    session.flush()
    return made


def entry(
    title: str,
    link: str | None,
    guid: str | None,
    days_ago: int | None = 1,
    text: str = "Cities develop their activities with local stakeholders.",
) -> collect.Entry:
    published = NOW - timedelta(days=days_ago) if days_ago is not None else None
    return collect.Entry(
        title=title,
        link=link,
        guid=guid,
        summary_html=f"<p>{text}</p>",
        summary_text=text,
        published_at=published,
    )


def store(
    session: Session,
    src: Source,
    batch: list[collect.Entry],
    *,
    first: bool = False,
    now: datetime = NOW,
) -> items.Counts:
    return items.record_entries(
        session, src, batch, now=now, first_collection=first, news_window=WINDOW
    )


def count(session: Session, model: type[Entry] | type[Event]) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_same_item_from_two_sources_is_one_entry(session: Session) -> None:
    a, b = source(session, "governance"), source(session, "iom")
    link = "https://brussels-migration.example.org/node/123"
    store(
        session,
        a,
        [entry("URBACT Networks", link, "123 at https://brussels-migration.example.org")],
    )
    counts = store(session, b, [entry("URBACT Networks", link + "#comments", "urn:x:other-id")])
    assert (counts.new, counts.unchanged) == (0, 1)
    assert count(session, Entry) == 1
    stored = session.scalars(sa.select(Entry)).one()
    assert {s.source.name for s in stored.sources} == {"governance", "iom"}


def test_guids_that_change_every_fetch_do_not_duplicate(session: Session) -> None:
    src = source(session, "churn")
    link = "https://example.org/news/actiris-phase-2"
    for fetch in range(5):
        store(
            session,
            src,
            [
                entry(
                    "Actiris Coordination Platform Project: Phase 2",
                    link,
                    f"urn:uuid:fresh-{fetch}",
                )
            ],
            now=NOW + timedelta(hours=fetch),
        )
    assert count(session, Entry) == 1


def test_linkless_items_with_churning_guids_match_by_fingerprint(session: Session) -> None:
    src = source(session, "nolinks")
    for fetch in range(3):
        store(session, src, [entry("Belgian Resettlement Programme", None, f"id-{fetch}")])
    assert count(session, Entry) == 1


def test_bare_guids_are_scoped_to_their_source(session: Session) -> None:
    a, b = source(session, "a"), source(session, "b")
    store(session, a, [entry("Global Skill Partnerships", "https://a.example.org/1", "1")])
    store(session, b, [entry("EU Working Party", "https://b.example.org/1", "1")])
    assert count(session, Entry) == 2


def test_changed_content_is_recorded(session: Session) -> None:
    src = source(session, "a")
    store(session, src, [entry("URBACT Networks", "https://a.example.org/u", "u:1")])
    later = NOW + timedelta(hours=1)
    counts = store(
        session,
        src,
        [entry("URBACT Networks (updated)", "https://a.example.org/u", "u:1")],
        now=later,
    )
    assert (counts.new, counts.changed) == (0, 1)
    stored = session.scalars(sa.select(Entry)).one()
    assert stored.title == "URBACT Networks (updated)"
    assert stored.changed_at == later and stored.first_seen_at == NOW


def test_first_collection_keeps_history_out_of_the_news(session: Session) -> None:
    src = source(session, "new-source")
    batch = [
        entry(f"Old item {n}", f"https://a.example.org/{n}", f"u:{n}", days_ago=400 + n)
        for n in range(50)
    ]
    batch += [
        entry("Fresh", "https://a.example.org/fresh", "u:fresh", days_ago=2),
        entry("Undated", "https://a.example.org/undated", "u:undated", days_ago=None),
    ]
    store(session, src, batch, first=True)
    news = session.scalars(sa.select(Entry.title).where(Entry.backlog.is_(False))).all()
    assert news == ["Fresh"]
    undated = session.scalars(sa.select(Entry).where(Entry.title == "Undated")).one()
    assert undated.published_at == NOW and undated.dated_by_feed is False
    # Later fetches announce new items normally, dated or not.
    store(
        session,
        src,
        [entry("Next week", "https://a.example.org/next", "u:next", None)],
        now=NOW + timedelta(days=7),
    )
    assert (
        session.scalars(sa.select(Entry).where(Entry.title == "Next week")).one().backlog is False
    )


def test_tracking_parameters_and_fragments_do_not_split_entries() -> None:
    assert items.normalize_link("HTTPS://Example.org/a?utm_source=x&id=3#top") == (
        "https://example.org/a?id=3"
    )
    assert items.normalize_link("javascript:alert(1)") is None


def occurrence(
    uid: str,
    start: datetime,
    *,
    location: str = "Mechelen",
    status: str = "CONFIRMED",
    sequence: int = 0,
    recurrence_id: str = "",
) -> collect.Event:
    return collect.Event(
        uid=uid,
        recurrence_id=recurrence_id,
        summary="Global conference on cities and migration",
        all_day=False,
        starts_at=start,
        ends_at=start + timedelta(hours=7),
        timezone="Europe/Brussels",
        location=location,
        status=status,
        sequence=sequence,
    )


def record(
    session: Session, src: Source, events: list[collect.Event], now: datetime = NOW
) -> items.Counts:
    return items.record_events(
        session, src, events, now=now, window=(now - timedelta(days=7), now + timedelta(days=365))
    )


def test_event_changes_are_recorded(session: Session) -> None:
    src = source(session, "agenda", SourceKind.CALENDAR)
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    record(session, src, [occurrence("conf@x", start)])
    later = NOW + timedelta(hours=1)
    counts = record(
        session,
        src,
        [occurrence("conf@x", start + timedelta(days=1), location="Antwerpen", sequence=1)],
        now=later,
    )
    assert counts.changed == 1
    event = session.scalars(sa.select(Event)).one()
    assert [c.kind for c in event.changes] == [ChangeKind.RESCHEDULED, ChangeKind.MOVED]
    assert event.changes[1].old_value == "Mechelen" and event.changes[1].new_value == "Antwerpen"
    record(
        session,
        src,
        [
            occurrence(
                "conf@x",
                start + timedelta(days=1),
                location="Antwerpen",
                status="CANCELLED",
                sequence=2,
            )
        ],
        now=later,
    )
    assert event.status is EventStatus.CANCELLED
    assert event.changes[-1].kind is ChangeKind.CANCELLED


def test_lower_sequence_never_overwrites(session: Session) -> None:
    src = source(session, "agenda", SourceKind.CALENDAR)
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    record(session, src, [occurrence("conf@x", start, sequence=3, location="Brussels")])
    counts = record(session, src, [occurrence("conf@x", start, sequence=1, location="Gent")])
    assert counts.unchanged == 1
    assert session.scalars(sa.select(Event)).one().location == "Brussels"


def test_vanished_occurrences_are_withdrawn_and_can_return(session: Session) -> None:
    src = source(session, "agenda", SourceKind.CALENDAR)
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    record(session, src, [occurrence("a@x", start), occurrence("b@x", start)])
    record(session, src, [occurrence("a@x", start)], now=NOW + timedelta(hours=1))
    gone = session.scalars(sa.select(Event).where(Event.uid == "b@x")).one()
    assert gone.withdrawn_at == NOW + timedelta(hours=1)
    record(
        session,
        src,
        [occurrence("a@x", start), occurrence("b@x", start)],
        now=NOW + timedelta(hours=2),
    )
    assert gone.withdrawn_at is None
    assert gone.changes[-1].kind is ChangeKind.REINSTATED


def test_all_day_events_keep_their_dates(session: Session) -> None:
    src = source(session, "agenda", SourceKind.CALENDAR)
    conf = collect.Event(
        uid="mechelen@x",
        recurrence_id="",
        summary="Globale conferentie",
        all_day=True,
        start_date=date(2026, 12, 3),
        end_date=date(2026, 12, 5),
    )
    record(session, src, [conf])
    stored = session.scalars(sa.select(Event)).one()
    assert (stored.start_date, stored.end_date, stored.starts_at) == (
        date(2026, 12, 3),
        date(2026, 12, 5),
        None,
    )
    assert stored.language == "en"
