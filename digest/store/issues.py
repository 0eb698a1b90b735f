"""Issues in the database: one per (cadence, slot), drafts updated in place, announcements.

An issue's slot is unique, so a second scheduler or a manual run updates the same draft
instead of making another issue; once sent, the slot's issue is never drafted again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest.compose import AnnouncedEvent, Curation, IssuePlan
from digest.compose.agenda import event_when
from digest.errors import DigestError, NotFoundError
from digest.store.models import Issue, IssueEvent, IssueStatus


def for_slot(session: Session, cadence: str, slot: datetime) -> Issue | None:
    """Return the issue that owns this slot, if any."""
    query = sa.select(Issue).where(Issue.cadence == cadence, Issue.slot == slot)
    return session.scalar(query)


def by_number(session: Session, number: int) -> Issue:
    """Return issue `number` or raise NotFoundError."""
    issue = session.scalar(sa.select(Issue).where(Issue.number == number))
    if issue is None:
        raise NotFoundError(f"there is no issue #{number}; see `digest draft` to make one")
    return issue


def latest(session: Session, *, status: IssueStatus | None = None) -> Issue | None:
    """Return the newest issue (by number), optionally of one status."""
    query = sa.select(Issue).order_by(Issue.number.desc()).limit(1)
    if status is not None:
        query = query.where(Issue.status == status)
    return session.scalar(query)


def previous_sent(session: Session, cadence: str, before: datetime) -> Issue | None:
    """Return the last issue of this cadence that went out before the slot `before`."""
    query = (
        sa.select(Issue)
        .where(
            Issue.cadence == cadence,
            Issue.slot < before,
            sa.or_(Issue.status == IssueStatus.SENT, Issue.published_at.is_not(None)),
        )
        .order_by(Issue.slot.desc())
        .limit(1)
    )
    return session.scalar(query)


def next_number(session: Session) -> int:
    """Return the number the next new issue gets."""
    return (session.scalar(sa.select(sa.func.max(Issue.number))) or 0) + 1


def raw_curation(issue: Issue) -> dict[str, Any]:
    """Return the curation JSON stored on an issue as a dict (empty when unreadable)."""
    try:
        raw = json.loads(issue.curation or "{}")
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


def curation_of(issue: Issue | None) -> Curation:
    """Return the editor's curation stored on an issue (empty for none)."""
    if issue is None:
        return Curation()
    raw = json.loads(issue.curation or "{}")
    return Curation(
        pinned=tuple(raw.get("pinned", ())),
        dropped=tuple(raw.get("dropped", ())),
        order=tuple(raw.get("order", ())),
        intro=dict(raw.get("intro", {})),
        subject=dict(raw.get("subject", {})),
        split=tuple(raw.get("split", ())),
        joined=tuple((str(a), str(b)) for a, b in raw.get("joined", ())),
        edits={
            str(key): {
                str(lang): {str(k): str(v) for k, v in words.items()}
                for lang, words in dict(by_language).items()
            }
            for key, by_language in dict(raw.get("edits") or {}).items()
        },
        moved={str(k): str(v) for k, v in dict(raw.get("moved") or {}).items()},
        hidden={str(k): tuple(v) for k, v in dict(raw.get("hidden") or {}).items()},
    )


def is_open_draft(issue: Issue) -> bool:
    """Whether the issue can still be re-drafted: a draft nobody has published yet."""
    return issue.status is IssueStatus.DRAFT and issue.published_at is None


def save_draft(session: Session, plan: IssuePlan, *, now: datetime) -> Issue:
    """Store `plan` as the draft of its slot, updating the slot's draft if there is one."""
    issue = for_slot(session, plan.cadence, plan.slot)
    if issue is not None:
        # Lock the row (PostgreSQL) and re-read it: an editor may have approved it, or a
        # sender started it, since the caller looked.
        session.refresh(issue, with_for_update=True)
    if issue is not None and not is_open_draft(issue):
        state = "published" if issue.published_at else issue.status.value
        raise DigestError(
            f"issue #{issue.number} for this slot is {state} already; it is not drafted again"
        )
    if issue is None:
        issue = Issue(
            number=plan.number, cadence=plan.cadence, slot=plan.slot, created_at=now, curation="{}"
        )
        session.add(issue)
    issue.plan = plan.to_json()
    issue.composed_at = plan.composed_at
    issue.updated_at = now
    _record_announcements(session, issue, plan)
    session.flush()
    return issue


