"""Paused issues: a relay pause resumes by itself with growing intervals, an operator pause
waits for a person; the editors hear of each once. A real SMTP server is stopped and
started again on the same port; time is the test's clock."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.pipeline import resuming, scheduling
from digest.pipeline.logfmt import FIELDS
from digest.store.models import DeliveryState, IssueStatus, PauseKind
from tests.scheduling.conftest import PEOPLE, add_readers, issues_of, ledger
from tests.smtpserver import SmtpServer

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Brussels: the weekly slot
EDITOR = "editor@example.org"


def ready(publication: Any, factory: sessionmaker[Session], server: SmtpServer) -> Any:
    settings = publication(
        MONDAY.date(),
        server=server,
        delivery={"max_consecutive_failures": 2},
        web={"editors": [EDITOR]},
    )
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    return settings


def resume(settings: Any, factory: sessionmaker[Session], now: datetime) -> str:
    return resuming.resume_tick(settings, factory, now=now).message


def to_readers(server: SmtpServer) -> Counter[str]:
    return Counter(m.rcpt_tos[0] for m in server.messages if m.rcpt_tos[0] != EDITOR)


def notices(server: SmtpServer) -> list[str]:
    found = []
    for message in server.messages:
        if message.rcpt_tos[0] == EDITOR:
            subject = next(
                line for line in message.data.decode().splitlines() if line.startswith("Subject:")
            )
            found.append(subject)
    return found


def test_a_relay_restart_pauses_the_issue_and_it_resumes_by_itself(
    publication: Any,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = ready(publication, factory, smtp_server)
    port = smtp_server.port
    smtp_server.stop()  # the relay restarts just at send time
    caplog.set_level(logging.DEBUG)

    said = scheduling.issue_tick(settings, factory, "weekly", now=MONDAY).message
    assert "issue #1 paused" in said and "tries again by itself" in said, said
    (issue,) = issues_of(factory)
    assert issue.status is IssueStatus.SENDING and issue.paused_kind == PauseKind.RELAY

    # The first tick after the pause starts the backoff; before its time nothing is tried.
    said = resume(settings, factory, MONDAY + timedelta(seconds=30))
    assert "tries again by itself from 2026-11-23 07:01 UTC" in said, said
    assert "resume attempt" not in said
    said = resume(settings, factory, MONDAY + timedelta(minutes=1))
    assert "automatic resume attempt 1" in said and "issue #1 paused" in said, said
    (issue,) = issues_of(factory)
    assert issue.resume_at == MONDAY + timedelta(minutes=3), "then 2 minutes later"
    assert "resume attempt" not in resume(settings, factory, MONDAY + timedelta(minutes=2))
    assert ledger(factory) == {DeliveryState.PENDING: len(PEOPLE)}, "nobody is held to it"

    smtp_server.start(port=port)  # the relay is back
    said = resume(settings, factory, MONDAY + timedelta(minutes=3))
    assert "automatic resume attempt 2" in said and "resumed by itself at attempt 2" in said
    assert "issue #1 sent: 4 sent" in said, said
    assert to_readers(smtp_server) == Counter({address: 1 for address, _, _ in PEOPLE})
    assert issues_of(factory)[0].status is IssueStatus.SENT
    # The pause notice could not leave while the relay was down: it comes now, then the
    # resume notice; one each.
    assert notices(smtp_server) == [
        "Subject: [Cities & Migration Digest] issue #1 paused",
        "Subject: [Cities & Migration Digest] issue #1 resumed",
    ]
    for later in (5, 30, 120):
        assert resume(settings, factory, MONDAY + timedelta(minutes=later)) == "nothing to do"
    assert len(notices(smtp_server)) == 2
    logged = [getattr(r, FIELDS, {}) for r in caplog.records]
    attempts = [f["attempt"] for f in logged if f.get("event") == "issue.resuming"]
    assert attempts == [1, 2], "each attempt is logged"


def test_the_intervals_grow_and_stop_at_the_next_slot(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = ready(publication, factory, smtp_server)
    smtp_server.stop()
    scheduling.issue_tick(settings, factory, "weekly", now=MONDAY)
    tried: list[int] = []
    moment = MONDAY
    while moment < MONDAY + timedelta(hours=3):
        moment += timedelta(minutes=1)
        if "automatic resume attempt" in resume(settings, factory, moment):
            tried.append(int((moment - MONDAY).total_seconds() // 60))
    # 1, 2, 5, 10, 30, then every 60 minutes (each wait counts from the attempt before).
    assert tried == [1, 3, 8, 18, 48, 108, 168], tried

    said = resume(settings, factory, MONDAY + timedelta(days=7))
    assert "waits for a person" in said and "next weekly slot" in said, said
    (issue,) = issues_of(factory)
    assert issue.paused_kind == PauseKind.OPERATOR
    assert "resume attempt" not in resume(settings, factory, MONDAY + timedelta(days=7, hours=1))


def test_an_operator_pause_waits_for_a_person_and_says_so_once(
    publication: Any,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = ready(publication, factory, smtp_server)
    for address, _, _ in PEOPLE:
        smtp_server.reply_for(address, "535 5.7.8 authentication credentials invalid")
    scheduling.issue_tick(settings, factory, "weekly", now=MONDAY)
    with factory() as session, session.begin():
        # What the trust work classifies as the operator's (auth, policy): set here so the
        # test does not depend on that classification.
        issue = issues_of(factory)[0]
        session.get_one(type(issue), issue.id).paused_kind = PauseKind.OPERATOR.value
    caplog.set_level(logging.INFO)
    caplog.clear()

    said = resume(settings, factory, MONDAY + timedelta(minutes=5))
    assert "waits for a person" in said and "`digest send 1`" in said, said
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    for later in (10, 60, 600):
        said = resume(settings, factory, MONDAY + timedelta(minutes=later))
        assert "resume attempt" not in said
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1, "said once"
    assert notices(smtp_server) == [
        "Subject: [Cities & Migration Digest] issue #1 paused: needs a person"
    ]
    assert to_readers(smtp_server) == Counter()


def test_digest_run_resumes_a_relay_pause_too(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    settings = ready(publication, factory, smtp_server)
    port = smtp_server.port
    smtp_server.stop()
    runner = CliRunner()

    def run(moment: datetime) -> Any:
        return runner.invoke(
            cli, ["--config", str(settings.path), "run", "--as-of", moment.isoformat()]
        )

    first = run(MONDAY)
    assert first.exit_code == 1 and "paused" in first.output, first.output
    smtp_server.start(port=port)
    early = run(MONDAY + timedelta(seconds=20))
    assert "automatic resume attempt" not in early.output, early.output
    later = run(MONDAY + timedelta(minutes=1, seconds=30))
    assert "automatic resume attempt 1" in later.output, later.output
    assert "resumed by itself" in later.output
    assert to_readers(smtp_server) == Counter({address: 1 for address, _, _ in PEOPLE})
