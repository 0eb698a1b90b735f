"""Keeping the database bounded: what `digest purge` and the scheduler's daily purge do.

    deliveries   rows of issues sent more than [retention] deliveries_days ago become the
                 issue's per-state counts (`Issue.delivery_totals`), then are deleted
    items        entries and events no source carried for [retention] items_days are
                 deleted (events only once over); the archive, rendered from each issue's
                 stored plan, keeps what it showed
    outbox       .eml files older than [retention] outbox_days are deleted
    people       unsubscribed, bounced and complained subscribers are erased after
                 [retention] unsubscribed_grace_days; their suppression hash stays, so they
                 are never mailed again by mistake (pending ones: [subscribers]
                 purge_pending_days, as before)

Each part works in small transactions (a batch of rows at a time), so a purge never holds
a long lock on SQLite while a send or the web app writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from digest.config import Settings
from digest.errors import ConfigError
from digest.pipeline.transport import suppression_key
from digest.store import db, deliveries
from digest.store.models import Delivery, Entry, Event, Issue, IssueStatus
from subscribers import registry
from subscribers.model import Subscriber, SubscriberStatus

BATCH = 1000
GONE = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@dataclass
class Purged:
    """What one purge removed."""

    issues_folded: int = 0
    delivery_rows: int = 0
    entries: int = 0
    events: int = 0
    outbox_files: int = 0
    outbox_bytes: int = 0
    people: int = 0
    skipped: list[str] = field(default_factory=list)
    """Parts left out, and why (a missing secret)."""

    @property
    def message(self) -> str:
        """One line for the log and the command."""
        return (
            f"{self.delivery_rows} delivery rows of {self.issues_folded} issues folded into "
            f"counts, {self.entries} entries and {self.events} events deleted, "
            f"{self.outbox_files} outbox files ({self.outbox_bytes // 1024} KiB) deleted, "
            f"{self.people} former subscribers erased"
        ) + "".join(f"; {why}" for why in self.skipped)

    @property
    def anything(self) -> bool:
        """Whether something was removed."""
        return any((self.delivery_rows, self.entries, self.events, self.outbox_files, self.people))


def totals(issue: Issue) -> dict[str, int]:
    """The per-state counts retention kept for `issue` (empty while its rows exist)."""
    if not issue.delivery_totals:
        return {}
    loaded = json.loads(issue.delivery_totals)
    return {str(k): int(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def purge(settings: Settings, factory: sessionmaker[Session], *, now: datetime) -> Purged:
    """Apply every [retention] rule at `now` and say what went."""
    rules = settings.retention
    done = Purged()
    _fold_deliveries(factory, now - timedelta(days=rules.deliveries_days), done)
    _drop_items(factory, now - timedelta(days=rules.items_days), done)
    _rotate_outbox(settings.delivery.outbox_dir, now - timedelta(days=rules.outbox_days), done)
    _erase_former(settings, factory, now - timedelta(days=rules.unsubscribed_grace_days), now, done)
    return done


def _fold_deliveries(factory: sessionmaker[Session], before: datetime, done: Purged) -> None:
    with factory() as session:
        old = session.scalars(
            sa.select(Issue.id).where(
                Issue.status == IssueStatus.SENT,
                Issue.sent_at < before,
                sa.exists().where(Delivery.issue_id == Issue.id),
            )
        ).all()
    for issue_id in old:

        def fold(session: Session, issue_id: int = issue_id) -> int:
            counts = deliveries.counts(session, issue_id)
            issue = session.get_one(Issue, issue_id)
            kept = totals(issue)
            for state, count in counts.items():
                if count:
                    kept[state.value] = kept.get(state.value, 0) + count
            issue.delivery_totals = json.dumps(kept, sort_keys=True)
            result = session.execute(sa.delete(Delivery).where(Delivery.issue_id == issue_id))
            return int(getattr(result, "rowcount", 0) or 0)

        done.delivery_rows += db.retrying(factory, fold, what="folding old deliveries")
        done.issues_folded += 1


def _delete_in_batches(
    factory: sessionmaker[Session], key: InstrumentedAttribute[int], where: sa.ColumnElement[bool]
) -> int:
    """Delete the rows of `key`'s table matching `where`, BATCH at a time; return how many."""
    removed = 0
    while True:
        with db.transaction(factory) as session:
            ids = session.scalars(sa.select(key).where(where).limit(BATCH)).all()
            if not ids:
                return removed
            session.execute(sa.delete(key.class_).where(key.in_(ids)))
            removed += len(ids)


def _drop_items(factory: sessionmaker[Session], before: datetime, done: Purged) -> None:
    done.entries += _delete_in_batches(
        factory, Entry.id, sa.and_(Entry.last_seen_at < before, Entry.first_seen_at < before)
    )
    over = sa.or_(
        sa.and_(
            Event.all_day.is_(False), sa.func.coalesce(Event.ends_at, Event.starts_at) < before
        ),
        sa.and_(Event.all_day.is_(True), Event.end_date < before.date()),
    )
    done.events += _delete_in_batches(factory, Event.id, sa.and_(Event.last_seen_at < before, over))


def _rotate_outbox(folder: Path, before: datetime, done: Purged) -> None:
    if not folder.is_dir():
        return
    limit = before.timestamp()
    for path in folder.glob("*.eml"):
        try:
            stat = path.stat()
            if stat.st_mtime < limit:
                path.unlink()
                done.outbox_files += 1
                done.outbox_bytes += stat.st_size
        except FileNotFoundError:
            continue  # another purge took it


def _erase_former(
    settings: Settings,
    factory: sessionmaker[Session],
    before: datetime,
    now: datetime,
    done: Purged,
) -> None:
    try:
        key = suppression_key(settings)
    except ConfigError as exc:
        done.skipped.append(f"former subscribers not erased: {exc}")
        return
    while True:
        with db.transaction(factory) as session:
            people = session.scalars(
                sa.select(Subscriber)
                .where(Subscriber.status.in_(GONE), Subscriber.status_changed_at < before)
                .limit(BATCH)
            ).all()
            for person in people:
                registry.erase(session, person, now=now, suppression_key=key)
            done.people += len(people)
        if len(people) < BATCH:
            return
