"""Bounce reports and complaints read into `Report`s, from the constructed samples in
tests/deliver/bounces/ (see its README) and from small variations of them."""

from __future__ import annotations

import base64
import random
import re
import shutil
from pathlib import Path

import pytest

from digest.deliver.bounces import DIAGNOSTIC_LENGTH, Kind, Report, parse, read
from digest.deliver.message import parse_verp, verp_address
from digest.errors import BounceError, DigestError

SAMPLES = Path(__file__).parent / "bounces"
DOMAIN = "digest.example.org"


def verp(recipient: str) -> str:
    return verp_address("bounces", DOMAIN, recipient)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def report(
    name: str,
    recipient: str | None,
    message_id: str | None,
    *,
    kind: Kind = Kind.BOUNCE,
    permanent: bool = True,
    status: str = "",
    diagnostic: str = "",
) -> Report:
    """The report expected from sample `name`: a permanent bounce unless told otherwise."""
    return Report(kind, recipient, permanent, status, diagnostic, message_id, source=name)


EXPECTED = {
    "postfix-user-unknown.eml": [
        report(
            "postfix-user-unknown.eml",
            "alice@example.net",
            "digest.48.1017@digest.example.org",
            status="5.1.1",
            diagnostic="550 5.1.1 <alice@example.net>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
        )
    ],
    # Exim says only 5.0.0 in Status:; the remote server's 5.1.1 is the useful one.
    "exim-failure.eml": [
        report(
            "exim-failure.eml",
            "bob@example.com",
            "digest.48.1018@digest.example.org",
            status="5.1.1",
            diagnostic="550 5.1.1 <bob@example.com>: mailbox unavailable",
        )
    ],
    "gmail-mailbox-full-delayed.eml": [
        report(
            "gmail-mailbox-full-delayed.eml",
            "dana@example.net",
            "digest.48.1020@digest.example.org",
            kind=Kind.DELAY,
            permanent=False,
            status="4.2.2",
            diagnostic="452-4.2.2 The recipient's inbox is out of storage space. Please direct "
            "452-4.2.2 the recipient to 452 4.2.2 https://support.google.com/mail/?p=OverQuotaTemp"
            " b1-20020a05600c000000b0043123456789si1234567wmb.88 - gsmtp",
        )
    ],
    # The human-readable part is French (base64, in multipart/alternative): never read.
    "outlook-recipient-not-found-fr.eml": [
        report(
            "outlook-recipient-not-found-fr.eml",
            "carol@example.com",
            "digest.48.1021@digest.example.org",
            status="5.1.10",
            diagnostic="550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
            "Recipient not found by SMTP address lookup",
        )
    ],
    # Sent to the plain bounce address: each block names its own recipient. Frank's
    # delivery "failed" after days of 4.4.7 timeouts: given up, yet not permanent.
    "sendmail-two-recipients.eml": [
        report(
            "sendmail-two-recipients.eml",
            "erin@example.org",
            "test.48@digest.example.org",
            status="5.1.1",
            diagnostic="550 5.1.1 <erin@example.org>... User unknown",
        ),
        report(
            "sendmail-two-recipients.eml",
            "frank@example.org",
            "test.48@digest.example.org",
            permanent=False,
            status="4.4.7",
            diagnostic="Deferred: Connection timed out with mx.frank.example.",
        ),
    ],
    "yahoo-arf-complaint.eml": [
        report(
            "yahoo-arf-complaint.eml",
            "grace@example.net",
            "digest.48.1022@digest.example.org",
            kind=Kind.COMPLAINT,
            diagnostic="This is an email abuse report for an email message received from IP "
            "203.0.113.5 on Mon, 23 Nov 2026 07:00:03 +0000. For more information about this "
            "format please see http://www.mipassoc.org/arf/.",
        )
    ],
    "vacation-autoreply.eml": [],
    # The quoted newsletter below qmail's marker says "550 mots, 4.2.1 pages": not read.
    "qmail-plain-bounce.eml": [
        report(
            "qmail-plain-bounce.eml",
            "heidi@example.org",
            "digest.48.1023@digest.example.org",
            status="5.2.1",
            diagnostic="Remote host said: 550 5.2.1 <heidi@example.org>: mailbox disabled, "
            "not accepting messages",
        )
    ],
    # Latin-1 bytes in a header and in a body that declares a charset that does not exist.
    "exim-plain-failure.eml": [
        report(
            "exim-plain-failure.eml",
            "ivan@example.com",
            "digest.48.1024@digest.example.org",
            status="5.7.1",
            diagnostic="host mx.example.com [198.51.100.12]: 554 5.7.1 <ivan@example.com>: "
            "Relay access denied (réponse du serveur)",
        )
    ],
    # Final-Recipient is the address alice forwards to; VERP names the subscriber.
    "forwarded-final-recipient-differs.eml": [
        report(
            "forwarded-final-recipient-differs.eml",
            "alice@example.net",
            "digest.48.1017@digest.example.org",
            status="5.1.1",
            diagnostic="550 5.1.1 User unknown",
        )
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_samples(name: str) -> None:
    assert parse(sample(name), name) == EXPECTED[name]


def test_every_mail_sample_has_an_expectation() -> None:
    mail = {path.name for path in SAMPLES.glob("*.eml")}
    assert mail == set(EXPECTED) | {"gmail-blocked.eml"}


def test_samples_use_our_verp_addresses() -> None:
    """The samples were written with `verp_address`; this catches them drifting apart."""
    found = set()
    for path in SAMPLES.glob("*.eml"):
        found |= set(
            re.findall(rf"bounces\+[^\s<>;]+@{re.escape(DOMAIN)}", path.read_text("latin-1"))
        )
    assert found
    for address in found:
        recipient = parse_verp(address)
        assert recipient is not None
        assert address == verp(recipient)


def test_gmail_block_is_permanent_and_the_diagnostic_one_trimmed_line() -> None:
    (blocked,) = parse(sample("gmail-blocked.eml"), "gmail-blocked.eml")
    assert (blocked.kind, blocked.recipient, blocked.permanent, blocked.status) == (
        Kind.BOUNCE,
        "alice@example.net",
        True,
        "5.7.1",
    )
    assert blocked.message_id == "digest.48.1019@digest.example.org"
    assert blocked.diagnostic.startswith("550-5.7.1 [203.0.113.5] Our system has detected that")
    assert "\n" not in blocked.diagnostic
    assert "  " not in blocked.diagnostic
    assert len(blocked.diagnostic) == DIAGNOSTIC_LENGTH
    assert blocked.diagnostic.endswith("…")


def test_kind_is_a_plain_string_too() -> None:
    (bounce,) = parse(sample("postfix-user-unknown.eml"))
    assert bounce.kind == "bounce"
    assert [r.kind for r in parse(sample("gmail-mailbox-full-delayed.eml"))] == ["delay"]
    assert [r.kind for r in parse(sample("yahoo-arf-complaint.eml"))] == ["complaint"]


# --- whose address: the trust order --------------------------------------------------------


def without_verp(data: bytes, recipient: str, replacement: str = "bounces@" + DOMAIN) -> bytes:
    """`data` as if our envelope sender had carried no VERP address."""
    return data.replace(verp(recipient).encode(), replacement.encode())


def test_verp_from_each_header_of_the_bounce() -> None:
    data = without_verp(sample("forwarded-final-recipient-differs.eml"), "alice@example.net")
    zoe = verp("zoe@example.net")
    for header in ("Delivered-To", "X-Original-To", "To", "Envelope-To", "Return-Path"):
        headed = f"{header}: <{zoe}>\n".encode() + data
        assert [r.recipient for r in parse(headed)] == ["zoe@example.net"], header


def test_verp_in_a_display_name_address_and_mixed_case_domain() -> None:
    data = sample("forwarded-final-recipient-differs.eml")
    data = data.replace(
        f"To: {verp('alice@example.net')}".encode(),
        b'To: "Bounces" <bounces+Zoe=Example.NET@digest.example.org>',
    )
    data = data.replace(b"Delivered-To:", b"X-Was-Delivered-To:")
    assert [r.recipient for r in parse(data)] == ["Zoe@example.net"]


def test_without_verp_final_recipient_is_used() -> None:
    data = without_verp(sample("forwarded-final-recipient-differs.eml"), "alice@example.net")
    assert [r.recipient for r in parse(data)] == ["alice.martin@old-job.example"]


def test_original_recipient_comes_before_final_recipient() -> None:
    data = without_verp(sample("forwarded-final-recipient-differs.eml"), "alice@example.net")
    data = data.replace(
        b"Final-Recipient: rfc822; alice.martin@old-job.example",
        b"Original-Recipient: rfc822;<alice@EXAMPLE.net>\n"
        b"Final-Recipient: rfc822; alice.martin@old-job.example",
    )
    assert [r.recipient for r in parse(data)] == ["alice@example.net"]


def test_verp_return_path_of_the_returned_message_counts_as_verp() -> None:
    """Only the bounce's own headers lost the VERP address; the returned headers keep it."""
    data = sample("forwarded-final-recipient-differs.eml")
    head, separator, rest = data.partition(b"Content-Type: text/rfc822-headers")
    head = without_verp(head, "alice@example.net")
    assert [r.recipient for r in parse(head + separator + rest)] == ["alice@example.net"]


def test_complaint_recipient_order() -> None:
    data = sample("yahoo-arf-complaint.eml")
    # 3. Only the original To: names grace (fields above were not filled in).
    assert [r.recipient for r in parse(data)] == ["grace@example.net"]
    # 2. Original-Rcpt-To comes before the original's To:.
    rcpt = data.replace(b"Version: 0.1\n", b"Version: 0.1\nOriginal-Rcpt-To: grace.o@example.net\n")
    assert [r.recipient for r in parse(rcpt)] == ["grace.o@example.net"]
    # 1. VERP, here the Original-Mail-From field, comes before both.
    mail_from = f"Version: 0.1\nOriginal-Mail-From: <{verp('grace@example.net')}>\n"
    both = rcpt.replace(b"Version: 0.1\n", mail_from.encode())
    assert [r.recipient for r in parse(both)] == ["grace@example.net"]


def test_complaint_with_redacted_original_has_no_recipient() -> None:
    data = sample("yahoo-arf-complaint.eml").replace(
        b"To: Grace Okafor <grace@example.net>", b"To: redacted"
    )
    (complaint,) = parse(data)
    assert complaint.recipient is None
    assert complaint.message_id == "digest.48.1022@digest.example.org"


def test_feedback_other_than_abuse_is_not_a_complaint() -> None:
    data = sample("yahoo-arf-complaint.eml")
    assert parse(data.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")) == []
    assert parse(data.replace(b"Feedback-Type: abuse", b"Feedback-Type: virus")) == []


def test_plain_bounce_names_x_failed_recipients_without_verp() -> None:
    data = without_verp(sample("exim-plain-failure.eml"), "ivan@example.com")
    data = data.replace(
        b"X-Failed-Recipients: ivan@example.com", b"X-Failed-Recipients: IVAN@Example.COM"
    )
    assert [r.recipient for r in parse(data)] == ["IVAN@example.com"]


def test_plain_bounce_for_two_failed_recipients_gives_each_its_own_line() -> None:
    data = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        b"To: bounces@digest.example.org\nX-Failed-Recipients: a@example.net, b@example.net\n"
        b"Subject: Mail delivery failed: returning message to sender\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"  a@example.net\n    452 4.2.2 <a@example.net>: mailbox full\n"
        b"  b@example.net\n    550 5.1.1 <b@example.net>: no such user\n"
    )
    assert [(r.recipient, r.status, r.permanent) for r in parse(data)] == [
        ("a@example.net", "4.2.2", False),
        ("b@example.net", "5.1.1", True),
    ]


def test_plain_bounce_takes_the_address_from_its_text_without_verp() -> None:
    data = without_verp(sample("qmail-plain-bounce.eml"), "heidi@example.org")
    assert [r.recipient for r in parse(data)] == ["heidi@example.org"]


# --- DSN details, on small reports written here ----------------------------------------------


def dsn(*blocks: str, to: str = "", status_type: str = "message/delivery-status") -> bytes:
    """A minimal multipart/report DSN with the given recipient blocks."""
    to = to or verp("alice@example.net")
    body = "Reporting-MTA: dns; mx.example.net\n\n" + "\n\n".join(blocks)
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"To: {to}\n"
        "Date: Mon, 23 Nov 2026 07:00:05 +0000\n"
        "Subject: Delivery report\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="XX"\n\n'
        "--XX\nContent-Type: text/plain\n\nSee the report.\n\n"
        f"--XX\nContent-Type: {status_type}\n\n{body}\n\n"
        "--XX\nContent-Type: text/rfc822-headers\n\n"
        "Message-ID: <digest.48.1017@digest.example.org>\nTo: alice@example.net\n\n"
        "--XX--\n"
    ).encode()


def test_delivered_relayed_and_expanded_blocks_report_nothing() -> None:
    blocks = [
        f"Final-Recipient: rfc822; a{i}@example.net\nAction: {action}\nStatus: 2.0.0"
        for i, action in enumerate(["delivered", "relayed", "expanded"])
    ]
    assert parse(dsn(*blocks, to="bounces@" + DOMAIN)) == []


def test_failed_without_status_takes_the_class_from_the_reply_code() -> None:
    (bounce,) = parse(dsn("Final-Recipient: rfc822; a@example.net\nAction: failed\n"
                          "Diagnostic-Code: smtp; 554 rejected"))  # fmt: skip
    assert (bounce.kind, bounce.permanent, bounce.status) == (Kind.BOUNCE, True, "")
    (unknown,) = parse(dsn("Final-Recipient: rfc822; a@example.net\nAction: failed (gave up)"))
    assert (unknown.kind, unknown.permanent, unknown.diagnostic) == (Kind.BOUNCE, False, "")


def test_missing_action_goes_by_the_status_class() -> None:
    failed, delayed = parse(
        dsn(
            "Final-Recipient: rfc822; a@example.net\nStatus: 5.2.1",
            "Final-Recipient: rfc822; b@example.net\nStatus: 4.4.1",
            "Final-Recipient: rfc822; c@example.net\nStatus: 2.0.0",
            to="bounces@" + DOMAIN,
        )
    )
    assert (failed.recipient, failed.kind, failed.permanent) == ("a@example.net", "bounce", True)
    assert (delayed.recipient, delayed.kind, delayed.permanent) == ("b@example.net", "delay", False)


def test_two_blocks_sent_to_one_verp_address_both_name_the_subscriber() -> None:
    """alice forwards to two mailboxes; our message to her failed at one, waits at the other."""
    reports = parse(
        dsn(
            "Final-Recipient: rfc822; alice@work.example\nAction: failed\nStatus: 5.1.1",
            "Final-Recipient: rfc822; alice@home.example\nAction: delayed\nStatus: 4.2.2",
        )
    )
    assert [(r.recipient, r.kind) for r in reports] == [
        ("alice@example.net", Kind.BOUNCE),
        ("alice@example.net", Kind.DELAY),
    ]


def test_global_and_encoded_status_parts_are_read() -> None:
    block = "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1"
    global_dsn = parse(dsn(block, status_type="message/global-delivery-status"))
    assert [(r.kind, r.status) for r in global_dsn] == [(Kind.BOUNCE, "5.1.1")]
    data = dsn(block)
    plain = b"Reporting-MTA: dns; mx.example.net\n\n" + block.encode()
    encoded = data.replace(
        b"Content-Type: message/delivery-status\n\n" + plain,
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(plain),
    )
    assert encoded != data
    assert [(r.kind, r.status) for r in parse(encoded)] == [(Kind.BOUNCE, "5.1.1")]


def test_identical_blocks_are_reported_once() -> None:
    block = "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1"
    assert len(parse(dsn(block, block))) == 1


def test_read_receipts_are_not_bounces() -> None:
    data = dsn("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1")
    data = data.replace(b"report-type=delivery-status", b"report-type=disposition-notification")
    data = data.replace(b"message/delivery-status", b"message/disposition-notification")
    assert parse(data) == []


def test_status_codes_inside_ip_addresses_are_not_statuses() -> None:
    (bounce,) = parse(
        dsn(
            "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n"
            "Diagnostic-Code: smtp; 550 rejected by 192.5.1.10"
        )
    )
    assert bounce.status == "5.0.0"


# --- not bounces ---------------------------------------------------------------------------


def test_autoreply_to_the_verp_address_is_not_a_bounce() -> None:
    data = sample("vacation-autoreply.eml")
    assert parse(data) == []
    # Even a responder that marks nothing is a person's address, not a mail system.
    unmarked = re.sub(rb"(?m)^(Auto-Submitted|X-Autoreply):.*\n", b"", data)
    assert parse(unmarked.replace(b"limited access", b"550 5.1.1 could not be delivered")) == []


def test_plain_text_heuristic_is_conservative() -> None:
    head = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
        f"To: {verp('alice@example.net')}\nDate: Mon, 23 Nov 2026 07:00:05 +0000\n"
        "Subject: Notice\n\n"
    )
    failure = "This message was created automatically by mail delivery software.\n"
    code = "550 5.1.1 <alice@example.net>: User unknown\n"
    assert [r.status for r in parse((head + failure + code).encode())] == ["5.1.1"]
    # Every clue is needed: a mail system, a bounce template's words, a code.
    assert parse((head + "Hello there.\n" + code).encode()) == []
    assert parse((head + failure + "User unknown\n").encode()) == []
    person = head.replace("Mail Delivery System <MAILER-DAEMON@", "Alice <alice@")
    assert parse((person + failure + code).encode()) == []
    # A 2xx line is not a failure.
    assert parse((head + failure + "250 2.0.0 Ok: queued\n").encode()) == []


