"""The outbox transport: atomic, idempotent `.eml` files a mail client can open."""

from __future__ import annotations

import os
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from digest.deliver import Outcome, Sender, SendResult
from digest.deliver.dkim import DkimSigner
from digest.deliver.message import MessageTemplate, Personal, stuff
from digest.deliver.outbox import OutboxSender, file_name, message_id
from tests.deliver.messages import awkward, build, personal
from tests.deliver.test_dkim import NOW, dns, pem


@pytest.fixture
def template() -> MessageTemplate:
    return build(awkward())


def deliver(sender: Sender, template: MessageTemplate, alice: Personal) -> SendResult:
    """What the delivery loop does for one recipient."""
    envelope = template.envelope_from(alice.to_address)
    return sender.send(envelope, alice.to_address, template.render_stuffed(alice))


def test_one_parseable_eml_per_message(tmp_path: Path, template: MessageTemplate) -> None:
    outbox = OutboxSender(tmp_path / "outbox")
    alice, bob = personal(), personal(to_address="bob@example.com", message_id="12.fr.4712")
    assert deliver(outbox, template, alice).ok
    assert deliver(outbox, template, bob).ok
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    data = (tmp_path / "outbox" / file_name("12.fr.4711@example.org")).read_bytes()
    trace = b"Return-Path: <bounces+alice=example.net@example.org>\r\n"
    assert data == trace + b"Delivered-To: alice@example.net\r\n" + template.render(alice)
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == "<12.fr.4711@example.org>"
    assert message.get_body(("plain",)) is not None
    assert message.defects == []
    # Dot-stuffing is undone as a server would: the text line keeps its single ".".
    assert b"\r\n.Ce paragraphe" in data and b"\r\n..Ce paragraphe" not in data


def test_signed_messages_verify_from_the_file(tmp_path: Path, template: MessageTemplate) -> None:
    signer = DkimSigner("news2026", "example.org", pem(ed25519.Ed25519PrivateKey.generate()))
    alice = personal()
    signature = signer.sign(template.render(alice), NOW)
    data = template.render_stuffed(alice, signature)
    assert OutboxSender(tmp_path).send("bounces@example.org", "alice@example.net", data).ok
    (path,) = tmp_path.glob("*.eml")
    assert dkim.verify(path.read_bytes(), dnsfunc=dns(signer))


def test_reruns_never_overwrite(tmp_path: Path, template: MessageTemplate) -> None:
    outbox = OutboxSender(tmp_path)
    alice = personal()
    first = deliver(outbox, template, alice)
    (path,) = tmp_path.iterdir()
    written = path.read_bytes()
    again = deliver(outbox, template, alice)
    assert again.ok and "already in the outbox" in again.reply
    later = deliver(outbox, template, personal(date="Mon, 23 Nov 2026 09:30:00 +0000"))
    assert later.ok and "kept the copy sent earlier" in later.reply
    other = deliver(outbox, template, personal(to_address="mallory@example.com"))
    assert other.permanent and "another recipient" in other.reply
    assert first.code == 250 and list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == written


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, template: MessageTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    result = deliver(OutboxSender(tmp_path), template, personal())
    assert result.temporary and result.code == 451 and "No space left" in result.reply
    assert list(tmp_path.iterdir()) == []


def test_malformed_data_is_refused(tmp_path: Path, template: MessageTemplate) -> None:
    outbox = OutboxSender(tmp_path)
    unstuffed = outbox.send("b@example.org", "a@example.net", template.render(personal()))
    assert unstuffed.permanent and "CRLF" in unstuffed.reply
    no_id = outbox.send("b@example.org", "a@example.net", stuff(b"Subject: hi\r\n\r\nbody\r\n"))
    assert no_id.permanent and "Message-ID" in no_id.reply
    injected = outbox.send(
        "b@example.org", "a@example.net\r\nX: y", template.render_stuffed(personal())
    )
    assert injected.permanent and injected.code == 501
    assert list(tmp_path.iterdir()) == []


def test_file_names_are_safe_and_distinct() -> None:
    ids = ["12.fr.1@example.org", "12.FR.1@example.org", "../../etc/passwd", ".hidden@x", "a b"]
    names = [file_name(identifier) for identifier in ids]
    assert len(set(map(str.lower, names))) == len(ids)
    for name in names:
        assert "/" not in name and " " not in name and not name.startswith(".")
        assert name.endswith(".eml") and len(name) < 255
    folded = b"Subject: x\r\nMessage-ID:\r\n <12.fr.1@example.org>\r\n\r\nMessage-ID: <no>\r\n"
    assert message_id(folded) == "12.fr.1@example.org"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, Outcome.SENT),
        (421, Outcome.TEMPORARY),
        (452, Outcome.TEMPORARY),
        (550, Outcome.PERMANENT),
    ],
)
def test_smtp_replies_are_classified(code: int, outcome: Outcome) -> None:
    result = SendResult.from_reply(code, f"{code} reply")
    assert result.outcome is outcome
    assert (result.ok, result.temporary, result.permanent) == (
        outcome is Outcome.SENT,
        outcome is Outcome.TEMPORARY,
        outcome is Outcome.PERMANENT,
    )
