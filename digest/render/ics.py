"""Render events as iCalendar (RFC 5545): add-to-calendar files and the `events.ics` feed.

Pure: no I/O, no clock. Each VEVENT's DTSTAMP is the time its event last changed
(`PlanItem.stamp`), so unchanged events give unchanged bytes, which publish then leaves
alone; `now` stands in for items without one.

Both outputs are `METHOD:PUBLISH` calendars in which every VEVENT has exactly one DTSTAMP,
DTSTART, ORGANIZER, SUMMARY and UID, and no ATTENDEE (RFC 5546 §3.2.1: PUBLISH carries
no attendees). Timed events keep the wall clock of their own time zone (`TZID=` plus a
matching VTIMEZONE), so a 09:30 Brussels training stays at 09:30 across a DST change;
all-day events are `VALUE=DATE` with an exclusive DTEND and never pass through UTC.

An occurrence of a recurring event keeps its series UID and carries RECURRENCE-ID, so a
calendar that already holds the series recognises it instead of adding a duplicate. In
`events.ics` a series whose source VEVENTs were stored at collect time (`SeriesSource`) is
written as its source wrote it: one master VEVENT with its RRULE, RDATEs and EXDATEs, and
its overridden instances (RECURRENCE-ID, the same UID) with their SEQUENCE and STATUS,
instead of one VEVENT per occurrence; DTSTAMP is when the stored series last changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.utils import parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vCalAddress, vDuration

from digest.compose import PlanItem

CONTENT_TYPE = "text/calendar; charset=UTF-8; method=PUBLISH"
"""The Content-Type to serve `.ics` files with (RFC 5545 §8.1, `method` from RFC 5546)."""

REFRESH = timedelta(hours=12)
"""How often subscribed calendars are asked to reload `events.ics` (a suggestion only)."""

_STATUSES = frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"})
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z"})
_RID_DATE = re.compile(r"\d{8}")
_RID_UTC = re.compile(r"\d{8}T\d{6}Z")
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")


@dataclass(frozen=True)
class SeriesSource:
    """A recurring event as its calendar wrote it (master and overrides), kept at collect."""

    uid: str
    ics: str
    """A VCALENDAR holding the series' VEVENTs (and the custom VTIMEZONEs they use)."""
    changed_at: datetime
    """When the stored series last changed: its VEVENTs' DTSTAMP."""


def event_file(item: PlanItem, *, now: datetime, organizer: str, prodid: str) -> bytes:
    """Return the `.ics` file of one event occurrence, for an "add to calendar" link.

    `organizer` is the publication's sender ("Name <address>"); it stands in when the
    event's own organizer is a name without an address.
    """
    calendar = _calendar(prodid)
    _add_events(calendar, [item], now=now, organizer=organizer)
    return _serialize(calendar)


def event_calendar(
    items: Sequence[PlanItem],
    *,
    now: datetime,
    organizer: str,
    prodid: str,
    name: str,
    timezone: str,
    series: Mapping[str, SeriesSource] | None = None,
) -> bytes:
    """Return the `events.ics` feed: every event item, in time order, one VEVENT each.

    Items that are not events are skipped; an occurrence listed twice (the same UID and
    RECURRENCE-ID, e.g. from two language variants) is written once. `timezone` is the
    publication's, announced as X-WR-TIMEZONE for clients that lack a default. An
    occurrence of a series in `series` (by UID) is written as that whole series instead.
    """
    calendar = _calendar(prodid)
    calendar.add("NAME", name)  # RFC 7986
    calendar.add("X-WR-CALNAME", name)  # what Google, Apple and Outlook read
    calendar.add("X-WR-TIMEZONE", timezone)
    calendar.add("REFRESH-INTERVAL", REFRESH, parameters={"VALUE": "DURATION"})
    # An X- property has no declared type: given a timedelta, it would be written as text.
    calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH))
    unique: dict[tuple[str | None, str], PlanItem] = {}
    for item in items:
        if item.kind == "event":
            unique.setdefault((item.uid, item.recurrence_id), item)
    zone = _zone(timezone) or UTC
    ordered = sorted(unique.values(), key=lambda item: _order(item, zone))
    known = series or {}
    whole = {i.uid: known[i.uid] for i in ordered if i.recurrence_id and i.uid and i.uid in known}
    single = [item for item in ordered if item.uid not in whole]
    _add_events(calendar, single, now=now, organizer=organizer, series=list(whole.values()))
    return _serialize(calendar)


