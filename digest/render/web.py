"""Render the archive website: its index, each issue's page and the search page. Pure.

The archive is a small site per language (`archive/<lang>/`): every page has the site's
header and navigation (archive, search, subscribe, feeds, calendar, the other languages by
`hreflang`), Open Graph tags and the Atom feeds as `<link rel="alternate">`. An issue page
shows the issue's content as web HTML (`web/_issue.html.jinja`, shared with the Atom
entries), every item (the capped ones too), and links to the previous and next issue; no
email chrome (no preheader, no "view in browser", no subscriber footer).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import jinja2

from digest import layout
from digest.compose import IssuePlan
from digest.render import images
from digest.render.email import SectionView, preheader, section_title, subject
from digest.render.environment import paragraphs, translation_context
from digest.render.i18n import N_, format_day, language_name, zone_name

ARCHIVE_INDEX_TEMPLATE = "web/archive_index.html.jinja"
ARCHIVE_ISSUE_TEMPLATE = "web/archive_issue.html.jinja"
ARCHIVE_SEARCH_TEMPLATE = "web/archive_search.html.jinja"
LANGUAGE_CALENDAR = N_("Upcoming events (iCalendar)")
"""The name of a language's calendar on the archive index."""
TOPIC_CALENDAR = N_("Events: %(topic)s")
"""The name of a topic's calendar on the archive index."""
FIRST_TITLES = 3
"""Titles of an issue's first items shown under it in the archive index."""

# Open Graph wants a territory; these are the usual ones for the languages we translate.
_OG_LOCALES = {"en": "en_GB", "nl": "nl_BE", "fr": "fr_BE", "de": "de_DE"}


@dataclass(frozen=True)
class Site:
    """Where the archive's pages link to, for one publication."""

    base_url: str
    languages: tuple[str, ...]
    titles: dict[str, str] = field(default_factory=dict)
    """The publication's title per language (every language present)."""
    calendars: tuple[CalendarLink, ...] = ()
    """The calendars offered, for every language's index."""

    def title(self, language: str) -> str:
        """The publication's title in `language`."""
        return self.titles.get(language) or next(iter(self.titles.values()), "")

    def url(self, path: str) -> str:
        """The absolute URL of a layout path."""
        return layout.url(self.base_url, path)


@dataclass(frozen=True)
class CalendarLink:
    """A calendar on offer: its file and its name per language."""

    path: str
    names: dict[str, str]


@dataclass(frozen=True)
class ArchiveEntry:
    """One issue as the archive lists it."""

    number: int
    subject: str
    day: date
    url: str
    titles: tuple[str, ...] = ()
    """The titles of its first items."""
    day_text: str = ""
    """`day` as readers of the page's language write it, when already known (else the
    template formats it)."""


@dataclass(frozen=True)
class LanguageLink:
    """A link to the same page or feed in another language, with that language's name."""

    language: str
    url: str
    name: str


def og_locale(language: str) -> str:
    """The Open Graph locale of `language` ("fr" → "fr_BE"; "pt-BR" → "pt_BR")."""
    if "-" in language or "_" in language:
        head, _, tail = language.replace("-", "_").partition("_")
        return f"{head.lower()}_{tail.upper()}"
    return _OG_LOCALES.get(language, f"{language}_{language.upper()}")


def _frame(site: Site, language: str, page: Callable[[str], str], current: str) -> dict[str, Any]:
    """What every archive page gets: the site's links and the language switcher, where
    `page(language)` is this page's layout path in a language."""
    return {
        **translation_context(language),
        "language": language,
        "title": site.title(language),
        "home_url": site.url(f"{language}/"),
        "signup_url": site.url(f"{language}/"),
        "archive_url": site.url(layout.archive_index(language)),
        "search_url": site.url(layout.archive_search(language)),
        "feed_url": site.url(layout.feed(language)),
        "items_feed_url": site.url(layout.items_feed(language)),
        "calendar_url": site.url(layout.language_calendar(language)),
        "feeds": [
            {
                "language": code,
                "url": site.url(layout.feed(code)),
                "name": language_name(code, language),
            }
            for code in site.languages
        ],
        "switch": [
            {
                "language": code,
                "name": language_name(code, code),
                "url": site.url(page(code)),
                "current": code == language,
                "og_locale": og_locale(code),
            }
            for code in site.languages
        ],
        "page_url": site.url(page(language)),
        "og_locale": og_locale(language),
        "current": current,
    }


