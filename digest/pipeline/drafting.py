"""Drafting an issue: the slot's plan composed from what is stored and saved as its draft,
and what compose needs to know of the settings (schedule, labels, rules)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import compose
from digest.compose import slots
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline.database import utcnow
from digest.store import candidates, db, issues
from digest.store.models import Issue, IssueStatus

log = logging.getLogger("digest.pipeline")


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
    from digest.pipeline.previews import environment, sample_links  # they import this module
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