def render_problems(issue: Issue) -> list[str]:
    """What would not render when `issue` was last drafted (items left out, templates that
    do not parse), one line each; [] when everything renders."""
    value = issue.render_problems
    return [str(line) for line in value] if isinstance(value, list) else []


def plan_of(issue: Issue) -> IssuePlan:
    """Return the plan stored on an issue."""
    return IssuePlan.from_json(issue.plan)


def _record_announcements(session: Session, issue: Issue, plan: IssuePlan) -> None:
    """Remember how this issue describes each event, for the next issue's change flags."""
    issue.announced.clear()
    session.flush()
    seen: set[int] = set()
    for variant in plan.variants:
        for section in variant.sections:
            for item in section.items:
                if item.kind != "event" or item.uid is None:
                    continue
                event_id = int(item.key.split(":", 1)[1])
                if event_id in seen:
                    continue
                seen.add(event_id)
                when = event_when(
                    item.all_day, item.starts_at, item.ends_at, item.start_date, item.end_date
                )
                issue.announced.append(
                    IssueEvent(
                        event_id=event_id, when=when, location=item.location, status=item.status
                    )
                )


def announcements_before(
    session: Session, slot: datetime, *, cadence: str | None = None
) -> dict[int, AnnouncedEvent]:
    """Return, per event id, how the latest issue that went out before `slot` described it;
    with `cadence`, only issues of that cadence count: a change is news to the readers who
    were told about the event, not to those of the other cadence (whose issue announcing
    it must not use the change up)."""
    query = (
        sa.select(IssueEvent, Issue.slot)
        .join(Issue)
        .where(
            Issue.slot < slot,
            sa.true() if cadence is None else Issue.cadence == cadence,
            sa.or_(Issue.status == IssueStatus.SENT, Issue.published_at.is_not(None)),
        )
        .order_by(Issue.slot)
    )
    found: dict[int, AnnouncedEvent] = {}
    for row, _slot in session.execute(query):
        found[row.event_id] = AnnouncedEvent(
            when=row.when, location=row.location, status=row.status
        )
    return found


def published(session: Session) -> Sequence[Issue]:
    """Return the issues in the public feeds and archive, newest first."""
    query = sa.select(Issue).where(Issue.published_at.is_not(None)).order_by(Issue.number.desc())
    return session.scalars(query).all()


def published_before(session: Session, number: int) -> Issue | None:
    """The latest published issue before issue `number`, or None."""
    query = (
        sa.select(Issue)
        .where(Issue.published_at.is_not(None), Issue.number < number)
        .order_by(Issue.number.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def published_rows(session: Session) -> list[tuple[int, datetime, datetime, str | None]]:
    """(number, published_at, updated_at, SHA-256 of the plan) of every published issue,
    oldest first, without loading the plans (`plans_of` loads the ones needed)."""
    query = (
        sa.select(Issue.number, Issue.published_at, Issue.updated_at, Issue.plan_sha256)
        .where(Issue.published_at.is_not(None))
        .order_by(Issue.number)
    )
    return [
        (number, published_at, updated_at, digest)
        for number, published_at, updated_at, digest in session.execute(query)
        if published_at is not None
    ]


def plans_of(session: Session, numbers: Iterable[int]) -> dict[int, str]:
    """The stored plans of issues `numbers` (number → JSON), in batches."""
    wanted = sorted(set(numbers))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        batch = wanted[start : start + 500]
        query = sa.select(Issue.number, Issue.plan).where(Issue.number.in_(batch))
        found.update({number: plan for number, plan in session.execute(query)})
    return found
