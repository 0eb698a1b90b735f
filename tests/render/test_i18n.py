"""Interface catalogs are complete in every language; dates read naturally in each."""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from digest.render import i18n
from digest.render.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    format_day,
    format_day_range,
    format_event_when,
    format_previous_when,
    language_name,
    translations,
)
from tests.render.plans import BRUSSELS, EVENTS

ZONE = "Europe/Brussels"
TRAINING = next(e for e in EVENTS if e.key == "event:training-academies-inclucities")
MECHELEN = next(e for e in EVENTS if e.key.startswith("event:global-conference"))


def plain(text: str) -> str:
    """`text` with CLDR's thin spaces around long dashes made plain spaces."""
    return text.replace("\u2009", " ")


def _template_ids() -> set[str]:
    with (LOCALE_DIR / "digest.pot").open("rb") as source:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(source) if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_translates_every_message(language: str) -> None:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "digest.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    missing = _template_ids() - set(messages)
    assert not missing, f"{path} lacks {sorted(missing)}: run pybabel update (see i18n.py)"
    for key, message in messages.items():
        assert not message.fuzzy, f"{path}: {key!r} is fuzzy"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{path}: {key!r} is not translated"
        assert len(strings) == (catalog.num_plurals if message.pluralizable else 1), key


def test_the_template_lists_exactly_the_strings_the_code_uses() -> None:
    """Fails when a template or module gained or lost a string since the last extraction."""
    root = Path(__file__).resolve().parents[2]
    with (root / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    used = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(root, method_map, options_map)
    }
    assert {"News", "Agenda", "Unsubscribe", "View in your browser", "Cancelled"} <= used
    assert used == _template_ids(), "refresh the catalogs (commands in digest/render/i18n.py)"


@pytest.mark.parametrize(
    ("language", "news", "browser", "unsubscribe"),
    [
        ("en", "News", "View in your browser", "Unsubscribe"),
        ("nl", "Nieuws", "Bekijk in je browser", "Uitschrijven"),
        ("fr", "Actualités", "Voir dans le navigateur", "Se désabonner"),
    ],
)
def test_catalogs_compile_in_memory(
    language: str, news: str, browser: str, unsubscribe: str
) -> None:
    catalog = translations(language)
    assert catalog.gettext("News") == news
    assert catalog.gettext("View in your browser") == browser
    assert catalog.gettext("Unsubscribe") == unsubscribe
    assert catalog.gettext("Agenda") == "Agenda"


def test_french_plural_counts_one_as_singular() -> None:
    catalog = translations("fr")
    one = catalog.ngettext("%(num)d more in the archive", "%(num)d more in the archive", 1)
    three = catalog.ngettext("%(num)d more in the archive", "%(num)d more in the archive", 3)
    assert one % {"num": 1} == "1 autre dans les archives"
    assert three % {"num": 3} == "3 autres dans les archives"


def test_a_language_without_catalog_stays_untranslated() -> None:
    assert translations("de").gettext("News") == "News"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Monday, December 7, 2026"),
        ("nl", "maandag 7 december 2026"),
        ("fr", "lundi 7 décembre 2026"),
    ],
)
def test_format_day(language: str, expected: str) -> None:
    assert format_day(date(2026, 12, 7), language) == expected


@pytest.mark.parametrize(
    ("language", "same_month", "across_months", "across_years"),
    [
        (
            "nl",
            "16–17 november 2026",
            "30 november – 1 december 2026",
            "31 december 2026 – 1 januari 2027",
        ),
        (
            "fr",
            "16–17 novembre 2026",
            "30 novembre – 1 décembre 2026",
            "31 décembre 2026 – 1 janvier 2027",
        ),
        (
            "en",
            "November 16 – 17, 2026",
            "November 30 – December 1, 2026",
            "December 31, 2026 – January 1, 2027",
        ),
    ],
)
def test_day_ranges_use_full_month_names(
    language: str, same_month: str, across_months: str, across_years: str
) -> None:
    assert plain(format_day_range(date(2026, 11, 16), date(2026, 11, 17), language)) == same_month
    assert plain(format_day_range(date(2026, 11, 30), date(2026, 12, 1), language)) == (
        across_months
    )
    assert plain(format_day_range(date(2026, 12, 31), date(2027, 1, 1), language)) == (across_years)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nl", "dinsdag 8 december 2026, 09:30–17:00"),
        ("fr", "mardi 8 décembre 2026, 09:30\u202f–\u202f17:00"),
        ("en", "Tuesday, December 8, 2026, 9:30\u202fAM\u202f–\u202f5:00\u202fPM"),
    ],
)
def test_timed_event_on_one_day(language: str, expected: str) -> None:
    assert format_event_when(TRAINING, language, ZONE) == expected


