"""The sign-up POST queues its confirmation mail and answers; a drain sends it, once.

The request stores the subscriber and the queued mail in one transaction and renders
nothing; the mail is built from a template rendered once per language, leaves through the
configured transport (a real SMTP server here), and survives a crash before its send.
"""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import confirmations, people, transport
from digest.store import confirmations as queue
from digest.store import db
from digest.store.confirmations import CLAIM_LEASE, ConfirmationState, QueuedConfirmation
from digest.web import create_app
from subscribers import registry
from subscribers.model import ConsentSource
from tests.smtpserver import SmtpServer
from tests.web.conftest import WEB, Clock, client_for, outbox, text_of

SIGNUP = {"email": "ana@example.net", "name": "Ana", "language": "nl", "cadence": "weekly"}


class Recorder:
    """Stands in for `Site.mailer`: counts wakes, sends nothing."""

    def __init__(self) -> None:
        self.wakes = 0

    def needed(self) -> bool:
        return True

    def wake(self) -> None:
        self.wakes += 1


def rows(factory: sessionmaker[Session]) -> list[tuple[str, ConfirmationState, int]]:
    """(address, state, attempts) of every queued confirmation."""
    from subscribers.model import Subscriber

    with factory() as session:
        found = session.execute(
            sa.select(Subscriber.email, QueuedConfirmation.state, QueuedConfirmation.attempts)
            .join(Subscriber, Subscriber.id == QueuedConfirmation.subscriber_id)
            .order_by(QueuedConfirmation.id)
        ).all()
    return [(address, state, attempts) for address, state, attempts in found]