def issue_context(
    plan: IssuePlan, language: str, base_url: str, heading: int = 2
) -> dict[str, Any]:
    """Return what `web/_issue.html.jinja` needs to show the variant of `plan` in `language`.

    The plan should be complete (`plan.complete()`): the web and feeds show every item.
    """
    variant = plan.variant(language)
    zone = zoneinfo.ZoneInfo(plan.timezone)
    sections = [
        SectionView(
            name=section.name,
            title=section_title(section.name, language, plan.labels),
            items=section.items,
            more=0,
            timed=any(i.kind == "event" and not i.all_day for i in section.items),
        )
        for section in variant.sections
        if section.items
    ]
    return {
        **translation_context(language),
        "language": language,
        "intro": paragraphs(variant.intro),
        "sections": sections,
        "timezone": plan.timezone,
        "zone": zone,
        "zone_name": zone_name(plan.timezone, language),
        "base_url": base_url.rstrip("/"),
        "topic_label": lambda slug: plan.labels.topic(slug, language),
        "heading": heading,
    }


def issue_day(plan: IssuePlan) -> date:
    """The day of the issue in the publication's time zone."""
    return plan.slot.astimezone(zoneinfo.ZoneInfo(plan.timezone)).date()


def first_titles(plan: IssuePlan, language: str, count: int = FIRST_TITLES) -> tuple[str, ...]:
    """The titles of the first `count` items of the variant in `language`."""
    variant = plan.variant(language)
    titles = [item.title.strip() for s in variant.sections for item in s.items if item.title]
    return tuple(titles[:count])


def first_image(plan: IssuePlan, language: str, policy: str, base_url: str) -> str | None:
    """The first item image of the variant as `[render] images` serves it, for Open Graph
    (none under "drop": a link preview must not fetch from a third party either)."""
    for section in plan.variant(language).sections:
        for item in section.items:
            image = images.lead_image(item, policy, base_url)
            if image is not None:
                return image.src
    return None


def render_issue_page(
    plan: IssuePlan,
    *,
    language: str,
    site: Site,
    published_at: datetime,
    previous: ArchiveEntry | None,
    following: ArchiveEntry | None,
    env: jinja2.Environment,
) -> str:
    """Return issue `plan`'s page in `language` on the archive website."""
    variant = plan.variant(language)
    day = issue_day(plan)
    description = (
        " ".join(paragraphs(variant.intro))[:300] if variant.intro.strip() else preheader(variant)
    )
    frame = _frame(site, language, lambda code: layout.issue_page(plan.number, code), "issue")
    return env.get_template(ARCHIVE_ISSUE_TEMPLATE).render(
        **{**issue_context(plan, language, site.base_url), **frame},
        subject=subject(plan, variant),
        number=plan.number,
        issue_day=format_day(day, language),
        day_iso=day.isoformat(),
        description=description,
        image_url=first_image(plan, language, str(env.globals["images"]), site.base_url),
        published=published_at.isoformat(timespec="seconds"),
        previous=previous,
        next=following,
    )


def render_archive_index(
    entries: Sequence[ArchiveEntry],
    *,
    language: str,
    site: Site,
    env: jinja2.Environment,
    page: int | None = None,
    newer: str | None = None,
    older: str | None = None,
) -> str:
    """Return the archive index in `language` (or its older page `page`): `entries`
    (newest first), links to the `newer` and `older` pages, the feeds and the calendars on
    offer."""

    def here(code: str) -> str:
        return layout.archive_index(code) if page is None else layout.archive_page(code, page)

    return env.get_template(ARCHIVE_INDEX_TEMPLATE).render(
        **_frame(site, language, here, "archive"),
        entries=list(entries),
        page=page,
        newer_url=newer,
        older_url=older,
        calendars=[
            {"url": site.url(c.path), "name": c.names.get(language, c.path)} for c in site.calendars
        ],
    )


def render_search_page(
    *,
    language: str,
    site: Site,
    env: jinja2.Environment,
    query: str = "",
    results: Sequence[dict[str, Any]] | None = None,
    script: bool = True,
) -> str:
    """Return the search page in `language`: with `results` filled in (served by `digest
    serve`), or empty with the script that searches `search.json` (the static file)."""
    return env.get_template(ARCHIVE_SEARCH_TEMPLATE).render(
        **_frame(site, language, layout.archive_search, "search"),
        query=query,
        results=None if results is None else list(results),
        index_url=site.url(layout.search_index(language)),
        script_url=site.url(layout.search_script()) if script else None,
    )
