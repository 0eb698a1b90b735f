"""The public files `digest publish` writes, served with the right types and revalidation.

    /archive/{lang}/                 the archive index (also .../index.html)
    /archive/{lang}/page-{n}.html    an older page of the archive index
    /archive/{lang}/{n}.html         issue n in a language ("view in browser")
    /archive/{lang}/search.html      search every published item (matched here, no script)
    /archive/{lang}/search.json      the search index (and search-{n}.json, its older parts);
                                     /archive/search.js its static script
    /feeds/{lang}.atom               the Atom feed of issues, per language
    /feeds/{lang}-items.atom         the Atom feed of every story, per language
    /events.ics                      upcoming events (iCalendar, METHOD:PUBLISH)
    /calendars/{name}.ics            the calendar of a language or a topic
    /events/{slug}.ics               one occurrence, for "add to calendar"

Files are read from `[publish] output_dir` by their `layout` path, never by a path taken
from the URL, so nothing outside the folder can be reached. Each response carries a strong
ETag (a hash of the bytes) and Last-Modified (the file's mtime, which publish leaves alone
when a file did not change); If-None-Match, else If-Modified-Since, answers 304. Files are
kept in memory and checked on disk at most once a second (`web.cache`).
"""

from __future__ import annotations

import re
from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from digest import layout
from digest.pipeline import environment
from digest.pipeline.publishing import archive_site
from digest.publish import search
from digest.render.web import render_search_page
from digest.web.pages import Site

HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
CALENDAR = "text/calendar; charset=utf-8; method=PUBLISH"
CACHE = "public, max-age=300"
JSON = "application/json; charset=utf-8"
SCRIPT = "text/javascript; charset=utf-8"
_SLUG = re.compile(r"[0-9a-f]{20}")
_CALENDAR = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")


async def serve_file(request: Request, site: Site, relative: str, media_type: str) -> Response:
    """Serve `relative` (a layout path) from the output folder, kept in memory, or 404."""
    found = site.files.fresh(relative)
    if found is None:
        found = await run_in_threadpool(site.files.load, relative, media_type)
    if found.entry is None:
        raise HTTPException(404)
    return found.entry.answer(request)


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def archive_index(request: Request) -> Response:
    """The archive's list of issues in a language."""
    site = _site(request)
    language = site.language_of(request)
    return await serve_file(request, site, layout.archive_index(language), HTML)


async def archive_page(request: Request) -> Response:
    """An older page of the archive's list of issues in a language."""
    site = _site(request)
    language = site.language_of(request)
    page = int(request.path_params["page"])
    return await serve_file(request, site, layout.archive_page(language, page), HTML)


async def issue_page(request: Request) -> Response:
    """Issue n in a language, as published."""
    site = _site(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    return await serve_file(request, site, layout.issue_page(number, language), HTML)


async def feed(request: Request) -> Response:
    """The Atom feed of a language."""
    site = _site(request)
    language = site.language_of(request)
    return await serve_file(request, site, layout.feed(language), ATOM)


async def calendar(request: Request) -> Response:
    """The iCalendar feed of upcoming events."""
    return await serve_file(request, _site(request), layout.calendar(), CALENDAR)


async def event_file(request: Request) -> Response:
    """One occurrence's .ics (its name is a hash; anything else is not ours)."""
    slug = str(request.path_params["slug"])
    if not _SLUG.fullmatch(slug):
        raise HTTPException(404)
    return await serve_file(request, _site(request), f"events/{slug}.ics", CALENDAR)


async def archive_redirect(request: Request) -> Response:
    """`/{lang}/archive` → the archive index of that language."""
    site = _site(request)
    language = site.language_of(request)
    return RedirectResponse(site.path("archive", language, ""), status_code=301)


async def items_feed(request: Request) -> Response:
    """The Atom feed of every story in a language."""
    site = _site(request)
    language = site.language_of(request)
    return await serve_file(request, site, layout.items_feed(language), ATOM)


async def named_calendar(request: Request) -> Response:
    """The calendar of a language or a topic (`calendars/<name>.ics`)."""
    name = str(request.path_params["name"])
    if not _CALENDAR.fullmatch(name):
        raise HTTPException(404)
    return await serve_file(request, _site(request), f"calendars/{name}.ics", CALENDAR)


async def search_index(request: Request) -> Response:
    """The search index of a language, as published."""
    site = _site(request)
    language = site.language_of(request)
    return await serve_file(request, site, layout.search_index(language), JSON)


async def search_part(request: Request) -> Response:
    """A part of the search index of a language (the items of an older archive page)."""
    site = _site(request)
    language = site.language_of(request)
    page = int(request.path_params["page"])
    return await serve_file(request, site, layout.search_part(language, page), JSON)


async def search_script(request: Request) -> Response:
    """The search page's script, for static copies of the archive."""
    return await serve_file(request, _site(request), layout.search_script(), SCRIPT)


async def _body(site: Site, relative: str) -> bytes | None:
    """The bytes of published file `relative` (kept in memory), or None."""
    found = site.files.fresh(relative)
    if found is None:
        found = await run_in_threadpool(site.files.load, relative, JSON)
    return found.entry.body if found.entry is not None else None


async def search_page(request: Request) -> Response:
    """Search every published item: the query is matched here against the published index
    (the same rules as the static page's script), and the results sent as HTML."""
    site = _site(request)
    language = site.language_of(request)
    query = request.query_params.get("q", "")[:200]
    relative = layout.search_index(language)
    body = await _body(site, relative)
    if body is None:
        raise HTTPException(404)
    results = None
    if query.strip():
        index = search.read_index(body)
        folder = relative.rpartition("/")[0]
        for part in search.parts_of(body):  # the older issues' items, newest first
            older = await _body(site, f"{folder}/{part}")
            index += search.read_index(older) if older is not None else []
        results = [asdict(item) for item in search.search(index, query)]
    html = await run_in_threadpool(
        lambda: render_search_page(
            language=language,
            site=archive_site(site.settings),
            env=environment(site.settings),
            query=query,
            results=results,
            script=False,
        )
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