def test_the_post_queues_the_mail_and_answers_without_rendering_or_sending(
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered: list[str] = []
    real_render = confirmations.render_confirmation

    def counted(**kwargs: Any) -> Any:
        rendered.append(kwargs["language"])
        return real_render(**kwargs)

    monkeypatch.setattr(confirmations, "render_confirmation", counted)
    app = create_app(web_settings, factory=factory, clock=clock)
    recorder = Recorder()
    app.state.site.mailer = recorder
    with client_for(app) as client:
        answer = client.post("/en/subscribe", data=SIGNUP)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    # The answer came with the subscriber stored and the mail queued, nothing rendered
    # nor handed to a transport; the sender was woken after the answer.
    assert rows(factory) == [("ana@example.net", ConfirmationState.QUEUED, 0)]
    assert rendered == [] and outbox(web_settings) == []
    assert recorder.wakes == 1

    drained = confirmations.drain(web_settings, factory, now=clock)
    assert [sent.recipient for sent in drained.sent] == ["ana@example.net"]
    assert rendered == ["nl"]
    assert rows(factory) == [("ana@example.net", ConfirmationState.SENT, 1)]
    [mail] = outbox(web_settings)
    assert mail["To"] == "ana@example.net" and mail["Content-Language"] == "nl"


def test_a_flood_of_sign_ups_for_one_address_is_one_mail(
    make_settings: Any, factory: sessionmaker[Session], clock: Clock
) -> None:
    settings = make_settings(WEB.replace("[web]", "[web]\nsubscribe_per_ip_per_hour = 1000"))
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        pages = {client.post("/en/subscribe", data=SIGNUP).text for _ in range(30)}
    assert len(pages) == 1  # the same answer every time
    assert len(outbox(settings)) == 1
    assert rows(factory) == [("ana@example.net", ConfirmationState.SENT, 1)]


def test_one_template_per_language_each_mail_with_its_own_link(
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered: list[str] = []
    real_render = confirmations.render_confirmation

    def counted(**kwargs: Any) -> Any:
        rendered.append(kwargs["language"])
        return real_render(**kwargs)

    monkeypatch.setattr(confirmations, "render_confirmation", counted)
    for address in ("one@example.net", "two@example.net", "three@example.net"):
        people.add_subscriber(
            web_settings,
            factory,
            address,
            language="fr",
            source=ConsentSource.FORM,
            now=clock(),
            send_now=False,
        )
    drained = confirmations.drain(web_settings, factory, now=clock)
    assert len(drained.sent) == 3 and rendered == ["fr"]
    tokens = transport.tokens(web_settings)
    with factory() as session:
        for mail in outbox(web_settings):
            [token] = re.findall(r"/fr/confirm/([A-Za-z0-9_.-]+)", text_of(mail))
            found = registry.by_public_id(session, tokens.read_confirm(token, now=clock()))
            assert found is not None and found.email == mail["To"]


def test_a_queued_confirmation_reaches_a_real_smtp_server(
    make_settings: Any, factory: sessionmaker[Session], clock: Clock, smtp_server: SmtpServer
) -> None:
    settings = make_settings(
        WEB + f'[delivery]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        f"smtp_port = {smtp_server.port}\n"
    )
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        assert client.post("/en/subscribe", data=SIGNUP).status_code == 200
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("ana@example.net",)
    assert received.mail_from.endswith("+ana=example.net@example.org")
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["Content-Language"] == "nl" and "List-Unsubscribe" not in message
    assert "/nl/confirm/" in text_of(message)  # type: ignore[arg-type]
    assert rows(factory) == [("ana@example.net", ConfirmationState.SENT, 1)]


def test_a_refused_mail_waits_for_a_retry_then_leaves(
    make_settings: Any, factory: sessionmaker[Session], clock: Clock, smtp_server: SmtpServer
) -> None:
    settings = make_settings(
        WEB + f'[delivery]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        f"smtp_port = {smtp_server.port}\n"
    )
    smtp_server.reply_for("ana@example.net", "451 4.3.0 try later", times=1)
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        assert client.post("/en/subscribe", data=SIGNUP).status_code == 200
    assert smtp_server.messages == []
    assert rows(factory) == [("ana@example.net", ConfirmationState.QUEUED, 1)]
    assert confirmations.drain(settings, factory, now=clock).sent == []  # not due yet
    clock.advance(minutes=2)
    assert len(confirmations.drain(settings, factory, now=clock).sent) == 1
    assert len(smtp_server.messages) == 1


def test_a_crash_before_the_send_leaves_it_queued_and_the_next_drain_sends_it_once(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    # The request's transaction committed; the process died before any drain.
    added = people.add_subscriber(
        web_settings,
        factory,
        "ana@example.net",
        source=ConsentSource.FORM,
        now=clock(),
        send_now=False,
    )
    assert added.queued and added.confirmation is None
    assert rows(factory) == [("ana@example.net", ConfirmationState.QUEUED, 0)]
    assert outbox(web_settings) == []
    # The next process drains it, once.
    assert len(confirmations.drain(web_settings, factory, now=clock).sent) == 1
    assert confirmations.drain(web_settings, factory, now=clock).sent == []
    assert len(outbox(web_settings)) == 1


def test_a_crash_during_the_send_resends_only_the_one_in_flight_after_its_lease(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    for address in ("ana@example.net", "bob@example.net"):
        people.add_subscriber(
            web_settings, factory, address, source=ConsentSource.FORM, now=clock(), send_now=False
        )
    # A sender claimed Ana's mail (committed), then died before marking it.
    with db.transaction(factory) as session:
        [first, _] = queue.due(session, now=clock(), limit=10)
        assert queue.claim(session, first, now=clock()) is not None
    drained = confirmations.drain(web_settings, factory, now=clock)
    assert [sent.recipient for sent in drained.sent] == ["bob@example.net"]
    assert ("ana@example.net", ConfirmationState.SENDING, 0) in rows(factory)
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    drained = confirmations.drain(web_settings, factory, now=clock)
    assert [sent.recipient for sent in drained.sent] == ["ana@example.net"]
    assert confirmations.drain(web_settings, factory, now=clock).sent == []
    assert sorted(str(mail["To"]) for mail in outbox(web_settings)) == [
        "ana@example.net",
        "bob@example.net",
    ]


def test_no_mail_for_someone_no_longer_pending(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    added = people.add_subscriber(
        web_settings,
        factory,
        "ana@example.net",
        source=ConsentSource.FORM,
        now=clock(),
        send_now=False,
    )
    with db.transaction(factory) as session:
        found = registry.by_public_id(session, added.subscriber.public_id)
        assert found is not None
        registry.confirm(
            session, found, now=clock(), suppression_key=transport.suppression_key(web_settings)
        )
    drained = confirmations.drain(web_settings, factory, now=clock)
    assert drained.sent == [] and drained.dropped == 1
    assert outbox(web_settings) == [] and rows(factory) == []


def test_sign_ups_stored_together_keep_the_rules_of_one_by_one(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    import asyncio

    from digest.pipeline.signups import Signup, SignupWriter

    add_pending = people.add_subscriber(
        web_settings,
        factory,
        "pending@example.net",
        source=ConsentSource.FORM,
        now=clock(),
        send_now=False,
    )
    assert add_pending.queued
    people.add_subscriber(web_settings, factory, "known@example.net", confirmed=True)
    writer = SignupWriter(web_settings, factory, now=clock)
    wanted = [
        Signup("new@example.net", language="fr"),
        Signup("NEW@example.net"),  # the same address twice in one batch
        Signup("known@example.net"),
        Signup("pending@example.net"),
        Signup("other@example.net", language="de"),  # not a language of the publication
        Signup("second@example.net", topics=["housing"]),
    ]

    async def all_at_once() -> list[bool]:
        return list(await asyncio.gather(*(writer.store(signup) for signup in wanted)))

    queued = asyncio.run(all_at_once())
    # True: a mail is queued for the address (once: one row each, below).
    assert queued == [True, True, False, True, False, True]
    assert sorted(row[0] for row in rows(factory)) == [
        "new@example.net",
        "pending@example.net",
        "second@example.net",
    ]
    with factory() as session:
        new = registry.by_email(session, "new@example.net")
        assert new is not None and new.language == "fr"
        assert new.consent_source is ConsentSource.FORM
        assert registry.by_email(session, "other@example.net") is None
    drained = confirmations.drain(web_settings, factory, now=clock)
    assert len(drained.sent) == 3


def test_a_crash_amid_a_group_of_claims_resends_at_most_that_group_after_its_lease(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    from digest.deliver import Outcome, SendResult

    addresses = [f"reader{number}@example.net" for number in range(7)]
    for address in addresses:
        people.add_subscriber(
            web_settings, factory, address, source=ConsentSource.FORM, now=clock(), send_now=False
        )
    handed: list[str] = []

    class DiesOnTheFifth:
        """A transport whose process dies while handing over the fifth mail."""

        def send(self, envelope_from: str, recipient: str, data: bytes) -> SendResult:
            if len(handed) == 4:
                raise SystemExit("killed")
            handed.append(recipient)
            return SendResult(Outcome.SENT, 250, "ok")

    with pytest.raises(SystemExit):
        confirmations.drain(
            web_settings, factory, sender=DiesOnTheFifth(), now=clock, per_transaction=3
        )
    # Group one (3 mails) was marked with the claims of group two; group two (mail 4
    # handed over, mail 5 in hand, mail 6) stays claimed; mail 7 was never claimed.
    states = [state for _, state, _ in rows(factory)]
    assert states == [ConfirmationState.SENT] * 3 + [ConfirmationState.SENDING] * 3 + [
        ConfirmationState.QUEUED
    ]
    assert handed == addresses[:4]
    drained = confirmations.drain(web_settings, factory, now=clock, per_transaction=3)
    assert [sent.recipient for sent in drained.sent] == addresses[6:]  # the lease holds
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    drained = confirmations.drain(web_settings, factory, now=clock, per_transaction=3)
    assert sorted(sent.recipient for sent in drained.sent) == addresses[3:6]
    # None lost; only the group in flight at the crash could arrive twice (mail 4 here).
    assert {state for _, state, _ in rows(factory)} == {ConfirmationState.SENT}


def test_a_batch_the_database_fails_ends_the_writers_spell_and_the_next_is_stored(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    """The writer keeps one connection while sign-ups come back to back; a batch that the
    database fails answers its sign-ups with the error and gives that connection up, so the
    next sign-up is stored on a fresh (checked) one."""
    import asyncio

    from digest.pipeline.signups import Signup, SignupWriter

    class DropsTheFirstBatch(SignupWriter):
        connections = 0
        failed = False

        def _connection(self) -> Any:
            self.connections += 1
            return super()._connection()

        def _together(self, items: list[Any], connection: sa.Connection) -> list[Any]:
            if not self.failed:
                self.failed = True
                cause = Exception("server closed the connection unexpectedly")
                raise sa.exc.OperationalError("INSERT INTO subscribers", {}, cause)
            return super()._together(items, connection)

    writer = DropsTheFirstBatch(web_settings, factory, now=clock)
    with pytest.raises(sa.exc.OperationalError):
        asyncio.run(writer.store(Signup("first@example.net")))
    assert asyncio.run(writer.store(Signup("second@example.net"))) is True
    assert writer.connections == 2
    assert [row[0] for row in rows(factory)] == ["second@example.net"]
