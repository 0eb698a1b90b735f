"""The one place that strings the stages together; the CLI, web app and scheduler call it.

    sources ─collect─▶ Entry / Event ─store─▶ DB ─compose─▶ IssuePlan ─render─▶ …

Collecting (fetch, parse in bounded workers, store in bulk) lives in `collecting`; its
verbs are re-exported here for the CLI, web app and scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import compose, layout, render
from digest.compose import slots
from digest.config import Settings, database_url
from digest.errors import DigestError
from digest.render import Links, Omitted, RenderedEmail
from digest.store import candidates, db, issues
from digest.store.models import Issue, IssueStatus, Source

if TYPE_CHECKING:
    # Imported where used: a command that fetches, renders or writes nothing (`digest
    # status`, `digest --version`) does not pay for httpx, the parsers or premailer.
    import jinja2

    from digest.publish import PublishReport, SiteBuild
    from digest.publish.manifest import Manifest

from digest.pipeline.collecting import CollectReport as CollectReport
from digest.pipeline.collecting import SourceReport as SourceReport
from digest.pipeline.collecting import calendar_window as calendar_window
from digest.pipeline.collecting import check_sources as check_sources
from digest.pipeline.collecting import collect_sources as collect_sources

log = logging.getLogger("digest.pipeline")


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Return a session factory on the configured database, after checking it exists and
    is at this digest's schema revision (only `digest init` creates one)."""
    engine = db.connect(database_url(settings), pool=database_pool(settings))
    try:
        db.open_existing(engine)
    except BaseException:
        engine.dispose()
        raise
    return db.session_factory(engine)


def database_pool(settings: Settings) -> db.Pool:
    """The [database] pool settings."""
    found = settings.database
    return db.Pool(
        size=found.pool_size,
        max_overflow=found.max_overflow,
        timeout_seconds=found.pool_timeout_seconds,
        recycle_seconds=found.pool_recycle_seconds,
        pre_ping=found.pool_pre_ping,
    )


def utcnow() -> datetime:
    """The current time, aware UTC (the only clock the pipeline reads)."""
    return datetime.now(UTC)


def describe_source(source: Source) -> dict[str, Any]:
    """A source's state as plain values, for `digest sources list` and the dashboard."""
    return {
        "name": source.name,
        "kind": source.kind.value,
        "url": source.url,
        "language": source.language,
        "section": source.section,
        "topics": list(source.topics),
        "origin": source.origin.value,
        "active": source.active,
        "last_fetched_at": source.last_fetched_at,
        "last_status": source.last_status,
        "last_error": source.last_error,
        "consecutive_failures": source.consecutive_failures,
        "next_fetch_at": source.next_fetch_at,
    }


# --- draft --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drafted:
    """The draft `digest draft` saved."""

    number: int
    slot: datetime
    cadence: str
    plan: compose.IssuePlan
    created: bool
    """False when the slot's existing draft was updated."""


def schedule_of(settings: Settings, cadence: str) -> slots.Schedule:
    """Return the schedule of the weekly or daily issue."""
    if cadence == "daily":
        return slots.parse_daily(settings.issue.daily_schedule)
    return slots.parse_weekly(settings.issue.schedule)


def labels_of(settings: Settings) -> compose.Labels:
    """The publication's title, section and topic labels per language, from the settings."""
    pub = settings.publication
    return compose.Labels(
        titles={language: pub.title_in(language) for language in pub.languages},
        sections={name: dict(labels) for name, labels in settings.labels.sections.items()},
        topics={name: dict(labels) for name, labels in settings.labels.topics.items()},
    )


def rules_of(settings: Settings, cadence: str = "weekly") -> compose.Rules:
    """Return what compose needs to know of the settings, for the `cadence` issue (the
    daily one shows events `daily_event_horizon_days` ahead)."""
    horizon = settings.issue.event_horizon_days
    if cadence == "daily":
        horizon = settings.issue.daily_event_horizon_days
    return compose.Rules(
        title=settings.publication.title,
        languages=tuple(settings.publication.languages),
        timezone=settings.publication.timezone,
        news_window_days=settings.issue.news_window_days,
        event_horizon_days=horizon,
        other_languages=settings.issue.other_languages,
        max_per_section=settings.issue.max_items_per_section,
        excerpt_words=settings.issue.excerpt_words,
    )


