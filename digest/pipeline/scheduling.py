"""The scheduler's work, one tick per job; every tick takes `now`, so tests drive time.

    collect_tick   fetch the sources that are due (each keeps its own next-fetch time)
    issue_tick     the weekly or the daily issue of its slot: draft, approve, send, publish
    retry_tick     deliveries a 4xx left for later, and sends cut off by a shutdown
    purge_tick     subscribers still unconfirmed after [subscribers] purge_pending_days, and
                   [retention]: old deliveries, entries, events, outbox, former subscribers
    bounces_tick   the bounce mailbox ([bounces] maildir or IMAP), processed mail moved aside
    publish_tick   the public files again (events.ics moves on with the days)

The issue of a slot with [issue] approval = "auto":

    slot ─────────────────────── slot + grace_hours ────────────────▶
     draft, approve, send, publish │ too late: skipped, said once in the log

and with approval = "editor" (deadline = slot + approval_wait_hours):

    slot − draft_lead_hours ─────── slot ───────────── deadline ────── deadline + grace_hours ──▶
     draft, tell the editors once    sent once approved  not approved:     too late: skipped
                                                          [issue] unapproved = skip | send

Every tick is idempotent and safe when two processes run it at the same moment, because
the database decides: an issue is unique per (cadence, slot) (`pipeline.draft`), one
process at a time sends an issue (the send lock in `store.deliveries`), and what is done
or decided once (editors told, a slot skipped) is a mark inserted once (`store.runs`).
A send that started always goes on to the end, whatever the time.

This module holds the issue tick; the delivery retries are in `retries`, the upkeep ticks
(collect, purge, bounces, publish) in `upkeep`, `TickReport` and `span` in `tick_report`.
Their names are re-exported here, where the scheduler and tests have always found them.
"""

from __future__ import annotations

import importlib
import logging
import threading
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.compose import slots
from digest.config import Settings
from digest.deliver import Sender
from digest.errors import DigestError
from digest.pipeline import send_times, sending
from digest.pipeline.logfmt import fields
from digest.pipeline.retries import retry_tick, send_issue
from digest.pipeline.tick_report import TickReport, span
from digest.pipeline.upkeep import HISTORY, bounces_tick, collect_tick, publish_tick, purge_tick
from digest.store import db, issues, runs
from digest.store.models import IssueStatus
from subscribers.model import Cadence, Subscriber, SubscriberStatus

__all__ = [
    "CADENCES",
    "HISTORY",
    "Notify",
    "TickReport",
    "bounces_tick",
    "collect_tick",
    "has_readers",
    "issue_tick",
    "latest_slot",
    "notify_editors",
    "publish_tick",
    "purge_tick",
    "retry_tick",
    "send_issue",
    "span",
]

log = logging.getLogger(__name__)

CADENCES = ("weekly", "daily")

Notify = Callable[[Settings, sessionmaker[Session], int], object]
"""Tells the editors that draft N waits for their approval."""


# --- editors -----------------------------------------------------------------------------------


def notify_editors(settings: Settings, factory: sessionmaker[Session], number: int) -> object:
    """Tell the editors that draft `number` waits for approval, through
    `digest.pipeline.editorial.notify_editors`; without that module, log a warning."""
    name = "digest.pipeline.editorial"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        log.warning(
            f"cannot tell the editors that issue #{number} waits for approval: this "
            f"installation has no {name}; tell them yourself (`digest preview {number}`)",
            extra=fields(event="editors.unavailable", issue=number),
        )
        return None
    notify: Notify = module.notify_editors
    return notify(settings, factory, number)


# --- the issue of a slot -----------------------------------------------------------------------


def latest_slot(schedule: slots.Schedule, now: datetime, timezone: str) -> datetime:
    """Return the last slot at or before `now`, as aware UTC."""
    slot = slots.slot_on_or_after(schedule, now - timedelta(days=8), timezone)
    while (following := slots.next_slot(schedule, slot, timezone)) <= now:
        slot = following
    return slot


@dataclass(frozen=True)
class _Seen:
    """An issue as the tick saw it."""

    number: int
    status: IssueStatus
    empty: bool


