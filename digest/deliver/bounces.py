"""Read bounce reports and spam complaints into `Report`s: pure parsing, no database.

`parse` reads one raw message: an RFC 3464 delivery status notification (DSN), an RFC 5965
feedback report (ARF, a spam complaint), or an old-style plain-text bounce, which a
conservative heuristic reads. `read` does the same for message files and Maildirs, one
result per message, and never moves or deletes anything: the caller records what it used.

Whose address a report is about, in order of trust:

1. The VERP address (`bounces+alice=example.net@our.domain`, `message.verp_address`): the
   one the report was sent to (Delivered-To, X-Original-To, To, Envelope-To, Return-Path of
   the report), or else our envelope sender as the report returns it: the Return-Path of
   the returned headers, a feedback report's Original-Mail-From.
2. What the report says: a DSN's Original-Recipient, then Final-Recipient; an ARF report's
   Original-Rcpt-To.
3. The To: of our original message, as returned in the report.

VERP comes first because we wrote it and the reporting server only had to send it back: it
names the subscriber exactly as we mailed them. The report's own fields name the address
where delivery finally failed, which after forwarding or an alias is someone else's
(alice@example.net forwarded to alice@old-job.example); complaint feedback loops often
redact the original To:. Since we send each subscriber their own message with their own
envelope sender, every recipient block of a report sent to a VERP address concerns that
subscriber.
"""

from __future__ import annotations

import base64
import binascii
import enum
import html
import quopri
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.policy import default
from email.utils import getaddresses
from pathlib import Path

from digest.deliver.message import parse_verp
from digest.errors import BounceError

__all__ = ["BounceError", "Kind", "Report", "parse", "read"]

# Every header unstructured: the stdlib's address and Message-ID parsers raise IndexError or
# AttributeError on hostile values such as "To: <" or "Message-ID: <@>" (Python 3.11), and
# bounces quote whatever a spammer forged. We take the few addresses we need ourselves.
_POLICY = default.clone(header_factory=HeaderRegistry(use_default_map=False))
DIAGNOSTIC_LENGTH = 300
"""Longest `Report.diagnostic`, in characters; longer texts are cut and end in "…"."""

_VERP_FIELDS = ("Delivered-To", "X-Original-To", "To", "Envelope-To", "Return-Path")
_STATUS_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_ORIGINAL_TYPES = {
    "message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers",
    "message/global-headers", "text/global-headers",
}  # fmt: skip
# A file whose header fields hold none of these is not a mail message (an HTML page, a log).
_MAIL_FIELDS = {"from", "received", "return-path", "delivered-to", "date", "message-id"}
_DAEMONS = {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"}
# (?<![\d.]) and (?!\.?\d) keep "5.1.10" out of an IP address like 192.5.1.10.
_ENHANCED = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?!\.?\d)")
_REPLY = re.compile(r"(?:^|(?<=[\s:;(]))([245][0-5]\d)(?=[ -]|$)")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TYPE = re.compile(r"^\s*[A-Za-z0-9-]+\s*;\s*")  # "smtp; 550 …", "rfc822; alice@…"
_ATEXT = r"A-Za-z0-9.!#$%&'*+/=?^_`{|}~-"
# The lookbehind starts a match only where a run of address characters starts, so a long
# run without "@" (a base64 blob) is scanned once, not once per character.
_ADDRESS = re.compile(rf"(?<![{_ATEXT}])[{_ATEXT}]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_REFERENCE = re.compile(r"\+([dc][0-9]{1,18}\.[0-9a-f]{16})[+@]", re.IGNORECASE)
_CONTROLS = {code: " " for code in [*range(32), 127]}
# Where a plain-text bounce starts quoting the returned message (qmail, Exim, sendmail, …):
# text after it is our own newsletter, whose numbers and addresses must not be read.
_COPY = re.compile(
    r"^[ \t>-]*(?:below this line is a copy of the message|this is a copy of the message"
    r"|original message follows|[-=]+ ?(?:original|returned|undelivered) message"
    r"|undelivered message headers|original message headers|message headers follow)",
    re.IGNORECASE | re.MULTILINE,
)
# Phrases of English-language bounce templates (Exim, qmail, sendmail, Postfix, Exchange).
_FAILED = (
    "mail delivery software", "could not be delivered", "couldn't be delivered",
    "wasn't able to deliver", "was not able to deliver", "unable to deliver", "undeliverable",
    "undelivered mail", "delivery failed", "delivery has failed", "permanent error",
    "permanent fatal error", "returned mail", "failure notice", "address(es) failed",
    "delivery status notification",
)  # fmt: skip
_DELAYED = (
    "not yet been delivered", "has been delayed", "delivery delayed", "delivery is delayed",
    "will keep trying", "will continue trying", "still trying", "still being retried",
    "warning: message", "this is a warning only", "do not need to resend",
)  # fmt: skip
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response)|auto:|out of (?:the )?office|vacation"
    r"|réponse automatique|absence|abwesen|automatisch antwoord|afwezig)",
    re.IGNORECASE,
)


