"""The upkeep ticks: collecting the due sources, purging what [subscribers] and [retention]
let go, reading the bounce mailbox, and writing the public files again.

    collect_tick   fetch the sources that are due (each keeps its own next-fetch time)
    purge_tick     subscribers still unconfirmed after [subscribers] purge_pending_days, and
                   [retention]: old deliveries, entries, events, outbox, former subscribers
    bounces_tick   the bounce mailbox ([bounces] maildir or IMAP), processed mail moved aside
    publish_tick   the public files again (events.ics moves on with the days)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import bouncebox, retention
from digest.pipeline.tick_report import TickReport
from digest.store import db, runs
from subscribers import registry

HISTORY = timedelta(days=90)
"""Job runs and marks older than this are pruned by the purge job."""


def collect_tick(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime
) -> TickReport:
    """Fetch every due source and store what changed; a failing source is logged and
    recorded on the source, never raised."""
    report = TickReport("collect")
    collected = pipeline.collect_sources(settings, factory, now=now)
    if not collected.sources:
        report.detail("no source is due", event="collect.idle")
        return report
    for source in collected.failed:
        report.say(
            f"{source.name}: {source.error}",
            event="source.failed",
            level=logging.WARNING,
            source=source.name,
        )
    new = sum(s.counts.new for s in collected.sources)
    changed = sum(s.counts.changed for s in collected.sources)
    text = (
        f"{len(collected.sources)} sources: {new} new, {changed} changed, "
        f"{len(collected.failed)} failed"
    )
    if new or changed or collected.failed:
        report.say(text, event="collect.done", new=new, changed=changed)
    else:
        report.detail(text, event="collect.done")
    return report


def purge_tick(settings: Settings, factory: sessionmaker[Session], *, now: datetime) -> TickReport:
    """Delete subscribers who never confirmed, and the scheduler's history past `HISTORY`;
    apply [retention] (`retention.purge`): old deliveries folded into counts, old entries
    and events, the outbox, former subscribers after their grace."""
    report = TickReport("purge-pending")
    days = settings.subscribers.purge_pending_days
    with db.transaction(factory) as session:
        purged = registry.purge_pending(session, older_than=timedelta(days=days), now=now)
        pruned = runs.prune(session, before=now - HISTORY)
    text = f"{purged} unconfirmed subscribers older than {days} days deleted"
    if purged:
        report.say(text, event="subscribers.purged", count=purged)
    else:
        report.detail(text, event="subscribers.purged", count=0)
    if pruned:
        report.detail(f"{pruned} old job runs and marks pruned", event="runs.pruned")
    try:
        kept = retention.purge(settings, factory, now=now)
    except DigestError as exc:
        report.say(f"retention failed: {exc}", event="retention.failed", level=logging.ERROR)
        return report
    if kept.skipped:
        report.say(kept.message, event="retention.done", level=logging.WARNING)
    elif kept.anything:
        report.say(kept.message, event="retention.done", rows=kept.delivery_rows)
    else:
        report.detail(kept.message, event="retention.done")
    return report


def bounces_tick(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime
) -> TickReport:
    """Read the bounce mailbox ([bounces]) and apply what came back; a mailbox that cannot
    be read is an error of the run (`digest status` shows it)."""
    report = TickReport("bounces")
    if not bouncebox.configured(settings):
        report.detail("no bounce mailbox: [bounces] maildir or imap_host", event="bounces.idle")
        return report
    try:
        read = bouncebox.read_mailbox(settings, factory, now=now)
    except DigestError as exc:
        report.say(f"bounce mailbox: {exc}", event="bounces.failed", level=logging.ERROR)
        return report
    for line in read.lines:
        if line.startswith(("✗", "!", "?")):
            report.detail(line, event="bounces.message")
    if read.messages:
        report.say(read.message, event="bounces.done", messages=read.messages)
    else:
        report.detail(read.message, event="bounces.done")
    return report


def publish_tick(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime
) -> TickReport:
    """Write the public files (feeds, archive, events.ics) again."""
    report = TickReport("publish")
    publish_reported(settings, factory, now, report)
    return report


def publish_reported(
    settings: Settings, factory: sessionmaker[Session], now: datetime, report: TickReport
) -> None:
    """Write the public files, saying in `report` what was written or why it failed."""
    try:
        published = pipeline.publish(settings, factory, now=now)
    except (DigestError, OSError) as exc:
        report.say(f"publishing failed: {exc}", event="publish.failed", level=logging.ERROR)
        return
    report.say(
        f"published into {published.output_dir}: {len(published.written)} written, "
        f"{len(published.unchanged)} unchanged",
        event="publish.done",
        written=len(published.written),
    )
