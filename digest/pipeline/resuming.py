"""Paused issues: relay pauses resumed by themselves, the others said to need a person.

    resume_tick   every paused issue: a relay pause whose time came is sent again (backoff
                  in `pauses.STEPS`, each attempt logged); past the next slot, or for an
                  operator pause, it waits for a person and says so once

The editors get one notice when an issue pauses and one when it resumes by itself. The
notices leave through the same relay that failed, so the pause notice is tried at every
tick until a server takes it (it may arrive just before the resume notice); the log line
and `digest status` say it at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.compose import slots
from digest.config import Settings
from digest.deliver import Sender
from digest.pipeline import alerts, pauses
from digest.pipeline.retries import send_issue
from digest.pipeline.tick_report import TickReport, span
from digest.store import db, issues, runs
from digest.store.models import Issue, IssueStatus, PauseKind

log = logging.getLogger(__name__)

Alert = Callable[..., alerts.Alerted]
"""`alerts.alert_editors`, or a test's stand-in with the same keywords."""


@dataclass(frozen=True)
class _Paused:
    number: int
    kind: PauseKind
    reason: str
    paused_at: datetime | None
    attempts: int
    resume_at: datetime | None
    cadence: str
    slot: datetime


def paused_issues(session: Session) -> list[_Paused]:
    """Every issue being sent that is paused, by number."""
    found = session.scalars(
        sa.select(Issue)
        .where(Issue.status == IssueStatus.SENDING, Issue.paused_reason.is_not(None))
        .order_by(Issue.number)
    ).all()
    return [
        _Paused(
            issue.number,
            pauses.kind_of(issue) or PauseKind.OPERATOR,
            issue.paused_reason or "",
            issue.paused_at,
            issue.resume_attempts or 0,
            issue.resume_at,
            issue.cadence,
            issue.slot,
        )
        for issue in found
    ]


def resume_tick(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime,
    stop: threading.Event | None = None,
    make_sender: Callable[[], Sender] | None = None,
    alert: Alert = alerts.alert_editors,
) -> TickReport:
    """Look after every paused issue at `now` (see the module docstring)."""
    report = TickReport("resume-paused")
    stop = stop or threading.Event()
    with factory() as session:
        paused = paused_issues(session)
    for issue in paused:
        if stop.is_set():
            break
        if issue.kind is PauseKind.RELAY:
            _relay(settings, factory, issue, now, stop, make_sender, alert, report)
        else:
            _needs_a_person(settings, factory, issue, now, alert, report)
    return report


def _update(factory: sessionmaker[Session], number: int, **values: object) -> None:
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        for name, value in values.items():
            setattr(issue, name, value)


def _tell(
    settings: Settings,
    factory: sessionmaker[Session],
    key: str,
    subject: str,
    text: str,
    kind: str,
    now: datetime,
    alert: Alert,
    report: TickReport,
    number: int,
) -> None:
    """Mail the editors once under mark `key`; a refused mail is tried again next tick."""
    with factory() as session:
        if runs.is_marked(session, key):
            return
    if not [e for e in settings.web.editors if e.strip()]:
        with db.transaction(factory) as session:
            runs.mark_once(session, key, now=now, note="no editors")
        report.say(
            f"nobody is mailed that issue #{number} {kind}: [web] editors is empty",
            event="editors.none",
            level=logging.WARNING,
            issue=number,
        )
        return
    try:
        sent = alert(settings, subject=subject, text=text, kind=kind, now=now)
    except Exception as exc:  # a notice must never stop the resume itself
        sent = alerts.Alerted((), (("editors", repr(exc)),))
    if sent.delivered:
        with db.transaction(factory) as session:
            runs.mark_once(session, key, now=now, note=", ".join(sent.told))
        report.say(
            f"editors told that issue #{number} {kind}",
            event=f"editors.{kind}",
            issue=number,
        )
        return
    why = "; ".join(f"{who}: {what}" for who, what in sent.failed) or "no answer"
    report.detail(
        f"could not tell the editors yet that issue #{number} {kind} ({why}); "
        "tried again at the next tick",
        event="editors.failed",
        issue=number,
    )


def _pause_text(issue: _Paused, advice: str) -> str:
    return (
        f"Issue #{issue.number} ({issue.cadence}) stopped sending: {issue.reason}\n\n"
        f"What happens now: {advice}\n"
    )