def _serialize(calendar: Calendar) -> bytes:
    """Return the calendar as RFC 5545 text: UTF-8, CRLF line ends, lines folded at 75 octets."""
    data: bytes = calendar.to_ical()
    return data


def _calendar(prodid: str) -> Calendar:
    """Return an empty PUBLISH calendar."""
    calendar = Calendar()
    calendar.add("PRODID", prodid)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    return calendar


def _add_events(
    calendar: Calendar,
    items: Iterable[PlanItem],
    *,
    now: datetime,
    organizer: str,
    series: Sequence[SeriesSource] = (),
) -> None:
    """Add a VEVENT per item and the VEVENTs of each series, preceded by a VTIMEZONE for
    every TZID they use."""
    stamp = _utc(now, "now")
    events = [
        _event(item, stamp=_utc(item.stamp, "stamp") if item.stamp else stamp, organizer=organizer)
        for item in items
    ]
    custom: dict[str, Timezone] = {}
    for source in sorted(series, key=lambda s: s.uid):
        stored = Calendar.from_ical(source.ics.encode("utf-8"))
        for component in stored.subcomponents:
            if isinstance(component, Timezone):
                custom.setdefault(str(component.get("TZID")), component)
            elif isinstance(component, Event):
                events.append(_series_event(component, source, organizer))
    for timezone in _timezones(events):
        custom.pop(str(timezone.get("TZID")), None)
        calendar.add_component(timezone)
    for tzid in sorted(custom):
        calendar.add_component(custom[tzid])
    for event in events:
        calendar.add_component(event)


def _series_event(component: Event, source: SeriesSource, organizer: str) -> Event:
    """Return a stored VEVENT of a series ready to publish: its DTSTAMP, an ORGANIZER, no
    ATTENDEE (RFC 5546 §3.2.1)."""
    for name in ("DTSTAMP", "ATTENDEE"):
        component.pop(name, None)
    component.add("DTSTAMP", _utc(source.changed_at, f"the stamp of series {source.uid}"))
    own = component.pop("ORGANIZER", None)
    named = None
    if own is not None:
        address = re.sub(r"^mailto:", "", str(own), flags=re.IGNORECASE)
        name = str(own.params.get("CN", "")).replace("<", "").replace(">", "")
        named = f"{name} <{address}>" if name else address
    component.add("ORGANIZER", _organizer(named, organizer))
    if "STATUS" not in component:
        component.add("STATUS", "CONFIRMED")
    return component


def _event(item: PlanItem, *, stamp: datetime, organizer: str) -> Event:
    """Return the VEVENT of one event item."""
    if item.kind != "event":
        raise ValueError(f"plan item {item.key} is a {item.kind!r}, not an event")
    if not item.uid:
        raise ValueError(f"event {item.key} has no UID; the collector always sets one")
    event = Event()
    event.add("UID", item.uid)
    event.add("DTSTAMP", stamp)
    if item.all_day:
        start, end = _dates(item)
        event.add("DTSTART", start)
        event.add("DTEND", end)
    else:
        zone = _zone(item.timezone) or UTC
        begins, ends = _moments(item, zone)
        event.add("DTSTART", begins)
        if ends is not None:
            event.add("DTEND", ends)
    if item.recurrence_id:
        event.add("RECURRENCE-ID", _recurrence_id(item))
    language = {"LANGUAGE": item.language} if item.language else {}
    event.add("SUMMARY", _text(item.title) or item.uid, parameters=language)
    if item.summary_text.strip():
        event.add("DESCRIPTION", _text(item.summary_text), parameters=language)
    if item.location.strip():
        event.add("LOCATION", _text(item.location))
    if item.link:
        event.add("URL", item.link)
    status = item.status.upper()
    event.add("STATUS", status if status in _STATUSES else "CONFIRMED")
    if item.sequence:
        # Calendar apps apply a re-imported change (a cancellation) only to a higher SEQUENCE.
        event.add("SEQUENCE", item.sequence)
    event.add("ORGANIZER", _organizer(item.organizer, organizer))
    return event


