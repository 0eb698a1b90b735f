"""Build every public file in memory: the archive website, the Atom feeds, the calendars.

`build_site` returns path → bytes (paths from `digest/layout.py`); `publish.site` writes
them. Per language: the archive index, one page per published issue, the search page and
its index, the feed of the latest issues and the feed of every story, and a calendar;
then `events.ics` (every upcoming event the sources know), one calendar per topic, and one
`.ics` per occurrence for "add to calendar".
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import jinja2
from sqlalchemy.orm import Session, sessionmaker

from digest import __version__, layout
from digest.compose import EventCandidate, IssuePlan, PlanItem, Rules
from digest.compose.plan import upcoming_events
from digest.config import Settings
from digest.publish import search
from digest.publish.atom import FeedIssue, FeedItem, atom_feed, atom_items_feed
from digest.publish.media import copy_images
from digest.render import images
from digest.render.email import preheader, subject
from digest.render.feed import render_issue_entry, render_item_entry
from digest.render.i18n import format_day, language_name, translations
from digest.render.ics import event_calendar, event_file
from digest.render.web import (
    LANGUAGE_CALENDAR,
    TOPIC_CALENDAR,
    ArchiveEntry,
    CalendarLink,
    Site,
    first_titles,
    issue_day,
    render_archive_index,
    render_issue_page,
    render_search_page,
)
from digest.store import issues, items, series


@dataclass(frozen=True)
class Published:
    """A published issue's complete plan (every item shown, today's labels) and dates."""

    plan: IssuePlan
    published_at: datetime
    updated_at: datetime


def build_site(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime
) -> dict[str, bytes]:
    """Build every public file in memory: archive, feeds, search index, calendars."""
    from digest.pipeline import environment, labels_of, rules_of  # the pipeline's own

    env = environment(settings)
    pub = settings.publication
    languages = list(pub.languages)
    labels = labels_of(settings)
    with factory() as session:
        published = [
            Published(
                plan=replace(issues.plan_of(issue).complete(), labels=labels),
                published_at=issue.published_at,
                updated_at=max(issue.published_at, issue.updated_at),
            )
            for issue in issues.published(session)
            if issue.published_at is not None
        ]
        events = items.event_candidates(session, after=now, announced={})
        defined = series.by_uid(session)
    published.sort(key=lambda p: p.plan.number)
    tag_start = min((p.published_at for p in published), default=now).date()
    rules = replace(rules_of(settings), event_horizon_days=settings.collect.calendar_window_days)
    upcoming = upcoming_events(events, rules=rules, now=now)
    listed = upcoming + _cancelled(events, rules, now)
    topics = sorted({t for item in listed for t in item.topics})
    calendars = _calendar_links(settings, topics)
    site = Site(
        base_url=pub.base_url,
        languages=tuple(languages),
        titles={language: pub.title_in(language) for language in languages},
        calendars=tuple(calendars),
    )
    files: dict[str, bytes] = {}
    for language in languages:
        files.update(_language_files(settings, site, published, language, tag_start, now, env))
    files["index.html"] = files[layout.archive_index(languages[0])]
    files[layout.search_script()] = search.script()

    prodid = f"-//digest {__version__}//{pub.title}//EN"

    def calendar(chosen: Sequence[PlanItem], name: str) -> bytes:
        return event_calendar(
            chosen,
            now=now,
            organizer=pub.sender,
            prodid=prodid,
            name=name,
            timezone=pub.timezone,
            series=defined,
        )

    files[layout.calendar()] = calendar(listed, pub.title)
    for language in languages:
        shown = [
            item
            for item in listed
            if settings.issue.other_languages == "show" or item.language == language
        ]
        files[layout.language_calendar(language)] = calendar(shown, pub.title_in(language))
    for topic in topics:
        label = labels.topic(topic, languages[0])
        chosen = [item for item in listed if topic in item.topics]
        files[layout.topic_calendar(topic)] = calendar(chosen, f"{pub.title} — {label}")
    for item in upcoming:
        assert item.uid is not None
        files[layout.event_ics(item.uid, item.recurrence_id)] = event_file(
            item, now=now, organizer=pub.sender, prodid=prodid
        )
    # [render] images = "copy": every image the pages and feeds show, served by us.
    shown_items = [
        item
        for one in published
        for variant in one.plan.variants
        for section in variant.sections
        for item in section.items
    ]
    sources = [i.image_url for i in shown_items if i.image_url]
    sources += [src for i in shown_items for src in images.image_sources(i.summary_html)]
    files.update(copy_images(settings, sources))
    return files


def _cancelled(events: Sequence[EventCandidate], rules: Rules, now: datetime) -> list[PlanItem]:
    """The upcoming occurrences that were cancelled or withdrawn from their calendar, with
    STATUS:CANCELLED: a subscribed calendar must learn to remove them (an issue leaves out
    a cancellation nobody was told of; a calendar feed must not)."""
    gone = [e for e in events if e.status == "CANCELLED" or e.withdrawn]
    revived = [replace(e, status="CONFIRMED", withdrawn=False) for e in gone]
    return [
        replace(item, status="CANCELLED") for item in upcoming_events(revived, rules=rules, now=now)
    ]


def _calendar_links(settings: Settings, topics: Sequence[str]) -> list[CalendarLink]:
    """The calendars every archive index offers, named in each language."""
    from digest.pipeline import labels_of

    languages = settings.publication.languages
    labels = labels_of(settings)
    links = [
        CalendarLink(
            path=layout.language_calendar(language),
            names={
                code: translations(code).gettext(LANGUAGE_CALENDAR)
                + (f" · {language_name(language, code)}" if len(languages) > 1 else "")
                for code in languages
            },
        )
        for language in languages
    ]
    for topic in topics:
        links.append(
            CalendarLink(
                path=layout.topic_calendar(topic),
                names={
                    code: translations(code).gettext(TOPIC_CALENDAR)
                    % {"topic": labels.topic(topic, code)}
                    for code in languages
                },
            )
        )
    return links


def _language_files(
    settings: Settings,
    site: Site,
    published: Sequence[Published],
    language: str,
    tag_start: date,
    now: datetime,
    env: jinja2.Environment,
) -> dict[str, bytes]:
    """The archive pages, search index and feeds of one language."""
    pub = settings.publication
    base = pub.base_url
    files: dict[str, bytes] = {}
    entries: list[ArchiveEntry] = []
    for one in published:
        variant = one.plan.variant(language)
        entries.append(
            ArchiveEntry(
                number=one.plan.number,
                subject=subject(one.plan, variant),
                day=issue_day(one.plan),
                url=site.url(layout.issue_page(one.plan.number, language)),
                titles=first_titles(one.plan, language),
            )
        )
    feed_issues: list[FeedIssue] = []
    stories: list[FeedItem] = []
    indexed: list[search.IndexedItem] = []
    for position, one in enumerate(published):
        entry = entries[position]
        previous = entries[position - 1] if position > 0 else None
        following = entries[position + 1] if position + 1 < len(entries) else None
        page = render_issue_page(
            one.plan,
            language=language,
            site=site,
            published_at=one.published_at,
            previous=previous,
            following=following,
            env=env,
        )
        files[layout.issue_page(one.plan.number, language)] = page.encode("utf-8")
        feed_issues.append(
            FeedIssue(
                number=one.plan.number,
                subject=entry.subject,
                published_at=one.published_at,
                updated_at=one.updated_at,
                content_html=render_issue_entry(one.plan, language, base, env),
                url=entry.url,
                summary=preheader(one.plan.variant(language)),
            )
        )
        for section in one.plan.variant(language).sections:
            for item in section.items:
                story_published = item.published_at or one.published_at
                stories.append(
                    FeedItem(
                        key=item.key,
                        title=item.title or item.key,
                        link=item.link or entry.url,
                        published_at=story_published,
                        updated_at=max(story_published, one.published_at),
                        content_html=render_item_entry(one.plan, item, language, base, env),
                        summary=search.shorten(item.summary_text),
                        categories=tuple(one.plan.labels.topic(t, language) for t in item.topics),
                        language=item.language,
                    )
                )
                indexed.append(
                    search.IndexedItem(
                        title=item.title,
                        url=item.link or entry.url,
                        issue_url=entry.url,
                        number=one.plan.number,
                        day=format_day(entry.day, language),
                        summary=search.shorten(item.summary_text),
                    )
                )
    newest_first: dict[str, search.IndexedItem] = {}
    for record in reversed(indexed):
        newest_first.setdefault(f"{record.title}\x1f{record.url}", record)
    files[layout.search_index(language)] = search.index_bytes(newest_first.values())
    files[layout.archive_search(language)] = render_search_page(
        language=language, site=site, env=env
    ).encode("utf-8")
    files[layout.archive_index(language)] = render_archive_index(
        list(reversed(entries)), language=language, site=site, env=env
    ).encode("utf-8")
    files[layout.feed(language)] = atom_feed(
        feed_issues,
        language=language,
        languages=list(pub.languages),
        title=pub.title_in(language),
        base_url=base,
        author=pub.sender,
        tag_start=tag_start,
        now=now,
        limit=settings.publish.feed_issues,
    )
    files[layout.items_feed(language)] = atom_items_feed(
        stories,
        language=language,
        languages=list(pub.languages),
        title=pub.title_in(language),
        base_url=base,
        author=pub.sender,
        tag_start=tag_start,
        now=now,
        limit=settings.publish.feed_items,
    )
    return files


def subject_of(plan: IssuePlan, language: str) -> str:
    """The subject of the variant of `plan` in `language`."""
    return subject(plan, plan.variant(language))


def archive_site(settings: Settings) -> Site:
    """The archive website's links for `settings` (without the calendars on offer)."""
    pub = settings.publication
    return Site(
        base_url=pub.base_url,
        languages=tuple(pub.languages),
        titles={language: pub.title_in(language) for language in pub.languages},
    )


