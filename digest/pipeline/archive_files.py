"""The files of one language of the archive: issue pages, archive pages, search index,
feeds; built into a `SiteBuild` by `publishing.build_site`.

Each costs the same whatever the size of the archive, unless what it shows changed: an
issue page is rendered when the issue or a neighbour changed, an older archive page and
its part of the search index (`publish.paging`) when one of its issues changed; the index
and `search.json` list the newest 51–100 issues. A feed is kept when its issues did not
change; else the feed of issues renders the new entries only (the others are taken from
the file as written) and the feed of stories renders its `[publish] feed_items` entries,
taking the stories of the newest issues until it holds that many (a story carried again
keeps the first of those issues that carried it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import jinja2

from digest import layout
from digest.compose import IssuePlan
from digest.config import Settings
from digest.publish import SiteBuild, search
from digest.publish.atom import (
    FeedIssue,
    FeedItem,
    atom_feed,
    atom_items_feed,
    entry_contents,
    issue_entry_id,
    latest_stories,
)
from digest.publish.manifest import Manifest, digest_of
from digest.publish.paging import ArchivePage, archive_pages, page_path
from digest.render.feed import render_issue_entry, render_item_entry
from digest.render.web import (
    ArchiveEntry,
    Site,
    render_archive_index,
    render_issue_page,
    render_search_page,
)

render_page = render_issue_page
"""The issue page renderer (tests count its calls)."""
render_index = render_archive_index
"""The archive page renderer (tests count its calls)."""


@dataclass(frozen=True)
class Published:
    """A published issue as stored: its number, dates, and the hash of its inputs."""

    number: int
    published_at: datetime
    updated_at: datetime
    key: str
    """Hash of everything its summaries depend on (plan, dates, settings, templates)."""


@dataclass(frozen=True)
class Archive:
    """What every language's files are built from."""

    settings: Settings
    site: Site
    published: Sequence[Published]
    """Oldest first."""
    plans: Callable[[int], IssuePlan]
    shown: Callable[[int], IssuePlan]  # what the email showed (the feed of issues)
    tag_start: date
    now: datetime
    env: jinja2.Environment
    previous: Manifest
    page_inputs: str
    """Hash of what every page depends on besides its issues (templates, site, settings)."""
    rebuilt: frozenset[int]
    """The issues whose inputs changed since the last publish (or are new)."""
    summary: Callable[[int, str], dict[str, Any]]
    """Issue number, language → what the index, feeds and search need of it."""


def search_records(number: int, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The search index's records of one issue (`search.IndexedItem`'s fields, in order),
    from its summary: a story's search record is its title, link and summary."""
    return [
        {
            "title": story.get("search_title", story["title"]),
            "url": story["link"],
            "issue_url": summary["url"],
            "number": number,
            "day": summary["day_text"],
            "summary": story["summary"],
        }
        for story in summary["stories"]
    ]


def _entry(number: int, summary: dict[str, Any]) -> ArchiveEntry:
    return ArchiveEntry(
        number=number,
        subject=summary["subject"],
        day=date.fromisoformat(summary["day"]),
        url=summary["url"],
        titles=tuple(summary["titles"]),
        day_text=summary["day_text"],
    )


def language_files(archive: Archive, language: str, build: SiteBuild) -> None:
    """The archive pages, search index and feeds of `language`, into `build`."""

    def summary(number: int) -> dict[str, Any]:
        return archive.summary(number, language)

    _issue_pages(archive, language, build, summary)
    build.files[layout.archive_search(language)] = render_search_page(
        language=language, site=archive.site, env=archive.env
    ).encode("utf-8")
    for page in archive_pages(len(archive.published)):
        _archive_page(archive, language, build, summary, page)
    _feeds(archive, language, build, summary)