class Kind(enum.StrEnum):
    """What a report says happened to our message."""

    BOUNCE = "bounce"
    """Delivery failed and the reporting server gave up."""
    DELAY = "delay"
    """Delivery is late; the reporting server keeps trying."""
    COMPLAINT = "complaint"
    """The recipient marked the message as spam (ARF Feedback-Type: abuse)."""


@dataclass(frozen=True)
class Report:
    """One recipient's outcome read from a bounce or a complaint."""

    kind: Kind
    recipient: str | None
    """The subscriber's address, domain in lowercase; None when nothing names one."""
    permanent: bool
    """True for a failed delivery with a 5.x.x status and for a complaint; False for
    4.x.x, delays and failures whose status is unknown."""
    status: str
    """The enhanced status code ("5.1.1"), or "" when the report gives none."""
    diagnostic: str
    """The remote server's reply (or the complaint's text), on one line, at most
    `DIAGNOSTIC_LENGTH` characters."""
    message_id: str | None
    """The Message-ID of our original message, without <>, when the report returned it."""
    source: str
    """The file or Maildir message the report came from, to name it to the operator."""
    reference: str | None = None
    """The signed reference ("d41.<tag>") our VERP address carried, when the report was
    sent to it or returned it; checked by the caller (`references.verify`)."""


def parse(data: bytes, source: str = "") -> list[Report]:
    """Return the reports in one raw RFC 5322 message; [] for mail that reports nothing
    (autoreplies, successful-delivery notices, read receipts).

    Raises BounceError, naming `source`, when `data` is not a mail message or is a
    delivery report whose parts cannot be read.
    """
    name = source or "the message"
    if not data.strip():
        raise BounceError(f"{name} is empty; remove it from the bounce mailbox")
    try:
        message = BytesParser(policy=_POLICY).parsebytes(data)
        if b"\0" in _HEAD_END.split(data, maxsplit=1)[0] or not _MAIL_FIELDS & {
            field.lower() for field in message
        }:
            raise BounceError(
                f"{name} is not a mail message: it starts with {data[:40]!r} instead of header "
                "fields such as From: and Received:; remove it from the bounce mailbox"
            )
        reports = _reports(message, name, source)
    except BounceError:
        raise
    except Exception as exc:
        # Bad input must become an error naming the file, not a crash that stops the
        # other messages: the email package raises many types on hostile structures.
        raise BounceError(
            f"{name} could not be read as mail ({type(exc).__name__}: {exc}); "
            "remove it from the bounce mailbox and check it by hand"
        ) from exc
    return list(dict.fromkeys(reports))  # identical blocks add nothing; keep the order


