"""Calendars: turn an iCalendar (.ics) document into one `Event` per occurrence in a window.

Decisions, documented once here:

- TZIDs resolve through icalendar (IANA, Windows and vendor-prefixed names, VTIMEZONE
  definitions). `Event.timezone` is the IANA name of the wall clock. A custom VTIMEZONE maps
  to IANA through its X-LIC-LOCATION, its Windows name or a city its TZID names, and only when
  the offsets agree all through the window's years; otherwise it is None (the UTC instants
  are still right, computed from the VTIMEZONE itself).
- Google exports (UTC or floating times plus X-WR-TIMEZONE) are first converted to that zone
  with `x_wr_timezone`, so wall clocks and recurrences follow it.
- Floating times (no TZID, no X-WR-TIMEZONE) and unknown TZIDs are read as UTC with
  `timezone=None`, with one warning per document: there is no better clock to guess from.
- `recurring_ical_events` expands recurrences inside the window only; an occurrence is kept
  when it overlaps [window_start, window_end). EXDATE removes one, RECURRENCE-ID replaces one.
  The library filters nothing on STATUS: `STATUS:CANCELLED` events and overrides come back
  and are kept with `status="CANCELLED"`.
- At most MAX_OCCURRENCES per event; a rule needing more than MAX_RULE_STEPS steps from its
  DTSTART to the window is skipped. Both leave a warning.
- An unreadable VEVENT (bad DTSTART/DTEND/RRULE, DTEND before DTSTART) is skipped with a
  warning; one without UID gets a stable one derived from its DTSTART and SUMMARY.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import re
import warnings
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import nh3
import recurring_ical_events
import x_wr_timezone
from icalendar import Calendar, Component
from icalendar import Event as VEvent
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.timezone import tzid_from_tzinfo, tzp
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from digest.collect import Event, Parsed, Series
from digest.errors import ParseError

MAX_OCCURRENCES = 1_000
"""Occurrences kept per event and window; FREQ=MINUTELY without end gives 43,200 a month."""
MAX_RULE_STEPS = 100_000
"""dateutil walks every step from DTSTART: a minutely rule begun years ago takes minutes."""

_CRITICAL = frozenset({"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
_STATUSES = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})
_FREQ_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 604800}
_HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>")
_HTML_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class _Document:
    """What the pre-pass learned about one VCALENDAR, for turning occurrences into events."""

    window_start: datetime
    window_end: datetime
    notes: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    """UID → how warnings name the event (its summary and UID)."""
    recurring: set[str] = field(default_factory=set)
    """UIDs with RRULE, RDATE or RECURRENCE-ID: their occurrences get a recurrence_id."""
    ruled: set[str] = field(default_factory=set)
    """UIDs with an RRULE: only these can yield unbounded numbers of occurrences."""
    shifts: dict[tuple[str, str], timedelta] = field(default_factory=dict)
    """RANGE=THISANDFUTURE overrides: how far they move later occurrences (DTSTART − RID)."""
    locations: dict[str, str] = field(default_factory=dict)
    """VTIMEZONE TZID → its X-LIC-LOCATION (an IANA name, written by Lightning and libical)."""
    zones: dict[str, str | None] = field(default_factory=dict)
    """Custom TZID → the IANA name it proved equal to, so each is checked once per document."""
    floating: int = 0
    unknown_tzids: set[str] = field(default_factory=set)


def parse_calendar(
    body: bytes, *, url: str, window_start: datetime, window_end: datetime
) -> Parsed:
    """Return the events of the iCalendar `body` that overlap [window_start, window_end).

    Raises ParseError when `body` is not an iCalendar document; problems inside one (a
    malformed VEVENT, a rule repeating too often) become `Parsed.warnings`.
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must be timezone-aware")
    notes: list[str] = []
    text = _decode(body, notes)
    if not re.search(r"^BEGIN:VCALENDAR", text, re.IGNORECASE | re.MULTILINE):
        raise ParseError(
            f"{url} is not an iCalendar file but {_describe(text)}; point the source at the "
            "calendar's .ics URL (its 'export', 'subscribe' or 'iCal' link)"
        )
    with warnings.catch_warnings():
        # Lightning and Evolution write TZIDs like /mozilla.org/20050126_1/Europe/Brussels;
        # icalendar's guess (drop the vendor prefix) is right and its warning is noise.
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        try:
            # Bytes, never str: icalendar probes a one-line str as a path of a file to read.
            parsed = Calendar.from_ical(text.encode("utf-8"), multiple=True)
        except ValueError as error:
            raise ParseError(
                f"{url}: the iCalendar data could not be read ({error}); check that the URL "
                "serves the whole .ics file"
            ) from error
        calendars = [c for c in parsed if isinstance(c, Calendar)]
        if not calendars:  # icalendar drops a VCALENDAR that never ends
            raise ParseError(
                f"{url}: the iCalendar data stops before END:VCALENDAR (a cut-off download?); "
                "check that the URL serves the whole .ics file"
            )
        chosen: dict[tuple[str, str], Event] = {}
        kept: dict[str, Series] = {}
        for calendar in calendars:
            found, defined = _calendar_events(calendar, url, window_start, window_end, notes)
            for event in found:
                key = (event.uid, event.recurrence_id)
                if key not in chosen or _event_rank(event) > _event_rank(chosen[key]):
                    chosen[key] = event
            for one in defined:
                kept.setdefault(one.uid, one)
    title = next((_clean(c["X-WR-CALNAME"]) for c in calendars if "X-WR-CALNAME" in c), None)
    events = sorted(chosen.values(), key=lambda e: (_event_start(e), e.uid, e.recurrence_id))
    uids = {event.uid for event in events}
    series = tuple(kept[uid] for uid in sorted(kept) if uid in uids)
    return Parsed(events=tuple(events), title=title or None, warnings=tuple(notes), series=series)