def test_plain_text_delay_warning_is_a_delay() -> None:
    data = (
        "Return-path: <>\n"
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        f"To: {verp('alice@example.net')}\n"
        "Subject: Warning: message 1tE3kP-0004Qx-2V delayed 24 hours\n"
        "Date: Tue, 24 Nov 2026 07:00:05 +0000\n\n"
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on mx.example.net.\n\n"
        "  alice@example.net\n"
        "    Delay reason: SMTP error from remote mail server after RCPT TO:<alice@example.net>:\n"
        "    452 4.2.2 <alice@example.net>: Mailbox full\n\n"
        "No action is required on your part. Delivery attempts will continue for\n"
        "some time, and this warning may be repeated at intervals if the message\n"
        "remains undelivered. Eventually the mail delivery software will give up,\n"
        "and when that happens, the message will be returned to you.\n"
    ).encode()
    (delay,) = parse(data)
    assert (delay.kind, delay.permanent, delay.status) == (Kind.DELAY, False, "4.2.2")
    assert delay.recipient == "alice@example.net"


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["garbage.bin", "captive-portal.html"])
def test_not_mail_is_an_error_naming_the_source(name: str) -> None:
    with pytest.raises(BounceError, match=rf"^{re.escape(name)} is not a mail message"):
        parse(sample(name), name)


