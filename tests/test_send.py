"""Sending an issue through the ledger to a real SMTP server (aiosmtpd), and resuming it."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.deliver.smtp import SmtpSender
from digest.errors import DigestError
from digest.pipeline import sending
from digest.store.models import Delivery, DeliveryState, Issue, IssueStatus
from subscribers import registry
from subscribers.model import ConsentSource, Subscriber, SubscriberStatus
from tests.smtpserver import SmtpServer
from tests.test_draft import MONDAY

SECRETS = """
[web]
secret_key = "test-secret-key-for-links-0123456789"
[subscribers]
suppression_key = "test-suppression-key-0123456789"
"""
PEOPLE = [
    ("ana@example.net", "en", ()),
    ("bram@example.be", "nl", ()),
    ("chloe@example.fr", "fr", ()),
    ("dirk@example.be", "nl", ("labour",)),
]


def settings_for(
    make_settings: Any, tmp_path: Path, server: SmtpServer | None, **delivery: Any
) -> Any:
    from examples.run import materialize

    materialize(tmp_path, MONDAY.date())
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    lines = ["[delivery]"]
    if server is not None:
        lines += ['transport = "smtp"', 'smtp_host = "127.0.0.1"', f"smtp_port = {server.port}"]
    options = {"retry_seconds": 0.05, "max_consecutive_failures": 5, "connections": 2, **delivery}
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in options.items()]
    return make_settings("\n".join(lines) + SECRETS + text[text.index("[[sources]]") :])


def add_people(settings: Any, factory: sessionmaker[Session], people: Any = PEOPLE) -> None:
    key = settings.subscribers.suppression_key.reveal().encode()
    with factory() as session, session.begin():
        for address, language, topics in people:
            registry.add(
                session,
                address,
                language=language,
                topics=topics,
                source=ConsentSource.CLI,
                consent_version="v1",
                confirmed=True,
                now=MONDAY - timedelta(days=30),
                languages=settings.publication.languages,
                suppression_key=key,
            )


def approved_issue(settings: Any, factory: sessionmaker[Session]) -> int:
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    number = pipeline.draft(settings, factory, now=MONDAY).number
    sending.approve(settings, factory, number, now=MONDAY)
    return number


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def ledger(factory: sessionmaker[Session]) -> Counter[DeliveryState]:
    with factory() as session:
        return Counter(session.scalars(sa.select(Delivery.state)))


def smtp_factory(server: SmtpServer) -> Any:
    return lambda: SmtpSender(server.sender_options())


def test_everyone_gets_their_variant_once_and_a_rerun_sends_nothing(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory)
    number = approved_issue(settings, factory)

    report = sending.send(settings, factory, now=MONDAY, make_sender=smtp_factory(smtp_server))

    assert report.finished and report.counts[DeliveryState.SENT] == 4
    assert report.variants == {"en": 1, "nl": 1, "fr": 1, "nl:labour": 1}
    received = {m.rcpt_tos[0]: parsed(m.data) for m in smtp_server.messages}
    assert set(received) == {address for address, _, _ in PEOPLE}
    for address, language, _ in PEOPLE:
        message = received[address]
        assert message["Content-Language"] == language
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f'lang="{language}"' in html
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"].startswith(f"<digest.{number}.")
    envelope = next(m for m in smtp_server.messages if m.rcpt_tos == ("ana@example.net",))
    # VERP: the signed reference of the delivery, then the subscriber.
    assert re.fullmatch(
        r"bounces\+d\d+\.[0-9a-f]{16}\+ana=example\.net@example\.org", envelope.mail_from
    )
    # The labour reader's copy leaves out what is tagged with other topics only.
    assert len(received["dirk@example.be"].as_bytes()) <= len(
        received["bram@example.be"].as_bytes()
    )
    with factory() as session:
        issue = session.scalars(sa.select(Issue)).one()
        assert issue.status is IssueStatus.SENT and issue.published_at is not None

    again = sending.send(settings, factory, number=number, make_sender=smtp_factory(smtp_server))
    assert again.finished and again.attempted == 0
    assert len(smtp_server.messages) == 4


def test_a_send_of_many_batches_keeps_its_connections(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    # Four people in batches of one: four claims, one set of connections for all of them
    # (on a real relay each new connection is a TLS handshake and AUTH).
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory)
    approved_issue(settings, factory)
    report = sending.send(
        settings, factory, now=MONDAY, make_sender=smtp_factory(smtp_server), batch=1
    )
    assert report.finished and report.counts[DeliveryState.SENT] == 4
    assert len(smtp_server.messages) == 4
    assert smtp_server.connections <= settings.delivery.connections  # 2, not one per batch
    closing = time.monotonic() + 60  # closed with the send (QUIT), seen by the server soon
    while smtp_server.open_connections():
        assert time.monotonic() < closing, "the send left its SMTP connections open"
        time.sleep(0.02)


def test_a_draft_is_not_sent_and_unconfirmed_people_are_not_in_the_ledger(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory, PEOPLE[:1])
    key = settings.subscribers.suppression_key.reveal().encode()
    with factory() as session, session.begin():
        registry.add(
            session, "pending@example.net", source=ConsentSource.FORM, consent_version="v1",
            now=MONDAY, languages=["en"], suppression_key=key,
        )  # fmt: skip
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    number = pipeline.draft(settings, factory, now=MONDAY).number
    with pytest.raises(DigestError, match="approve"):
        sending.send(settings, factory, number=number)
    sending.approve(settings, factory, number)
    report = sending.send(settings, factory, number=number)  # the outbox transport
    assert report.counts[DeliveryState.SENT] == 1
    files = list(settings.delivery.outbox_dir.glob("*.eml"))
    assert len(files) == 1 and "ana@example.net" in files[0].read_text("utf-8")


def test_4xx_is_retried_in_the_run_and_5xx_bounces_the_subscriber(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory)
    approved_issue(settings, factory)
    smtp_server.reply_for("bram@example.be", "451 4.7.1 greylisted, try again", times=1)
    smtp_server.reply_for("chloe@example.fr", "550 5.1.1 no such user")

    report = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))

    assert report.finished
    assert ledger(factory) == Counter({DeliveryState.SENT: 3, DeliveryState.BOUNCED: 1})
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "ana@example.net",
        "bram@example.be",
        "dirk@example.be",
    ]
    with factory() as session:
        chloe = session.scalars(
            sa.select(Subscriber).where(Subscriber.email == "chloe@example.fr")
        ).one()
        assert chloe.status is SubscriberStatus.BOUNCED
        bram = session.scalars(sa.select(Delivery).where(Delivery.attempts == 2)).one()
        assert bram.state is DeliveryState.SENT and "451" not in (bram.last_reply or "")


def test_a_failing_server_pauses_the_issue_without_bouncing_anyone(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    people = [(f"reader{n}@example.net", "en", ()) for n in range(12)]
    settings = settings_for(make_settings, tmp_path, smtp_server, max_consecutive_failures=4)
    add_people(settings, factory, people)
    number = approved_issue(settings, factory)
    for address, _, _ in people:
        smtp_server.reply_for(address, "451 4.4.1 upstream unavailable")

    paused = sending.send(settings, factory, make_sender=smtp_factory(smtp_server))

    # It stops after 4 failures in a row; the messages already under way finish.
    assert paused.paused and re.search(r"\b([4-9]) messages in a row failed", paused.paused)
    assert f"digest send {number}" in paused.paused
    assert ledger(factory)[DeliveryState.BOUNCED] == 0
    with factory() as session:
        statuses = set(session.scalars(sa.select(Subscriber.status)))
        assert statuses == {SubscriberStatus.CONFIRMED}
        issue = session.scalars(sa.select(Issue)).one()
        assert issue.paused_reason == paused.paused and issue.paused_kind == "relay"
        assert set(session.scalars(sa.select(Delivery.attempts))) == {0}, "nothing counted"

    # The operator fixes the relay (here: a healthy server) and resumes.
    with SmtpServer() as fixed:
        resumed = sending.send(settings, factory, make_sender=smtp_factory(fixed))
        sent = Counter(m.rcpt_tos[0] for m in fixed.messages)
    assert resumed.finished and set(sent) == {p[0] for p in people}
    assert max(sent.values()) == 1


def test_dry_run_counts_variants_and_writes_one_sample_each(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory)
    number = approved_issue(settings, factory)
    plan = sending.dry_run(settings, factory, number=number, now=MONDAY)
    assert plan.variants == {"en": 1, "nl": 1, "fr": 1, "nl:labour": 1}
    samples = sorted((settings.delivery.outbox_dir / "dry-run").glob("*.eml"))
    assert len(samples) == 4
    assert sorted(plan.samples.values()) == [str(path) for path in samples]
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_test_send_is_marked_and_stays_out_of_the_ledger(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    approved_issue(settings, factory)
    result = sending.send_test(
        settings, factory, "editor@example.org", language="fr", sender=smtp_factory(smtp_server)()
    )
    assert result.ok
    message = parsed(smtp_server.messages[0].data)
    assert message["Subject"].startswith("[TEST] ")
    assert message["Content-Language"] == "fr"
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


@pytest.mark.parametrize(
    ("moment", "record"), [(0.6, "journal"), (1.2, "journal"), (0.9, "commit")]
)
def test_kill_9_in_the_middle_then_rerun_everyone_gets_it_once_but_in_flight(
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    moment: float,
    record: str,
) -> None:
    """The send runs in a real `digest send` process, killed with SIGKILL mid-way."""
    people = [(f"reader{n:03}@example.net", "en", ()) for n in range(200)]
    settings = settings_for(
        make_settings, tmp_path, smtp_server, rate_per_second=150.0, record=record
    )
    add_people(settings, factory, people)
    number = approved_issue(settings, factory)
    command = [sys.executable, "-m", "digest", "--config", str(settings.path), "send", str(number)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    log = tmp_path / "first-run.log"
    with log.open("wb") as output:
        first = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while len(smtp_server.messages) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(moment)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    before = len(smtp_server.messages)
    assert 0 < before < len(people), "the kill must land mid-send: " + log.read_text()

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "claimed but unrecorded when an earlier run stopped" in second.stdout

    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert set(received) == {p[0] for p in people}, "nobody is skipped"
    twice = [address for address, count in received.items() if count > 1]
    assert max(received.values()) <= 2
    # Each answer is in the journal before its connection sends again: only the messages
    # on the wire at the kill (one per connection) can arrive twice, and the resume
    # message says so truthfully.
    assert len(twice) <= settings.delivery.connections
    said = re.search(r"at most (\d+) of them may arrive twice", second.stdout)
    assert said and len(twice) <= int(said.group(1)) <= settings.delivery.connections
    assert ledger(factory) == Counter({DeliveryState.SENT: len(people)})
    assert not list(settings.delivery.journal_dir.glob("*.journal")), "journal cleaned up"


def test_dkim_signs_every_message_and_dkimpy_verifies_it(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    import dkim  # type: ignore[import-untyped]

    from digest.deliver.dkim import load_signer
    from tests.deliver.test_dkim import dns, rsa_pem

    (tmp_path / "dkim.pem").write_bytes(rsa_pem())
    settings = settings_for(
        make_settings, tmp_path, smtp_server, dkim_selector="weekly", dkim_key_file="dkim.pem"
    )
    add_people(settings, factory)
    approved_issue(settings, factory)
    assert sending.send(settings, factory, make_sender=smtp_factory(smtp_server)).finished
    signer = load_signer("weekly", "example.org", tmp_path / "dkim.pem")
    for received in smtp_server.messages:
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dns(signer), minkey=2048)
        signed = received.data.split(b"\r\n\r\n", 1)[0]
        assert b"list-unsubscribe:list-unsubscribe-post" in signed.replace(b"\r\n\t", b"")


def test_digest_run_sends_once_when_the_slot_has_come_and_is_safe_to_rerun(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory)
    runner = CliRunner()

    def run(moment: str) -> Any:
        return runner.invoke(cli, ["--config", str(settings.path), "run", "--as-of", moment])

    early = run("2026-11-22T20:00")  # Sunday evening: drafted ahead of Monday 08:00
    assert "goes out at its slot" in early.output, early.output
    assert not list(settings.delivery.outbox_dir.glob("*.eml"))
    first = run("2026-11-23T08:05")
    assert "issue #1 sent: 4 sent" in first.output, first.output
    again = run("2026-11-23T08:30")
    assert len(list(settings.delivery.outbox_dir.glob("*.eml"))) == 4
    assert "issue #2" in again.output  # next week's draft; #1 is never sent twice
    feed = (settings.publish.output_dir / "feeds" / "en.atom").read_text("utf-8")
    assert feed.count("<entry>") == 1