def _decode(body: bytes, notes: list[str]) -> str:
    """Return `body` as text: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # RFC 5545 says UTF-8; the exceptions met in the wild are old Outlook exports.
        notes.append("The calendar is not valid UTF-8; it was read as Windows-1252.")
        return body.decode("cp1252", errors="replace")


def _describe(text: str) -> str:
    """Return what a document that is not a calendar looks like, for the error message."""
    head = text.lstrip()[:300].lower()
    if not head:
        return "an empty document"
    if head.startswith("<!doctype html") or "<html" in head:
        return "an HTML page"
    if head.startswith("<"):
        return "an XML document (if it is a feed, add it as a feed source)"
    return f"text starting with {text.lstrip()[:40]!r}"


def _calendar_events(
    calendar: Calendar, url: str, window_start: datetime, window_end: datetime, notes: list[str]
) -> tuple[list[Event], list[Series]]:
    """Return one Event per occurrence of every VEVENT of `calendar` inside the window, and
    the definition of each recurring event."""
    doc = _Document(window_start, window_end, notes)
    calendar = _apply_x_wr_timezone(calendar, notes)
    _prepare(calendar, doc)
    defined = _series(calendar, doc)
    try:
        query = recurring_ical_events.of(
            calendar, keep_recurrence_attributes=True, skip_bad_series=True
        )
    except ValueError as error:  # e.g. a CALSCALE other than GREGORIAN
        reason = str(error).rstrip(".")
        raise ParseError(f"{url}: {reason}; only Gregorian iCalendar files can be read") from error
    for uid in sorted(doc.labels.keys() - {str(series.uid) for series in query.series}):
        notes.append(f"Skipped the event {doc.labels[uid]}: its recurrence cannot be computed.")
    events: list[Event] = []
    for series in query.series:
        label = doc.labels.get(str(series.uid), repr(str(series.uid)))
        try:
            occurrences, capped = _occurrences(series, doc)
            events.extend(_event(o.as_component(True), doc) for o in occurrences)
        except (ValueError, TypeError, OverflowError) as error:
            notes.append(f"Skipped the event {label}: its recurrence failed ({error}).")
            continue
        if capped:
            notes.append(
                f"The event {label} repeats more than {MAX_OCCURRENCES:,} times in the window; "
                f"only the first {MAX_OCCURRENCES:,} were kept."
            )
    if doc.floating:
        notes.append(f"{doc.floating} event(s) have floating times (no time zone); read as UTC.")
    for tzid in sorted(doc.unknown_tzids):
        notes.append(f"The time zone {tzid!r} is not defined nor known; its times read as UTC.")
    return events, defined


# What a stored series keeps of each VEVENT: its timing and identity as the source wrote
# them; texts are cleaned like an occurrence's, ATTENDEEs (private, and not for PUBLISH) and
# alarms are dropped.
_SERIES_KEPT = (
    *("UID", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"),
    *("SEQUENCE", "STATUS", "ORGANIZER", "LAST-MODIFIED", "CLASS"),
)


def _series(calendar: Calendar, doc: _Document) -> list[Series]:
    """Return each recurring event of the prepared `calendar` that has a master VEVENT (an
    RRULE or RDATE), with its overrides, as a small VCALENDAR of its own."""
    members: dict[str, list[VEvent]] = {}
    for component in calendar.subcomponents:
        if isinstance(component, VEvent):
            members.setdefault(_clean(component.get("UID")), []).append(component)
    zones = {_clean(c.get("TZID")): c for c in calendar.walk("VTIMEZONE")}
    found = []
    for uid, components in sorted(members.items()):
        if not any("RRULE" in c or "RDATE" in c for c in components if "RECURRENCE-ID" not in c):
            continue
        stored = Calendar()
        stored.add("PRODID", "-//digest//stored series//EN")
        stored.add("VERSION", "2.0")
        events = [_series_member(c, doc) for c in components]
        used = {
            _clean(value.params.get("TZID"))
            for c in events
            for name in ("DTSTART", "DTEND", "RECURRENCE-ID")
            if (value := c.get(name)) is not None and hasattr(value, "params")
        }
        for tzid in sorted(used & zones.keys()):
            if _iana(tzid) is None:
                stored.add_component(zones[tzid])
        for event in events:
            stored.add_component(event)
        found.append(Series(uid=uid, ics=stored.to_ical().decode("utf-8")))
    return found


def _iana(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _series_member(component: VEvent, doc: _Document) -> VEvent:
    """Return the parts of one VEVENT of a series that `events.ics` publishes."""
    kept = VEvent()
    for name in _SERIES_KEPT:
        for value in _values(component, name):
            moments = _moments_of(value, doc) if name in _SERIES_TIMES else None
            if moments is None:
                kept.add(name, value, encode=False)  # already typed: keep its TZID and VALUE
            else:
                kept.add(name, moments if name in ("RDATE", "EXDATE") else moments[0])
    summary = _clean(component.get("SUMMARY"))
    language = _param(component, "SUMMARY", "LANGUAGE")
    parameters = {"LANGUAGE": language} if language else {}
    if summary:
        kept.add("SUMMARY", summary, parameters=parameters)
    description = _plain_text(_clean(component.get("DESCRIPTION")))
    if description:
        kept.add("DESCRIPTION", description, parameters=parameters)
    location = _clean(component.get("LOCATION"))
    if location:
        kept.add("LOCATION", location)
    url = _http_url(component.get("URL"))
    if url:
        kept.add("URL", url)
    return kept


_SERIES_TIMES = frozenset({"DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE"})


def _moments_of(value: Any, doc: _Document) -> list[datetime] | None:
    """Return the date-times of a time property moved off a custom VTIMEZONE, or None to
    keep it as written: onto the IANA zone it proved equal to, or onto UTC when its offset
    never changes. (Google's reading of X-WR-TIMEZONE loses custom zones; a custom zone with
    daylight saving that names no IANA zone stays, with its VTIMEZONE.)"""
    found = [value.dt] if hasattr(value, "dt") else [v.dt for v in getattr(value, "dts", [])]
    if not found or not all(isinstance(m, datetime) and m.tzinfo for m in found):
        return None
    zone = found[0].tzinfo
    if isinstance(getattr(zone, "key", None), str):
        return None  # an IANA zone already
    name = _zone_name(zone, doc)
    if name and name != "UTC":
        return [m.astimezone(zoneinfo.ZoneInfo(name)) for m in found]
    year = found[0].year
    offsets = {datetime(year, month, 1, tzinfo=zone).utcoffset() for month in (1, 7)}
    if name == "UTC" or len(offsets) == 1:
        return [m.astimezone(UTC) for m in found]
    return None


def _values(component: Component, name: str) -> list[Any]:
    """Return every value of property `name` (RDATE and EXDATE may repeat)."""
    value = component.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _apply_x_wr_timezone(calendar: Calendar, notes: list[str]) -> Calendar:
    """Return `calendar` with Google's X-WR-TIMEZONE applied to its UTC and floating times."""
    name = calendar.get("X-WR-TIMEZONE")
    if name is None:
        return calendar
    zone = tzp.timezone(str(name))
    if zone is None:
        notes.append(f"X-WR-TIMEZONE {str(name)!r} is not a known time zone; it was ignored.")
        calendar.pop("X-WR-TIMEZONE")
        return calendar
    standard: Calendar = x_wr_timezone.to_standard(calendar, timezone=zone)
    standard.pop("X-WR-TIMEZONE", None)  # recurring_ical_events.of() would apply it again
    return standard