def test_bounce_error_is_a_digest_error() -> None:
    assert issubclass(BounceError, DigestError)


def test_empty_and_unnamed_input() -> None:
    with pytest.raises(BounceError, match=r"^x\.eml is empty"):
        parse(b"\r\n \n", "x.eml")
    with pytest.raises(BounceError, match=r"^the message is not a mail message"):
        parse(b"just some text\n")


def test_report_without_parts_is_an_error() -> None:
    data = dsn("Final-Recipient: rfc822; a@example.net\nAction: failed")
    with pytest.raises(BounceError, match="parts cannot be found"):
        parse(data.replace(b'; boundary="XX"', b""), "r.eml")
    without_blocks = data.replace(b"Final-Recipient", b"X-Recipient")
    with pytest.raises(BounceError, match=r"^r\.eml is a delivery report without any Final"):
        parse(without_blocks, "r.eml")


def test_hostile_headers_do_not_crash() -> None:
    """The stdlib's structured header parsers raise on these (Python 3.11)."""
    data = sample("postfix-user-unknown.eml")
    hostile = b"To: <\nX-Original-To: :;<>\nMessage-ID: <@>\n" + data
    hostile = hostile.replace(b"Message-ID: <digest.48.1017", b"Message-ID: <\nX-Old: <digest")
    (bounce,) = parse(hostile)
    assert bounce.recipient == "alice@example.net"
    assert bounce.message_id is None


