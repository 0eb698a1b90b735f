r"""Translate and format for readers: gettext catalogs (en, nl, fr) and localized dates.

The catalogs are kept as source `.po` files under `digest/render/locale/`. A built wheel
carries them compiled (`.mo`, made by `setup.py`); in a source checkout, where no `.mo` is
committed (so none goes stale), the `.po` is compiled in memory when first used. After
changing a translatable string in a template or here, refresh the catalogs from the repo
root, translate what is new, and run `pytest tests/render` (it fails on a missing, empty
or fuzzy translation):

    pybabel extract -F babel.cfg --add-comments=Translators: --sort-output --no-location \
        --project=digest --version=0.1 --copyright-holder="digest contributors" \
        -o digest/render/locale/digest.pot .
    pybabel update -i digest/render/locale/digest.pot -d digest/render/locale -D digest \
        -w 100 --ignore-obsolete

(`--sort-output --no-location` keep diffs to what changed.) A new language: `pybabel init
-i digest/render/locale/digest.pot -d digest/render/locale -D digest -l de`, translate,
and add it to `LANGUAGES`.

Dates are formatted with Babel (CLDR): "maandag 7 december 2026", "lundi 7 décembre 2026",
"Monday, December 7, 2026". Event times are shown in the publication's time zone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import io
import logging
import re
from datetime import date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_interval,
    format_time,
    get_timezone_name,
    parse_pattern,
)
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from digest.compose import PlanItem

log = logging.getLogger(__name__)

LOCALE_DIR = Path(str(importlib.resources.files("digest.render") / "locale"))
DOMAIN = "digest"
LANGUAGES = ("en", "nl", "fr")
"""Languages with an interface catalog."""


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated later, where the language is known."""
    return message


@functools.cache
def translations(language: str) -> NullTranslations:
    """Return the interface translations for `language` (untranslated when there is none).

    Babel prints what it finds wrong in a catalog to standard output, where it would land
    before a previewed page (`digest preview > issue.html`); it goes to the log instead.
    """
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    built = path.with_suffix(".mo")
    if built.is_file():
        with built.open("rb") as compiled_file:
            return Translations(compiled_file, domain=DOMAIN)
    if not path.is_file():
        return NullTranslations()
    printed = io.StringIO()
    with path.open("rb") as source, contextlib.redirect_stdout(printed):
        catalog = read_po(source, locale=language, domain=DOMAIN)
    for line in printed.getvalue().splitlines():
        log.warning("catalog %s: %s", path, line.removeprefix("WARNING: "))
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@functools.cache
def _locale(language: str) -> Locale:
    """The Babel locale of `language`, parsed once (English when Babel has none)."""
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def babel_locale(language: str) -> Locale:
    """The Babel locale of `language` ("pt-BR" too), parsed once: Babel's formatters
    parse a language code on every call."""
    return _locale(language)


@functools.cache
def language_name(code: str, in_language: str) -> str:
    """Name language `code` in `in_language`: ("nl", "en") → "Dutch", ("nl", "fr") →
    "néerlandais", ("nl", "nl") → "Nederlands"; the code itself when Babel has no name."""
    try:
        named = Locale.parse(code, sep="-")
    except (UnknownLocaleError, ValueError):
        return code
    return named.get_language_name(_locale(in_language)) or code


def format_day(day: date, language: str) -> str:
    """Return `day` in full: "maandag 7 december 2026", "Monday, December 7, 2026"."""
    return format_date(day, format="full", locale=_locale(language))


def zone_name(timezone: str, language: str) -> str:
    """Name time zone `timezone` for readers: "Central European Time", "heure d’Europe
    centrale", "Midden-Europese tijd"."""
    return get_timezone_name(timezone, width="long", locale=_locale(language))


def _widen_months(pattern: str) -> str:
    """Turn abbreviated months (MMM) into full ones (MMMM) outside quoted literals.

    CLDR has no interval format for full month names, and its rules say to adjust the
    field width of the closest one; Babel's fuzzy match does not, so we do.
    """
    parts = pattern.split("'")
    for index in range(0, len(parts), 2):  # even parts are outside quotes
        parts[index] = re.sub(r"(?<!M)MMM(?!M)", "MMMM", parts[index])
    return "'".join(parts)


_FIELDS = {"y": "year", "M": "month", "d": "day"}