@dataclass
class _Tick:
    """One issue tick: its settings, clock and report."""

    settings: Settings
    factory: sessionmaker[Session]
    cadence: str
    now: datetime
    stop: threading.Event
    notify: Notify
    make_sender: Callable[[], Sender] | None
    report: TickReport

    @property
    def editor(self) -> bool:
        return self.settings.issue.approval == "editor"

    def hours(self, value: float) -> timedelta:
        return timedelta(hours=value)

    def local(self, moment: datetime) -> str:
        zone = zoneinfo.ZoneInfo(self.settings.publication.timezone)
        return f"{moment.astimezone(zone):%a %d %b %Y %H:%M %Z}"

    def seen(self, slot: datetime) -> _Seen | None:
        with self.factory() as session:
            issue = issues.for_slot(session, self.cadence, slot)
            if issue is None:
                return None
            return _Seen(issue.number, issue.status, issues.plan_of(issue).is_empty)

    def mark(self, key: str, note: str = "") -> bool:
        with db.transaction(self.factory) as session:
            return runs.mark_once(session, key, now=self.now, note=note)

    def marked(self, key: str) -> bool:
        with self.factory() as session:
            return runs.is_marked(session, key)

    def slot_key(self, what: str, slot: datetime) -> str:
        return f"{what}:{self.cadence}:{slot.isoformat()}"

    def send(self, number: int) -> None:
        send_issue(
            self.settings, self.factory, number, self.now, self.stop, self.make_sender, self.report
        )


def issue_tick(
    settings: Settings,
    factory: sessionmaker[Session],
    cadence: str,
    *,
    now: datetime,
    stop: threading.Event | None = None,
    notify: Notify = notify_editors,
    make_sender: Callable[[], Sender] | None = None,
) -> TickReport:
    """Do what the `cadence` issue needs at `now`: the slot that has come is drafted,
    approved, sent and published (or waited for, or skipped, as the module docstring
    draws); with editor approval the next slot is drafted ahead and the editors told."""
    if cadence not in CADENCES:
        raise ValueError(f"unknown cadence {cadence!r}; expected one of {CADENCES}")
    tick = _Tick(
        settings,
        factory,
        cadence,
        now,
        stop or threading.Event(),
        notify,
        make_sender,
        TickReport(f"issue-{cadence}"),
    )
    if cadence == "daily" and not has_readers(factory, cadence):
        tick.report.detail("no confirmed daily subscriber: no daily issue", event="issue.idle")
        return tick.report
    _chosen_times(tick)
    schedule = pipeline.schedule_of(settings, cadence)
    zone = settings.publication.timezone
    due = latest_slot(schedule, now, zone)
    _due_slot(tick, due)
    if tick.editor:
        upcoming = slots.next_slot(schedule, due, zone)
        if now >= upcoming - tick.hours(settings.issue.draft_lead_hours):
            _draft_ahead(tick, upcoming)
    return tick.report


def has_readers(factory: sessionmaker[Session], cadence: str) -> bool:
    """Whether someone confirmed reads the `cadence` issue."""
    with factory() as session:
        found = session.scalar(
            sa.select(Subscriber.id)
            .where(
                Subscriber.cadence == Cadence(cadence),
                Subscriber.status == SubscriberStatus.CONFIRMED,
            )
            .limit(1)
        )
    return found is not None


def _due_slot(tick: _Tick, slot: datetime) -> None:
    """Handle the slot that has come (the latest at or before now)."""
    report, issue_settings = tick.report, tick.settings.issue
    seen = tick.seen(slot)
    if seen is not None and seen.status is IssueStatus.SENT:
        report.detail(f"issue #{seen.number} was sent", event="issue.done", issue=seen.number)
        return
    if seen is not None and seen.status is IssueStatus.SENDING:
        # Begun in time: it goes on to the end (unless paused; the retry job says so).
        _resume(tick, seen.number)
        return
    if seen is not None and seen.status is IssueStatus.APPROVED:
        chosen = send_times.waiting(tick.factory, seen.number, tick.now)
        if chosen is not None:
            text = f"issue #{seen.number} goes out at the chosen time, {tick.local(chosen)}"
            report.detail(text, event="issue.scheduled", issue=seen.number)
            return
    if tick.marked(tick.slot_key("skipped", slot)):
        report.detail(f"the slot {tick.local(slot)} was skipped", event="issue.skipped")
        return
    deadline = slot + tick.hours(issue_settings.approval_wait_hours) if tick.editor else slot
    grace = tick.hours(issue_settings.grace_hours)
    if tick.now - deadline > grace:
        if seen is not None and seen.empty:
            _skip(tick, slot, seen, "it had nothing new to send", level=logging.INFO)
            return
        window = f"[issue] grace_hours = {issue_settings.grace_hours:g}"
        if tick.editor:
            window += f" after approval_wait_hours = {issue_settings.approval_wait_hours:g}"
        late = span(tick.now - slot)
        _skip(tick, slot, seen, f"the scheduler ran {late} after the slot, beyond {window}")
        return
    if tick.editor:
        _editor_slot(tick, slot, seen, deadline)
    else:
        _auto_slot(tick, slot, seen)


