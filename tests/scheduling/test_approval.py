"""approval = "editor": drafted ahead, editors told once, sent once approved, and at the
deadline skipped or sent as [issue] unapproved says. The clock is the test's."""

from __future__ import annotations

import dataclasses
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.config import Settings
from digest.pipeline import scheduling, sending
from digest.store.models import DeliveryState, IssueStatus
from tests.scheduling.conftest import add_readers, issues_of, ledger, outbox

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Brussels
DEADLINE = MONDAY + timedelta(hours=6)


class Editors:
    """Records whom the scheduler asked to tell (the real notifier mails them)."""

    def __init__(self) -> None:
        self.told: list[int] = []

    def __call__(self, settings: Settings, factory: sessionmaker[Session], number: int) -> None:
        self.told.append(number)


def editorial(publication: Any, factory: sessionmaker[Session], unapproved: str = "skip") -> Any:
    settings = publication(
        MONDAY.date(),
        issue={
            "approval": "editor",
            "draft_lead_hours": 24,
            "approval_wait_hours": 6,
            "grace_hours": 6,
            "unapproved": unapproved,
        },
        web={"editors": ["editor@example.org"]},
    )
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=2))
    return settings


def tick(settings: Any, factory: sessionmaker[Session], now: datetime, editors: Editors) -> str:
    return scheduling.issue_tick(settings, factory, "weekly", now=now, notify=editors).message


def test_drafted_ahead_editors_told_once_sent_when_approved_before_the_deadline(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = editorial(publication, factory)
    editors = Editors()

    tick(settings, factory, MONDAY - timedelta(hours=25), editors)
    assert not issues_of(factory) and editors.told == []

    said = tick(settings, factory, MONDAY - timedelta(hours=24), editors)
    assert "issue #1 drafted for Mon 23 Nov 2026 08:00 CET" in said
    assert "editors told that issue #1 waits for approval until Mon 23 Nov 2026 14:00" in said
    (draft,) = issues_of(factory)
    assert (draft.slot, draft.status) == (MONDAY, IssueStatus.DRAFT)

    for hours in (23, 12, 1, 0):
        tick(settings, factory, MONDAY - timedelta(hours=hours), editors)
    assert editors.told == [1]
    (still,) = issues_of(factory)
    assert still.composed_at == draft.composed_at, "what the editors read is not redrafted"
    assert not outbox(settings), "not sent before approval"
    waiting = tick(settings, factory, MONDAY + timedelta(minutes=30), editors)
    assert "issue #1 waits for approval until Mon 23 Nov 2026 14:00 CET" in waiting

    sending.approve(settings, factory, 1, now=MONDAY + timedelta(hours=2))
    said = tick(settings, factory, MONDAY + timedelta(hours=2, minutes=5), editors)
    assert "issue #1 sent: 4 sent" in said
    tick(settings, factory, MONDAY + timedelta(hours=3), editors)
    assert len(outbox(settings)) == 4 and ledger(factory) == {DeliveryState.SENT: 4}
    assert editors.told == [1]


def test_approved_ahead_it_waits_for_its_slot(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = editorial(publication, factory)
    editors = Editors()
    tick(settings, factory, MONDAY - timedelta(hours=20), editors)
    sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    tick(settings, factory, MONDAY - timedelta(minutes=1), editors)
    assert not outbox(settings)
    assert "issue #1 sent: 4 sent" in tick(settings, factory, MONDAY, editors)


def test_not_approved_by_the_deadline_is_skipped_and_stays_skipped(
    publication: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = editorial(publication, factory, unapproved="skip")
    editors = Editors()
    tick(settings, factory, MONDAY - timedelta(hours=24), editors)
    tick(settings, factory, DEADLINE - timedelta(minutes=1), editors)
    assert not outbox(settings)

    with caplog.at_level(logging.INFO, logger="digest"):
        tick(settings, factory, DEADLINE + timedelta(minutes=1), editors)
        # An approval after the deadline does not bring it back.
        sending.approve(settings, factory, 1, now=DEADLINE + timedelta(minutes=20))
        tick(settings, factory, DEADLINE + timedelta(minutes=25), editors)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1, skipped
    assert "not approved by the deadline, Mon 23 Nov 2026 14:00 CET" in skipped[0]
    assert 'unapproved = "skip"' in skipped[0]
    assert not outbox(settings) and ledger(factory) == {}


def test_not_approved_by_the_deadline_is_sent_when_configured(
    publication: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = editorial(publication, factory, unapproved="send")
    editors = Editors()
    tick(settings, factory, MONDAY - timedelta(hours=24), editors)
    tick(settings, factory, DEADLINE - timedelta(minutes=1), editors)
    assert not outbox(settings)
    with caplog.at_level(logging.INFO, logger="digest"):
        said = tick(settings, factory, DEADLINE + timedelta(minutes=1), editors)
    assert "issue #1 sent: 4 sent" in said
    (line,) = [r for r in caplog.records if "anyway" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "not approved by Mon 23 Nov 2026 14:00 CET; sending it anyway" in line.getMessage()
    assert 'as [issue] unapproved = "send"' in line.getMessage()
    assert len(outbox(settings)) == 4


def test_down_through_the_deadline_and_beyond_its_grace_skips(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = editorial(publication, factory, unapproved="send")
    editors = Editors()
    tick(settings, factory, MONDAY - timedelta(hours=24), editors)
    said = tick(settings, factory, DEADLINE + timedelta(hours=6, minutes=1), editors)
    assert "skipped: the scheduler ran 12h01m after the slot" in said
    assert not outbox(settings)


def test_started_after_the_lead_drafts_and_tells_at_once(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = editorial(publication, factory)
    editors = Editors()
    tick(settings, factory, MONDAY + timedelta(hours=1), editors)  # no draft ahead: down
    assert editors.told == [1]
    assert [i.status for i in issues_of(factory)] == [IssueStatus.DRAFT]


def test_without_editors_configured_it_says_so_once(
    publication: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = editorial(publication, factory)
    settings = dataclasses.replace(settings, web=dataclasses.replace(settings.web, editors=[]))
    editors = Editors()
    with caplog.at_level(logging.WARNING, logger="digest"):
        for hours in (24, 23):
            tick(settings, factory, MONDAY - timedelta(hours=hours), editors)
    assert editors.told == []
    assert [r.getMessage() for r in caplog.records] == [
        "nobody is told that issue #1 waits for approval: [web] editors is empty"
    ]


def test_without_the_editorial_module_a_warning_is_logged(
    publication: Any,
    factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = editorial(publication, factory)
    monkeypatch.setitem(sys.modules, "digest.pipeline.editorial", None)
    with caplog.at_level(logging.WARNING, logger="digest"):
        scheduling.issue_tick(settings, factory, "weekly", now=MONDAY - timedelta(hours=24))
    (line,) = caplog.records
    assert "cannot tell the editors that issue #1 waits for approval" in line.getMessage()
    assert "digest.pipeline.editorial" in line.getMessage()


def test_the_editors_get_a_mail_through_the_editorial_module(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    pytest.importorskip("digest.pipeline.editorial", reason="the web app's editorial module")
    settings = editorial(publication, factory)
    said = scheduling.issue_tick(settings, factory, "weekly", now=MONDAY - timedelta(hours=24))
    assert "editors told that issue #1 waits for approval" in said.message
    mails = [path.read_text("utf-8") for path in outbox(settings)]
    assert [mail for mail in mails if "editor@example.org" in mail], mails
    scheduling.issue_tick(settings, factory, "weekly", now=MONDAY - timedelta(hours=23))
    assert len(outbox(settings)) == len(mails), "told once"