def format_day_range(first: date, last: date, language: str) -> str:
    """Return an inclusive day range: "16–17 november 2026", "November 30 – December 1, 2026"."""
    locale = _locale(language)
    if first == last:
        return format_day(first, language)
    formats = locale.interval_formats["yMMMd"]
    for field in ("y", "M", "d"):
        if field in formats and getattr(first, _FIELDS[field]) != getattr(last, _FIELDS[field]):
            start, end = (parse_pattern(_widen_months(part)) for part in formats[field])
            return start.apply(first, locale) + end.apply(last, locale)
    return format_day(first, language)


def _time_skeleton(locale: Locale) -> str:
    """The locale's hour cycle: "hm" (9:30 AM) where it uses 12 hours, else "Hm" (09:30)."""
    return "hm" if "h" in locale.time_formats["short"].pattern else "Hm"


def _unquote(pattern: str) -> str:
    """Drop CLDR's quoting from a pattern ("{1} 'à' {0}" → "{1} à {0}"; '' is a quote)."""
    return re.sub(r"'([^']*)'", lambda match: match.group(1) or "'", pattern)


def _join_day_and_time(day: str, time: str, locale: Locale) -> str:
    pattern = _unquote(str(locale.datetime_formats["full"]))
    return pattern.replace("{1}", day).replace("{0}", time)


def _moment(moment: datetime, language: str) -> str:
    locale = _locale(language)
    time = format_time(moment, "short", locale=locale)
    return _join_day_and_time(format_day(moment.date(), language), time, locale)


def format_when(
    *,
    all_day: bool,
    starts_at: datetime | None,
    ends_at: datetime | None,
    start_date: date | None,
    end_date: date | None,
    language: str,
    timezone: str,
) -> str:
    """Say when an occurrence happens, timed ones in `timezone`; `end_date` is exclusive."""
    if all_day:
        if start_date is None:
            return ""
        last = end_date - timedelta(days=1) if end_date and end_date > start_date else start_date
        return format_day_range(start_date, last, language)
    if starts_at is None:
        return ""
    zone = ZoneInfo(timezone)
    # Babel formats naive values as they are: hand it wall-clock times, already converted.
    start = starts_at.astimezone(zone).replace(tzinfo=None)
    end = ends_at.astimezone(zone).replace(tzinfo=None) if ends_at else start
    locale = _locale(language)
    if end.date() != start.date():
        fallback = _unquote(str(locale.interval_formats[None]))
        return fallback.replace("{0}", _moment(start, language)).replace(
            "{1}", _moment(end, language)
        )
    if end == start:
        return _moment(start, language)
    times = format_interval(start, end, _time_skeleton(locale), locale=locale)
    # CLDR puts breakable thin spaces around the dash; a time range should stay on one line.
    times = times.replace("\u2009", "\u202f")
    return _join_day_and_time(format_day(start.date(), language), times, locale)


def format_event_when(item: PlanItem, language: str, timezone: str) -> str:
    """Say when event `item` happens: "dinsdag 8 december 2026, 09:30–17:00" (in
    `timezone`, the publication's), or "16–17 november 2026" for a two-day all-day event."""
    return format_when(
        all_day=item.all_day,
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        start_date=item.start_date,
        end_date=item.end_date,
        language=language,
        timezone=timezone,
    )


def _parse_instant(text: str) -> date | datetime | None:
    if not text:
        return None
    if len(text) == len("2026-12-07"):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def format_previous_when(previous: str, language: str, timezone: str) -> str:
    """Say readably when a rescheduled event was announced for, from compose's
    "START/END" ISO form (dates for all-day events, aware datetimes for timed ones)."""
    start_text, _, end_text = previous.partition("/")
    try:
        start, end = _parse_instant(start_text), _parse_instant(end_text)
    except ValueError:
        return previous  # not compose's form: show it as the editor's words
    if isinstance(start, datetime) and (end is None or isinstance(end, datetime)):
        if start.tzinfo is None:
            return previous
        return format_when(
            all_day=False,
            starts_at=start,
            ends_at=end if end is None or end.tzinfo else None,
            start_date=None,
            end_date=None,
            language=language,
            timezone=timezone,
        )
    if isinstance(start, date) and not isinstance(start, datetime):
        last = end if isinstance(end, date) and not isinstance(end, datetime) else None
        return format_when(
            all_day=True,
            starts_at=None,
            ends_at=None,
            start_date=start,
            end_date=last,
            language=language,
            timezone=timezone,
        )
    return previous
