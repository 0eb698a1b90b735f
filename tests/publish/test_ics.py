"""iCalendar output: add-to-calendar files and `events.ics`, re-read by real calendar code.

Every check parses the bytes back with icalendar and expands them with
recurring-ical-events, the libraries the collector reads other people's calendars with,
so "the training is at 09:30 in Brussels" is asked of the output, not of our own code.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar, Component

from digest.compose import PlanItem
from digest.render.ics import CONTENT_TYPE, event_calendar, event_file

BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone(timedelta(hours=1)))
SENDER = "Cities & Migration Digest <digest@example.org>"
PRODID = "-//Cities & Migration Digest//digest 0.1//EN"
HUB = "https://brussels-migration.example.org"


def event(slug: str, title: str, **values: object) -> PlanItem:
    """Return an event item of the example publication's agenda."""
    defaults: dict[str, object] = {
        "key": f"event:{slug}",
        "kind": "event",
        "title": title,
        "link": f"{HUB}/agenda/{slug}",
        "summary_html": "",
        "summary_text": "",
        "language": "en",
        "foreign": False,
        "uid": f"{slug}@brussels-migration.example.org",
        "organizer": "Brulocalis – Stad en migratie / Villes et migration",
    }
    return PlanItem(**{**defaults, **values})  # type: ignore[arg-type]


CONFERENCE = event(
    "global-conference-cities-migration-mechelen",
    "Globale conferentie over steden en migratie",
    language="nl",
    all_day=True,
    start_date=date(2026, 12, 3),
    end_date=date(2026, 12, 5),
    location="Mechelen, België",
    summary_text="De Belgische regering en de Stad Mechelen zijn gastheer voor een globale"
    " conferentie over steden en migratie, met IOM, VN-Habitat en UCLG.\n\nVoor meer"
    " informatie: decorte@un.org, ipopp@iom.int.",
    organizer="Stad Mechelen",
)
LUNCH = event(
    "networking-lunch-urbact-cities",
    "Networking lunch URBACT cities",
    starts_at=datetime(2026, 12, 5, 11, 30, tzinfo=UTC),
    ends_at=datetime(2026, 12, 5, 13, 0, tzinfo=UTC),
    timezone="Europe/Brussels",
    location="Brulocalis, rue d’Arlon 53, 1040 Brussels",
    status="CANCELLED",
    summary_text="CANCELLED – this lunch will not take place.",
)


def training(day: int, utc_hour: int) -> PlanItem:
    """Return one day of the two-day training, 09:30–17:00 in Brussels."""
    starts = datetime(2027, 3, day, utc_hour, 30, tzinfo=UTC)
    return event(
        "training-academies-inclucities",
        "Training Academies IncluCities",
        key=f"event:7:training-academies-inclucities:{starts:%Y%m%dT%H%M%SZ}",
        starts_at=starts,
        ends_at=starts + timedelta(hours=7, minutes=30),
        timezone="Europe/Brussels",
        recurrence_id=f"{starts:%Y%m%dT%H%M%SZ}",
        location="Hotel Manos, Brussel",
        link=f"{HUB}/nl/agenda/training-academies-inclucities",
    )


# DST starts on Sunday 28 March 2027: 09:30 is 08:30Z on Saturday and 07:30Z on Sunday.
TRAINING = (training(27, 8), training(28, 7))
ITEMS = (CONFERENCE, LUNCH, *TRAINING)


def calendar(items: tuple[PlanItem, ...] = ITEMS) -> bytes:
    """Return `events.ics` for `items`."""
    return event_calendar(
        items,
        now=NOW,
        organizer=SENDER,
        prodid=PRODID,
        name="Cities & Migration Digest — events",
        timezone="Europe/Brussels",
    )


def parsed(data: bytes) -> Calendar:
    """Parse iCalendar bytes with icalendar."""
    return Calendar.from_ical(data)


def vevents(data: bytes) -> list[Component]:
    """Return the VEVENTs of iCalendar bytes, in file order."""
    return list(parsed(data).walk("VEVENT"))


def value(component: Component, name: str) -> Any:
    """Return a property's Python value (date, datetime, str, …)."""
    return component.decoded(name)


def param(component: Component, name: str, parameter: str) -> str | None:
    """Return one parameter of a property, or None."""
    found: str | None = getattr(component.get(name), "params", {}).get(parameter)
    return found


def blocks(data: bytes) -> list[list[str]]:
    """Return the unfolded content lines of each VEVENT, as written."""
    text = re.sub(r"\r\n[ \t]", "", data.decode())
    return [
        block.split("\r\n")
        for block in re.findall(r"BEGIN:VEVENT\r\n(.*?)\r\nEND:VEVENT", text, re.S)
    ]


def names(lines: list[str]) -> list[str]:
    """Return the property names of content lines."""
    return [re.split(r"[;:]", line, maxsplit=1)[0] for line in lines]