def _keep(archive: Archive, build: SiteBuild, path: str, inputs: str) -> bool:
    """Record `path`'s inputs; keep it (True) when its file is still the one they made."""
    build.inputs[path] = inputs
    kept = archive.previous.current(archive.settings.publish.output_dir, path, inputs)
    if kept is None:
        return False
    build.kept[path] = kept
    return True


def _issue_pages(
    archive: Archive,
    language: str,
    build: SiteBuild,
    summary: Callable[[int], dict[str, Any]],
) -> None:
    published, previous = archive.published, archive.previous
    output_dir = archive.settings.publish.output_dir
    unchanged = _unchanged_pages(archive)
    for position, one in enumerate(published):
        before = published[position - 1] if position > 0 else None
        after = published[position + 1] if position + 1 < len(published) else None
        path = layout.issue_page(one.number, language)
        if one.number in unchanged:
            kept = previous.still(output_dir, path)
            if kept is not None:
                build.kept[path] = kept
                continue
        inputs = digest_of(
            archive.page_inputs,
            language,
            one.key,
            before.key if before is not None else "",
            after.key if after is not None else "",
        )
        if _keep(archive, build, path, inputs):
            continue
        page = render_page(
            archive.plans(one.number),
            language=language,
            site=archive.site,
            published_at=one.published_at,
            previous=_entry(before.number, summary(before.number)) if before else None,
            following=_entry(after.number, summary(after.number)) if after else None,
            env=archive.env,
        )
        build.files[path] = page.encode("utf-8")


def _unchanged_pages(archive: Archive) -> set[int]:
    """The issues whose pages were made from the same inputs last time, known without
    hashing them: the site is the same, and so are the issue and its neighbours."""
    if archive.previous.site != archive.page_inputs:
        return set()
    rebuilt = archive.rebuilt
    numbers = [one.number for one in archive.published]
    before = sorted(archive.previous.issues)
    was = {number: position for position, number in enumerate(before)}
    unchanged = set()
    for position, number in enumerate(numbers):
        old = was.get(number)
        if number in rebuilt or old is None:
            continue
        now_around = numbers[max(position - 1, 0) : position + 2]
        then_around = before[max(old - 1, 0) : old + 2]
        if now_around == then_around and rebuilt.isdisjoint(now_around):
            unchanged.add(number)
    return unchanged


def _archive_page(
    archive: Archive,
    language: str,
    build: SiteBuild,
    summary: Callable[[int], dict[str, Any]],
    page: ArchivePage,
) -> None:
    """One page of the archive index and its part of the search index (an older page is
    rendered only when one of its issues, or the site, changed)."""
    listed = archive.published[page.start : page.stop]
    path, search_path = page.path(language), page.search_path(language)
    inputs = digest_of(
        archive.page_inputs,
        language,
        str(page.page),
        page_path(language, page.newer, page.last) if page.newer else "",
        *(one.key for one in listed),
    )
    if not page.is_index:
        kept = _keep(archive, build, path, inputs)
        if _keep(archive, build, search_path, inputs) and kept:
            return
    newest_first: dict[str, dict[str, Any]] = {}
    for one in reversed(listed):
        for record in search_records(one.number, summary(one.number)):
            newest_first.setdefault(f"{record['title']}\x1f{record['url']}", record)
    records = list(newest_first.values())
    if page.is_index:
        parts = [
            layout.search_part(language, older).rpartition("/")[2]
            for older in range(page.page - 1, 0, -1)
        ]
        build.files[search_path] = search.index_document(records, parts)
    else:
        build.files[search_path] = search.records_bytes(records)
    site = archive.site
    build.files[path] = render_index(
        [_entry(one.number, summary(one.number)) for one in reversed(listed)],
        language=language,
        site=site,
        env=archive.env,
        page=page.page if not page.is_index else None,
        newer=site.url(page_path(language, page.newer, page.last)) if page.newer else None,
        older=site.url(page_path(language, page.older, page.last)) if page.older else None,
    ).encode("utf-8")


