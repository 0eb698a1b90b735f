"""Build every public file in memory: the archive website, the Atom feeds, the calendars.

`build_site` returns a `SiteBuild` (path → bytes, paths from `digest/layout.py`);
`publish.site` writes them. Per language: the archive index, one page per published
issue, the search page and its index, the feed of the latest issues and the feed of every
story, and a calendar; then `events.ics` (every upcoming event the sources know), one
calendar per topic, and one `.ics` per occurrence for "add to calendar".

Only what changed is rendered: with the manifest of the last publish (`publish.manifest`),
an issue whose inputs are unchanged is not parsed (its summary for the index, feeds and
search comes from the manifest) and its pages are not rendered when their files are still
the ones written; the feeds render only the entries they keep.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.orm import Session, sessionmaker

from digest import __version__, layout
from digest.compose import EventCandidate, IssuePlan, Labels, PlanItem, Rules
from digest.compose.agenda import upcoming_events
from digest.config import Settings
from digest.publish import SiteBuild, search
from digest.publish.atom import FeedIssue, FeedItem, atom_feed, atom_items_feed, latest_stories
from digest.publish.manifest import Manifest, digest_of, folder_digest
from digest.publish.media import copy_images
from digest.render import images
from digest.render.email import preheader, subject
from digest.render.environment import BUILTIN_TEMPLATES
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
from digest.store import candidates, issues, series


@dataclass(frozen=True)
class Published:
    """A published issue as stored: its number, dates, and the hash of its inputs."""

    number: int
    published_at: datetime
    updated_at: datetime
    stored_plan: str
    key: str
    """Hash of everything its summaries depend on (plan, dates, settings, templates)."""


@dataclass
class _Plans:
    """The plans of published issues, parsed only when something must be rendered from
    them (an issue already in the manifest, unchanged, is never parsed).

    Called, the complete plan: every item, those the plan holds only the keys of looked
    up with `lookup` (the archive page, search, the feed of items); `shown`, what the
    email showed (the feed of issues: a huge issue makes no huge feed)."""

    published: dict[int, Published]
    labels: Labels
    lookup: Callable[[set[str]], dict[str, PlanItem]]
    parsed: dict[int, IssuePlan] = field(default_factory=dict)
    stored: dict[int, IssuePlan] = field(default_factory=dict)

    def shown(self, number: int) -> IssuePlan:
        plan = self.stored.get(number)
        if plan is None:
            stored = IssuePlan.from_json(self.published[number].stored_plan)
            plan = self.stored[number] = replace(stored, labels=self.labels)
        return plan

    def __call__(self, number: int) -> IssuePlan:
        plan = self.parsed.get(number)
        if plan is None:
            stored = self.shown(number)
            keys = stored.rest_keys()
            if keys:
                stored = stored.with_rest(self.lookup(keys))
            plan = self.parsed[number] = stored.complete()
        return plan


def inputs_fingerprint(settings: Settings) -> str:
    """A hash of everything every public file depends on besides the issues and events:
    digest's version and rendering code, the templates (built-in and the operator's), the
    message catalogues and the settings that reach a page."""
    code = Path(__file__).resolve().parent.parent
    return digest_of(
        __version__,
        folder_digest(code / "render", code / "publish", suffixes=(".py", ".po", ".js")),
        folder_digest(Path(__file__).resolve().parent, suffixes=(".py",)),
        folder_digest(BUILTIN_TEMPLATES, settings.render.templates_dir),
        repr(settings.publication),
        repr(settings.issue),
        repr(settings.publish),
        repr(settings.render),
        repr(settings.labels),
    )


def build_site(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime,
    previous: Manifest | None = None,
) -> SiteBuild:
    """Build the public files in memory: archive, feeds, search index, calendars.

    With `previous` (the manifest of the last publish into [publish] output_dir), an
    issue page whose inputs did not change and whose file is still the one written is not
    rendered again (it is in `kept`), and an unchanged issue's plan is not even parsed:
    the index, feeds and search index use its summary from the manifest.
    """
    from digest.pipeline import environment, labels_of, rules_of  # the pipeline's own

    previous = previous if previous is not None else Manifest()
    env = environment(settings)
    pub = settings.publication
    languages = list(pub.languages)
    labels = labels_of(settings)
    fingerprint = inputs_fingerprint(settings)
    with factory() as session:
        rows = issues.published_rows(session)
        events = candidates.event_candidates(session, after=now, announced={})
        defined = series.by_uid(session)
    published = [
        Published(
            number=number,
            published_at=published_at,
            updated_at=max(published_at, updated_at),
            stored_plan=stored,
            key=digest_of(
                fingerprint, str(number), stored, published_at.isoformat(), updated_at.isoformat()
            ),
        )
        for number, published_at, updated_at, stored in rows
    ]
    published.sort(key=lambda p: p.number)
    item_rules = rules_of(settings)

    def lookup(keys: set[str]) -> dict[str, PlanItem]:
        with factory() as session:
            return candidates.plan_items(session, keys, rules=item_rules)

    plans = _Plans({p.number: p for p in published}, labels, lookup)
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
    build = SiteBuild()
    rebuilt: list[int] = []
    for one in published:
        known = previous.issues.get(one.number)
        if known is not None and known.get("key") == one.key:
            build.issues[one.number] = known
        else:
            rebuilt.append(one.number)
            build.issues[one.number] = {
                "key": one.key,
                "languages": {
                    language: _summary(plans(one.number), one, language, site)
                    for language in languages
                },
            }
    page_inputs = digest_of(fingerprint, repr(site))
    for language in languages:
        _language_files(
            settings,
            site,
            published,
            plans,
            language,
            tag_start,
            now,
            env,
            build,
            previous=previous,
            page_inputs=page_inputs,
        )
    files = build.files
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
    # [render] images = "copy": every image the issues rendered this time show, served by
    # us (copies made by earlier publishes stay in media/; `copy_images` skips them).
    shown_items = [
        item
        for number in rebuilt
        for variant in plans(number).variants
        for section in variant.sections
        for item in section.items
    ]
    sources = [i.image_url for i in shown_items if i.image_url]
    sources += [src for i in shown_items for src in images.image_sources(i.summary_html)]
    files.update(copy_images(settings, sources))
    return build


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


def _summary(plan: IssuePlan, one: Published, language: str, site: Site) -> dict[str, Any]:
    """What the index, the feeds and the search index need of `plan` in `language`, as
    JSON the manifest keeps (so an unchanged issue is never parsed or rendered again)."""
    variant = plan.variant(language)
    day = issue_day(plan)
    url = site.url(layout.issue_page(plan.number, language))
    stories: list[dict[str, Any]] = []
    day_text = format_day(day, language)
    for at, section in enumerate(variant.sections):
        for position, item in enumerate(section.items):
            story_published = item.published_at or one.published_at
            story = {
                "key": item.key,
                "title": item.title or item.key,
                "link": item.link or url,
                "published_at": story_published.isoformat(),
                "updated_at": max(story_published, one.published_at).isoformat(),
                "summary": search.shorten(item.summary_text),
                "categories": [plan.labels.topic(t, language) for t in item.topics],
                "language": item.language,
                "at": [at, position],
            }
            if item.title != story["title"]:
                story["search_title"] = item.title  # untitled: the search index keeps it so
            stories.append(story)
    return {
        "subject": subject(plan, variant),
        "day": day.isoformat(),
        "url": url,
        "titles": list(first_titles(plan, language)),
        "day_text": day_text,
        "preheader": preheader(variant),
        "stories": stories,
    }


def _search_records(number: int, summary: dict[str, Any]) -> list[dict[str, Any]]:
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


def _language_files(
    settings: Settings,
    site: Site,
    published: Sequence[Published],
    plans: _Plans,
    language: str,
    tag_start: date,
    now: datetime,
    env: jinja2.Environment,
    build: SiteBuild,
    *,
    previous: Manifest,
    page_inputs: str,
) -> None:
    """The archive pages, search index and feeds of one language, into `build`."""
    pub = settings.publication
    base = pub.base_url
    output_dir = settings.publish.output_dir
    files = build.files
    summaries = [build.issues[one.number]["languages"][language] for one in published]
    entries = [
        _entry(one.number, summary) for one, summary in zip(published, summaries, strict=True)
    ]
    for position, one in enumerate(published):
        before = published[position - 1] if position > 0 else None
        after = published[position + 1] if position + 1 < len(published) else None
        path = layout.issue_page(one.number, language)
        inputs = digest_of(
            page_inputs,
            language,
            one.key,
            before.key if before is not None else "",
            after.key if after is not None else "",
        )
        build.inputs[path] = inputs
        kept = previous.current(output_dir, path, inputs)
        if kept is not None:
            build.kept[path] = kept
            continue
        page = render_issue_page(
            plans(one.number),
            language=language,
            site=site,
            published_at=one.published_at,
            previous=entries[position - 1] if before is not None else None,
            following=entries[position + 1] if after is not None else None,
            env=env,
        )
        files[path] = page.encode("utf-8")
    # Only the entries the feeds keep are rendered.
    latest = sorted(published, key=lambda one: (one.published_at, one.number), reverse=True)
    feed_issues = [
        FeedIssue(
            number=one.number,
            subject=build.issues[one.number]["languages"][language]["subject"],
            published_at=one.published_at,
            updated_at=one.updated_at,
            content_html=render_issue_entry(plans.shown(one.number), language, base, env),
            url=build.issues[one.number]["languages"][language]["url"],
            summary=build.issues[one.number]["languages"][language]["preheader"],
        )
        for one in latest[: settings.publish.feed_issues]
    ]
    stories: list[FeedItem] = []
    where: dict[int, tuple[int, int, int]] = {}
    for one, summary in zip(published, summaries, strict=True):
        for story in summary["stories"]:
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
    newest_first: dict[str, dict[str, Any]] = {}
    for one, summary in zip(reversed(published), reversed(summaries), strict=True):
        for record in reversed(_search_records(one.number, summary)):
            newest_first.setdefault(f"{record['title']}\x1f{record['url']}", record)
    files[layout.search_index(language)] = search.records_bytes(list(newest_first.values()))
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
        chosen,
        language=language,
        languages=list(pub.languages),
        title=pub.title_in(language),
        base_url=base,
        author=pub.sender,
        tag_start=tag_start,
        now=now,
        limit=settings.publish.feed_items,
    )


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