def draft(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    cadence: str = "weekly",
) -> Drafted:
    """Compose the issue of the current slot from what is stored and save it as its draft."""
    now = now or utcnow()
    try:
        return _draft_once(settings, factory, now, cadence)
    except sa.exc.IntegrityError:
        # Another process created this slot's issue between our read and our insert: the
        # slot is unique, so retrying finds and updates that one instead.
        return _draft_once(settings, factory, now, cadence)


def _draft_once(
    settings: Settings, factory: sessionmaker[Session], now: datetime, cadence: str
) -> Drafted:
    schedule = schedule_of(settings, cadence)
    zone = settings.publication.timezone
    grace = timedelta(hours=settings.issue.grace_hours)
    from digest.compose.plan import compose as compose_plan

    with db.transaction(factory) as session:
        slot = slots.current_slot(schedule, now, zone, grace)
        existing = issues.for_slot(session, cadence, slot)
        while existing is not None and not issues.is_open_draft(existing):
            slot = slots.next_slot(schedule, slot, zone)
            existing = issues.for_slot(session, cadence, slot)
        previous = issues.previous_sent(session, cadence, slot)
        window_start = now - timedelta(days=settings.issue.news_window_days)
        news_since = max(previous.composed_at, window_start) if previous else window_start
        plan = compose_plan(
            candidates.news_candidates(session, since=news_since),
            candidates.event_candidates(
                session,
                after=now,
                announced=issues.announcements_before(session, slot, cadence=cadence),
            ),
            rules=rules_of(settings, cadence),
            now=now,
            number=existing.number if existing else issues.next_number(session),
            cadence=cadence,
            slot=slot,
            news_since=news_since,
            curation=issues.curation_of(existing),
        )
        plan = replace(plan, labels=labels_of(settings))
        issue = issues.save_draft(session, plan, now=now)
        issue.render_problems = render_check(settings, plan)
        return Drafted(plan.number, slot, cadence, plan, created=existing is None)


def full_plan(settings: Settings, session: Session, issue: Issue) -> compose.IssuePlan:
    """The plan of `issue` with the items it holds only the keys of (capped out of the
    email) looked up in the store: what the archive page and the desk list."""
    plan = issues.plan_of(issue)
    keys = plan.rest_keys()
    if not keys:
        return plan
    rules = rules_of(settings, plan.cadence)
    return plan.with_rest(candidates.plan_items(session, keys, rules=rules))


def render_check(settings: Settings, plan: compose.IssuePlan) -> list[str]:
    """What in `plan` would not render, one line each (see `issues.render_problems`): the
    override templates that do not parse, and per variant the items that fail."""
    from digest.render import overrides
    from digest.render.email import check_items, describe_error

    found = overrides.problems(settings.render.templates_dir)
    if found:
        return found
    env = environment(settings)
    for variant in plan.variants:
        links = sample_links(settings, plan.number, variant.language)
        try:
            failed = check_items(plan, variant.language, links, env)
        except Exception as exc:  # the renderer itself, not an item: say so, never stop
            found.append(f"[{variant.language}] {describe_error(exc)}")
            continue
        found.extend(f"[{variant.language}] {o.title[:80]!r}: {o.reason}" for o in failed)
    for line in found:
        log.warning("issue #%d: %s", plan.number, line)
    return found


def find_issue(session: Session, number: int | None) -> Issue:
    """Return issue `number`, or the latest draft (else the latest issue) when None."""
    if number is not None:
        return issues.by_number(session, number)
    found = issues.latest(session, status=IssueStatus.DRAFT) or issues.latest(session)
    if found is None:
        raise DigestError("there is no issue yet; run `digest draft` first")
    return found


# --- render, preview, publish -------------------------------------------------------------


def environment(settings: Settings) -> jinja2.Environment:
    """The Jinja environment with the operator's templates first."""
    from digest.render.environment import make_environment

    return make_environment(
        settings.render.templates_dir,
        postal_address=settings.publication.postal_address,
        images_policy=settings.render.images,
    )


def public_links(settings: Settings, number: int, language: str) -> Links:
    """Links for the archive copy of an issue: nobody's personal tokens."""
    base = settings.publication.base_url.rstrip("/")
    return Links(
        base_url=base,
        archive_url=layout.url(base, layout.issue_page(number, language)),
        unsubscribe_url=f"{base}/{language}/unsubscribe",
        preferences_url=f"{base}/{language}/preferences",
    )