def read(paths: Iterable[Path]) -> Iterator[tuple[str, list[Report] | BounceError]]:
    """Yield (source, reports) for every message in `paths`, or (source, error) for one that
    cannot be read, so one bad file never stops the others.

    A path is a message file, or a Maildir (a folder with cur/ and new/; tmp/ is skipped).
    The source of a Maildir message is "MAILDIR:KEY", KEY being its file name without the
    ":2,…" flags, so it stays the same when a mail client moves or flags the message.
    Nothing is moved or deleted.
    """
    for path in paths:
        if not path.exists():
            yield str(path), BounceError(f"{path} does not exist; check the path")
        elif not path.is_dir():
            yield str(path), _parse_file(path, str(path))
        elif not ((path / "cur").is_dir() or (path / "new").is_dir()):
            yield (
                str(path),
                BounceError(
                    f"{path} is a folder but not a Maildir (it has no cur/ or new/); "
                    "pass a Maildir or message files such as bounces/*.eml"
                ),
            )
        else:
            yield from _read_maildir(path)


def _read_maildir(maildir: Path) -> Iterator[tuple[str, list[Report] | BounceError]]:
    for sub in ("cur", "new"):
        folder = maildir / sub
        if not folder.is_dir():
            continue
        try:
            files = sorted(folder.iterdir())
        except OSError as exc:
            yield str(folder), BounceError(f"{folder} cannot be listed: {exc.strerror or exc}")
            continue
        for file in files:
            # Dot files are not messages (Maildir++ keeps its own there).
            if file.name.startswith(".") or not file.is_file():
                continue
            source = f"{maildir}:{file.name.partition(':')[0]}"
            yield source, _parse_file(file, source)


def _parse_file(path: Path, source: str) -> list[Report] | BounceError:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return BounceError(f"{source} cannot be read: {exc.strerror or exc}")
    try:
        return parse(data, source)
    except BounceError as exc:
        return exc


def _reports(message: EmailMessage, name: str, source: str) -> list[Report]:
    """Dispatch on the kind of report `message` is; each report gets the VERP reference."""
    found = _dispatch(message, name, source)
    if not found:
        return found
    reference = _reference(message)
    return [replace(report, reference=reference) for report in found]


def _reference(message: EmailMessage) -> str | None:
    """Return the signed reference of our VERP address in the report: where it was sent,
    the returned Return-Path, or a feedback report's Original-Mail-From."""
    values = [str(v) for field in _VERP_FIELDS for v in message.get_all(field, [])]
    original = _original(message)
    if original is not None:
        values += [str(v) for v in original.get_all("Return-Path", [])]
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            for block in _field_blocks(part):
                values.append(block.get("original-mail-from", ""))
    for value in values:
        found = _REFERENCE.search(_clean(value))
        if found:
            return found.group(1).lower()
    return None


def _dispatch(message: EmailMessage, name: str, source: str) -> list[Report]:
    """Dispatch on the kind of report `message` is."""
    verp = _verp(message)
    if message.get_content_type() == "multipart/report":
        parts = _subparts(message)
        if parts is None:
            raise BounceError(
                f"{name} is a multipart/report whose parts cannot be found (missing or wrong "
                "boundary); check it by hand"
            )
        for part in parts:
            if part.get_content_type() in _STATUS_TYPES:
                return _delivery_reports(message, part, verp, name, source)
            if part.get_content_type() == "message/feedback-report":
                return _complaint_reports(message, part, verp, source)
        report_type = str(message.get_param("report-type", "")).lower()
        if report_type != "delivery-status":
            return []  # read receipts (disposition-notification), TLS reports, …
        reports = _plain_reports(message, verp, source)
        if not reports:
            raise BounceError(
                f"{name} is a delivery report without a message/delivery-status part; "
                "check it by hand"
            )
        return reports
    return _plain_reports(message, verp, source)