@pytest.mark.parametrize(
    "data",
    [calendar(), *(event_file(item, now=NOW, organizer=SENDER, prodid=PRODID) for item in ITEMS)],
    ids=["events.ics", "conference.ics", "lunch.ics", "training-1.ics", "training-2.ics"],
)
def test_every_vevent_has_the_required_properties_once(data: bytes) -> None:
    cal = parsed(data)
    assert cal["METHOD"] == "PUBLISH"
    assert cal["VERSION"] == "2.0" and cal["PRODID"] == PRODID
    assert blocks(data)
    for lines in blocks(data):
        found = names(lines)
        for required in ("DTSTAMP", "DTSTART", "ORGANIZER", "SUMMARY", "UID"):
            assert found.count(required) == 1, (required, lines)
        assert "ATTENDEE" not in found
        assert len(found) == len(set(found)), lines


@pytest.mark.parametrize(
    "data", [calendar(), event_file(LUNCH, now=NOW, organizer=SENDER, prodid=PRODID)]
)
def test_lines_end_in_crlf_and_are_folded(data: bytes) -> None:
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))  # RFC 5545 §3.1: octets
    assert any(line.startswith(b" ") for line in data.split(b"\r\n"))  # something was folded


def test_dtstamp_is_now_in_utc() -> None:
    stamps = {value(component, "DTSTAMP") for component in vevents(calendar())}
    assert stamps == {datetime(2026, 11, 23, 7, 0, tzinfo=UTC)}
    assert all("DTSTAMP:20261123T070000Z" in lines for lines in blocks(calendar()))


def test_timed_events_use_their_own_tzid_with_a_matching_vtimezone() -> None:
    data = event_file(TRAINING[0], now=NOW, organizer=SENDER, prodid=PRODID)
    cal = parsed(data)
    (component,) = cal.walk("VEVENT")
    assert param(component, "DTSTART", "TZID") == "Europe/Brussels"
    assert value(component, "DTSTART") == datetime(2027, 3, 27, 9, 30, tzinfo=BRUSSELS)
    assert value(component, "DTEND") == datetime(2027, 3, 27, 17, 0, tzinfo=BRUSSELS)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Brussels"]
    assert cal.get_missing_tzids() == set()


def test_an_event_without_time_zone_is_written_in_utc() -> None:
    online = dataclasses.replace(LUNCH, timezone=None, status="CONFIRMED")
    data = event_file(online, now=NOW, organizer=SENDER, prodid=PRODID)
    assert b"DTSTART:20261205T113000Z\r\n" in data
    assert b"VTIMEZONE" not in data and b"TZID" not in data


def test_all_day_events_are_dates_with_an_exclusive_end() -> None:
    data = event_file(CONFERENCE, now=NOW, organizer=SENDER, prodid=PRODID)
    (component,) = vevents(data)
    assert value(component, "DTSTART") == date(2026, 12, 3)
    assert value(component, "DTEND") == date(2026, 12, 5)  # the 3rd and the 4th
    assert not isinstance(value(component, "DTSTART"), datetime)
    assert b"DTSTART;VALUE=DATE:20261203\r\n" in data
    assert b"DTEND;VALUE=DATE:20261205\r\n" in data
    assert b"VTIMEZONE" not in data  # no time ever went through a zone


def test_an_all_day_event_without_end_lasts_one_day() -> None:
    one_day = dataclasses.replace(CONFERENCE, end_date=None)
    (component,) = vevents(event_file(one_day, now=NOW, organizer=SENDER, prodid=PRODID))
    assert value(component, "DTEND") == date(2026, 12, 4)


def test_occurrences_keep_the_series_uid_and_carry_recurrence_id() -> None:
    trainings = [c for c in vevents(calendar()) if "training" in str(c["UID"])]
    assert {str(c["UID"]) for c in trainings} == {
        "training-academies-inclucities@brussels-migration.example.org"
    }
    assert [value(c, "RECURRENCE-ID") for c in trainings] == [
        datetime(2027, 3, 27, 9, 30, tzinfo=BRUSSELS),
        datetime(2027, 3, 28, 9, 30, tzinfo=BRUSSELS),
    ]
    assert all(param(c, "RECURRENCE-ID", "TZID") == "Europe/Brussels" for c in trainings)
    single = [c for c in vevents(calendar()) if "training" not in str(c["UID"])]
    assert all("RECURRENCE-ID" not in c for c in single)


def test_an_all_day_occurrence_has_a_date_recurrence_id() -> None:
    second_day = dataclasses.replace(CONFERENCE, recurrence_id="20261204")
    (component,) = vevents(event_file(second_day, now=NOW, organizer=SENDER, prodid=PRODID))
    assert value(component, "RECURRENCE-ID") == date(2026, 12, 4)