def _prepare(calendar: Calendar, doc: _Document) -> None:
    """Drop unreadable and superseded VEVENTs from `calendar`; record what `doc` needs."""
    kept: dict[tuple[str, str], VEvent] = {}
    for component in calendar.subcomponents:
        if component.name == "VTIMEZONE" and "X-LIC-LOCATION" in component:
            doc.locations[_clean(component.get("TZID"))] = _clean(component["X-LIC-LOCATION"])
        if not isinstance(component, VEvent):
            continue
        problem = _problem(component, doc)
        if problem:
            doc.notes.append(f"Skipped the event {_label(component)}: {problem}.")
            continue
        start = component.start
        if not _clean(component.get("UID")):
            seed = f"{start.isoformat()}|{_clean(component.get('SUMMARY'))}".encode()
            component["UID"] = "digest-" + hashlib.sha256(seed).hexdigest()[:20]
        uid = _clean(component["UID"])
        doc.labels.setdefault(uid, _label(component))
        rid = _moment(component, "RECURRENCE-ID")
        if rid is not None or "RRULE" in component or "RDATE" in component:
            doc.recurring.add(uid)
        if "RRULE" in component:
            doc.ruled.add(uid)
        key = (uid, "" if rid is None else _format_rid(rid))
        range_ = _param(component, "RECURRENCE-ID", "RANGE")
        if range_ == "THISANDFUTURE" and rid is not None and type(rid) is type(start):
            doc.shifts[key] = start - rid
        if isinstance(start, datetime) and start.tzinfo is None:
            tzid = _param(component, "DTSTART", "TZID")
            if tzid:
                doc.unknown_tzids.add(tzid)
            else:
                doc.floating += 1
        if key not in kept or _component_rank(component) > _component_rank(kept[key]):
            kept[key] = component
    calendar.subcomponents = [c for c in calendar.subcomponents if c.name != "VEVENT"]
    calendar.subcomponents.extend(kept.values())


