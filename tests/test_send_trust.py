"""Trust in delivery against a real SMTP server: session and policy refusals pause the issue
and bounce nobody, the circuit breaker, unknown outcomes, unbuildable messages."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.pipeline import sending
from digest.store.models import Delivery, DeliveryState, Issue, PauseKind
from subscribers.model import Subscriber, SubscriberStatus, Suppression
from tests.smtpserver import SmtpServer
from tests.test_draft import MONDAY
from tests.test_send import add_people, approved_issue, ledger, settings_for, smtp_factory

PEOPLE = [(f"reader{n}@example.net", "en", ()) for n in range(8)]
ABOUT_US = [
    "530 5.7.0 Authentication required",
    "535 5.7.8 Authentication credentials invalid",
    "550 5.7.1 Sender address rejected: not allowed to send as digest@example.org",
    "554 5.7.1 Relay access denied",
    "550 5.7.1 Message rejected as spam",
    "552 5.3.4 Message too big for system",
    "554 5.3.0 Local system error",
    "550 5.4.4 Unable to route",
]


def statuses(factory: sessionmaker[Session]) -> Counter[SubscriberStatus]:
    with factory() as session:
        return Counter(session.scalars(sa.select(Subscriber.status)))


def suppressed(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Suppression)) or 0


@pytest.mark.parametrize("at", ["RCPT", "DATA"])
@pytest.mark.parametrize("reply", ABOUT_US)
def test_a_refusal_about_us_pauses_for_a_person_and_marks_nobody(
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    reply: str,
    at: Any,
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE)
    number = approved_issue(settings, factory)
    # Two people get through first, then the server turns on us for everyone.
    for address, _, _ in PEOPLE[2:]:
        smtp_server.reply_for(address, reply, at=at)
    paused = sending.send(settings, factory, make_sender=smtp_factory(smtp_server), breaker=False)

    assert paused.paused and reply in paused.paused and paused.paused_kind is PauseKind.OPERATOR
    assert f"digest send {number}" in paused.paused
    with factory() as session:
        issue = session.scalars(sa.select(Issue)).one()
        assert issue.paused_kind == PauseKind.OPERATOR and reply in (issue.paused_reason or "")
    assert ledger(factory)[DeliveryState.BOUNCED] == ledger(factory)[DeliveryState.FAILED] == 0
    assert statuses(factory) == Counter({SubscriberStatus.CONFIRMED: len(PEOPLE)})
    assert suppressed(factory) == 0

    # The operator fixes it; `digest send` goes on from where it stopped.
    with SmtpServer() as fixed:
        resumed = sending.send(settings, factory, make_sender=smtp_factory(fixed))
        second = Counter(m.rcpt_tos[0] for m in fixed.messages)
    first = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert resumed.finished and not resumed.paused
    assert first + second == Counter({p[0]: 1 for p in PEOPLE})
    assert ledger(factory) == Counter({DeliveryState.SENT: len(PEOPLE)})


@pytest.mark.parametrize(
    "reply", ["550 5.1.1 no such user", "550 5.2.1 mailbox disabled", "550 No such user here"]
)
def test_a_recipient_refusal_bounces_that_one_at_rcpt_and_only_fails_at_data(
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    reply: str,
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE)
    approved_issue(settings, factory)
    smtp_server.reply_for("reader3@example.net", reply, at="RCPT")
    smtp_server.reply_for("reader5@example.net", reply, at="DATA")
    report = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))

    assert report.finished and not report.paused
    assert ledger(factory) == Counter(
        {DeliveryState.SENT: 6, DeliveryState.BOUNCED: 1, DeliveryState.FAILED: 1}
    )
    with factory() as session:
        by_address = dict(session.execute(sa.select(Subscriber.email, Subscriber.status)).all())
    assert by_address["reader3@example.net"] is SubscriberStatus.BOUNCED
    assert by_address["reader5@example.net"] is SubscriberStatus.CONFIRMED
    assert suppressed(factory) == 1


def test_the_circuit_breaker_pauses_after_a_handful_with_the_same_reply(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    """A relay that says "no such user" for everyone (a wrong smarthost, say)."""
    people = [(f"reader{n:02}@example.net", "en", ()) for n in range(40)]
    settings = settings_for(
        make_settings, tmp_path, smtp_server, circuit_breaker=5, max_consecutive_failures=100
    )
    add_people(settings, factory, people)
    number = approved_issue(settings, factory)
    for address, _, _ in people:
        smtp_server.reply_for(address, f"550 5.1.1 <{address}>: Recipient address rejected")
    paused = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))

    assert paused.paused and "circuit breaker" in paused.paused
    assert paused.paused_kind is PauseKind.OPERATOR and f"digest send {number}" in paused.paused
    assert len(smtp_server.recipients_tried) <= 5, "touched no more than a handful"
    assert statuses(factory) == Counter({SubscriberStatus.CONFIRMED: 40})
    assert suppressed(factory) == 0 and ledger(factory)[DeliveryState.BOUNCED] == 0

    # The operator checked: these really are dead. They may count them.
    counted = sending.send(settings, factory, make_sender=smtp_factory(smtp_server), breaker=False)
    assert counted.finished and not counted.paused
    assert ledger(factory) == Counter({DeliveryState.BOUNCED: 40})
    assert statuses(factory) == Counter({SubscriberStatus.BOUNCED: 40})


def test_no_reply_to_the_dot_is_not_resent_in_the_run_and_retried_once_later(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    people = PEOPLE[:4]
    settings = settings_for(
        make_settings, tmp_path, smtp_server, smtp_timeout_seconds=1.0, unknown_retry_minutes=30.0
    )
    add_people(settings, factory, people)
    number = approved_issue(settings, factory)
    smtp_server.hold_dot_replies()
    try:
        first = sending.send(settings, factory, number=number, now=MONDAY)
    finally:
        smtp_server.release_dot_replies()
    assert not first.finished and first.unknown == 4 and first.unknown_total == 4
    assert Counter(m.rcpt_tos[0] for m in smtp_server.messages) == Counter(
        {p[0]: 1 for p in people}
    )
    # A run before the retry is due sends nothing.
    early = sending.send(settings, factory, number=number, now=MONDAY + timedelta(minutes=5))
    assert early.attempted == 0 and len(smtp_server.messages) == 4

    smtp_server.hold_dot_replies()  # still slow: the retry gets no answer either
    try:
        later = sending.send(settings, factory, number=number, now=MONDAY + timedelta(hours=1))
    finally:
        smtp_server.release_dot_replies()
    again = sending.send(settings, factory, number=number, now=MONDAY + timedelta(hours=3))
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter({p[0]: 2 for p in people}), "twice at most, never six times"
    assert later.attempted == 4 and again.attempted == 0 and again.finished
    assert ledger(factory) == Counter({DeliveryState.UNKNOWN: 4})
    ids: dict[str, set[str]] = {}
    for message in smtp_server.messages:
        head = message.data.split(b"\r\n\r\n")[0].decode()
        found = next(line for line in head.split("\r\n") if line.startswith("Message-ID:"))
        ids.setdefault(message.rcpt_tos[0], set()).add(found)
    assert all(len(values) == 1 for values in ids.values()), "the same Message-ID"


def test_a_message_that_cannot_be_built_fails_that_recipient_only(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE[:4])
    approved_issue(settings, factory)
    with factory() as session, session.begin():
        # A public_id longer than ours (carried over from another system, say): its tokens
        # do not fit the template, so this one message cannot be built.
        session.execute(
            sa.update(Subscriber)
            .where(Subscriber.email == "reader1@example.net")
            .values(public_id="imported-" + "x" * 12)
        )
    report = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))
    assert report.finished and not report.paused
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        p[0] for p in PEOPLE[:4] if p[0] != "reader1@example.net"
    ]
    assert ledger(factory) == Counter({DeliveryState.SENT: 3, DeliveryState.FAILED: 1})
    with factory() as session:
        failed = session.scalars(
            sa.select(Delivery).where(Delivery.state == DeliveryState.FAILED)
        ).one()
        assert "could not be built" in (failed.last_reply or "")
    assert statuses(factory) == Counter({SubscriberStatus.CONFIRMED: 4})


INTERNATIONAL = [
    ("änne@example.net", "en", ()),
    ("ana@bücher.de", "en", ()),  # stored as ana@xn--bcher-kva.de
    ("bob@example.net", "en", ()),
]


def test_internationalized_addresses_go_out_with_smtputf8_and_idna(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, INTERNATIONAL)
    approved_issue(settings, factory)
    report = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))
    assert report.finished and ledger(factory) == Counter({DeliveryState.SENT: 3})
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert set(by_rcpt) == {"änne@example.net", "ana@xn--bcher-kva.de", "bob@example.net"}
    anne = by_rcpt["änne@example.net"]
    assert anne.mail_from.isascii(), "the VERP sender stays ASCII"
    assert "To: änne@example.net".encode() in anne.data
    assert by_rcpt["ana@xn--bcher-kva.de"].data.split(b"\r\n\r\n")[0].isascii()


def test_a_server_without_smtputf8_refuses_only_the_internationalized_address(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    with SmtpServer(smtputf8=False) as server:
        settings = settings_for(make_settings, tmp_path, server)
        add_people(settings, factory, INTERNATIONAL)
        approved_issue(settings, factory)
        report = sending.send(settings, factory, make_sender=smtp_factory(server))
        received = sorted(m.rcpt_tos[0] for m in server.messages)
    assert report.finished and not report.paused
    assert received == ["ana@xn--bcher-kva.de", "bob@example.net"]
    with factory() as session:
        failed = session.scalars(
            sa.select(Delivery).where(Delivery.state == DeliveryState.FAILED)
        ).one()
        assert "SMTPUTF8" in (failed.last_reply or "")
    assert statuses(factory) == Counter({SubscriberStatus.CONFIRMED: 3})


def test_an_internationalized_address_gets_its_confirmation_mail(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    from digest.pipeline import people

    settings = settings_for(make_settings, tmp_path, smtp_server)
    added = people.add_subscriber(settings, factory, "Änne@Bücher.de", language="en")
    assert added.confirmation is not None
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("änne@xn--bcher-kva.de",) and received.mail_from.isascii()


def test_auth_without_tls_refuses_to_start_the_send_naming_the_key(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    from digest.errors import ConfigError

    settings = settings_for(make_settings, tmp_path, smtp_server, smtp_username="digest")
    add_people(settings, factory, PEOPLE[:2])
    approved_issue(settings, factory)
    with pytest.raises(ConfigError, match="smtp_starttls") as raised:
        sending.send(settings, factory)
    assert "smtp_username" in str(raised.value)
    assert smtp_server.connections == 0 and ledger(factory) == Counter()


class BreaksOn:
    """The real SMTP sender, except that it raises (a bug, a lost library) for one address."""

    def __init__(self, server: SmtpServer, address: str) -> None:
        from digest.deliver.smtp import SmtpSender

        self.inner = SmtpSender(server.sender_options())
        self.address = address

    def send(self, envelope_from: str, recipient: str, data: bytes) -> Any:
        if recipient == self.address:
            raise RuntimeError("the transport broke")
        return self.inner.send(envelope_from, recipient, data)

    def close(self) -> None:
        self.inner.close()


def test_every_answer_is_recorded_before_an_error_reaches_the_caller(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server, connections=1)
    add_people(settings, factory, PEOPLE)
    approved_issue(settings, factory)
    with pytest.raises(RuntimeError, match="the transport broke"):
        sending.send(
            settings,
            factory,
            make_sender=lambda: BreaksOn(smtp_server, "reader4@example.net"),
            breaker=False,
        )
    accepted = {m.rcpt_tos[0] for m in smtp_server.messages}
    assert accepted and "reader4@example.net" not in accepted
    with factory() as session:
        rows = session.execute(
            sa.select(Subscriber.email, Delivery.state).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        ).all()
    sent = {email for email, state in rows if state is DeliveryState.SENT}
    assert sent == accepted, "every accepted message is recorded as sent"
    assert all(state is not DeliveryState.SENDING for _, state in rows)


def test_a_server_refusing_us_at_the_greeting_pauses_for_a_person(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE[:3])
    approved_issue(settings, factory)
    smtp_server.greet_with("554 5.7.1 Service unavailable; client host blocked")
    paused = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))
    assert paused.paused and "client host blocked" in paused.paused
    assert paused.paused_kind is PauseKind.OPERATOR
    assert statuses(factory) == Counter({SubscriberStatus.CONFIRMED: 3})
    assert ledger(factory) == Counter({DeliveryState.PENDING: 3})
    smtp_server.greet_with(None)
    resumed = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))
    assert resumed.finished and len(smtp_server.messages) == 3
