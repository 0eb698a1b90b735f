"""Where public things live, as paths under `[publish] output_dir` and `base_url`.

Render links to these, publish writes them, the web app serves them: one definition.
"""

from __future__ import annotations

import hashlib
import re


def feed(language: str) -> str:
    """The Atom feed of issues in `language`."""
    return f"feeds/{language}.atom"


def items_feed(language: str) -> str:
    """The Atom feed of every story (item) in `language`, each its own entry."""
    return f"feeds/{language}-items.atom"


def archive_search(language: str) -> str:
    """The archive's search page in `language`."""
    return f"archive/{language}/search.html"


def search_index(language: str) -> str:
    """The published items of `language` as JSON, for the search page."""
    return f"archive/{language}/search.json"


def search_part(language: str, page: int) -> str:
    """The published items of the older archive page `page` (`archive_page`), as JSON:
    `search.json` lists these parts, so an older page's items are written once."""
    return f"archive/{language}/search-{page}.json"


def search_script() -> str:
    """The small script that searches `search.json` on a static host."""
    return "archive/search.js"


def language_calendar(language: str) -> str:
    """The calendar offered to readers of `language`."""
    return f"calendars/{language}.ics"


def topic_calendar(topic: str) -> str:
    """The calendar of one topic's events (the topic's name made safe for a path)."""
    slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-") or "topic"
    return f"calendars/topic-{slug}.ics"


def archive_index(language: str) -> str:
    """The archive's list of issues in `language`."""
    return f"archive/{language}/index.html"


def archive_page(language: str, page: int) -> str:
    """Page `page` (1 = the oldest issues) of the archive's older issues in `language`;
    the newest ones are on `archive_index`."""
    return f"archive/{language}/page-{page}.html"


def issue_page(number: int, language: str) -> str:
    """The web version of issue `number` in `language` ("view in browser")."""
    return f"archive/{language}/{number}.html"


def calendar() -> str:
    """The iCalendar feed of upcoming events."""
    return "events.ics"


def event_slug(uid: str, recurrence_id: str) -> str:
    """A stable file name for one occurrence (UID + RECURRENCE-ID survive a rebuilt DB)."""
    return hashlib.sha256(f"{uid}\x1f{recurrence_id}".encode()).hexdigest()[:20]


def event_ics(uid: str, recurrence_id: str) -> str:
    """The add-to-calendar file of one occurrence."""
    return f"events/{event_slug(uid, recurrence_id)}.ics"


def url(base_url: str, path: str) -> str:
    """Join the publication's base URL and a layout path."""
    return f"{base_url.rstrip('/')}/{path}"