def _chosen_times(tick: _Tick) -> None:
    """Send the approved issues whose editor-chosen time (`send_times`) has come; say once
    of those whose time passed beyond the grace (`digest send N` sends them)."""
    ready, late = send_times.due(tick.settings, tick.factory, now=tick.now, cadence=tick.cadence)
    for number in ready:
        tick.send(number)
    for number in late:
        if tick.mark(f"send-at-late:{number}"):
            tick.report.say(
                f"issue #{number} was to go out at a chosen time more than [issue] grace_hours "
                f"= {tick.settings.issue.grace_hours:g} ago; not sent (`digest send {number}`)",
                event="issue.skipped",
                level=logging.WARNING,
                issue=number,
            )


def _resume(tick: _Tick, number: int) -> None:
    with tick.factory() as session:
        paused = issues.by_number(session, number).paused_reason
    if paused:
        tick.report.detail(f"issue #{number} is paused: {paused}", event="issue.paused")
        return
    tick.send(number)


def _auto_slot(tick: _Tick, slot: datetime, seen: _Seen | None) -> None:
    """approval = "auto": draft afresh (news up to the minute), approve, send."""
    if seen is None or seen.status is IssueStatus.DRAFT:
        made = _draft(tick, slot)
        if made is None:
            return
        seen = _Seen(made.number, IssueStatus.DRAFT, made.plan.is_empty)
    if seen.empty:
        _empty(tick, slot, seen.number)
        return
    sending.approve(tick.settings, tick.factory, seen.number, now=tick.now)
    tick.send(seen.number)


def _editor_slot(tick: _Tick, slot: datetime, seen: _Seen | None, deadline: datetime) -> None:
    """approval = "editor": send once approved; at the deadline skip or send as configured."""
    report, issue_settings = tick.report, tick.settings.issue
    if seen is None or (seen.status is IssueStatus.DRAFT and seen.empty):
        # Not drafted ahead (the scheduler was not running then), or nothing to approve
        # yet: draft now, the news may have come since.
        if tick.now < deadline:
            made = _draft(tick, slot)
            if made is not None:
                seen = _Seen(made.number, IssueStatus.DRAFT, made.plan.is_empty)
        if seen is None:
            if tick.now >= deadline:
                _skip(tick, slot, None, "nothing was drafted for it before the deadline")
            return
    if seen.status is IssueStatus.APPROVED:
        if seen.empty:
            _empty(tick, slot, seen.number)
            return
        tick.send(seen.number)
        return
    if seen.empty:
        if tick.now >= deadline:
            _skip(tick, slot, seen, "it is empty: nothing new since the last issue")
        else:
            _empty(tick, slot, seen.number)
        return
    if tick.now < deadline:
        _tell_editors(tick, seen.number, deadline)
        text = (
            f"issue #{seen.number} waits for approval until {tick.local(deadline)} "
            f"(`digest approve {seen.number}`)"
        )
        if tick.mark(f"waiting:{seen.number}"):
            report.say(text, event="issue.waiting", issue=seen.number, deadline=deadline)
        else:
            report.detail(text, event="issue.waiting", issue=seen.number)
        return
    if issue_settings.unapproved == "send":
        if tick.mark(tick.slot_key("unapproved-sent", slot)):
            report.say(
                f"issue #{seen.number} was not approved by {tick.local(deadline)}; sending it "
                'anyway, as [issue] unapproved = "send"',
                event="issue.unapproved",
                level=logging.WARNING,
                issue=seen.number,
            )
        sending.approve(tick.settings, tick.factory, seen.number, now=tick.now)
        tick.send(seen.number)
        return
    _skip(
        tick,
        slot,
        seen,
        f"it was not approved by the deadline, {tick.local(deadline)} "
        '([issue] unapproved = "skip")',
    )


def _draft_ahead(tick: _Tick, slot: datetime) -> None:
    """approval = "editor": draft the coming slot `draft_lead_hours` ahead, tell the editors."""
    seen = tick.seen(slot)
    if seen is None or (seen.status is IssueStatus.DRAFT and seen.empty):
        made = _draft(tick, slot)
        if made is None:
            return
        seen = _Seen(made.number, IssueStatus.DRAFT, made.plan.is_empty)
        if made.created:
            tick.report.say(
                f"issue #{made.number} drafted for {tick.local(slot)}",
                event="issue.drafted",
                issue=made.number,
                slot=slot,
            )
    if seen.status is not IssueStatus.DRAFT:
        return
    if seen.empty:
        tick.report.detail(
            f"issue #{seen.number} for {tick.local(slot)} is empty so far; drafted again "
            "at the next tick",
            event="issue.empty",
        )
        return
    deadline = slot + tick.hours(tick.settings.issue.approval_wait_hours)
    _tell_editors(tick, seen.number, deadline)


