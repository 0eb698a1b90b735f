"""The delivery retries: issues being sent whose deliveries are due again (a 4xx's retry
time came, or a stopped or crashed send left rows), and the queued confirmation mails.

    retry_tick     deliveries a 4xx left for later, and sends cut off by a shutdown

`send_issue` sends or resumes one issue for any tick (the issue tick, `resuming`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Sender
from digest.errors import ConfigError, DeliveryError, DigestError
from digest.pipeline import pauses, sending
from digest.pipeline.tick_report import TickReport
from digest.pipeline.upkeep import publish_reported
from digest.store import deliveries, issues, runs
from digest.store.models import Delivery, DeliveryState, Issue, IssueStatus


def send_issue(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    now: datetime,
    stop: threading.Event,
    make_sender: Callable[[], Sender] | None,
    report: TickReport,
) -> None:
    """Send (or resume) issue `number`; publish once it is all sent."""
    if stop.is_set():
        report.say(
            f"issue #{number} not sent now: shutting down; it goes at the next start",
            event="issue.deferred",
            issue=number,
        )
        return
    try:
        sent = sending.send(
            settings, factory, number=number, now=now, stop=stop, make_sender=make_sender
        )
    except DeliveryError as exc:
        # Another process holds the send lock: it is sending this issue right now.
        report.say(f"issue #{number}: {exc}", event="issue.busy", issue=number)
        return
    except DigestError as exc:
        report.say(
            f"issue #{number} cannot be sent: {exc}",
            event="issue.failed",
            level=logging.ERROR,
            issue=number,
        )
        return
    counts = sent.counts
    tally = (
        f"{counts.get(DeliveryState.SENT, 0)} sent, {counts.get(DeliveryState.FAILED, 0)} "
        f"failed, {counts.get(DeliveryState.BOUNCED, 0)} bounced"
    )
    if sent.paused:
        with factory() as session:
            paused = issues.by_number(session, number)
            kind, advice = pauses.kind_of(paused), pauses.advice(paused)
        report.say(
            f"issue #{number} paused: {sent.paused}" + (f"; {advice}" if advice else ""),
            event="issue.paused",
            level=logging.ERROR,
            issue=number,
            kind=kind.value if kind else None,
        )
    elif sent.finished:
        if sent.attempted:
            report.say(f"issue #{number} sent: {tally}", event="issue.sent", issue=number)
            publish_reported(settings, factory, now, report)
        else:
            report.detail(f"issue #{number} was sent already", event="issue.sent", issue=number)
    elif stop.is_set():
        report.say(
            f"issue #{number} stopped for shutdown after {sent.attempted} messages; "
            "the rest goes at the next start",
            event="issue.stopped",
            issue=number,
        )
    else:
        waiting = counts.get(DeliveryState.PENDING, 0)
        retry = f" from {sent.next_retry_at:%Y-%m-%d %H:%M} UTC" if sent.next_retry_at else ""
        report.say(
            f"issue #{number}: {tally}; {waiting} wait for a retry{retry}",
            event="issue.retrying",
            issue=number,
            pending=waiting,
        )


def retry_tick(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime,
    stop: threading.Event | None = None,
    make_sender: Callable[[], Sender] | None = None,
) -> TickReport:
    """Resume every issue being sent that has deliveries due: 4xx retries whose time came,
    and rows a stopped or crashed send left behind. Paused issues are left to
    `resuming.resume_tick` (relay pauses) or to a person (`digest send N`)."""
    report = TickReport("retry-deliveries")
    stop = stop or threading.Event()
    with factory() as session:
        numbers = _resumable(session, now)
    for number in numbers:
        send_issue(settings, factory, number, now, stop, make_sender, report)
    _confirmations(settings, factory, now, stop, make_sender, report)
    return report


def _confirmations(
    settings: Settings,
    factory: sessionmaker[Session],
    now: datetime,
    stop: threading.Event,
    make_sender: Callable[[], Sender] | None,
    report: TickReport,
) -> None:
    """Send the confirmation mails still queued (a retry whose time came, or one a stopped
    `digest serve` left): the sign-up's own drain normally sends them at once."""
    from digest.pipeline import confirmations

    if confirmations.queued_count(factory) == 0:
        return
    try:
        drained = confirmations.drain(
            settings,
            factory,
            sender=make_sender() if make_sender is not None else None,
            now=lambda: now,
            stop=stop,
        )
    except ConfigError as exc:
        report.say(
            f"confirmation mails wait in the queue: {exc}",
            event="confirmations.config",
            level=logging.WARNING,
        )
        report.failed = True
        return
    if drained.sent or drained.retrying or drained.failed:
        report.say(
            f"confirmation mails: {len(drained.sent)} sent, {len(drained.retrying)} to retry, "
            f"{len(drained.failed)} given up",
            event="confirmations.sent",
        )


def _resumable(session: Session, now: datetime) -> list[int]:
    """Numbers of unpaused issues being sent, with no live sender, that have rows due."""
    due = (
        sa.select(Delivery.id)
        .where(
            Delivery.issue_id == Issue.id,
            sa.or_(
                Delivery.state == DeliveryState.SENDING,
                sa.and_(
                    Delivery.state == DeliveryState.PENDING,
                    sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                ),
            ),
        )
        .exists()
    )
    rows = session.execute(
        sa.select(Issue.number, Issue.sender_lock, Issue.sender_heartbeat_at)
        .where(Issue.status == IssueStatus.SENDING, Issue.paused_reason.is_(None), due)
        .order_by(Issue.number)
    ).all()
    return [
        number
        for number, lock, heartbeat in rows
        if lock is None
        or runs.owner_is_dead(lock)
        or (heartbeat is not None and now - heartbeat > deliveries.STALE_LOCK)
    ]
