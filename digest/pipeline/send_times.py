"""When an approved issue goes out: at its slot (the scheduler's decision), or at a time an
editor chose. `digest send N --at "2026-12-08 09:00"` and the desk's "Schedule" both call
`schedule_send`; `digest send N --unschedule` and the desk's "Cancel" call `cancel_send`.

    schedule_send()  issue N (approved) goes out at a given time, in the publication's zone
    cancel_send()    back to its slot
    parse_local()    "2026-12-08 09:00" (or the browser's "2026-12-08T09:00") → aware UTC
    due()            approved issues whose chosen time has come (the scheduler sends them)
    waiting()        whether an approved issue waits for a chosen time still to come

The time is kept on the issue (`Issue.send_at`). The scheduler's issue ticks and `digest
run` send an approved issue with a chosen time once that time has come (within
`[issue] grace_hours` of it), and never at its slot before it.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.pipeline import utcnow
from digest.pipeline.curation import DeskError
from digest.store import db, issues
from digest.store.models import Issue, IssueStatus

FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class SendTime:
    """When issue `number` goes out: `at` (aware UTC) when an editor chose it, else its slot."""

    number: int
    status: str
    slot: datetime
    at: datetime | None

    @property
    def goes_at(self) -> datetime:
        """The moment the scheduler sends it (once approved)."""
        return self.at or self.slot


def parse_local(text: str, timezone: str) -> datetime:
    """Read "YYYY-MM-DD HH:MM" in the publication's `timezone` (an offset given in the text
    wins) and return it as aware UTC; `DeskError` "time_invalid" when it is not one."""
    text = text.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        moment = None
    if moment is None:
        for pattern in FORMATS:
            try:
                moment = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        raise DeskError(
            f"{text!r} is not a date and time like 2026-12-08 09:00", "time_invalid", text=text
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return moment.astimezone(UTC)


def send_time(factory: sessionmaker[Session], number: int) -> SendTime:
    """Return when issue `number` goes out."""
    with factory() as session:
        issue = issues.by_number(session, number)
        return SendTime(number, issue.status.value, issue.slot, issue.send_at)


def schedule_send(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    at: datetime | str,
    *,
    now: datetime | None = None,
) -> SendTime:
    """Have approved issue `number` go out at `at` (a moment, or text in the publication's
    zone) instead of its slot; scheduling it again moves the time.

    Raises `DeskError`: "time_invalid" (not a time), "time_past" (not after now),
    "not_approved" (a draft: approve it first; or already sending or sent).
    """
    now = now or utcnow()
    zone = settings.publication.timezone
    moment = parse_local(at, zone) if isinstance(at, str) else at.astimezone(UTC)
    if moment <= now:
        raise DeskError(
            f"{moment:%Y-%m-%d %H:%M} UTC has passed; choose a time after now",
            "time_past",
            text=str(at) if isinstance(at, str) else f"{moment:%Y-%m-%d %H:%M}",
        )
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        if issue.status is not IssueStatus.APPROVED:
            raise DeskError(
                f"issue #{number} is {issue.status.value}; only an approved issue that has not "
                f"gone out can be scheduled (`digest approve {number}` first)",
                "not_approved",
                number=number,
                status=issue.status.value,
            )
        issue.send_at = moment
        return SendTime(number, issue.status.value, issue.slot, moment)


def cancel_send(factory: sessionmaker[Session], number: int) -> SendTime:
    """Forget the time chosen for issue `number`: it goes out at its slot (if still approved)."""
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        issue.send_at = None
        return SendTime(number, issue.status.value, issue.slot, None)


def due(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime, cadence: str | None = None
) -> tuple[list[int], list[int]]:
    """Approved issues (of `cadence`, or every one) whose chosen time has come: (those to
    send now, those whose time passed more than `[issue] grace_hours` ago)."""
    grace = timedelta(hours=settings.issue.grace_hours)
    query = sa.select(Issue.number, Issue.send_at).where(
        Issue.status == IssueStatus.APPROVED,
        Issue.send_at.is_not(None),
        Issue.send_at <= now,
    )
    if cadence is not None:
        query = query.where(Issue.cadence == cadence)
    ready: list[int] = []
    late: list[int] = []
    with factory() as session:
        for number, at in session.execute(query.order_by(Issue.send_at)).all():
            (late if at is not None and now - at > grace else ready).append(number)
    return ready, late


def waiting(factory: sessionmaker[Session], number: int, now: datetime) -> datetime | None:
    """The time issue `number` waits for, when an editor chose one still to come; else None."""
    with factory() as session:
        at = issues.by_number(session, number).send_at
    return at if at is not None and at > now else None
