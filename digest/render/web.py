"""Render the public web pages that are not an issue itself: the archive's list of issues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import jinja2

from digest import layout
from digest.render.environment import translation_context
from digest.render.i18n import language_name

ARCHIVE_INDEX_TEMPLATE = "web/archive_index.html.jinja"


@dataclass(frozen=True)
class ArchiveEntry:
    """One issue as the archive lists it."""

    number: int
    subject: str
    day: date
    url: str


@dataclass(frozen=True)
class LanguageLink:
    """A link to the same page or feed in another language, with that language's name."""

    language: str
    url: str
    name: str


def render_archive_index(
    entries: Sequence[ArchiveEntry],
    *,
    language: str,
    languages: Sequence[str],
    title: str,
    base_url: str,
    env: jinja2.Environment,
) -> str:
    """Return the archive index page in `language`: `entries` in the given order, a link to
    this language's Atom feed, and `hreflang` alternates for every language's feed and index.
    """
    feeds = [
        LanguageLink(code, layout.url(base_url, layout.feed(code)), language_name(code, code))
        for code in languages
    ]
    others = [
        LanguageLink(
            code, layout.url(base_url, layout.archive_index(code)), language_name(code, code)
        )
        for code in languages
        if code != language
    ]
    return env.get_template(ARCHIVE_INDEX_TEMPLATE).render(
        **translation_context(language),
        language=language,
        title=title,
        entries=list(entries),
        feeds=feeds,
        other_languages=others,
        feed_url=layout.url(base_url, layout.feed(language)),
    )