def _problem(component: VEvent, doc: _Document) -> str | None:
    """Return why the VEVENT cannot be used, or None when it can."""
    for name, message in component.errors:
        if name in _CRITICAL:
            return f"its {name} could not be read ({message})"
    if "DTSTART" not in component:
        return "it has no DTSTART"
    try:
        start, end = component.start, component.end
        if _instant(end) < _instant(start):
            return "its DTEND is before its DTSTART"
    except ValueError as error:  # icalendar: DTSTART and DTEND of different kinds, …
        return str(error).rstrip(".")
    for rule in component.rrules:
        step = _FREQ_SECONDS.get(str(rule.get("FREQ", [""])[0]).upper())
        if step is None or "COUNT" in rule:
            continue  # MONTHLY and YEARLY never get that far; COUNT bounds the walk itself
        until = rule.get("UNTIL")
        end = min(doc.window_end, _instant(until[0])) if until else doc.window_end
        interval = max(1, int(rule.get("INTERVAL", [1])[0]))
        steps = (end - _instant(start)).total_seconds() / (step * interval)
        if steps > MAX_RULE_STEPS:
            return (
                f"its RRULE (FREQ={rule['FREQ'][0]}) would take {int(steps):,} steps from "
                f"{start.isoformat()} to the window (at most {MAX_RULE_STEPS:,})"
            )
    return None


def _occurrences(series: Any, doc: _Document) -> tuple[list[Any], bool]:
    """Return the series' occurrences in the window (≤ MAX_OCCURRENCES) and whether more exist."""
    if str(series.uid) not in doc.ruled:  # single events and RDATE lists are bounded already
        return list(series.between(doc.window_start, doc.window_end)), False
    # Ask in doubling slices so a dense rule stops near the cap instead of expanding the
    # whole window first (FREQ=SECONDLY over a month is 2.6 million occurrences).
    found: dict[Any, Any] = {}
    cursor, span = doc.window_start, timedelta(hours=1)
    while cursor < doc.window_end:
        stop = min(cursor + span, doc.window_end)
        for occurrence in sorted(series.between(cursor, stop)):
            found.setdefault(occurrence.id, occurrence)  # one spanning two slices comes twice
            if len(found) > MAX_OCCURRENCES:
                return list(found.values())[:MAX_OCCURRENCES], True
        cursor, span = stop, span * 2
    return list(found.values()), False