def test_timed_event_is_shown_in_the_publication_time_zone() -> None:
    """A New York webinar at 10:00 local time is 16:00 for Brussels readers."""
    webinar = replace(
        TRAINING,
        starts_at=datetime(2026, 12, 8, 15, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 8, 16, 30, tzinfo=UTC),
        timezone="America/New_York",
    )
    assert format_event_when(webinar, "nl", ZONE) == "dinsdag 8 december 2026, 16:00–17:30"
    assert format_event_when(webinar, "nl", "America/New_York") == (
        "dinsdag 8 december 2026, 10:00–11:30"
    )


def test_timed_event_over_two_days_names_both_ends() -> None:
    conference = replace(
        TRAINING,
        starts_at=datetime(2027, 1, 2, 9, 0, tzinfo=BRUSSELS),
        ends_at=datetime(2027, 1, 3, 17, 30, tzinfo=BRUSSELS),
    )
    assert plain(format_event_when(conference, "nl", ZONE)) == (
        "zaterdag 2 januari 2027, 09:00 – zondag 3 januari 2027, 17:30"
    )
    assert plain(format_event_when(conference, "fr", ZONE)) == (
        "samedi 2 janvier 2027, 09:00 – dimanche 3 janvier 2027, 17:30"
    )


def test_timed_event_without_end_shows_its_start() -> None:
    open_ended = replace(TRAINING, ends_at=None)
    assert format_event_when(open_ended, "nl", ZONE) == "dinsdag 8 december 2026, 09:30"


def test_all_day_event_end_is_exclusive() -> None:
    assert MECHELEN.end_date == date(2026, 12, 5)
    assert format_event_when(MECHELEN, "nl", ZONE) == "3–4 december 2026"
    assert format_event_when(MECHELEN, "fr", ZONE) == "3–4 décembre 2026"
    one_day = replace(MECHELEN, end_date=date(2026, 12, 4))
    assert format_event_when(one_day, "nl", ZONE) == "donderdag 3 december 2026"
    no_end = replace(MECHELEN, end_date=None)
    assert format_event_when(no_end, "fr", ZONE) == "jeudi 3 décembre 2026"


def test_previous_time_of_a_rescheduled_event_reads_like_a_date() -> None:
    timed = "2026-11-27T13:00:00+00:00/2026-11-27T15:00:00+00:00"
    assert format_previous_when(timed, "nl", ZONE) == "vrijdag 27 november 2026, 14:00–16:00"
    all_day = "2026-11-16/2026-11-18"
    assert format_previous_when(all_day, "nl", ZONE) == "16–17 november 2026"
    assert format_previous_when("2026-11-16/", "fr", ZONE) == "lundi 16 novembre 2026"
    assert format_previous_when("next week, probably", "en", ZONE) == "next week, probably"


def test_language_name() -> None:
    assert language_name("nl", "en") == "Dutch"
    assert language_name("nl", "fr") == "néerlandais"
    assert language_name("nl", "nl") == "Nederlands"
    assert language_name("fr-BE", "nl") == "Frans"
    assert language_name("zz", "en") == "zz"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_compiles_without_a_warning(
    language: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Babel prints a stray `msgstr[2]` in a two-plural catalog as a warning and goes on;
    any such warning, and any check Babel makes (formats, plural counts), fails here."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "digest.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, abort_invalid=True)
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check() if errors]
    assert not problems, f"{path}: {problems}"
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    assert capsys.readouterr() == ("", ""), f"{path}: Babel printed warnings"


def test_a_broken_catalog_warns_in_the_log_not_on_stdout(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "digest.po").write_text(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
        'msgid "a day"\nmsgid_plural "%(num)d days"\nmsgstr[0] "un jour"\n'
        'msgstr[1] "%(num)d jours"\nmsgstr[2] ""\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="digest.render.i18n"):
            catalog = i18n.translations("fr")
    finally:
        i18n.translations.cache_clear()
    assert catalog.ngettext("a day", "%(num)d days", 3) == "%(num)d jours"
    assert capsys.readouterr().out == ""
    assert "more translations than num_plurals" in caplog.text
