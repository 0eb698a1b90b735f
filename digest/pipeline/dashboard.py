"""The editor's dashboard: the next slot of each cadence and its draft, the latest issues
with their deliveries, subscribers by status and language, and the health of every source.

    desk()       everything the dashboard shows, as plain values
    next_slot()  the slot `digest draft` would work on now, and its issue
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.compose import slots as slotting
from digest.config import Settings
from digest.pipeline import retention, schedule_of, utcnow
from digest.render.i18n import format_when
from digest.store import issues
from digest.store.models import Delivery, DeliveryState, EntrySource, Event, Issue, Source
from subscribers.model import Subscriber, SubscriberStatus

RECENT_ISSUES = 8


def moment_text(moment: datetime, language: str, timezone: str) -> str:
    """Say when `moment` is, in `language` and the publication's `timezone`:
    "maandag 30 november 2026, 08:00"."""
    return format_when(
        all_day=False,
        starts_at=moment,
        ends_at=None,
        start_date=None,
        end_date=None,
        language=language,
        timezone=timezone,
    )


def desk_url(base_url: str, language: str, number: int) -> str:
    """Return the page where an editor curates and approves issue `number`."""
    return f"{base_url.rstrip('/')}/{language}/admin/issues/{number}"


@dataclass(frozen=True)
class IssueRow:
    """One issue as the dashboard lists it, with its delivery counts (empty before a send)."""

    number: int
    cadence: str
    slot: datetime
    status: str
    approved_at: datetime | None
    sent_at: datetime | None
    published_at: datetime | None
    paused_reason: str | None
    items: int
    """Items in the default language's variant (what its readers get, before topics)."""
    deliveries: dict[str, int] = field(default_factory=dict)
    notified_at: str | None = None
    paused_kind: str | None = None
    """"relay" (resumes by itself) or "operator" (a person must act), when paused."""

    @property
    def total(self) -> int:
        """Rows in the ledger."""
        return sum(self.deliveries.values())

    def share(self, state: str) -> float | None:
        """The fraction of the ledger in `state`, or None without a ledger."""
        return self.deliveries.get(state, 0) / self.total if self.total else None


@dataclass(frozen=True)
class NextSlot:
    """The next slot of one cadence, and the issue drafted for it if there is one."""

    cadence: str
    slot: datetime
    issue: IssueRow | None


@dataclass(frozen=True)
class SourceRow:
    """A source's health as the dashboard shows it."""

    name: str
    kind: str
    active: bool
    last_fetched_at: datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    next_fetch_at: datetime | None
    items: int


@dataclass(frozen=True)
class Desk:
    """Everything the dashboard shows, as plain values."""

    now: datetime
    approval: str
    next_slots: tuple[NextSlot, ...]
    issues: tuple[IssueRow, ...]
    subscribers: dict[str, dict[str, int]]
    """status → language → count (statuses and languages with none are left out)."""
    sources: tuple[SourceRow, ...]
    subscriber_languages: tuple[str, ...] = ()
    """The publication's languages, then any other a subscriber still has."""
    attention: tuple[tuple[str, str], ...] = ()
    """(level, text) of what the issues under way need, as `digest status` says it:
    level "critical" (paused, stuck, in flight with no sender, late) or "warning"."""


def _issue_row(issue: Issue, language: str, deliveries: dict[str, int]) -> IssueRow:
    plan = issues.plan_of(issue)
    return IssueRow(
        number=issue.number,
        cadence=issue.cadence,
        slot=issue.slot,
        status=issue.status.value,
        approved_at=issue.approved_at,
        sent_at=issue.sent_at,
        published_at=issue.published_at,
        paused_reason=issue.paused_reason,
        items=plan.variant(language).item_count,
        deliveries=deliveries,
        notified_at=issues.raw_curation(issue).get("notified_at"),
        paused_kind=issue.paused_kind,
    )


