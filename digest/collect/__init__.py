"""Collect: fetch a source's bytes and turn them into clean, typed values.

Output types of this stage (the store stage takes exactly these):

- `Fetched`: what `fetch.py` got for one source (bytes, validators, final URL), or that
  nothing changed since the last fetch (conditional GET, unchanged local file).
- `Entry`: one news item or publication from a feed or a page, HTML already sanitized.
- `Event`: one occurrence of a calendar event, recurrences already expanded.
- `Parsed`: everything one document yielded.

Parsing is pure (bytes in, `Parsed` out) and runs in a child process with a time bound
(`bounded.py`), so hostile input cannot hold the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Fetched:
    """The result of fetching one source: new bytes, or `body is None` when unchanged."""

    url: str
    """The URL (or local path) finally read, after redirects."""
    body: bytes | None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200
    """HTTP status of the final response (304 when unchanged); 200 / 304 for local files."""
    permanent_url: str | None = None
    """Set when a 301/308 chain moved the source for good: the stored URL is updated."""

    @property
    def not_modified(self) -> bool:
        """Whether the source did not change since the validators we sent."""
        return self.body is None


@dataclass(frozen=True)
class Entry:
    """One news item or publication, with sanitized HTML and aware UTC times."""

    title: str
    link: str | None
    guid: str | None
    summary_html: str = ""
    """Sanitized with nh3: http/https/mailto URLs only, no scripts, handlers, forms, iframes."""
    summary_text: str = ""
    """Plain-text summary derived from the HTML, whitespace collapsed, at most ~500 chars."""
    author: str | None = None
    language: str | None = None
    """From the item or the feed when they declare one (e.g. "nl"); None means the source's."""
    published_at: datetime | None = None
    """Aware UTC; None when the feed gives no date (the store then uses first-seen)."""
    updated_at: datetime | None = None
    image_url: str | None = None
    categories: tuple[str, ...] = ()
    single_document: bool = False
    """A feedless page read as one document: a change to it is news again."""
    alternates: tuple[str, ...] = ()
    """The same item in other languages (`hreflang` alternates) and its canonical link."""


@dataclass(frozen=True)
class Event:
    """One occurrence of a calendar event, identified by UID + RECURRENCE-ID.

    Timed events carry aware UTC `starts_at`/`ends_at` plus the IANA `timezone` of their
    wall clock; all-day events carry `start_date`/`end_date` (end exclusive) and are never
    converted through UTC.
    """

    uid: str
    recurrence_id: str
    """"" for a single event; the occurrence's original start (ISO 8601) for a recurrence."""
    summary: str
    all_day: bool
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    """Exclusive, as in RFC 5545: a one-day event on 16 Nov has end_date 17 Nov."""
    timezone: str | None = None
    description: str = ""
    location: str = ""
    url: str | None = None
    status: str = "CONFIRMED"
    """CONFIRMED, TENTATIVE or CANCELLED (kept, never shown as a normal event)."""
    sequence: int = 0
    last_modified: datetime | None = None
    language: str | None = None
    organizer: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Series:
    """A recurring event as its calendar defines it: the master VEVENT (RRULE, RDATE, EXDATE)
    and its overridden instances (RECURRENCE-ID), kept so `events.ics` can publish the
    series whole instead of its expanded occurrences."""

    uid: str
    ics: str
    """A VCALENDAR with the series' VEVENTs (texts cleaned, ATTENDEEs dropped) and the
    VTIMEZONEs they use that are not IANA zones."""


@dataclass(frozen=True)
class Parsed:
    """Everything one fetched document yielded."""

    entries: tuple[Entry, ...] = ()
    events: tuple[Event, ...] = ()
    title: str | None = None
    language: str | None = None
    warnings: tuple[str, ...] = field(default=())
    """Non-fatal problems (feedparser's bozo, a skipped malformed VEVENT), for the report."""
    series: tuple[Series, ...] = ()
    """The recurring events of a calendar, as defined (see `Series`)."""
