"""The issue tick with approval = "auto": on time, late within the grace, too late; the
daily issue; retries, purge and collect ticks. Time is the test's clock; nothing sleeps."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.pipeline import scheduling
from digest.store import issues
from digest.store.models import DeliveryState, IssueStatus
from subscribers.model import Subscriber
from tests.scheduling.conftest import PEOPLE, Clock, add_readers, issues_of, ledger, outbox
from tests.smtpserver import SmtpServer

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Brussels: the weekly slot


def weekly(settings: Any, factory: sessionmaker[Session], now: datetime) -> str:
    return scheduling.issue_tick(settings, factory, "weekly", now=now).message


def ready(publication: Any, factory: sessionmaker[Session], **sections: Any) -> Any:
    settings = publication(MONDAY.date(), **sections)
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    return settings


def test_the_weekly_issue_goes_out_at_its_slot_once(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = ready(publication, factory)
    clock = Clock(MONDAY - timedelta(hours=1))

    weekly(settings, factory, clock.now)
    assert not issues_of(factory), "nothing is drafted before the slot in auto mode"

    said = weekly(settings, factory, clock.at(MONDAY))
    assert "issue #1 sent: 4 sent" in said
    (issue,) = issues_of(factory)
    assert (issue.slot, issue.status) == (MONDAY, IssueStatus.SENT)
    assert len(outbox(settings)) == 4
    feed = (settings.publish.output_dir / "feeds" / "en.atom").read_text("utf-8")
    assert feed.count("<entry>") == 1, "published after sending"

    for later in (timedelta(minutes=5), timedelta(hours=3), timedelta(days=6, hours=22)):
        weekly(settings, factory, MONDAY + later)
    assert len(outbox(settings)) == 4 and len(issues_of(factory)) == 1
    assert ledger(factory) == {DeliveryState.SENT: 4}


def test_down_at_send_time_and_back_within_the_grace_sends_once(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = ready(publication, factory)
    pipeline.draft(settings, factory, now=MONDAY - timedelta(hours=12))  # drafted, then down

    said = weekly(settings, factory, MONDAY + timedelta(hours=5, minutes=50))
    assert "issue #1 sent: 4 sent" in said
    weekly(settings, factory, MONDAY + timedelta(hours=5, minutes=55))
    assert len(outbox(settings)) == 4
    assert [i.status for i in issues_of(factory)] == [IssueStatus.SENT]


def test_down_longer_than_the_grace_skips_the_slot_and_says_so_once(
    publication: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = ready(publication, factory)
    pipeline.draft(settings, factory, now=MONDAY - timedelta(hours=12))

    with caplog.at_level(logging.INFO, logger="digest"):
        weekly(settings, factory, MONDAY + timedelta(hours=7))
        weekly(settings, factory, MONDAY + timedelta(hours=7, minutes=5))
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1, [r.getMessage() for r in caplog.records]
    line = skipped[0].getMessage()
    assert "issue #1" in line and "7h00m after the slot" in line and "grace_hours = 6" in line
    assert skipped[0].levelno == logging.WARNING
    assert not outbox(settings) and ledger(factory) == {}

    # The next slot's issue goes out; the skipped one does not count as sent, so the news
    # window reaches back over it.
    said = weekly(settings, factory, MONDAY + timedelta(days=7))
    assert "issue #2 sent: 4 sent" in said
    first, second = issues_of(factory)
    assert first.status is IssueStatus.DRAFT and second.status is IssueStatus.SENT
    window = settings.issue.news_window_days
    assert issues.plan_of(second).news_since == MONDAY + timedelta(days=7 - window)


def test_an_empty_issue_is_not_sent(
    publication: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = publication(MONDAY.date())
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))  # nothing collected
    with caplog.at_level(logging.INFO, logger="digest"):
        weekly(settings, factory, MONDAY)
        weekly(settings, factory, MONDAY + timedelta(minutes=5))
    assert [r.getMessage() for r in caplog.records if "empty" in r.getMessage()] == [
        "issue #1 is empty: nothing new since the last issue; not sent"
    ]
    # News that comes in before the grace ends still makes the issue.
    pipeline.collect_sources(settings, factory, now=MONDAY + timedelta(minutes=20))
    assert "issue #1 sent" in weekly(settings, factory, MONDAY + timedelta(minutes=25))


def test_the_daily_issue_goes_to_daily_readers_only(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = ready(publication, factory)
    tuesday = MONDAY + timedelta(days=1)
    said = scheduling.issue_tick(settings, factory, "daily", now=tuesday).message
    assert said == "no confirmed daily subscriber: no daily issue"
    assert not issues_of(factory)

    add_readers(settings, factory, [("eva@example.org", "en", ())], cadence="daily", since=MONDAY)
    said = scheduling.issue_tick(settings, factory, "daily", now=tuesday).message
    assert "issue #1 sent: 1 sent" in said
    (issue,) = issues_of(factory)
    assert (issue.cadence, issue.slot) == ("daily", tuesday)
    assert "eva@example.org" in outbox(settings)[0].read_text("utf-8")


def test_retry_tick_sends_deferred_deliveries_when_they_are_due(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = ready(publication, factory, server=smtp_server)
    # Three 4xx in a row: two retries within the run, the third is left for later.
    smtp_server.reply_for("bram@example.be", "451 4.7.1 greylisted, try again", times=3)
    said = weekly(settings, factory, MONDAY)
    assert "1 wait for a retry" in said
    assert ledger(factory) == {DeliveryState.SENT: 3, DeliveryState.PENDING: 1}

    # Not due yet at the slot's own moment; due a minute later.
    assert scheduling.retry_tick(settings, factory, now=MONDAY).message == "nothing to do"
    said = scheduling.retry_tick(settings, factory, now=MONDAY + timedelta(minutes=1)).message
    assert "issue #1 sent: 4 sent" in said
    assert ledger(factory) == {DeliveryState.SENT: 4}
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(p[0] for p in PEOPLE)
    assert issues_of(factory)[0].status is IssueStatus.SENT


def test_retry_tick_leaves_a_paused_issue_to_the_operator(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = ready(
        publication, factory, server=smtp_server, delivery={"max_consecutive_failures": 2}
    )
    for address, _, _ in PEOPLE:
        smtp_server.reply_for(address, "554 5.7.1 relay access denied")
    said = weekly(settings, factory, MONDAY)
    assert "issue #1 paused" in said
    assert scheduling.retry_tick(settings, factory, now=MONDAY + timedelta(hours=1)).message == (
        "nothing to do"
    )


def test_purge_tick_deletes_unconfirmed_subscribers_after_the_configured_days(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = publication(MONDAY.date())
    add_readers(
        settings,
        factory,
        [("old@example.org", "en", ())],
        confirmed=False,
        since=MONDAY - timedelta(days=15),
    )
    add_readers(
        settings,
        factory,
        [("new@example.org", "en", ())],
        confirmed=False,
        since=MONDAY - timedelta(days=2),
    )
    with factory() as session, session.begin():
        # Both were mailed their confirmation when they signed up (the never-asked are kept).
        session.execute(
            sa.update(Subscriber).values(last_confirmation_sent_at=Subscriber.created_at)
        )
    said = scheduling.purge_tick(settings, factory, now=MONDAY).message
    assert said.startswith("1 unconfirmed subscribers older than 14 days deleted")
    with factory() as session:
        assert list(session.scalars(sa.select(Subscriber.email))) == ["new@example.org"]
    assert scheduling.purge_tick(settings, factory, now=MONDAY).message.startswith("0 ")


def test_collect_tick_honours_each_sources_next_fetch_time(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = publication(MONDAY.date())
    first = scheduling.collect_tick(settings, factory, now=MONDAY)
    assert first.message.startswith("6 sources:") and "0 failed" in first.message
    assert scheduling.collect_tick(
        settings, factory, now=MONDAY + timedelta(minutes=10)
    ).message == ("no source is due")
    again = scheduling.collect_tick(settings, factory, now=MONDAY + timedelta(minutes=31))
    assert again.message == "6 sources: 0 new, 0 changed, 0 failed"
