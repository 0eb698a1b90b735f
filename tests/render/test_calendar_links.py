"""Add-to-calendar links: Google Calendar's template URL and our own `.ics` file."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

from digest import layout
from digest.render.calendar_links import google_calendar_url, ics_url, organizer_contact
from tests.render.plans import BASE_URL, EVENTS

TRAINING = next(e for e in EVENTS if e.key == "event:training-academies-inclucities")
MECHELEN = next(e for e in EVENTS if e.key.startswith("event:global-conference"))


def _query(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://calendar.google.com/calendar/render"
    )
    return {key: values[0] for key, values in parse_qs(parts.query, strict_parsing=True).items()}


def test_timed_event_gives_utc_times_and_its_own_zone() -> None:
    query = _query(google_calendar_url(TRAINING))
    assert query["action"] == "TEMPLATE"
    assert query["text"] == "Training Academies IncluCities"
    # 09:30–17:00 in Brussels (UTC+1 in December)
    assert query["dates"] == "20261208T083000Z/20261208T160000Z"
    assert query["ctz"] == "Europe/Brussels"
    assert query["location"] == "Hotel Manos, Brussel"
    assert query["details"].startswith("Training Academies IncluCities in hotel Manos")
    assert query["details"].endswith(
        "\n\nhttps://brussels-migration.example.org/agenda/training-academies-inclucities"
    )


def test_all_day_event_gives_dates_with_exclusive_end() -> None:
    query = _query(google_calendar_url(MECHELEN))
    assert query["dates"] == "20261203/20261205"  # 3 and 4 December
    assert "ctz" not in query
    assert query["location"] == "Mechelen, België"


def test_all_day_event_without_end_lasts_one_day() -> None:
    query = _query(google_calendar_url(replace(MECHELEN, end_date=None)))
    assert query["dates"] == "20261203/20261204"


def test_long_descriptions_are_cut_to_keep_the_url_short() -> None:
    wordy = replace(TRAINING, summary_text="word " * 2000)
    url = google_calendar_url(wordy)
    assert len(url) < 1500
    assert "…" in _query(url)["details"]


def test_url_survives_awkward_characters() -> None:
    awkward = replace(TRAINING, title="Q&A: cities & migration #3 / 100%", location="")
    query = _query(google_calendar_url(awkward))
    assert query["text"] == "Q&A: cities & migration #3 / 100%"
    assert "location" not in query


def test_event_without_time_is_an_error() -> None:
    with pytest.raises(ValueError, match="no start time"):
        google_calendar_url(replace(TRAINING, starts_at=None))


def test_ics_url_is_the_published_file_of_the_occurrence() -> None:
    expected = layout.url(BASE_URL, layout.event_ics(TRAINING.uid or "", TRAINING.recurrence_id))
    assert ics_url(BASE_URL, TRAINING) == expected
    assert ics_url(BASE_URL + "/", TRAINING) == expected
    assert expected.startswith(f"{BASE_URL}/events/") and expected.endswith(".ics")
    other_day = replace(TRAINING, recurrence_id="2026-12-09T09:30:00+01:00")
    assert ics_url(BASE_URL, other_day) != expected


def test_ics_url_needs_a_uid() -> None:
    with pytest.raises(ValueError, match="no UID"):
        ics_url(BASE_URL, replace(MECHELEN, uid=None, start_date=date(2026, 12, 3)))


def test_organizer_contact_splits_name_and_address() -> None:
    assert organizer_contact("Stad Mechelen <conferentie@mechelen.example.org>") == (
        "Stad Mechelen",
        "conferentie@mechelen.example.org",
    )
    assert organizer_contact('"VVSG" <inclusie@vvsg.example.org>') == (
        "VVSG",
        "inclusie@vvsg.example.org",
    )
    assert organizer_contact("agenda@brussels-migration.example.org") == (
        "agenda@brussels-migration.example.org",
        "agenda@brussels-migration.example.org",
    )
    assert organizer_contact("Villes et migration") == ("Villes et migration", "")
    assert organizer_contact("<a@b.example>") == ("a@b.example", "a@b.example")