def _delivery_reports(
    message: EmailMessage, part: Message, verp: str | None, name: str, source: str
) -> list[Report]:
    """Read an RFC 3464 DSN: one report per failed or delayed recipient block."""
    original = _original(message)
    blocks = [block for block in _field_blocks(part) if "final-recipient" in block]
    if not blocks:
        raise BounceError(
            f"{name} is a delivery report without any Final-Recipient block; check it by hand"
        )
    reports = []
    for block in blocks:
        diagnostic = _TYPE.sub("", block.get("diagnostic-code", ""), count=1)
        status = _status(block.get("status", ""), diagnostic)
        code_class = status[:1] or _reply_class(diagnostic)
        action = (block.get("action", "").split() or [""])[0].lower()
        if not action:  # a broken DSN without Action: go by the status class
            action = {"5": "failed", "4": "delayed"}.get(code_class, "")
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: nothing to record
        recipient = (
            verp
            or _original_verp(original)
            or _address(block.get("original-recipient", ""))
            or _address(block.get("final-recipient", ""))
            or _original_to(original)
        )
        reports.append(
            Report(
                kind=Kind.BOUNCE if action == "failed" else Kind.DELAY,
                recipient=recipient,
                permanent=action == "failed" and code_class == "5",
                status=status,
                diagnostic=_one_line(diagnostic),
                message_id=_message_id(original),
                source=source,
            )
        )
    return reports


def _complaint_reports(
    message: EmailMessage, part: Message, verp: str | None, source: str
) -> list[Report]:
    """Read an RFC 5965 feedback report; only Feedback-Type: abuse is a complaint."""
    blocks = _field_blocks(part)
    fields = blocks[0] if blocks else {}
    if fields.get("feedback-type", "").strip().lower() != "abuse":
        return []  # not-spam, virus, auth-failure, …: not the subscriber's complaint
    original = _original(message)
    recipient = (
        verp
        or _verp_in(fields.get("original-mail-from", ""))
        or _original_verp(original)
        or _address(fields.get("original-rcpt-to", ""))
        or _original_to(original)
    )
    texts = _text_parts(message)  # the human-readable part comes first (RFC 6522)
    human = _text(texts[0]) if texts else ""
    agent = fields.get("user-agent", "").strip()
    return [
        Report(
            kind=Kind.COMPLAINT,
            recipient=recipient,
            permanent=True,
            status="",
            diagnostic=_one_line(human) or f"abuse report from {agent or 'a feedback loop'}",
            message_id=_message_id(original),
            source=source,
        )
    ]


def _plain_reports(message: EmailMessage, verp: str | None, source: str) -> list[Report]:
    """Read a bounce that is not a DSN (qmail, old Exim, sendmail templates).

    Conservative on purpose, since a wrong bounce ends a subscription: the message must come
    from a mail system (From: MAILER-DAEMON or postmaster, an X-Failed-Recipients field,
    or the null Return-Path <> without autoreply marks), its text must use a bounce
    template's phrase, and a line of it must hold an SMTP reply or enhanced status code.
    """
    if not _from_mail_system(message):
        return []  # autoreplies and people's replies
    text = "\n".join(_text(part) for part in _text_parts(message))
    copy = _COPY.search(text)
    failure = text[: copy.start()] if copy else text
    subject = _header(message, "Subject")
    words = " ".join(f"{subject}\n{failure}".lower().split())
    delayed = any(phrase in words for phrase in _DELAYED)
    if not delayed and not any(phrase in words for phrase in _FAILED):
        return []
    lines = [" ".join(line.split()) for line in failure.splitlines()]
    coded = [line for line in lines if _code_class(line) in ("4", "5")]
    if not coded:
        return []
    original: Message | None = _original(message)
    if original is None and copy is not None:
        quoted = text[copy.end() :].partition("\n")[2].lstrip("\r\n")
        original = HeaderParser(policy=_POLICY).parsestr(quoted)
    if verp:
        recipients: list[str | None] = [verp]
    else:
        named = [
            _address(value)
            for field in message.get_all("X-Failed-Recipients", [])
            for value in str(field).split(",")
        ]
        recipients = [*filter(None, named)] or [
            _original_verp(original) or _text_address(failure) or _original_to(original)
        ]
    reports = []
    for recipient in recipients:
        named_line = (line for line in coded if recipient and recipient.lower() in line.lower())
        line = next(named_line, coded[0])
        status = _status("", line)
        reports.append(
            Report(
                kind=Kind.DELAY if delayed else Kind.BOUNCE,
                recipient=recipient,
                permanent=not delayed and _code_class(line) == "5",
                status=status,
                diagnostic=_one_line(line),
                message_id=_message_id(original),
                source=source,
            )
        )
    return reports


