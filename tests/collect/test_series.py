"""Recurring events kept as their calendar defines them: collected, stored, published whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import recurring_ical_events
import sqlalchemy as sa
from icalendar import Calendar
from sqlalchemy.orm import Session, sessionmaker

from digest.collect.calendars import parse_calendar
from digest.compose import PlanItem
from digest.config import SourceSettings
from digest.render.ics import event_calendar
from digest.store import series, sources
from digest.store.models import EventSeries, Source

GOLDEN = Path(__file__).parent / "golden" / "calendars"
SENDER = "Cities & Migration Digest <digest@example.org>"
CUSTOM_ZONE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Outlook//EN
BEGIN:VTIMEZONE
TZID:Project office time
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly-call@project.example
DTSTAMP:20261101T000000Z
DTSTART;TZID=Project office time:20261102T110000
DTEND;TZID=Project office time:20261102T120000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Weekly call
DESCRIPTION:<p>Agenda <b>first</b></p>
ATTENDEE;CN=Someone:mailto:someone@example.org
ORGANIZER;CN=Project office:mailto:office@project.example
END:VEVENT
END:VCALENDAR
"""


def parse(body: bytes, start: datetime, end: datetime) -> Calendar:
    parsed = parse_calendar(
        body, url="https://agenda.example/x.ics", window_start=start, window_end=end
    )
    (one,) = parsed.series
    return Calendar.from_ical(one.ics.encode("utf-8"))


def test_a_series_keeps_its_rule_exdates_and_overrides_under_one_uid() -> None:
    body = (GOLDEN / "training-academies.ics").read_bytes()
    parsed = parse_calendar(
        body,
        url="https://agenda.example/t.ics",
        window_start=datetime(2022, 12, 1, tzinfo=UTC),
        window_end=datetime(2022, 12, 13, tzinfo=UTC),
    )
    (defined,) = parsed.series
    assert defined.uid == "training-academies-inclucities-2022@stad-en-migratie.example"
    stored = Calendar.from_ical(defined.ics.encode("utf-8"))
    events = stored.walk("VEVENT")
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    overrides = [e for e in events if "RECURRENCE-ID" in e]
    assert len(masters) == 1 and "RRULE" in masters[0] and "EXDATE" in masters[0]
    assert len(overrides) == 2
    assert {str(e["UID"]) for e in events} == {defined.uid}
    assert sorted(str(e.get("STATUS", "CONFIRMED")) for e in overrides) == [
        "CANCELLED",
        "CONFIRMED",
    ]
    for event in events:
        assert "ATTENDEE" not in event and "VALARM" not in [c.name for c in event.subcomponents]


def test_single_events_define_no_series() -> None:
    body = (GOLDEN / "mechelen-all-day.ics").read_bytes()
    parsed = parse_calendar(
        body,
        url="https://agenda.example/m.ics",
        window_start=datetime(2016, 1, 1, tzinfo=UTC),
        window_end=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert parsed.events and parsed.series == ()


def test_a_custom_time_zone_travels_with_its_series_into_events_ics() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    parsed = parse_calendar(
        CUSTOM_ZONE.encode(),
        url="https://agenda.example/c.ics",
        window_start=start,
        window_end=start + timedelta(days=60),
    )
    (defined,) = parsed.series
    # A fixed-offset zone that names no place becomes UTC (exact, as its offset never
    # changes): Google's reading of X-WR-TIMEZONE would lose a custom zone.
    assert "DTSTART:20261102T080000Z" in defined.ics and "VTIMEZONE" not in defined.ics
    assert "<b>" not in defined.ics  # texts cleaned as an occurrence's are
    occurrence = parsed.events[0]
    item = PlanItem(
        key="event:1",
        kind="event",
        title=occurrence.summary,
        link=None,
        summary_html="",
        summary_text="",
        language="en",
        foreign=False,
        starts_at=occurrence.starts_at,
        ends_at=occurrence.ends_at,
        uid=occurrence.uid,
        recurrence_id=occurrence.recurrence_id,
    )
    changed = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    data = event_calendar(
        [item],
        now=changed,
        organizer=SENDER,
        prodid="-//test//EN",
        name="Test",
        timezone="Europe/Brussels",
        series={occurrence.uid: series.SeriesSource(occurrence.uid, defined.ics, changed)},
    )
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    assert str(event["RRULE"].to_ical().decode()) == "FREQ=WEEKLY;COUNT=4"
    assert event["DTSTAMP"].dt == changed
    assert "office@project.example" in str(event["ORGANIZER"])
    starts = [
        e["DTSTART"].dt.astimezone(UTC)
        for e in recurring_ical_events.of(calendar).between(start, start + timedelta(days=60))
    ]
    assert starts == [datetime(2026, 11, 2 + 7 * n, 8, 0, tzinfo=UTC) for n in range(4)]


def test_stored_series_change_only_when_their_definition_does(
    factory: sessionmaker[Session],
) -> None:
    first = datetime(2026, 11, 1, tzinfo=UTC)
    body = CUSTOM_ZONE.encode()
    defined = parse_calendar(
        body, url="x", window_start=first, window_end=first + timedelta(days=60)
    ).series
    with factory() as session, session.begin():
        item = SourceSettings(name="agenda", url="x", kind="calendar")
        source = sources.add(session, item, default_language="en", now=first)
        assert series.record(session, source, defined, now=first) == 1
    later = first + timedelta(days=1)
    with factory() as session, session.begin():
        source = session.scalars(sa.select(Source)).one()
        assert series.record(session, source, defined, now=later) == 0
    with factory() as session:
        (kept,) = series.by_uid(session).values()
        assert kept.changed_at == first  # unchanged: events.ics keeps its bytes
    moved = parse_calendar(
        body.replace(b"COUNT=4", b"COUNT=5"),
        url="x",
        window_start=first,
        window_end=first + timedelta(days=60),
    ).series
    with factory() as session, session.begin():
        source = session.scalars(sa.select(Source)).one()
        assert series.record(session, source, moved, now=later) == 1
    with factory() as session:
        (kept,) = series.by_uid(session).values()
        assert kept.changed_at == later and "COUNT=5" in kept.ics
    with factory() as session, session.begin():
        source = session.scalars(sa.select(Source)).one()
        series.record(session, source, (), now=later)
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(EventSeries)) == 0


DST_ZONE = CUSTOM_ZONE.replace(
    """BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
END:STANDARD""",
    """BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0230
TZOFFSETTO:+0130
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0130
TZOFFSETTO:+0230
END:DAYLIGHT""",
).replace("Project office time", "Bureau time")


def test_a_custom_zone_with_daylight_saving_and_no_place_keeps_its_vtimezone() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    parsed = parse_calendar(
        DST_ZONE.encode(), url="x", window_start=start, window_end=start + timedelta(days=60)
    )
    (defined,) = parsed.series
    assert "TZID:Bureau time" in defined.ics and "DTSTART;TZID=Bureau time:" in defined.ics
    stored = Calendar.from_ical(defined.ics.encode("utf-8"))
    starts = [
        e["DTSTART"].dt.astimezone(UTC)
        for e in recurring_ical_events.of(stored).between(start, start + timedelta(days=60))
    ]
    assert starts == [e.starts_at for e in parsed.events]
    assert starts[0] == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