def _event(component: Component, doc: _Document) -> Event:
    """Return the Event for one occurrence as recurring_ical_events hands it out."""
    start = _moment(component, "DTSTART")
    if start is None:
        raise ValueError("an occurrence came back without DTSTART")
    end = _moment(component, "DTEND") or start
    uid = _clean(component["UID"])
    common: dict[str, Any] = {
        "uid": uid,
        "recurrence_id": _recurrence_id(component, uid, doc),
        "summary": _clean(component.get("SUMMARY")),
        "description": _plain_text(_clean(component.get("DESCRIPTION"))),
        "location": _clean(component.get("LOCATION")),
        "url": _http_url(component.get("URL")),
        "status": _status(component.get("STATUS")),
        "sequence": _safe(component, "sequence") or 0,
        "last_modified": _last_modified(component),
        "language": _language(component),
        "organizer": _organizer(component),
        "categories": _categories(component),
    }
    if not isinstance(start, datetime):
        return Event(all_day=True, start_date=start, end_date=_end_date(start, end), **common)
    return Event(
        all_day=False,
        starts_at=_instant(start),
        ends_at=max(_instant(end), _instant(start)),
        timezone=_zone_name(start.tzinfo, doc),
        **common,
    )


def _recurrence_id(component: Component, uid: str, doc: _Document) -> str:
    """Return "" for a single event, else the occurrence's original start (UTC or date)."""
    original = _moment(component, "RECURRENCE-ID")  # the library sets it on every occurrence
    if uid not in doc.recurring or original is None:
        return ""
    if _param(component, "RECURRENCE-ID", "RANGE") == "THISANDFUTURE":
        # The library copies the override's RECURRENCE-ID onto every later occurrence;
        # undoing its move gives each one its own original start.
        shift = doc.shifts.get((uid, _format_rid(original)))
        start = _moment(component, "DTSTART")
        if shift is not None and start is not None:
            original = start - shift
    return _format_rid(original)


def _format_rid(value: date) -> str:
    """Return a RECURRENCE-ID as stable text: YYYYMMDD for dates, YYYYMMDDTHHMMSSZ for times."""
    if isinstance(value, datetime):
        return _instant(value).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _instant(value: date) -> datetime:
    """Return `value` as aware UTC; floating times and dates count as UTC (see module doc)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _end_date(start: date, end: date) -> date:
    """Return the exclusive end date of an all-day occurrence, at least the next day."""
    if isinstance(end, datetime):  # DTSTART;VALUE=DATE plus DURATION:PT…H gives a datetime
        end = end.date() + timedelta(days=1 if end.time() != time() else 0)
    return max(end, start + timedelta(days=1))


def _zone_name(zone: tzinfo | None, doc: _Document) -> str | None:
    """Return the IANA name of a wall clock, or None when it has none we can trust."""
    key = getattr(zone, "key", None)  # zoneinfo.ZoneInfo, what icalendar makes of IANA TZIDs
    if isinstance(key, str) or zone is None:
        return key
    tzid = tzid_from_tzinfo(zone)
    if tzid is None or tzid == "UTC":
        return tzid
    if tzid not in doc.zones:
        doc.zones[tzid] = _proven_iana_name(zone, tzid, doc)
    return doc.zones[tzid]


def _proven_iana_name(zone: tzinfo, tzid: str, doc: _Document) -> str | None:
    """Return the first IANA zone a custom TZID hints at whose offsets equal `zone`'s."""
    last = min(doc.window_end.year, doc.window_start.year + 2)
    candidates = [doc.locations.get(tzid), WINDOWS_TO_OLSON.get(tzid), *_cities_in(tzid)]
    for candidate in filter(None, candidates):
        if _same_offsets(zone, candidate, doc.window_start.year, last):
            return candidate
    return None


@cache
def _cities_in(tzid: str) -> tuple[str, ...]:
    """Return the IANA zones whose city a TZID names, in the order it names them.

    Outlook writes TZIDs like "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris".
    """
    found: list[tuple[int, str]] = []
    for name in zoneinfo.available_timezones():
        city = name.rsplit("/", 1)[-1].replace("_", " ")
        if "/" in name and (match := re.search(rf"\b{re.escape(city)}\b", tzid, re.IGNORECASE)):
            found.append((match.start(), name))
    return tuple(name for _, name in sorted(found))