def _written_entries(archive: Archive, path: str) -> dict[str, str]:
    """Entry id → content of the feed at `path` as the last publish wrote it, when that
    was made for the same site and templates and is still on disk; else nothing."""
    previous, output_dir = archive.previous, archive.settings.publish.output_dir
    if previous.site != archive.page_inputs or previous.still(output_dir, path) is None:
        return {}
    try:
        return entry_contents((output_dir / path).read_bytes())
    except OSError:
        return {}


def _feeds(
    archive: Archive,
    language: str,
    build: SiteBuild,
    summary: Callable[[int], dict[str, Any]],
) -> None:
    """The feed of the latest issues and the feed of the latest stories."""
    settings, plans, env = archive.settings, archive.plans, archive.env
    pub = settings.publication
    base = pub.base_url
    latest = sorted(archive.published, key=lambda one: (one.published_at, one.number), reverse=True)
    newest = latest[: settings.publish.feed_issues]
    # The newest issues until they carry feed_items stories; older ones are not read.
    carrying: list[Published] = []
    keys: set[str] = set()
    for one in latest:
        if len(keys) >= settings.publish.feed_items:
            break
        carrying.append(one)
        keys.update(story["key"] for story in summary(one.number)["stories"])
    # A feed is made from its issues (their keys: plan and dates) and the site alone.
    feed_path, items_path = layout.feed(language), layout.items_feed(language)
    start = archive.tag_start.isoformat()
    feed_inputs = digest_of(archive.page_inputs, language, start, *(o.key for o in newest))
    items_inputs = digest_of(archive.page_inputs, language, start, *(o.key for o in carrying))
    keep_feed = bool(newest) and _keep(archive, build, feed_path, feed_inputs)
    keep_items = bool(carrying) and _keep(archive, build, items_path, items_inputs)
    # An entry of an unchanged issue is taken from the feed as written, not rendered again.
    written = {} if keep_feed else _written_entries(archive, feed_path)
    feed_issues = []
    for one in [] if keep_feed else newest:
        entry = issue_entry_id(base, archive.tag_start, one.number, language)
        kept = written.get(entry) if one.number not in archive.rebuilt else None
        feed_issues.append(
            FeedIssue(
                number=one.number,
                subject=summary(one.number)["subject"],
                published_at=one.published_at,
                updated_at=one.updated_at,
                content_html=""
                if kept is not None
                else render_issue_entry(archive.shown(one.number), language, base, env),
                url=summary(one.number)["url"],
                summary=summary(one.number)["preheader"],
                content=kept,
            )
        )
    stories: list[FeedItem] = []
    where: dict[int, tuple[int, int, int]] = {}
    for one in [] if keep_items else carrying:
        for story in summary(one.number)["stories"]:
            item = FeedItem(
                key=story["key"],
                title=story["title"],
                link=story["link"],
                published_at=datetime.fromisoformat(story["published_at"]),
                updated_at=datetime.fromisoformat(story["updated_at"]),
                content_html="",
                summary=story["summary"],
                categories=tuple(story["categories"]),
                language=story["language"],
            )
            stories.append(item)
            where[id(item)] = (one.number, *story["at"])
    chosen = []
    for story in latest_stories(stories, settings.publish.feed_items):
        number, at, position = where[id(story)]
        plan = plans(number)
        shown = plan.variant(language).sections[at].items[position]
        content = render_item_entry(plan, shown, language, base, env)
        chosen.append(replace(story, content_html=content))
    common: dict[str, Any] = {
        "language": language,
        "languages": list(pub.languages),
        "title": pub.title_in(language),
        "base_url": base,
        "author": pub.sender,
        "tag_start": archive.tag_start,
        "now": archive.now,
    }
    if not keep_feed:
        build.files[feed_path] = atom_feed(
            feed_issues, limit=settings.publish.feed_issues, **common
        )
    if not keep_items:
        build.files[items_path] = atom_items_feed(
            chosen, limit=settings.publish.feed_items, **common
        )