def _dates(item: PlanItem) -> tuple[date, date]:
    """Return DTSTART and the exclusive DTEND of an all-day item (one day when unknown)."""
    start = item.start_date
    if start is None:
        raise ValueError(f"all-day event {item.key} has no start date")
    end = item.end_date
    return start, end if end is not None and end > start else start + timedelta(days=1)


def _moments(item: PlanItem, zone: tzinfo) -> tuple[datetime, datetime | None]:
    """Return DTSTART and DTEND on the event's own wall clock (no DTEND for an instant)."""
    if item.starts_at is None:
        raise ValueError(f"timed event {item.key} has no start time")
    begins = _utc(item.starts_at, f"the start of {item.key}").astimezone(zone)
    if item.ends_at is None or item.ends_at <= item.starts_at:
        return begins, None  # RFC 5545 §3.6.1: a DATE-TIME DTSTART alone ends when it starts
    return begins, _utc(item.ends_at, f"the end of {item.key}").astimezone(zone)


def _recurrence_id(item: PlanItem) -> date | datetime:
    """Return the occurrence's original start, on the same clock as its DTSTART."""
    text = item.recurrence_id
    if _RID_DATE.fullmatch(text):
        return datetime.strptime(text, "%Y%m%d").date()
    if _RID_UTC.fullmatch(text):
        original = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        # The same TZID as DTSTART: some clients compare RECURRENCE-ID values as written.
        return original.astimezone(_zone(item.timezone) or UTC)
    raise ValueError(
        f"event {item.key} has recurrence_id {text!r}; expected YYYYMMDD or YYYYMMDDTHHMMSSZ"
    )


def _organizer(own: str | None, fallback: str) -> vCalAddress:
    """Return the event's organizer if it has an address, else the publication's sender."""
    for candidate in (own, fallback):
        found = _address(candidate or "")
        if found is not None:
            name, address = found
            # RFC 5545 §3.2: a parameter value cannot hold a DQUOTE.
            return vCalAddress.new(address, cn=name.replace('"', "") or None)
    raise ValueError(f"no organizer address: {fallback!r} is not like 'Name <address@domain>'")


def _address(text: str) -> tuple[str, str] | None:
    """Return (name, address) from "Name <a@b.c>", "a@b.c" or "mailto:a@b.c", else None."""
    text = re.sub(r"^\s*mailto:", "", text, flags=re.IGNORECASE)
    name, address = parseaddr(text)
    address = re.sub(r"^mailto:", "", address, flags=re.IGNORECASE)
    if not _ADDRESS.fullmatch(address):
        return None
    return name.strip(), address


def _timezones(events: Iterable[Event]) -> list[Timezone]:
    """Return a VTIMEZONE for each IANA zone the events' times use, alphabetically."""
    years: dict[str, set[int]] = {}
    for event in events:
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            value = event.get(name)
            moment = getattr(value, "dt", None)
            key = getattr(getattr(moment, "tzinfo", None), "key", None)
            if isinstance(moment, datetime) and isinstance(key, str):
                years.setdefault(key, set()).add(moment.year)
    # Only the transitions of the years in use (plus the next): a VTIMEZONE from 1970 to
    # 2038 is 2.4 KB per zone, repeated in every add-to-calendar file.
    return [
        Timezone.from_tzinfo(
            ZoneInfo(key),
            tzid=key,
            first_date=date(min(used), 1, 1),
            last_date=date(max(used) + 2, 1, 1),
        )
        for key, used in sorted(years.items())
    ]


def _zone(name: str | None) -> ZoneInfo | None:
    """Return the IANA zone named, or None for UTC, no name or a name zoneinfo lacks."""
    if not name or name in _UTC_NAMES:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # The instant is still right in UTC; only the wall-clock label is lost.
        return None


def _order(item: PlanItem, zone: tzinfo) -> tuple[datetime, str, str]:
    """Return the sort key of an item: when it starts (all-day at midnight), UID, RID."""
    if item.all_day and item.start_date is not None:
        start = datetime.combine(item.start_date, time(), zone)
    else:
        start = item.starts_at or datetime.min.replace(tzinfo=UTC)
    return start, item.uid or "", item.recurrence_id


def _utc(moment: datetime, what: str) -> datetime:
    """Return an aware datetime in UTC; a naive one is a bug upstream."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _text(value: str) -> str:
    """Return text without the control characters RFC 5545 §3.3.11 forbids (tab and LF stay)."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", value.replace("\r\n", "\n")).strip()