def issue_page(
    settings: Settings,
    factory: sessionmaker[Session],
    plan: IssuePlan,
    language: str,
    published_at: datetime,
    env: jinja2.Environment,
) -> str:
    """The archive page of `plan` in `language` as it will be published (a draft included):
    its previous issue is the latest published one before it."""
    site = archive_site(settings)
    with factory() as session:
        before = [
            issue
            for issue in issues.published(session)
            if issue.number < plan.number and issue.published_at is not None
        ]
        previous = max(before, key=lambda issue: issue.number, default=None)
        earlier = issues.plan_of(previous) if previous is not None else None
    entry = None
    if earlier is not None:
        entry = ArchiveEntry(
            number=earlier.number,
            subject=subject_of(replace(earlier, labels=plan.labels), language),
            day=issue_day(earlier),
            url=site.url(layout.issue_page(earlier.number, language)),
        )
    return render_issue_page(
        plan,
        language=language,
        site=site,
        published_at=published_at,
        previous=entry,
        following=None,
        env=env,
    )


def feed_entry_page(
    settings: Settings, plan: IssuePlan, language: str, env: jinja2.Environment
) -> str:
    """The Atom entry of `plan` in `language` as a feed reader shows it: its title over its
    content (sanitized as in the feed), in a bare HTML document."""
    from digest.publish.atom import body_fragment

    title = html.escape(subject_of(plan, language))
    content = body_fragment(render_issue_entry(plan, language, settings.publication.base_url, env))
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n{content}\n</body>\n</html>\n"
    )