def test_encoded_words_with_unknown_charsets_do_not_crash() -> None:
    data = sample("exim-plain-failure.eml").replace(
        b"Subject: Mail delivery failed",
        b"Subject: =?x-nonexistent?q?=E9t=E9?= =?utf-8?b?////?= Mail delivery failed",
    )
    assert [r.status for r in parse(data)] == ["5.7.1"]


def test_damaged_samples_never_raise_anything_but_bounce_error() -> None:
    """Truncated and bit-flipped copies of every sample: a list or a BounceError, no crash."""
    rng = random.Random(5321)
    for path in sorted(SAMPLES.glob("*.eml")):
        data = path.read_bytes()
        for _ in range(15):
            damaged = bytearray(data[: rng.randrange(1, len(data) + 1)])
            for _ in range(rng.randrange(0, 20)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            try:
                result: list[Report] | BounceError = parse(bytes(damaged), path.name)
            except BounceError as error:
                result = error
            assert isinstance(result, list) or str(result).startswith(path.name)


def test_huge_bounce_texts_are_read() -> None:
    """Long runs the patterns must cross once, not once per character (a quadratic scan of
    these takes minutes): a base64 blob, "<" runs in HTML, a 2,000-part domain."""
    head = (
        b"From: MAILER-DAEMON@mx.example.net\nTo: bounces@digest.example.org\n"
        b"Subject: failure notice\n\nThis is a permanent error.\n550 5.1.1 no such user\n"
    )
    html = head.replace(b"\n\n", b"\nContent-Type: text/html\n\n", 1)
    for data in (head + b"QUJD" * 100_000, html + b"<" * 400_000, head + b"a@b" + b".c" * 2000):
        assert [(r.status, r.recipient) for r in parse(data)] == [("5.1.1", None)]


# --- read: files and Maildirs --------------------------------------------------------------


def make_maildir(root: Path) -> Path:
    """A Maildir as a delivery agent leaves it: new/ unread, cur/ with flags, tmp/ in progress."""
    maildir = root / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    shutil.copy(
        SAMPLES / "postfix-user-unknown.eml", maildir / "cur" / "1795417205.M1P2Q3.mail:2,S"
    )
    shutil.copy(SAMPLES / "vacation-autoreply.eml", maildir / "cur" / "1795417209.M4P5Q6.mail:2,")
    shutil.copy(SAMPLES / "garbage.bin", maildir / "new" / "1795417300.M7P8Q9.mail")
    shutil.copy(SAMPLES / "yahoo-arf-complaint.eml", maildir / "new" / "1795417301.M1P1Q1.mail")
    shutil.copy(SAMPLES / "exim-failure.eml", maildir / "tmp" / "1795417302.M2P2Q2.mail")
    (maildir / "new" / ".mbsyncstate").write_text("not a message")
    return maildir


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_read_maildir_reads_cur_and_new_and_survives_a_broken_message(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path)
    before = tree(tmp_path)
    results = dict(read([maildir]))
    assert list(results) == [
        f"{maildir}:1795417205.M1P2Q3.mail",
        f"{maildir}:1795417209.M4P5Q6.mail",
        f"{maildir}:1795417300.M7P8Q9.mail",
        f"{maildir}:1795417301.M1P1Q1.mail",
    ]
    bounce, autoreply, broken, complaint = results.values()
    assert isinstance(bounce, list)
    assert [(r.recipient, r.source) for r in bounce] == [
        ("alice@example.net", f"{maildir}:1795417205.M1P2Q3.mail")
    ]
    assert autoreply == []
    assert isinstance(broken, BounceError)
    assert str(broken).startswith(f"{maildir}:1795417300.M7P8Q9.mail is not a mail message")
    assert isinstance(complaint, list)
    assert [r.kind for r in complaint] == [Kind.COMPLAINT]
    assert tree(tmp_path) == before  # nothing moved, flagged or deleted


def test_maildir_sources_do_not_change_when_a_message_is_read(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path)
    first = [source for source, _ in read([maildir])]
    (maildir / "new" / "1795417301.M1P1Q1.mail").rename(
        maildir / "cur" / "1795417301.M1P1Q1.mail:2,S"
    )
    assert sorted(source for source, _ in read([maildir])) == sorted(first)


def test_read_files_and_bad_paths_in_order(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.eml"
    folder = tmp_path / "folder"
    folder.mkdir()
    paths = [SAMPLES / "qmail-plain-bounce.eml", missing, folder, SAMPLES / "garbage.bin"]
    results = list(read(paths))
    assert [source for source, _ in results] == [str(path) for path in paths]
    qmail, nowhere, not_maildir, garbage = (result for _, result in results)
    assert isinstance(qmail, list)
    assert [r.source for r in qmail] == [str(SAMPLES / "qmail-plain-bounce.eml")]
    assert isinstance(nowhere, BounceError)
    assert str(nowhere) == f"{missing} does not exist; check the path"
    assert isinstance(not_maildir, BounceError)
    assert "not a Maildir" in str(not_maildir)
    assert isinstance(garbage, BounceError)
