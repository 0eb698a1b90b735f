"""Which parser reads a source's bytes: `parse_document`, the one function the parser
workers run (`bounded.ParserPool`).

It imports the parsers itself, so the collecting process never loads feedparser,
trafilatura or icalendar: only the workers (and the fork server they start from) do.
"""

from __future__ import annotations

from datetime import datetime

from digest.collect import Parsed

PARSERS = ("digest.collect.feeds", "digest.collect.pages", "digest.collect.calendars")
"""The modules `parse_document` uses: what a parser worker should have imported."""


def parse_document(
    kind: str,
    body: bytes,
    *,
    content_type: str | None,
    url: str,
    window: tuple[datetime, datetime],
) -> Parsed:
    """Parse `body` as a source of `kind` ("feed", "page" or "calendar") read from `url`;
    a calendar's recurrences are expanded over `window`."""
    if kind == "calendar":
        from digest.collect import calendars

        start, end = window
        return calendars.parse_calendar(body, url=url, window_start=start, window_end=end)
    if kind == "page":
        from digest.collect import pages

        return pages.parse_page(body, content_type=content_type, url=url)
    from digest.collect import feeds

    return feeds.parse_feed(body, content_type=content_type, url=url)