def _from_mail_system(message: EmailMessage) -> bool:
    """Whether `message` was sent by a mail server rather than by a person or a responder."""
    if message.get("X-Failed-Recipients") is not None:
        return True
    senders = getaddresses([_header(message, "From")])
    if any(address.partition("@")[0].lower() in _DAEMONS for _, address in senders):
        return True
    autoreply = (
        _header(message, "Auto-Submitted").strip().lower().startswith("auto-replied")
        or any(message.get(field) is not None for field in ("X-Autoreply", "X-Autorespond"))
        or _header(message, "Precedence").strip().lower() == "auto_reply"
        or _AUTOREPLY_SUBJECT.match(_header(message, "Subject")) is not None
    )
    # RFC 3834 asks responders for the null sender too, so <> alone proves nothing.
    return not autoreply and _header(message, "Return-Path").strip() == "<>"


def _verp(message: Message, fields: tuple[str, ...] = _VERP_FIELDS) -> str | None:
    """Return the subscriber named by the first VERP address in `fields` of `message`."""
    for field in fields:
        for value in message.get_all(field, []):
            recipient = _verp_in(_clean(str(value)))
            if recipient:
                return recipient
    return None


def _verp_in(value: str) -> str | None:
    """Return the subscriber named by a VERP address in a field value, if there is one."""
    for _, address in getaddresses([value]):
        recipient = parse_verp(address)
        if recipient:
            return _address(recipient)
    return None