def _same_offsets(zone: tzinfo, name: str, first: int, last: int) -> bool:
    """Return whether `zone` and the IANA zone `name` agree at noon UTC every day of the years."""
    try:
        iana = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a hint that names no IANA zone
        return False
    day = datetime(first, 1, 1, 12, tzinfo=UTC)
    while day.year <= last:
        if day.astimezone(zone).utcoffset() != day.astimezone(iana).utcoffset():
            return False
        day += timedelta(days=1)
    return True


def _moment(component: Component, name: str) -> date | None:
    """Return the date or datetime of property `name`, or None when absent or not one."""
    value = getattr(component.get(name), "dt", None)
    return value if isinstance(value, date) else None


def _param(component: Component, name: str, param: str) -> str | None:
    """Return parameter `param` of property `name`, or None."""
    value = (getattr(component.get(name), "params", None) or {}).get(param)
    return None if value is None else str(value)


def _safe(component: Component, name: str) -> Any:
    """Return icalendar's typed attribute `name`, or None when the value cannot be read."""
    try:
        return getattr(component, name)
    except ValueError:
        return None


def _clean(value: object) -> str:
    """Return a text property as a stripped str ("" when absent)."""
    return "" if value is None else str(value).strip()


def _plain_text(text: str) -> str:
    """Return `text` without HTML: Google and Outlook put markup in DESCRIPTION."""
    if not _HTML_TAG.search(text):
        return text
    return html.unescape(nh3.clean(_HTML_BREAK.sub("\n", text), tags=set())).strip()


def _http_url(value: object) -> str | None:
    """Return the URL when it is an absolute http(s) URL, else None."""
    url = _clean(value)
    parts = urlsplit(url)
    return url if parts.scheme.lower() in {"http", "https"} and parts.netloc else None


def _status(value: object) -> str:
    """Return CONFIRMED, TENTATIVE or CANCELLED; anything else counts as CONFIRMED."""
    status = _clean(value).upper()
    return status if status in _STATUSES else "CONFIRMED"


def _last_modified(component: Component) -> datetime | None:
    """Return LAST-MODIFIED, else DTSTAMP, as aware UTC."""
    value = _safe(component, "last_modified") or _safe(component, "DTSTAMP")
    return _instant(value) if isinstance(value, date) else None


def _organizer(component: Component) -> str | None:
    """Return the organizer as "CN <address>" (either part alone when the other is missing).

    The address is kept so an add-to-calendar file can name the real organizer.
    """
    address = re.sub(r"^mailto:", "", _clean(component.get("ORGANIZER")), flags=re.IGNORECASE)
    name = _clean(_param(component, "ORGANIZER", "CN")).replace("<", "").replace(">", "")
    if name and "@" in address:
        return f"{name} <{address}>"
    return name or address or None


def _language(component: Component) -> str | None:
    """Return the primary subtag of SUMMARY's LANGUAGE ("nl-BE" → "nl"), or None."""
    return _clean(_param(component, "SUMMARY", "LANGUAGE")).split("-")[0].lower() or None


def _categories(component: Component) -> tuple[str, ...]:
    """Return the CATEGORIES of every line, stripped, without duplicates."""
    values = _safe(component, "categories") or ()
    return tuple(dict.fromkeys(text for text in map(_clean, values) if text))


def _label(component: Component) -> str:
    """Return how a warning names a VEVENT: its summary and UID."""
    return f"{_clean(component.get('SUMMARY'))!r} (UID {_clean(component.get('UID'))!r})"


def _component_rank(component: Component) -> tuple[int, datetime]:
    """Return the order of versions of one VEVENT: higher SEQUENCE, then later LAST-MODIFIED."""
    return (_safe(component, "sequence") or 0, _last_modified(component) or _EPOCH)


def _event_rank(event: Event) -> tuple[int, datetime]:
    """Return the order of versions of one occurrence, as `_component_rank` does."""
    return (event.sequence, event.last_modified or _EPOCH)


def _event_start(event: Event) -> datetime:
    """Return when an event starts, for ordering (all-day ones at midnight UTC)."""
    return event.starts_at or _instant(event.start_date or date.min)
