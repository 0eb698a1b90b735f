"""How big the SQLite database grows in a year, per 10,000 subscribers, with [retention]
on and off.

A year of a weekly publication is written into a fresh SQLite file, week by week, with
rows shaped like real ones: N subscribers (3 % leave per month), one issue per week with
its stored plan (~40 KB of JSON) and a ledger of N delivery rows carrying a real-looking
reply and Message-ID, ~40 new entries (1.5 KB summaries) and ~10 events per week. With
retention on, `retention.purge` runs after each week with the default rules
(deliveries_days 90, items_days 365, unsubscribed_grace_days 30). SQLite reuses freed pages
(it does not shrink the file), so the file size is the peak.

    .venv/bin/python bench/retention.py                   # 10,000 subscribers, on and off
    .venv/bin/python bench/retention.py --subscribers 20000 --weeks 104
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)


def simulate(folder: Path, subscribers: int, weeks: int, retain: bool) -> dict[str, float]:
    import sqlalchemy as sa

    from digest import config
    from digest.pipeline import retention
    from digest.store import db
    from digest.store.models import (
        Delivery,
        DeliveryState,
        Entry,
        Event,
        Issue,
        IssueStatus,
        Source,
        SourceKind,
    )
    from subscribers.model import ConsentSource, Subscriber, SubscriberStatus

    path = folder / ("on.db" if retain else "off.db")
    settings = config.from_mapping(
        {
            "database": {"url": f"sqlite:///{path}"},
            "subscribers": {"suppression_key": "bench-suppression-key-0123456789"},
            "delivery": {"outbox_dir": str(folder / "outbox")},
        },
        env={},
    )
    engine = db.connect(f"sqlite:///{path}", create=True)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        source = Source(
            name="news", url="https://example.org/feed", kind=SourceKind.FEED, language="en",
            created_at=START,
        )  # fmt: skip
        session.add(source)
        session.flush()
        source_id = source.id
        session.execute(
            sa.insert(Subscriber),
            [
                {
                    "email": f"reader{n}@example.net",
                    "language": "en",
                    "status": SubscriberStatus.CONFIRMED,
                    "created_at": START,
                    "status_changed_at": START,
                    "confirmed_at": START,
                    "consent_at": START,
                    "consent_source": ConsentSource.FORM,
                    "consent_version": "v1",
                }
                for n in range(subscribers)
            ],
        )
    summary = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 26  # ~1.5 KB
    plan = json.dumps({"items": [summary[:900]] * 44})  # ~40 KB, like a stored issue plan
    entry_n = event_n = 0
    next_new = subscribers
    for week in range(weeks):
        now = START + timedelta(weeks=week)
        with db.transaction(factory) as session:
            # Churn: 3 % a month leave, as many join.
            leaving = session.scalars(
                sa.select(Subscriber.id)
                .where(Subscriber.status == SubscriberStatus.CONFIRMED)
                .limit(subscribers * 3 // 400)
            ).all()
            session.execute(
                sa.update(Subscriber)
                .where(Subscriber.id.in_(leaving))
                .values(status=SubscriberStatus.UNSUBSCRIBED, status_changed_at=now,
                        unsubscribed_at=now)
            )  # fmt: skip
            session.execute(
                sa.insert(Subscriber),
                [
                    {
                        "email": f"reader{next_new + n}@example.net",
                        "language": "en",
                        "status": SubscriberStatus.CONFIRMED,
                        "created_at": now,
                        "status_changed_at": now,
                        "confirmed_at": now,
                        "consent_at": now,
                        "consent_source": ConsentSource.FORM,
                        "consent_version": "v1",
                    }
                    for n in range(len(leaving))
                ],
            )
            next_new += len(leaving)
            session.execute(
                sa.insert(Entry),
                [
                    {
                        "guid": f"https://example.org/news/{entry_n + n}",
                        "link": f"https://example.org/news/{entry_n + n}",
                        "fingerprint": secrets.token_hex(32),
                        "title": f"News item {entry_n + n} about cities and migration",
                        "summary_html": f"<p>{summary}</p>",
                        "summary_text": summary,
                        "language": "en",
                        "published_at": now,
                        "first_seen_at": now,
                        "last_seen_at": now + timedelta(days=14),  # feeds carry it ~2 weeks
                        "content_hash": secrets.token_hex(32),
                    }
                    for n in range(40)
                ],
            )
            entry_n += 40
            session.execute(
                sa.insert(Event),
                [
                    {
                        "source_id": source_id,
                        "uid": f"event-{event_n + n}@example.org",
                        "summary": f"Workshop {event_n + n}",
                        "description": summary[:600],
                        "location": "Rue de la Loi 1, Brussels",
                        "language": "en",
                        "starts_at": now + timedelta(days=20),
                        "ends_at": now + timedelta(days=20, hours=2),
                        "first_seen_at": now,
                        "last_seen_at": now + timedelta(days=20),
                        "content_hash": secrets.token_hex(32),
                    }
                    for n in range(10)
                ],
            )
            event_n += 10
            issue = Issue(
                number=week + 1, cadence="weekly", slot=now, status=IssueStatus.SENT, plan=plan,
                composed_at=now, created_at=now, updated_at=now, sent_at=now, published_at=now,
            )  # fmt: skip
            session.add(issue)
            session.flush()
            readers = session.scalars(
                sa.select(Subscriber.id).where(Subscriber.status == SubscriberStatus.CONFIRMED)
            ).all()
            session.execute(
                sa.insert(Delivery),
                [
                    {
                        "issue_id": issue.id,
                        "subscriber_id": reader,
                        "variant": "en",
                        "state": DeliveryState.SENT,
                        "attempts": 1,
                        "last_code": 250,
                        "last_reply": f"250 2.0.0 Ok: queued as {secrets.token_hex(6).upper()}",
                        "message_id": f"{week + 1}.{reader}.{secrets.token_hex(8)}@example.org",
                        "created_at": now,
                        "updated_at": now,
                        "sent_at": now,
                    }
                    for reader in readers
                ],
            )
        if retain:
            retention.purge(settings, factory, now=now + timedelta(days=1))
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar() or 0
        free = connection.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
        size = connection.exec_driver_sql("PRAGMA page_size").scalar() or 0
    engine.dispose()
    return {
        "file_mb": path.stat().st_size / 1e6,
        "used_mb": (pages - free) * size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=52)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for retain in (True, False):
            figures = simulate(Path(folder), options.subscribers, options.weeks, retain)
            print(
                f"{options.subscribers:,} subscribers, {options.weeks} weekly issues, retention "
                f"{'on ' if retain else 'off'}: file {figures['file_mb']:.1f} MB "
                f"(pages in use {figures['used_mb']:.1f} MB)"
            )


if __name__ == "__main__":
    main()