def _draft(tick: _Tick, slot: datetime) -> pipeline.Drafted | None:
    """Draft `slot` with `pipeline.draft`, only if a draft at this moment goes to that slot
    (not to an earlier one still open, which must not be changed under its editors)."""
    with tick.factory() as session:
        target = _drafting_slot(session, tick.settings, tick.cadence, tick.now)
    if target != slot:
        tick.report.detail(
            f"{tick.local(slot)} is not drafted yet: a draft now would go to {tick.local(target)}",
            event="issue.not_drafted",
        )
        return None
    try:
        made = pipeline.draft(tick.settings, tick.factory, now=tick.now, cadence=tick.cadence)
    except DigestError as exc:  # another process moved the slot on meanwhile
        tick.report.detail(f"not drafted: {exc}", event="issue.not_drafted")
        return None
    if made.slot != slot:
        tick.report.detail(
            f"another process took {tick.local(slot)} meanwhile; #{made.number} is for "
            f"{tick.local(made.slot)}",
            event="issue.not_drafted",
        )
        return None
    return made


def _drafting_slot(session: Session, settings: Settings, cadence: str, now: datetime) -> datetime:
    """The slot `pipeline.draft(now=now)` works on: the current one, past sent ones."""
    schedule = pipeline.schedule_of(settings, cadence)
    zone = settings.publication.timezone
    slot = slots.current_slot(schedule, now, zone, timedelta(hours=settings.issue.grace_hours))
    existing = issues.for_slot(session, cadence, slot)
    while existing is not None and not issues.is_open_draft(existing):
        slot = slots.next_slot(schedule, slot, zone)
        existing = issues.for_slot(session, cadence, slot)
    return slot


def _empty(tick: _Tick, slot: datetime, number: int) -> None:
    text = f"issue #{number} is empty: nothing new since the last issue; not sent"
    if tick.mark(tick.slot_key("empty", slot)):
        tick.report.say(text, event="issue.empty", issue=number)
    else:
        tick.report.detail(text, event="issue.empty", issue=number)


def _skip(
    tick: _Tick, slot: datetime, seen: _Seen | None, why: str, *, level: int = logging.WARNING
) -> None:
    """Give up the slot, saying so once (it does not count as sent: the next issue covers
    the news since the last issue that went out)."""
    if not tick.mark(tick.slot_key("skipped", slot), why):
        return
    schedule = pipeline.schedule_of(tick.settings, tick.cadence)
    following = slots.next_slot(schedule, slot, tick.settings.publication.timezone)
    if seen is None:
        tick.report.say(
            f"no {tick.cadence} issue for {tick.local(slot)}: {why}; "
            f"the next one is for {tick.local(following)}",
            event="issue.skipped",
            slot=slot,
        )
        return
    anyway = f"`digest approve {seen.number}` and `digest send {seen.number}`"
    tick.report.say(
        f"issue #{seen.number} for {tick.local(slot)} skipped: {why}; the next issue "
        f"({tick.local(following)}) covers the news since the last one sent"
        + ("" if seen.empty else f"; to send it anyway: {anyway}"),
        event="issue.skipped",
        level=level,
        issue=seen.number,
        slot=slot,
    )


def _tell_editors(tick: _Tick, number: int, deadline: datetime) -> None:
    """Tell the editors once that draft `number` waits for them."""
    key = f"editors-told:{number}"
    if not tick.mark(key):
        return
    if not tick.settings.web.editors:
        tick.report.say(
            f"nobody is told that issue #{number} waits for approval: [web] editors is empty",
            event="editors.none",
            level=logging.WARNING,
            issue=number,
        )
        return
    try:
        tick.notify(tick.settings, tick.factory, number)
    except Exception as exc:
        with db.transaction(tick.factory) as session:
            runs.unmark(session, key)
        tick.report.say(
            f"could not tell the editors about issue #{number} ({exc!r}); tried again at "
            "the next tick",
            event="editors.failed",
            level=logging.ERROR,
            issue=number,
        )
        return
    tick.report.say(
        f"editors told that issue #{number} waits for approval until {tick.local(deadline)}",
        event="editors.told",
        issue=number,
    )