def sample_links(settings: Settings, number: int, language: str) -> Links:
    """Links as a subscriber gets them, with a sample token in place of theirs."""
    public = public_links(settings, number, language)
    return replace(
        public,
        unsubscribe_url=f"{public.unsubscribe_url}/{SAMPLE_TOKEN}",
        preferences_url=f"{public.preferences_url}/{SAMPLE_TOKEN}",
    )


SAMPLE_TOKEN = "preview-sample-token"  # noqa: S105 - a placeholder, not a secret


def _check_language(settings: Settings, language: str) -> None:
    if language not in settings.publication.languages:
        raise DigestError(
            f"{language!r} is not a language of this publication "
            f"({', '.join(settings.publication.languages)}); see [publication] languages"
        )


def preview(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    number: int | None = None,
    language: str | None = None,
    topics: Sequence[str] = (),
) -> RenderedEmail:
    """Render an issue (default: the latest draft) exactly as a subscriber gets it (one who
    chose `topics`; none: everything)."""
    language = language or settings.default_language
    _check_language(settings, language)
    with factory() as session:
        issue = find_issue(session, number)
        plan = issues.plan_of(issue)
    if topics:
        from digest.compose.plan import for_topics

        plan = for_topics(plan, topics)
    from digest.render.email import render_for_inbox

    return render_for_inbox(
        plan, language, sample_links(settings, plan.number, language), environment(settings)
    )


CHANNELS = render.CHANNELS
"""What `digest preview --channel` and the desk can show of an issue."""


@dataclass(frozen=True)
class ChannelPreview:
    """An issue as one channel's readers get it."""

    channel: str
    language: str
    subject: str
    body: str
    """An HTML document (email, archive, feed) or plain text (text)."""
    omitted: tuple[Omitted, ...] = ()
    """Items left out of the email because they do not render (email and text only)."""


def preview_channel(
    settings: Settings,
    factory: sessionmaker[Session],
    channel: str,
    *,
    number: int | None = None,
    language: str | None = None,
    topics: Sequence[str] = (),
) -> ChannelPreview:
    """Render an issue (default: the latest draft) as `channel` shows it: "email" (the HTML
    a subscriber gets), "text" (its text part), "archive" (its page on the archive website)
    or "feed" (its Atom entry as a feed reader shows it)."""
    if channel not in CHANNELS:
        raise DigestError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    language = language or settings.default_language
    if channel in ("email", "text"):
        rendered = preview(settings, factory, number=number, language=language, topics=topics)
        body = rendered.html if channel == "email" else rendered.text
        return ChannelPreview(
            channel, rendered.language, rendered.subject, body, tuple(rendered.omitted)
        )
    _check_language(settings, language)
    from digest.pipeline import publishing

    with factory() as session:
        issue = find_issue(session, number)
        # The archive page lists every item; the feed entry what the email shows.
        stored = full_plan(settings, session, issue) if channel == "archive" else None
        stored = stored or issues.plan_of(issue)
        plan = replace(stored.complete(), labels=labels_of(settings))
        published_at = issue.published_at or plan.slot
    env = environment(settings)
    if channel == "archive":
        body = publishing.issue_page(settings, factory, plan, language, published_at, env)
    else:
        body = publishing.feed_entry_page(settings, plan, language, env)
    return ChannelPreview(channel, language, publishing.subject_of(plan, language), body)


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


def build_site(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    previous: Manifest | None = None,
) -> SiteBuild:
    """Build the public files in memory: archive site, feeds, search index, calendars
    (with `previous`, the last publish's manifest, only what changed is rendered)."""
    from digest.pipeline import publishing  # it uses this module's helpers

    return publishing.build_site(settings, factory, now=now or utcnow(), previous=previous)


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
    from digest.publish.manifest import Manifest
    from digest.publish.site import write_site

    output_dir = settings.publish.output_dir
    previous = Manifest.load(output_dir)
    built = build_site(settings, factory, now=now, previous=previous)
    if not force:
        check_feeds_not_shrinking(settings, built.files, output_dir)
    return write_site(output_dir, built, previous)