def _delivery_counts(session: Session, issue_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = {}
    if not issue_ids:
        return found
    rows = session.execute(
        sa.select(Delivery.issue_id, Delivery.state, sa.func.count())
        .where(Delivery.issue_id.in_(list(issue_ids)))
        .group_by(Delivery.issue_id, Delivery.state)
    ).all()
    for issue_id, state, count in rows:
        found.setdefault(issue_id, {})[DeliveryState(state).value] = count
    return found


def next_slot(
    settings: Settings, session: Session, cadence: str, now: datetime
) -> tuple[datetime, Issue | None]:
    """The slot `digest draft` would work on now, and its issue (as `pipeline.draft` walks)."""
    schedule = schedule_of(settings, cadence)
    zone = settings.publication.timezone
    grace = timedelta(hours=settings.issue.grace_hours)
    slot = slotting.current_slot(schedule, now, zone, grace)
    existing = issues.for_slot(session, cadence, slot)
    while existing is not None and not issues.is_open_draft(existing):
        slot = slotting.next_slot(schedule, slot, zone)
        existing = issues.for_slot(session, cadence, slot)
    return slot, existing


def desk(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime | None = None
) -> Desk:
    """Return what the dashboard shows: the next slot of each cadence and its draft, the
    latest issues with their deliveries, subscribers by status and language, and the
    health of every source."""
    now = now or utcnow()
    language = settings.default_language
    with factory() as session:
        recent = session.scalars(
            sa.select(Issue).order_by(Issue.number.desc()).limit(RECENT_ISSUES)
        ).all()
        counts = _delivery_counts(session, [issue.id for issue in recent])
        rows = tuple(
            _issue_row(i, language, counts.get(i.id) or retention.totals(i)) for i in recent
        )
        upcoming = []
        for cadence in ("weekly", "daily"):
            slot, existing = next_slot(settings, session, cadence, now)
            row = None
            if existing is not None:
                row = next((r for r in rows if r.number == existing.number), None) or (
                    _issue_row(existing, language, {})
                )
            upcoming.append(NextSlot(cadence, slot, row))
        people: dict[str, dict[str, int]] = {}
        for status, lang, count in session.execute(
            sa.select(Subscriber.status, Subscriber.language, sa.func.count()).group_by(
                Subscriber.status, Subscriber.language
            )
        ).all():
            people.setdefault(SubscriberStatus(status).value, {})[lang] = count
        entries = dict(
            session.execute(
                sa.select(EntrySource.source_id, sa.func.count()).group_by(EntrySource.source_id)
            ).all()
        )
        events = dict(
            session.execute(
                sa.select(Event.source_id, sa.func.count()).group_by(Event.source_id)
            ).all()
        )
        sources = tuple(
            SourceRow(
                name=s.name,
                kind=s.kind.value,
                active=s.active,
                last_fetched_at=s.last_fetched_at,
                last_status=s.last_status,
                last_error=s.last_error,
                consecutive_failures=s.consecutive_failures,
                next_fetch_at=s.next_fetch_at,
                items=entries.get(s.id, 0) + events.get(s.id, 0),
            )
            for s in session.scalars(sa.select(Source).order_by(Source.active.desc(), Source.name))
        )
    from digest.pipeline import health  # the scheduler's module, loaded with the desk only

    with factory() as session:
        attention = tuple(
            (health.LEVELS[f.level], f.text) for f in health.issue_findings(session, now)
        )
    ordered: dict[str, dict[str, int]] = {
        s.value: people[s.value] for s in SubscriberStatus if s.value in people
    }
    seen = {language for row in ordered.values() for language in row}
    known = list(settings.publication.languages)
    return Desk(
        now=now,
        approval=settings.issue.approval,
        next_slots=tuple(upcoming),
        issues=rows,
        subscribers=ordered,
        sources=sources,
        subscriber_languages=(*known, *sorted(seen - set(known))),
        attention=attention,
    )