def test_cancelled_events_stay_cancelled() -> None:
    (lunch,) = [c for c in vevents(calendar()) if c["SUMMARY"] == LUNCH.title]
    assert lunch["STATUS"] == "CANCELLED"
    (alone,) = vevents(event_file(LUNCH, now=NOW, organizer=SENDER, prodid=PRODID))
    assert alone["STATUS"] == "CANCELLED"
    window = recurring_ical_events.of(parsed(calendar())).between(
        date(2026, 12, 5), date(2026, 12, 6)
    )
    assert [(o["SUMMARY"], o["STATUS"]) for o in window] == [(LUNCH.title, "CANCELLED")]


def test_the_training_keeps_0930_in_brussels_across_the_dst_change() -> None:
    found = recurring_ical_events.of(parsed(calendar())).between(
        datetime(2027, 3, 27, tzinfo=BRUSSELS), datetime(2027, 3, 29, tzinfo=BRUSSELS)
    )
    starts = sorted(value(occurrence, "DTSTART") for occurrence in found)
    assert [start.astimezone(BRUSSELS).strftime("%a %H:%M") for start in starts] == [
        "Sat 09:30",
        "Sun 09:30",
    ]
    assert [start.astimezone(UTC).hour for start in starts] == [8, 7]


def test_the_calendar_finds_every_event_in_the_window() -> None:
    found = recurring_ical_events.of(parsed(calendar())).between(
        date(2026, 11, 23), date(2027, 4, 1)
    )
    assert sorted(str(o["SUMMARY"]) for o in found) == sorted(item.title for item in ITEMS)
    (conference,) = [o for o in found if o["SUMMARY"] == CONFERENCE.title]
    assert (value(conference, "DTSTART"), value(conference, "DTEND")) == (
        date(2026, 12, 3),
        date(2026, 12, 5),
    )


def test_the_feed_names_itself_and_suggests_a_refresh() -> None:
    data = calendar()
    cal = parsed(data)
    assert cal["X-WR-CALNAME"] == "Cities & Migration Digest — events"
    assert cal["X-WR-TIMEZONE"] == "Europe/Brussels"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT12H\r\n" in data
    assert b"X-PUBLISHED-TTL:PT12H\r\n" in data


def test_the_feed_is_in_time_order_without_duplicates_or_news() -> None:
    news = dataclasses.replace(CONFERENCE, key="entry:3", kind="entry", uid=None)
    data = calendar((TRAINING[1], LUNCH, news, CONFERENCE, TRAINING[0], LUNCH))
    assert [str(c["SUMMARY"]) for c in vevents(data)] == [
        CONFERENCE.title,
        LUNCH.title,
        TRAINING[0].title,
        TRAINING[1].title,
    ]
    assert data == calendar()  # the same events give the same bytes


def test_organizer_is_the_events_address_or_the_publication() -> None:
    own = dataclasses.replace(
        CONFERENCE, organizer="Stad Mechelen <conferentie@mechelen.example.org>"
    )
    mailto = dataclasses.replace(CONFERENCE, organizer="mailto:conferentie@mechelen.example.org")
    cases = {
        CONFERENCE: ("mailto:digest@example.org", "Cities & Migration Digest"),
        own: ("mailto:conferentie@mechelen.example.org", "Stad Mechelen"),
        mailto: ("mailto:conferentie@mechelen.example.org", None),
    }
    for item, (address, name) in cases.items():
        (component,) = vevents(event_file(item, now=NOW, organizer=SENDER, prodid=PRODID))
        assert str(component["ORGANIZER"]) == address
        assert param(component, "ORGANIZER", "CN") == name


def test_text_properties_survive_the_round_trip() -> None:
    (component,) = vevents(event_file(CONFERENCE, now=NOW, organizer=SENDER, prodid=PRODID))
    assert component["SUMMARY"] == CONFERENCE.title
    assert param(component, "SUMMARY", "LANGUAGE") == "nl"
    assert component["DESCRIPTION"] == CONFERENCE.summary_text
    assert component["LOCATION"] == "Mechelen, België"
    assert component["URL"] == CONFERENCE.link


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (dataclasses.replace(CONFERENCE, kind="entry"), "not an event"),
        (dataclasses.replace(CONFERENCE, uid=None), "no UID"),
        (dataclasses.replace(CONFERENCE, start_date=None), "no start date"),
        (dataclasses.replace(LUNCH, starts_at=None), "no start time"),
        (dataclasses.replace(LUNCH, recurrence_id="2026-12-05"), "recurrence_id"),
        (dataclasses.replace(LUNCH, starts_at=datetime(2026, 12, 5, 12, 30)), "aware"),
    ],
)
def test_impossible_items_are_refused(item: PlanItem, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event_file(item, now=NOW, organizer=SENDER, prodid=PRODID)


def test_an_organizer_without_address_is_refused() -> None:
    with pytest.raises(ValueError, match="organizer"):
        event_file(CONFERENCE, now=NOW, organizer="Cities & Migration Digest", prodid=PRODID)


def test_content_type_announces_publish() -> None:
    assert CONTENT_TYPE == "text/calendar; charset=UTF-8; method=PUBLISH"