def _original(message: EmailMessage) -> Message | None:
    """Return the headers of the returned message (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        if part is message or part.get_content_type() not in _ORIGINAL_TYPES:
            continue
        inner = _subparts(part)
        if inner and inner[0].keys():
            return inner[0]
        # text/rfc822-headers, or a message/rfc822 part sent base64 (against RFC 2046).
        text = _text(part) if inner is None else _blocks_text(part)
        return HeaderParser(policy=_POLICY).parsestr(text.lstrip("\r\n"))
    return None


def _original_verp(original: Message | None) -> str | None:
    if original is None:
        return None
    # Only Return-Path holds our envelope sender; the original's other fields name the
    # subscriber's mailbox, not our VERP address.
    return _verp(original, ("Return-Path",))


def _original_to(original: Message | None) -> str | None:
    if original is None:
        return None
    addresses = getaddresses([_header(original, "To")])
    return next(filter(None, (_address(address) for _, address in addresses)), None)


def _message_id(original: Message | None) -> str | None:
    if original is None:
        return None
    value = _header(original, "Message-ID").strip()
    match = _MESSAGE_ID.search(value)
    if match:
        return match.group(1)
    # Some servers drop the brackets; anything else ("<", a comment) is no Message-ID.
    words = value.split()
    return words[0] if words and "@" in words[0].strip("@") else None


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """Return the blocks of header-like fields in a delivery-status or feedback-report part,
    each as {lowercase name: value}; the first occurrence of a name counts."""
    blocks: list[dict[str, str]] = []
    block: dict[str, str] = {}
    name = ""
    for line in [*_blocks_text(part).splitlines(), ""]:
        if not line.strip():
            if block:
                blocks.append(block)
            block, name = {}, ""
        elif line[0] in " \t" and name:
            block[name] += " " + line.strip()
        elif ":" in line:
            field, _, value = line.partition(":")
            name = field.strip().lower()
            if name in block:
                name = ""  # a repeated field: keep the first, skip its continuation lines
            else:
                block[name] = value.strip()
    return blocks


def _blocks_text(part: Message) -> str:
    """Return the text of a message/* part as sent, undoing the parser's split into blocks.

    The email package splits message/delivery-status into header blocks itself, but reads
    any other message/* type (message/global-delivery-status, message/feedback-report) as
    one embedded message, and does not undo a base64 or quoted-printable encoding there.
    """
    texts = []
    for block in _subparts(part) or []:
        fields = "".join(f"{name}: {_clean(str(value))}\n" for name, value in block.items())
        body = block.get_payload(decode=True)
        texts.append(fields + ("\n" + _decode(body, "utf-8") if isinstance(body, bytes) else ""))
    text = "\n".join(texts)
    encoding = _header(part, "Content-Transfer-Encoding").strip().lower()
    try:
        if encoding == "base64":
            return _decode(base64.b64decode("".join(text.split())), "utf-8")
        if encoding == "quoted-printable":
            return _decode(quopri.decodestring(text.encode("utf-8", "replace")), "utf-8")
    except (binascii.Error, ValueError):
        pass  # not really encoded: read it as it is
    return text


def _text_parts(message: EmailMessage) -> list[Message]:
    """Return the text/plain parts outside any attached message, or the text/html ones
    when there is no plain text."""
    parts: list[Message] = []
    pending: list[Message] = [message]
    while pending:
        part = pending.pop(0)
        inner = _subparts(part)
        if part.get_content_maintype() == "multipart" and inner is not None:
            pending[:0] = inner
        elif part.get_content_type() in ("text/plain", "text/html"):
            parts.append(part)
    plain = [part for part in parts if part.get_content_type() == "text/plain"]
    return plain or parts


def _subparts(part: Message) -> list[Message] | None:
    """Return the parts inside a multipart or message/* part; None when its body is text."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return None
    return [item for item in payload if isinstance(item, Message)]


def _text(part: Message) -> str:
    """Return a text part's content, whatever charset it declares (or wrongly declares)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    text = _decode(payload, part.get_content_charset() or "utf-8")
    if part.get_content_type() == "text/html":
        text = html.unescape(re.sub(r"<[^<>]*>", " ", text))  # [^<>]: linear on "<<<…"
    return text


def _decode(data: bytes, charset: str) -> str:
    """Decode with the declared charset, else UTF-8, else Latin-1 (which never fails)."""
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):  # unknown name, bad bytes, or a NUL in the name
            continue
    return data.decode("latin-1")


def _header(message: Message, field: str) -> str:
    value = message.get(field)
    return "" if value is None else _clean(str(value))


def _clean(text: str) -> str:
    """Return `text` without the lone surrogates that undecodable 8-bit bytes leave."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _address(value: str) -> str | None:
    """Return the address in a field value ("rfc822; <Alice@Example.NET>"), domain lowercased."""
    address = _TYPE.sub("", value, count=1).strip().strip("<>").strip()
    if len(address) > 254 or not _ADDRESS.fullmatch(address):  # 254: RFC 5321's longest path
        return None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _text_address(text: str) -> str | None:
    """Return the first address in a bounce's text that is not a mail system's own."""
    for match in _ADDRESS.finditer(text):
        address = _address(match.group())
        local = match.group().partition("@")[0].lower()
        if address and local not in _DAEMONS and parse_verp(address) is None:
            return address
    return None


def _status(field: str, diagnostic: str) -> str:
    """Return the enhanced status code: the Status field's, unless it is missing or a bare
    "X.0.0" and the diagnostic gives a more precise one of the same class."""
    declared = _ENHANCED.search(field)
    detailed = _ENHANCED.search(diagnostic)
    if declared is None:
        return detailed.group() if detailed else ""
    status = declared.group()
    if detailed and status.endswith(".0.0") and detailed.group()[0] == status[0]:
        return detailed.group()
    return status


def _reply_class(text: str) -> str:
    """Return the first digit of the first SMTP reply code in `text` ("" if none)."""
    match = _REPLY.search(text)
    return match.group(1)[0] if match else ""


def _code_class(line: str) -> str:
    """Return the class digit of the status or reply code in `line` ("" if none)."""
    return _status("", line)[:1] or _reply_class(line)


def _one_line(text: str) -> str:
    line = " ".join(_clean(text).translate(_CONTROLS).split())
    if len(line) <= DIAGNOSTIC_LENGTH:
        return line
    return line[: DIAGNOSTIC_LENGTH - 1].rstrip() + "…"
