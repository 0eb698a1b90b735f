"""Calendars: .ics documents become one Event per occurrence, with exact times and identities."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.collect import Event, Parsed
from digest.collect.calendars import MAX_OCCURRENCES, parse_calendar
from digest.errors import ParseError

GOLDEN = Path(__file__).resolve().parent / "golden" / "calendars"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples/publication/calendar/events.ics.template"
BRUSSELS = ZoneInfo("Europe/Brussels")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Return an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def parse(name: str, start: datetime, end: datetime) -> Parsed:
    """Parse a golden calendar for the window [start, end)."""
    body = (GOLDEN / name).read_bytes()
    return parse_calendar(
        body, url=f"https://agenda.example/{name}", window_start=start, window_end=end
    )


def starts(parsed: Parsed) -> list[tuple[str, datetime | None]]:
    """Return (recurrence_id, starts_at) of every event, in order."""
    return [(event.recurrence_id, event.starts_at) for event in parsed.events]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Last Sunday of October 2026 is the 25th: 10:00 CEST is 08:00Z, 10:00 CET is 09:00Z.
        (
            utc(2026, 10, 12),
            utc(2026, 11, 3),
            [utc(2026, 10, 12, 8), utc(2026, 10, 19, 8), utc(2026, 10, 26, 9), utc(2026, 11, 2, 9)],
        ),
        # Last Sunday of March 2027 is the 28th: 09:00Z before, 08:00Z after.
        (
            utc(2027, 3, 15),
            utc(2027, 4, 6),
            [utc(2027, 3, 15, 9), utc(2027, 3, 22, 9), utc(2027, 3, 29, 8), utc(2027, 4, 5, 8)],
        ),
    ],
)
def test_weekly_event_keeps_its_wall_clock_across_dst(
    start: datetime, end: datetime, expected: list[datetime]
) -> None:
    parsed = parse("weekly-dst.ics", start, end)
    assert starts(parsed) == [(moment.strftime("%Y%m%dT%H%M%SZ"), moment) for moment in expected]
    assert {e.starts_at.astimezone(BRUSSELS).time() for e in parsed.events if e.starts_at} == {
        time(10, 0)
    }
    assert [e.ends_at for e in parsed.events] == [
        m + timedelta(hours=1, minutes=30) for m in expected
    ]
    assert {e.timezone for e in parsed.events} == {"Europe/Brussels"}
    assert parsed.title == "IncluCities buddywerking"
    assert parsed.warnings == ()


def test_two_day_all_day_conference_stays_dates_with_exclusive_end() -> None:
    parsed = parse("mechelen-all-day.ics", utc(2017, 11, 1), utc(2017, 12, 1))
    assert parsed.events == (
        Event(
            uid="conferentie-steden-migratie-2017@stad-en-migratie.example",
            recurrence_id="",
            summary="Globale conferentie over steden en migratie",
            all_day=True,
            start_date=date(2017, 11, 16),
            end_date=date(2017, 11, 18),
            description=(
                "De Belgische regering en de Stad Mechelen zijn gastheer voor een globale "
                "conferentie over steden en migratie, met IOM, VN-Habitat en UCLG als "
                "institutionele partners."
            ),
            location="Mechelen",
            url="https://stad-en-migratie.example/nieuws/globale-conferentie-mechelen",
            last_modified=utc(2017, 10, 10, 14, 30),
            language="nl",
            organizer="Stad Mechelen <info@mechelen.example>",
            categories=("Migratie", "Conferentie"),
        ),
    )
    assert parsed.title == "Stad en migratie – agenda"


def test_one_day_all_day_event_without_dtend_ends_the_next_day() -> None:
    # The window starts at 23:00Z on the 15th: a date pushed through UTC+1 would shift.
    parsed = parse("mechelen-all-day.ics", utc(2022, 12, 15, 23), utc(2022, 12, 31))
    (event,) = parsed.events
    assert (event.all_day, event.start_date, event.end_date) == (
        True,
        date(2022, 12, 15),
        date(2022, 12, 16),
    )
    assert (event.starts_at, event.ends_at, event.timezone) == (None, None, None)
    assert event.summary == (
        "Buddy's voor inclusieve steden en gemeenten: lessen uit lokale & Europese projecten "
        "– Inspiratiedag"
    )
    assert (event.language, event.organizer, event.url) == ("nl", "inclucities@vvsg.example", None)
    assert event.last_modified == utc(2022, 11, 20, 9)


def test_recurrence_applies_exdate_and_the_moved_override() -> None:
    parsed = parse("training-academies.ics", utc(2022, 12, 1), utc(2022, 12, 13))
    got = [(e.recurrence_id, e.starts_at, e.ends_at, e.location, e.status) for e in parsed.events]
    assert got == [
        # 6 December is an EXDATE: gone.
        (
            "20221207T083000Z",
            utc(2022, 12, 7, 8, 30),
            utc(2022, 12, 7, 16),
            "Hotel Manos, Brussel",
            "CONFIRMED",
        ),
        # Moved from 09:30 to 10:00 and to another place; it keeps the slot's identity.
        (
            "20221208T083000Z",
            utc(2022, 12, 8, 9),
            utc(2022, 12, 8, 15),
            "Stadhuis van Schaarbeek",
            "CONFIRMED",
        ),
        (
            "20221209T083000Z",
            utc(2022, 12, 9, 8, 30),
            utc(2022, 12, 9, 16),
            "Hotel Manos, Brussel",
            "CANCELLED",
        ),
    ]
    assert {e.uid for e in parsed.events} == {
        "training-academies-inclucities-2022@stad-en-migratie.example"
    }
    assert parsed.events[1].last_modified == utc(2022, 12, 1, 9)


def test_override_has_the_identity_of_the_occurrence_it_replaces() -> None:
    text = (GOLDEN / "training-academies.ics").read_text(encoding="utf-8")
    # The same calendar before the organizer moved and cancelled days: no overrides.
    overrides = re.compile(r"BEGIN:VEVENT\nUID:training[^\n]*\nRECURRENCE-ID.*?END:VEVENT\n", re.S)
    before = overrides.sub("", text).encode("utf-8")
    plain = parse_calendar(
        before,
        url="https://agenda.example/a.ics",
        window_start=utc(2022, 12, 8),
        window_end=utc(2022, 12, 9),
    )
    moved = parse("training-academies.ics", utc(2022, 12, 8), utc(2022, 12, 9))
    uid = "training-academies-inclucities-2022@stad-en-migratie.example"
    assert [(e.uid, e.recurrence_id, e.starts_at) for e in plain.events] == [
        (uid, "20221208T083000Z", utc(2022, 12, 8, 8, 30))
    ]
    assert [(e.uid, e.recurrence_id, e.starts_at) for e in moved.events] == [
        (uid, "20221208T083000Z", utc(2022, 12, 8, 9))
    ]


def test_cancelled_single_event_and_cancelled_occurrence_are_kept_as_cancelled() -> None:
    parsed = parse("training-academies.ics", utc(2022, 12, 9), utc(2022, 12, 31))
    assert [(e.uid, e.recurrence_id, e.status, e.sequence) for e in parsed.events] == [
        (
            "training-academies-inclucities-2022@stad-en-migratie.example",
            "20221209T083000Z",
            "CANCELLED",
            2,
        ),
        ("slotmoment-inclucities-2022@stad-en-migratie.example", "", "CANCELLED", 1),
    ]
    slotmoment = parsed.events[1]
    assert (slotmoment.starts_at, slotmoment.ends_at) == (
        utc(2022, 12, 14, 17),
        utc(2022, 12, 14, 19),
    )


def test_google_export_utc_and_floating_times_get_the_calendar_time_zone() -> None:
    parsed = parse("google-export.ics", utc(2022, 12, 1), utc(2023, 1, 1))
    assert [(e.uid, e.starts_at, e.ends_at, e.timezone) for e in parsed.events] == [
        (
            "2k8c0training7dec@google.com",
            utc(2022, 12, 7, 8, 30),
            utc(2022, 12, 7, 16),
            "Europe/Brussels",
        ),
        # DTSTART:20221208T093000 is floating: X-WR-TIMEZONE makes it 09:30 in Brussels.
        (
            "2k8c0training8dec@google.com",
            utc(2022, 12, 8, 8, 30),
            utc(2022, 12, 8, 16),
            "Europe/Brussels",
        ),
    ]
    first = parsed.events[0]
    assert first.description == (
        "Training Academies IncluCities\nDag 1: de projectresultaten\nProgramma & sprekers"
    )
    assert (first.location, first.language, first.last_modified) == (
        "Hotel Manos, Brussel",
        None,
        utc(2022, 11, 30, 10, 15),
    )
    assert parsed.title == "Stad en migratie"
    assert parsed.warnings == ()


def test_google_export_weekly_rule_written_in_utc_follows_brussels_across_dst() -> None:
    parsed = parse("google-export.ics", utc(2026, 10, 1), utc(2026, 12, 1))
    # 08:00Z is 10:00 CEST; after 25 October the event stays at 10:00 local, 09:00Z.
    assert starts(parsed) == [
        ("20261019T080000Z", utc(2026, 10, 19, 8)),
        ("20261026T090000Z", utc(2026, 10, 26, 9)),
        ("20261102T090000Z", utc(2026, 11, 2, 9)),
    ]


def test_vtimezone_with_custom_tzid_gives_right_instants_and_iana_name_when_provable() -> None:
    parsed = parse("custom-vtimezone.ics", utc(2011, 6, 1), utc(2011, 7, 1))
    conference, call = parsed.events
    assert conference.summary == (
        "Final Conference of the Joint IOM, UNHCR and ICMC Project on Practical Cooperation "
        "in EU Resettlement"
    )
    # Monday 6 June 2011 09:30 to Tuesday 17:30, summer time (UTC+2).
    assert (conference.starts_at, conference.ends_at) == (
        utc(2011, 6, 6, 7, 30),
        utc(2011, 6, 7, 15, 30),
    )
    assert conference.timezone == "Europe/Brussels"  # the city named in the Outlook TZID
    # "Project office time" is a fixed UTC+3 clock that names no place: no IANA name.
    assert (call.starts_at, call.ends_at, call.timezone) == (
        utc(2011, 6, 9, 8),
        utc(2011, 6, 9, 9),
        None,
    )
    assert parsed.title == "IOM Belgium – events"


def test_duplicate_uid_keeps_higher_sequence_then_later_last_modified() -> None:
    parsed = parse("duplicates.ics", utc(2017, 1, 1), utc(2023, 1, 1))
    conference, inspiratiedag = parsed.events
    # Same SEQUENCE 2 twice: the later LAST-MODIFIED (2 November) wins, whatever the order.
    assert (conference.location, conference.last_modified) == (
        "Stadhuis Mechelen",
        utc(2017, 11, 2, 10),
    )
    # SEQUENCE 1 (moved to the afternoon) beats SEQUENCE 0, though its DTSTAMP is older.
    assert (inspiratiedag.sequence, inspiratiedag.starts_at, inspiratiedag.location) == (
        1,
        utc(2022, 12, 15, 12),
        "Mechelen",
    )


def test_unbounded_rule_is_capped_with_a_warning() -> None:
    parsed = parse("unbounded.ics", utc(2026, 10, 12), utc(2026, 11, 9))
    ticker = [e for e in parsed.events if e.uid == "livestream-ticker@stad-en-migratie.example"]
    assert len(ticker) == MAX_OCCURRENCES == 1_000
    assert (ticker[0].starts_at, ticker[-1].starts_at) == (
        utc(2026, 10, 12),
        utc(2026, 10, 12, 16, 39),
    )
    assert len({e.recurrence_id for e in ticker}) == 1_000
    others = [e.uid for e in parsed.events if e not in ticker]
    assert others == ["buddy-overleg-2026-10-12@stad-en-migratie.example"]
    assert (
        "The event 'Livestream – globale conferentie over steden en migratie' (UID "
        "'livestream-ticker@stad-en-migratie.example') repeats more than 1,000 times in the "
        "window; only the first 1,000 were kept."
    ) in parsed.warnings


def test_dense_rule_starting_long_before_the_window_is_skipped_with_a_warning() -> None:
    parsed = parse("unbounded.ics", utc(2026, 10, 12), utc(2026, 11, 9))
    assert "livestream-archive@stad-en-migratie.example" not in {e.uid for e in parsed.events}
    assert (
        "Skipped the event 'Livestream-archief sinds de conferentie van 2017' (UID "
        "'livestream-archive@stad-en-migratie.example'): its RRULE (FREQ=MINUTELY) would take "
        "4,722,720 steps from 2017-11-16T08:00:00+00:00 to the window (at most 100,000)."
    ) in parsed.warnings
    assert len(parsed.warnings) == 2


def test_html_page_is_a_parse_error_that_says_what_to_do() -> None:
    body = (GOLDEN / "not-a-calendar.html").read_bytes()
    with pytest.raises(ParseError) as raised:
        parse_calendar(
            body,
            url="https://stad-en-migratie.example/agenda",
            window_start=utc(2022, 12, 1),
            window_end=utc(2023, 1, 1),
        )
    assert str(raised.value) == (
        "https://stad-en-migratie.example/agenda is not an iCalendar file but an HTML page; "
        "point the source at the calendar's .ics URL (its 'export', 'subscribe' or 'iCal' link)"
    )


def test_empty_body_is_a_parse_error() -> None:
    with pytest.raises(
        ParseError,
        match=r"^https://a\.example/x\.ics is not an iCalendar file but an empty document;",
    ):
        parse_calendar(
            b"",
            url="https://a.example/x.ics",
            window_start=utc(2022, 1, 1),
            window_end=utc(2023, 1, 1),
        )


def test_malformed_vevents_are_skipped_and_the_others_parsed() -> None:
    parsed = parse("malformed.ics", utc(2022, 12, 1), utc(2023, 1, 1))
    assert [(e.uid, e.starts_at, e.location, e.url) for e in parsed.events] == [
        (
            "training-academies-inclucities-2022@stad-en-migratie.example",
            utc(2022, 12, 7, 8, 30),
            "Hotel Manos, Brussel",
            None,
        )
    ]  # its javascript: URL is dropped
    assert parsed.warnings == (
        'Skipped the event "Inspiratiedag – Buddy\'s voor inclusieve steden en gemeenten" (UID '
        "'inspiratiedag-buddys-2022@stad-en-migratie.example'): its DTSTART could not be read "
        "(Expected datetime, date, or time. Got: '20221215T25:00').",
        "Skipped the event 'Buddy-overleg IncluCities' (UID "
        "'buddy-overleg@stad-en-migratie.example'): its RRULE could not be read (Expected "
        "frequency, got: SOMETIMES).",
    )


def test_this_and_future_override_moves_later_occurrences_with_their_own_identities() -> None:
    parsed = parse("thisandfuture.ics", utc(2026, 11, 1), utc(2027, 1, 1))
    assert [(e.recurrence_id, e.starts_at, e.summary) for e in parsed.events] == [
        ("20261102T090000Z", utc(2026, 11, 2, 9), "Buddy-overleg IncluCities"),
        ("20261109T090000Z", utc(2026, 11, 9, 9), "Buddy-overleg IncluCities"),
        ("20261116T090000Z", utc(2026, 11, 16, 13), "Buddy-overleg IncluCities (namiddag)"),
        ("20261123T090000Z", utc(2026, 11, 23, 13), "Buddy-overleg IncluCities (namiddag)"),
    ]


def test_floating_times_are_read_as_utc_with_a_warning() -> None:
    body = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:inspiratiedag@vvsg.example\r\n"
        b"DTSTART:20221215T100000\r\nDTEND:20221215T160000\r\nSUMMARY:Inspiratiedag\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    parsed = parse_calendar(
        body, url="u", window_start=utc(2022, 12, 1), window_end=utc(2023, 1, 1)
    )
    ((starts_at, ends_at, timezone),) = [
        (e.starts_at, e.ends_at, e.timezone) for e in parsed.events
    ]
    assert (starts_at, ends_at, timezone) == (utc(2022, 12, 15, 10), utc(2022, 12, 15, 16), None)
    assert parsed.warnings == ("1 event(s) have floating times (no time zone); read as UTC.",)


def test_body_that_is_not_utf8_is_read_as_windows_1252_with_a_warning() -> None:
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:accueil@schaerbeek.example\r\n"
        "DTSTART;VALUE=DATE:20221207\r\nSUMMARY:Journée d’accueil – Schaerbeek\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode("cp1252")
    parsed = parse_calendar(
        body, url="u", window_start=utc(2022, 12, 1), window_end=utc(2023, 1, 1)
    )
    assert [e.summary for e in parsed.events] == ["Journée d’accueil – Schaerbeek"]
    assert parsed.warnings == ("The calendar is not valid UTF-8; it was read as Windows-1252.",)


def test_window_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_calendar(b"", url="u", window_start=datetime(2022, 1, 1), window_end=utc(2023, 1, 1))


def fill_example(text: str, run_date: date) -> str:
    """Replace the calendar placeholders of examples/publication (see its README)."""

    def replace(match: re.Match[str]) -> str:
        kind, days, hhmm = match[1], int(match[2]), match[3]
        day = run_date + timedelta(days=days)
        if kind == "date":
            return day.strftime("%Y%m%d")
        if kind == "local":
            return f"{day:%Y%m%d}T{hhmm}00"
        morning = datetime.combine(day, time(9), BRUSSELS)
        return morning.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return re.sub(r"\{\{(date|local|utc):([+-]\d+)(?::(\d{4}))?\}\}", replace, text)


@pytest.mark.parametrize(("days", "count"), [(30, 7), (200, 11)])
def test_example_publication_agenda_gives_the_documented_occurrences(days: int, count: int) -> None:
    run_date = date(2026, 11, 23)
    body = fill_example(EXAMPLE.read_text(encoding="utf-8"), run_date).encode("utf-8")
    start = datetime.combine(run_date, time(), BRUSSELS)
    parsed = parse_calendar(
        body, url="calendar/events.ics", window_start=start, window_end=start + timedelta(days=days)
    )
    assert len(parsed.events) == count
    assert [e.uid.split("@")[0] for e in parsed.events if e.status == "CANCELLED"] == [
        "networking-lunch-urbact-cities"
    ]
    helpdesk = [e for e in parsed.events if e.uid.startswith("permanence-juridique@")]
    # +32 (25 December) moved to +27 (20 December), room 2.14; +60 is an EXDATE.
    assert [(e.recurrence_id, e.starts_at) for e in helpdesk][:2] == [
        ("20261127T130000Z", utc(2026, 11, 27, 13)),
        ("20261225T130000Z", utc(2026, 12, 20, 13)),
    ]
    conference = next(e for e in parsed.events if e.all_day)
    assert (conference.start_date, conference.end_date) == (date(2026, 12, 3), date(2026, 12, 5))
    assert parsed.title == "Cities & Migration — agenda"
    assert parsed.warnings == ()


def test_time_zone_names_from_other_clients_map_to_iana() -> None:
    parsed = parse("time-zone-names.ics", utc(2022, 12, 1), utc(2023, 1, 1))
    got = {e.uid.split("@")[0]: (e.starts_at, e.ends_at, e.timezone) for e in parsed.events}
    nine_thirty_cet = (utc(2022, 12, 7, 8, 30), utc(2022, 12, 7, 16))
    assert got == {
        # A Windows name with its own VTIMEZONE: Microsoft's table says Paris; offsets agree.
        "training-academies-outlook": (*nine_thirty_cet, "Europe/Paris"),
        # A custom TZID whose VTIMEZONE carries X-LIC-LOCATION.
        "training-academies-lightning": (*nine_thirty_cet, "Europe/Brussels"),
        # A vendor-prefixed ("globally unique") TZID, without VTIMEZONE.
        "training-academies-evolution": (*nine_thirty_cet, "Europe/Brussels"),
        # Neither defined nor known: read as UTC, and said so.
        "training-academies-unknown": (utc(2022, 12, 7, 9, 30), utc(2022, 12, 7, 17), None),
    }
    assert parsed.warnings == (
        "The time zone 'Hotel Manos' is not defined nor known; its times read as UTC.",
    )


def test_cut_off_download_is_a_parse_error() -> None:
    body = (GOLDEN / "training-academies.ics").read_bytes()
    with pytest.raises(ParseError) as raised:
        parse_calendar(
            body[: len(body) // 2],
            url="https://agenda.example/a.ics",
            window_start=utc(2022, 12, 1),
            window_end=utc(2023, 1, 1),
        )
    assert str(raised.value) == (
        "https://agenda.example/a.ics: the iCalendar data stops before END:VCALENDAR (a cut-off "
        "download?); check that the URL serves the whole .ics file"
    )
