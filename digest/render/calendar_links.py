"""Build an event's links: add to calendar (our own `.ics` file, Google Calendar) and its
organizer's address."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from digest import layout
from digest.compose import PlanItem

GOOGLE_CALENDAR = "https://calendar.google.com/calendar/render"
# Google answers 400 to very long URLs (about 2 KB), and every byte counts toward Gmail's
# 102 KB clip; the event page has the full text.
_DETAILS_LIMIT = 300


def _utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _google_dates(item: PlanItem) -> str:
    if item.all_day:
        if item.start_date is None:
            raise ValueError(f"event {item.key!r} is all-day but has no start date")
        # Google's all-day range is end-exclusive, like iCalendar's DTEND.
        end = item.end_date or item.start_date + timedelta(days=1)
        return f"{item.start_date:%Y%m%d}/{end:%Y%m%d}"
    if item.starts_at is None:
        raise ValueError(f"event {item.key!r} has no start time")
    return f"{_utc_stamp(item.starts_at)}/{_utc_stamp(item.ends_at or item.starts_at)}"


def _details(item: PlanItem) -> str:
    text = item.summary_text.strip()
    if len(text) > _DETAILS_LIMIT:
        text = text[:_DETAILS_LIMIT].rsplit(" ", 1)[0] + "…"
    return "\n\n".join(part for part in (text, item.link or "") if part)


def google_calendar_url(item: PlanItem) -> str:
    """Return a Google Calendar "create event" link prefilled with event `item`.

    Timed events give UTC `YYYYMMDDTHHMMSSZ/…` plus `ctz` (the event's own zone, so Google
    shows its wall clock); all-day events give `YYYYMMDD/YYYYMMDD` with an exclusive end.
    """
    params = {"action": "TEMPLATE", "text": item.title, "dates": _google_dates(item)}
    details = _details(item)
    if details:
        params["details"] = details
    if item.location:
        params["location"] = item.location
    if not item.all_day and item.timezone:
        params["ctz"] = item.timezone
    return f"{GOOGLE_CALENDAR}?{urlencode(params, quote_via=quote)}"


def ics_url(base_url: str, item: PlanItem) -> str:
    """Return the URL of event `item`'s add-to-calendar `.ics` file, as publish writes it."""
    if not item.uid:
        raise ValueError(f"event {item.key!r} has no UID, so it has no .ics file")
    return layout.url(base_url, layout.event_ics(item.uid, item.recurrence_id))


_NAMED_ADDRESS = re.compile(r"(?P<name>.*?)\s*<(?P<address>[^<>\s@]+@[^<>\s]+)>")


def organizer_contact(organizer: str) -> tuple[str, str]:
    """Split an organizer as collect keeps it ("Stad Mechelen <info@mechelen.example>", a
    bare name or a bare address) into (name to show, address or "")."""
    organizer = organizer.strip()
    match = _NAMED_ADDRESS.fullmatch(organizer)
    if match:
        return match["name"].strip(' "') or match["address"], match["address"]
    if "@" in organizer and " " not in organizer:
        return organizer, organizer
    return organizer, ""
