"""Undo and erase: `digest subscribers unsuppress` lifts a suppression keeping who/when/why;
after an erasure the address is nowhere (reply texts, pause reasons, status output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.pipeline import sending
from digest.store.models import Delivery, Issue
from digest.store.runs import JobRun, RunOutcome
from subscribers.model import Subscriber, SubscriberStatus, Suppression, SuppressionLift
from tests.smtpserver import SmtpServer
from tests.test_draft import MONDAY
from tests.test_send import PEOPLE, add_people, approved_issue, settings_for, smtp_factory


def invoke(settings: Any, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(settings.path), *args])


def test_unsuppress_undoes_a_wrong_bounce_and_keeps_who_when_why(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory)
    approved_issue(settings, factory)
    smtp_server.reply_for("chloe@example.fr", "550 5.1.1 no such user")
    assert sending.send(settings, factory, make_sender=smtp_factory(smtp_server)).finished

    missing = invoke(settings, "subscribers", "unsuppress", "chloe@example.fr")
    assert missing.exit_code == 2 and "--reason" in missing.output
    lifted = invoke(
        settings, "subscribers", "unsuppress", "Chloe@Example.fr", "--reason",
        "the relay said 5.1.1 for a day", "--by", "operator-ann",
    )  # fmt: skip
    assert lifted.exit_code == 0, lifted.output
    assert "bounced on" in lifted.output and "confirmed again" in lifted.output
    with factory() as session:
        chloe = session.scalars(
            sa.select(Subscriber).where(Subscriber.email == "chloe@example.fr")
        ).one()
        assert chloe.status is SubscriberStatus.CONFIRMED and chloe.bounce_count == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0
        [kept] = session.scalars(sa.select(SuppressionLift)).all()
        assert (kept.reason.value, kept.lifted_by) == ("bounced", "operator-ann")
        assert kept.why == "the relay said 5.1.1 for a day" and kept.lifted_at is not None
        assert "chloe" not in kept.address_hash

    again = invoke(settings, "subscribers", "unsuppress", "chloe@example.fr", "--reason", "x")
    assert again.exit_code == 1 and "not suppressed" in again.output


def test_after_erasure_the_address_is_in_no_reply_text_or_pause_reason(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory)
    number = approved_issue(settings, factory)
    smtp_server.reply_for("bram@example.be", "550 5.1.1 <bram@example.be>: no such user", at="DATA")
    smtp_server.reply_for(
        "chloe@example.fr", "554 5.7.1 <Chloe@example.fr>: Recipient address rejected"
    )
    paused = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))
    assert paused.paused and "chloe@example.fr" in paused.paused.lower()
    with factory() as session, session.begin():
        # What the scheduler's send job said about it, as `digest status` shows it later.
        session.add(
            JobRun(
                job="send-weekly",
                started_at=MONDAY,
                finished_at=MONDAY,
                outcome=RunOutcome.FAILED,
                message=paused.paused,
            )
        )

    for address in ("bram@example.be", "chloe@example.fr"):
        erased = invoke(settings, "subscribers", "remove", address, "--erase")
        assert erased.exit_code == 0, erased.output
    with factory() as session:
        replies = " ".join(r or "" for r in session.scalars(sa.select(Delivery.last_reply)))
        reasons = " ".join(r or "" for r in session.scalars(sa.select(Issue.paused_reason)))
        said = " ".join(session.scalars(sa.select(JobRun.message)))
    for text in (replies, reasons, said):
        assert "bram@example.be" not in text.lower() and "chloe@example.fr" not in text.lower()
    assert "<erased address>" in replies and "<erased address>" in reasons
    assert "<erased address>" in said
    status = invoke(settings, "status")
    assert "chloe@example.fr" not in status.output.lower()
    assert f"#{number}" in status.output or "paused" in status.output.lower()
    assert len(PEOPLE) == 4
