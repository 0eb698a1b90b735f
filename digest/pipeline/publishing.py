"""Build every public file in memory: the archive website, the Atom feeds, the calendars.

`build_site` returns a `SiteBuild` (path → bytes, paths from `digest/layout.py`);
`publish.site` writes them. Per language (`archive_files`): the archive index and its
older pages, one page per published issue, the search page and its index, the feed of the
latest issues and the feed of every story, and a calendar; then `events.ics` (every
upcoming event the sources know), one calendar per topic, and one `.ics` per occurrence
for "add to calendar".

Only what changed is rendered: with the manifest of the last publish (`publish.manifest`),
an issue whose inputs (the hash of its plan, kept in the database, and its dates) are
unchanged is not even read (its summary for the index, feeds and search comes from the
manifest, when needed at all), and its pages are not rendered when their files are still
the ones written; `archive_files` says what else is kept.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.orm import Session, sessionmaker

from digest import __version__, layout
from digest.compose import EventCandidate, IssuePlan, Labels, PlanItem, Rules
from digest.compose.agenda import upcoming_events
from digest.config import Settings
from digest.pipeline.archive_files import Archive, Published, language_files
from digest.pipeline.database import utcnow
from digest.publish import PublishReport, SiteBuild, search
from digest.publish.manifest import Manifest, digest_of, folder_digest, shard_of
from digest.publish.media import copy_images
from digest.render import images
from digest.render.email import preheader, subject
from digest.render.environment import BUILTIN_TEMPLATES
from digest.render.feed import render_issue_entry
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
    render_issue_page,
)
from digest.store import candidates, db, issues, series
from digest.store.models import IssueStatus


class _Plans:
    """The plans of published issues, read and parsed only when something must be
    rendered from them (an issue already in the manifest, unchanged, is never read).

    Called, the complete plan: every item, those the plan holds only the keys of looked
    up with `lookup` (the archive page, search, the feed of items); `shown`, what the
    email showed (the feed of issues: a huge issue makes no huge feed)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        labels: Labels,
        lookup: Callable[[set[str]], dict[str, PlanItem]],
    ) -> None:
        self.factory = factory
        self.labels = labels
        self.lookup = lookup
        self.stored: dict[int, str] = {}
        self.shown_plans: dict[int, IssuePlan] = {}
        self.parsed: dict[int, IssuePlan] = {}

    def load(self, numbers: Iterable[int]) -> None:
        """Read the plans of `numbers` at once (those not read yet)."""
        wanted = [number for number in numbers if number not in self.stored]
        if wanted:
            with self.factory() as session:
                self.stored.update(issues.plans_of(session, wanted))

    def shown(self, number: int) -> IssuePlan:
        plan = self.shown_plans.get(number)
        if plan is None:
            self.load([number])
            stored = IssuePlan.from_json(self.stored[number])
            plan = self.shown_plans[number] = replace(stored, labels=self.labels)
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
    now: datetime | None = None,
    previous: Manifest | None = None,
) -> SiteBuild:
    """Build the public files in memory: archive, feeds, search index, calendars.

    With `previous` (the manifest of the last publish into [publish] output_dir), an
    issue page whose inputs did not change and whose file is still the one written is not
    rendered again (it is in `kept`), and an unchanged issue's plan is not even parsed:
    the index, feeds and search index use its summary from the manifest.
    """
    from digest.pipeline import environment, labels_of, rules_of  # the pipeline's own

    now = now or utcnow()
    previous = previous if previous is not None else Manifest()
    env = environment(settings)
    pub = settings.publication
    languages = list(pub.languages)
    labels = labels_of(settings)
    fingerprint = inputs_fingerprint(settings)
    item_rules = rules_of(settings)

    def lookup(keys: set[str]) -> dict[str, PlanItem]:
        with factory() as session:
            return candidates.plan_items(session, keys, rules=item_rules)

    plans = _Plans(factory, labels, lookup)
    with factory() as session:
        rows = issues.published_rows(session)
        events = candidates.event_candidates(session, after=now, announced={})
        defined = series.by_uid(session)
    plans.load(number for number, _, _, digest in rows if digest is None)  # hashed here

    def plan_digest(number: int, digest: str | None) -> str:
        return digest or hashlib.sha256(plans.stored[number].encode("utf-8")).hexdigest()

    published = [
        Published(
            number=number,
            published_at=published_at,
            updated_at=max(published_at, updated_at),
            key=digest_of(
                fingerprint,
                str(number),
                plan_digest(number, digest),
                published_at.isoformat(),
                updated_at.isoformat(),
            ),
        )
        for number, published_at, updated_at, digest in rows
    ]
    published.sort(key=lambda p: p.number)
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
    rebuilt = [one.number for one in published if previous.issues.get(one.number) != one.key]
    plans.load(rebuilt)
    build.issues = {one.number: one.key for one in published}
    by_number = {one.number: one for one in published}
    made: dict[int, dict[str, Any]] = {}
    changed = {shard_of(number) for number in rebuilt}

    def summaries(number: int) -> dict[str, Any]:
        """Issue `number`'s summaries: kept in the manifest, else made from its plan."""
        found = made.get(number)
        if found is None:
            one = by_number[number]
            found = previous.summary(number, one.key)
            if found is None:
                found = {
                    "key": one.key,
                    "languages": {
                        language: _summary(plans(number), one, language, site)
                        for language in languages
                    },
                }
                changed.add(shard_of(number))
            made[number] = found
        return found

    archive = Archive(
        settings=settings,
        site=site,
        published=published,
        plans=plans,
        shown=plans.shown,
        tag_start=tag_start,
        now=now,
        env=env,
        previous=previous,
        page_inputs=digest_of(fingerprint, repr(site)),
        rebuilt=frozenset(rebuilt),
        summary=lambda number, language: summaries(number)["languages"][language],
    )
    build.site = archive.page_inputs
    for language in languages:
        language_files(archive, language, build)
    for shard in sorted(changed):  # each summaries file with a changed issue, whole
        build.shards[shard] = {
            one.number: summaries(one.number) for one in published if shard_of(one.number) == shard
        }
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
        previous = issues.published_before(session, plan.number)
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


def is_approved(factory: sessionmaker[Session], number: int) -> bool:
    """Whether issue `number` was approved (or is being or was sent)."""
    with factory() as session:
        return issues.by_number(session, number).status is not IssueStatus.DRAFT


def mark_published(
    settings: Settings, factory: sessionmaker[Session], number: int, *, now: datetime | None = None
) -> None:
    """Put issue `number` into the public feeds and archive (from the next publish on)."""
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        if issue.published_at is None:
            issue.published_at = now or utcnow()


def publish(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    force: bool = False,
) -> PublishReport:
    """Write the public files into [publish] output_dir, rendering only what changed since
    the last publish there (`publish.manifest`); refuse (unless `force`) to replace a
    published feed by one with fewer issues."""
    from digest.pipeline.operations import check_feeds_not_shrinking
    from digest.publish.site import write_site

    output_dir = settings.publish.output_dir
    previous = Manifest.load(output_dir)
    built = build_site(settings, factory, now=now, previous=previous)
    if not force:
        check_feeds_not_shrinking(settings, built.files, output_dir)
    return write_site(output_dir, built, previous)
