"""How items and events are dated in a digest: the date badge of an agenda entry, the
range of a multi-day event, the rhythm of a series shown once, an item's short date.
Pure: values in, strings out, in the reader's language."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from digest.compose import PlanItem
from digest.render.i18n import (
    babel_locale,
    format_day_range,
    format_event_when,
    translations,
)


def _start(item: PlanItem, timezone: str) -> datetime | date | None:
    if item.all_day:
        return item.start_date
    if item.starts_at is None:
        return None
    return item.starts_at.astimezone(ZoneInfo(timezone))


def badge(item: PlanItem, language: str, timezone: str) -> tuple[str, str]:
    """The date badge of an agenda entry: ("DEC", "14"), or ("", "") without a start."""
    start = _start(item, timezone)
    if start is None:
        return "", ""
    day = start if not isinstance(start, datetime) else start.date()
    month = format_date(day, "MMM", locale=babel_locale(language)).strip(".").upper()
    return month, str(day.day)


def agenda_when(item: PlanItem, language: str, timezone: str) -> str:
    """When an entry happens: a multi-day event shown once gives its day range with its
    daily hours ("14–15 December 2026, 09:30 – 17:00"); others as `format_event_when`."""
    if item.last_day is None:
        return format_event_when(item, language, timezone)
    start = _start(item, timezone)
    if start is None:
        return ""
    first = start if not isinstance(start, datetime) else start.date()
    days = format_day_range(first, item.last_day, language)
    if item.all_day or item.starts_at is None:
        return days
    zone = ZoneInfo(timezone)
    begin = format_time(item.starts_at.astimezone(zone), "short", locale=babel_locale(language))
    if item.ends_at is None:
        return f"{days}, {begin}"
    end = format_time(item.ends_at.astimezone(zone), "short", locale=babel_locale(language))
    return f"{days}, {begin}\u202f–\u202f{end}"


def short_day(day: date | datetime, language: str, timezone: str | None = None) -> str:
    """A short date: "Thu 10 Dec", "do 10 dec.", "jeu. 10 déc."."""
    if isinstance(day, datetime) and timezone:
        day = day.astimezone(ZoneInfo(timezone)).date()
    elif isinstance(day, datetime):
        day = day.date()
    return format_date(day, "EEE d MMM", locale=babel_locale(language))


def item_day(item: PlanItem, language: str, timezone: str) -> str:
    """The date a news item was published, short ("7 Dec"), or "" when unknown."""
    if item.published_at is None:
        return ""
    day = item.published_at.astimezone(ZoneInfo(timezone)).date()
    return format_date(day, "d MMM", locale=babel_locale(language))


def series_note(item: PlanItem, language: str, timezone: str) -> str:
    """For a series shown once: "Every other Tuesday · also Tue 22 Dec, Tue 5 Jan",
    "Every 4 weeks · also …", or just the later dates when the rhythm is irregular; ""
    for a single occurrence. The entry itself shows the next date."""
    if not item.later:
        return ""
    catalog = translations(language)
    later = [short_day(datetime.fromisoformat(moment), language, timezone) for moment in item.later]
    also = catalog.gettext("also %(dates)s") % {"dates": ", ".join(later)}
    days = item.recurrence_days if len(item.later) >= 2 else 0  # a rhythm needs 3 dates
    first = datetime.fromisoformat(item.later[0]).astimezone(ZoneInfo(timezone))
    weekday = format_date(first.date(), "EEEE", locale=babel_locale(language))
    if days == 7:
        rhythm = catalog.gettext("Every %(weekday)s") % {"weekday": weekday}
    elif days == 14:
        rhythm = catalog.gettext("Every other %(weekday)s") % {"weekday": weekday}
    elif days and days % 7 == 0:
        weeks = days // 7
        rhythm = catalog.ngettext("Every week", "Every %(num)d weeks", weeks) % {"num": weeks}
    elif days:
        rhythm = catalog.ngettext("Every day", "Every %(num)d days", days) % {"num": days}
    else:
        return also[:1].upper() + also[1:]
    return f"{rhythm} · {also}"