def _relay(
    settings: Settings,
    factory: sessionmaker[Session],
    issue: _Paused,
    now: datetime,
    stop: threading.Event,
    make_sender: Callable[[], Sender] | None,
    alert: Alert,
    report: TickReport,
) -> None:
    number = issue.number
    told_key = f"pause-told:{number}"
    resume_at = issue.resume_at
    stale = resume_at is not None and issue.paused_at is not None and resume_at < issue.paused_at
    if resume_at is None or stale:
        # A new pause (a pause retried by the scheduler always has its next attempt after
        # the moment it paused): start the backoff from its first step.
        # On the minute: the job runs every minute, so 07:01:00.4 would wait till 07:02.
        resume_at = ((issue.paused_at or now) + pauses.backoff(0)).replace(second=0, microsecond=0)
        _update(factory, number, resume_attempts=0, resume_at=resume_at)
        issue = _Paused(**{**issue.__dict__, "attempts": 0, "resume_at": resume_at})
        with db.transaction(factory) as session:
            runs.unmark(session, told_key)
        report.say(
            f"issue #{number} is paused by the relay ({issue.reason}); the scheduler tries "
            f"again by itself from {resume_at:%Y-%m-%d %H:%M} UTC",
            event="issue.paused",
            level=logging.WARNING,
            issue=number,
            kind=issue.kind.value,
            resume_at=resume_at,
        )
    schedule = pipeline.schedule_of(settings, issue.cadence)
    following = slots.next_slot(schedule, issue.slot, settings.publication.timezone)
    if now >= following:
        _give_up(settings, factory, issue, now, following, alert, report)
        return
    with factory() as session:
        advice = pauses.advice(issues.by_number(session, number))
    _tell(
        settings, factory, told_key, f"issue #{number} paused", _pause_text(issue, advice),
        "paused", now, alert, report, number,
    )  # fmt: skip
    if now < resume_at:
        report.detail(
            f"issue #{number} paused; next automatic attempt at {resume_at:%Y-%m-%d %H:%M} UTC",
            event="issue.waiting_relay",
            issue=number,
        )
        return
    attempt = issue.attempts + 1
    # The next time is set before trying, so a crash during the attempt does not turn the
    # backoff into a loop.
    _update(factory, number, resume_attempts=attempt, resume_at=now + pauses.backoff(attempt))
    since = span(now - issue.paused_at) if issue.paused_at else "a while"
    report.say(
        f"issue #{number}: automatic resume attempt {attempt} (paused {since} ago: {issue.reason})",
        event="issue.resuming",
        issue=number,
        attempt=attempt,
    )
    send_issue(settings, factory, number, now, stop, make_sender, report)
    with factory() as session:
        after = issues.by_number(session, number)
        still = after.paused_reason is not None
    if still:
        return
    _update(factory, number, resume_attempts=0, resume_at=None)
    report.say(
        f"issue #{number} resumed by itself at attempt {attempt}, {since} after it paused",
        event="issue.resumed",
        issue=number,
        attempts=attempt,
    )
    text = (
        f"Issue #{number} ({issue.cadence}) was paused {since} ({issue.reason}) and has "
        f"resumed by itself at attempt {attempt}. `digest status` shows where it stands.\n"
    )
    _tell(
        settings, factory, told_key, f"issue #{number} paused", _pause_text(issue, "resumed"),
        "paused", now, alert, report, number,
    )  # fmt: skip
    _tell(
        settings, factory, f"resume-told:{number}:{now.isoformat()}",
        f"issue #{number} resumed", text, "resumed", now, alert, report, number,
    )  # fmt: skip
    with db.transaction(factory) as session:
        runs.unmark(session, told_key)


def _give_up(
    settings: Settings,
    factory: sessionmaker[Session],
    issue: _Paused,
    now: datetime,
    following: datetime,
    alert: Alert,
    report: TickReport,
) -> None:
    """The next slot came while the relay kept failing: hand the pause to a person."""
    reason = (
        f"{issue.reason} (not resumed by itself: the relay kept failing until the next "
        f"{issue.cadence} slot, {following:%Y-%m-%d %H:%M} UTC)"
    )
    _update(
        factory,
        issue.number,
        paused_kind=PauseKind.OPERATOR.value,
        paused_reason=reason,
        resume_at=None,
    )
    with db.transaction(factory) as session:
        runs.unmark(session, f"pause-told:{issue.number}")
    _needs_a_person(
        settings,
        factory,
        _Paused(**{**issue.__dict__, "kind": PauseKind.OPERATOR, "reason": reason}),
        now,
        alert,
        report,
    )


def _needs_a_person(
    settings: Settings,
    factory: sessionmaker[Session],
    issue: _Paused,
    now: datetime,
    alert: Alert,
    report: TickReport,
) -> None:
    """Say once per pause that it waits for a person, and tell the editors."""
    number = issue.number
    stamp = issue.paused_at.isoformat() if issue.paused_at else "?"
    key = f"operator-pause:{number}:{stamp}"
    advice = (
        f"waits for a person: fix the cause, then `digest send {number}` "
        "(the scheduler does not retry it)"
    )
    with db.transaction(factory) as session:
        first = runs.mark_once(session, key, now=now)
    text = f"issue #{number} is paused: {issue.reason}; {advice}"
    if first:
        report.say(text, event="issue.paused", level=logging.ERROR, issue=number, kind="operator")
    else:
        report.detail(text, event="issue.paused", issue=number)
    _tell(
        settings, factory, f"{key}:told", f"issue #{number} paused: needs a person",
        _pause_text(issue, advice), "paused", now, alert, report, number,
    )  # fmt: skip
