"""Bounces and complaints about a sent issue, read back into the ledger and the list."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.pipeline import sending
from digest.store.models import Delivery, DeliveryState
from subscribers.model import Subscriber, SubscriberStatus, Suppression
from tests.test_send import PEOPLE, add_people, approved_issue, settings_for


def sent_message(outbox: Path, address: str) -> EmailMessage:
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address or address in str(message["To"]):
            assert isinstance(message, EmailMessage)
            return message
    raise AssertionError(f"no message to {address} in {outbox}")


def dsn(original: EmailMessage, status: str, diagnostic: str) -> bytes:
    """A delivery status notification (RFC 3464) as Postfix writes it, sent to our VERP
    address and carrying our original headers."""
    verp = str(original["Return-Path"]).strip("<>")
    headers = "".join(f"{name}: {value}\r\n" for name, value in original.items())
    return (
        "From: MAILER-DAEMON@mx.example.be (Mail Delivery System)\r\n"
        f"To: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.be\r\n\r\n"
        f"Final-Recipient: rfc822; {original['To']}\r\nAction: failed\r\n"
        f"Status: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--b--\r\n"
    ).encode()


def complaint(original: EmailMessage) -> bytes:
    """An ARF spam complaint (RFC 5965) carrying our original headers."""
    headers = "".join(f"{name}: {value}\r\n" for name, value in original.items())
    return (
        "From: fbl@isp.example\r\nTo: abuse-reports@example.org\r\n"
        "Subject: FW: complaint\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--b--\r\n"
    ).encode()


def test_bounces_and_complaints_update_ledger_and_subscribers(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory)
    approved_issue(settings, factory)
    assert sending.send(settings, factory).finished
    outbox = settings.delivery.outbox_dir
    reports = tmp_path / "returns"
    (reports / "new").mkdir(parents=True)
    (reports / "cur").mkdir()
    bounce = dsn(sent_message(outbox, "bram@example.be"), "5.1.1", "550 5.1.1 user unknown")
    (reports / "new" / "1.bounce").write_bytes(bounce)
    (reports / "cur" / "2.complaint").write_bytes(
        complaint(sent_message(outbox, "ana@example.net"))
    )
    (reports / "cur" / "3.broken").write_bytes(b"\x00\x01 not mail")

    def process() -> Any:
        return CliRunner().invoke(
            cli, ["--config", str(settings.path), "bounces", "process", str(reports)]
        )

    first = process()
    assert "1 bounces" in first.output and "1 complaints" in first.output, first.output
    assert first.exit_code == 1, "the unreadable message is reported and fails the run"
    assert "3.broken" in first.output
    with factory() as session:
        status = dict(session.execute(sa.select(Subscriber.email, Subscriber.status)).all())
        assert status["bram@example.be"] is SubscriberStatus.BOUNCED
        assert status["ana@example.net"] is SubscriberStatus.COMPLAINED
        assert status["chloe@example.fr"] is SubscriberStatus.CONFIRMED
        states = session.scalars(sa.select(Delivery.state)).all()
        assert sorted(states).count(DeliveryState.BOUNCED) == 1
        counts = session.scalar(
            sa.select(Subscriber.bounce_count).where(Subscriber.email == "bram@example.be")
        )

    again = process()
    assert "already recorded" in again.output
    with factory() as session:
        assert counts == session.scalar(
            sa.select(Subscriber.bounce_count).where(Subscriber.email == "bram@example.be")
        )
    assert len(PEOPLE) == 4


def forged_original(to: str, message_id: str, return_path: str) -> EmailMessage:
    """The headers a forger would put in a report: guessed, not ours."""
    message = EmailMessage()
    message["Return-Path"] = f"<{return_path}>"
    message["From"] = "Cities & Migration Digest <digest@example.org>"
    message["To"] = to
    message["Subject"] = "Cities & Migration Digest"
    message["Message-ID"] = f"<{message_id}>"
    return message


def test_ten_forged_reports_naming_guessed_ids_suppress_nobody(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory)
    number = approved_issue(settings, factory)
    assert sending.send(settings, factory).finished
    with factory() as session:
        real = sorted(session.scalars(sa.select(Delivery.id)))
        real_ids = session.scalars(sa.select(Delivery.message_id)).all()
    assert all(re.fullmatch(rf"digest\.{number}\.d\d+\.[0-9a-f]{{16}}", m or "") for m in real_ids)
    guesses = [
        # The old, unsigned forms, a right id with a wrong tag, a tag of the wrong length,
        # VERP addresses without a reference or with a guessed one.
        ("ana@example.net", f"digest.{number}.{real[0]}@example.org", "bounces@example.org"),
        ("bram@example.be", f"digest.{number}.d{real[1]}.0000000000000000@example.org", ""),
        ("chloe@example.fr", f"digest.{number}.d{real[2]}.{'a' * 15}@example.org", ""),
        ("dirk@example.be", "whatever@example.org", "bounces+dirk=example.be@example.org"),
        (
            "ana@example.net",
            f"digest.{number + 1}.d{real[0] + 100}.1234567890abcdef@example.org",
            f"bounces+d{real[0]}.fedcba0987654321+ana=example.net@example.org",
        ),
    ]
    reports = tmp_path / "forged"
    (reports / "cur").mkdir(parents=True)
    for n, (to, message_id, return_path) in enumerate(guesses):
        original = forged_original(to, message_id, return_path or "bounces@example.org")
        verp = return_path or "bounces@example.org"
        bounce = dsn(original, "5.1.1", "550 5.1.1 user unknown").replace(
            b"To: bounces@example.org", f"To: {verp}".encode()
        )
        (reports / "cur" / f"{n}.dsn").write_bytes(bounce)
        (reports / "cur" / f"{n}.arf").write_bytes(complaint(original))
    assert len(list((reports / "cur").iterdir())) == 10

    result = CliRunner().invoke(
        cli, ["--config", str(settings.path), "bounces", "process", str(reports)]
    )
    assert "10 not signed by us (ignored)" in result.output, result.output
    assert "0 bounces" in result.output and "0 complaints" in result.output
    assert result.output.count("ignored") >= 10
    with factory() as session:
        assert set(session.scalars(sa.select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}
        assert set(session.scalars(sa.select(Delivery.state))) == {DeliveryState.SENT}
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


def test_a_genuine_report_about_us_is_not_a_bounce(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    """Only reports about the recipient's mailbox bounce; a policy refusal does not."""
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory)
    approved_issue(settings, factory)
    assert sending.send(settings, factory).finished
    outbox = settings.delivery.outbox_dir
    reports = tmp_path / "returns"
    (reports / "cur").mkdir(parents=True)
    original = sent_message(outbox, "bram@example.be")
    (reports / "cur" / "spam").write_bytes(
        dsn(original, "5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering")
    )
    (reports / "cur" / "size").write_bytes(dsn(original, "5.3.4", "552 5.3.4 Message too big"))
    result = CliRunner().invoke(
        cli, ["--config", str(settings.path), "bounces", "process", str(reports)]
    )
    assert "0 bounces" in result.output and "2 refusals about us" in result.output, result.output
    with factory() as session:
        assert set(session.scalars(sa.select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}
        assert set(session.scalars(sa.select(Delivery.state))) == {DeliveryState.SENT}
