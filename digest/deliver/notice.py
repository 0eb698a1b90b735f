"""Build transactional messages: `build_notice` one whole message for one person (the new
links a subscriber asks for, the editors' notices), `NoticeTemplate` the double opt-in
confirmation, built once per language and personalized in bytes like an issue
(`message.MessageTemplate`). Either leaves the way an issue does: the same header
rules, quoted-printable bodies with lines of at most 76 octets, 7-bit, CRLF, dot-stuffed
for SMTP DATA, optionally DKIM-signed. It has no List-Unsubscribe, List-Id or Precedence:
the person is not on any list yet, and a confirmation is not bulk mail.
"""

from __future__ import annotations

import email.policy
import enum
import hashlib
import re
from datetime import datetime
from email.headerregistry import Address
from email.utils import format_datetime, getaddresses

from digest.deliver.dkim import DkimSigner
from digest.deliver.message import format_to, quoted_printable, stuff
from digest.render import RenderedEmail

_NO_MARKERS = re.compile(r"(?!)")  # matches nothing: a notice has no per-recipient slots
_ATEXT = "-A-Za-z0-9!#$%&'*+/=?^_`{|}~"
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_PLAIN_ADDRESS = re.compile(
    rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
)
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def sender_address(sender: str) -> tuple[str, str]:
    """Return (display name, address) of a From value like "Digest <digest@example.org>";
    raise ValueError unless it is exactly one plain address."""
    parsed = getaddresses([sender])
    if len(parsed) != 1 or not _PLAIN_ADDRESS.fullmatch(parsed[0][1]):
        raise ValueError(f"sender {sender!r} must be one address like 'Name <me@example.org>'")
    return parsed[0]


def sender_domain(sender: str) -> str:
    """Return the domain of the From address, lowercased: where Message-IDs and VERP
    envelope senders live."""
    return sender_address(sender)[1].rpartition("@")[2].lower()


def _header(name: str, value: str) -> str:
    """Return `name: value` folded, CRLF-terminated, RFC 2047-encoded when not ASCII."""
    policy = email.policy.SMTP
    folded: str = policy.header_factory(name, " ".join(value.split())).fold(policy=policy)
    return folded


def build_notice(
    rendered: RenderedEmail,
    *,
    sender: str,
    to_address: str,
    to_name: str,
    message_id: str,
    date: datetime,
    envelope_from: str,
    dkim: DkimSigner | None = None,
) -> bytes:
    """Return the SMTP DATA payload (CRLF lines, dot-stuffed, ending in CRLF "." CRLF) of
    `rendered` as a multipart/alternative message from `sender` to one person.

    `message_id` is the part before "@" (the sender's domain is added); `date` is the
    Date header and, with `dkim`, the signing time. `envelope_from` is the VERP address
    the caller hands the transport with this payload: it is checked here, so a bad one
    fails before anything is sent, but not written (receivers add Return-Path from the
    envelope). Raises ValueError for a value that cannot go into a header.
    """
    display, address = sender_address(sender)
    domain = address.rpartition("@")[2].lower()
    if not _DOT_ATOM.fullmatch(message_id):
        raise ValueError(f"message_id {message_id!r} must be a dot-atom without '@'")
    if date.tzinfo is None:
        raise ValueError("date must be an aware datetime")
    if not _PLAIN_ADDRESS.fullmatch(envelope_from):
        raise ValueError(f"envelope_from {envelope_from!r} must be a plain address")
    if not _LANGUAGE_TAG.fullmatch(rendered.language):
        raise ValueError(f"language {rendered.language!r} is not a tag like 'fr' or 'nl-BE'")
    text = quoted_printable(rendered.text, _NO_MARKERS)
    html = quoted_printable(rendered.html, _NO_MARKERS)
    # "=_" never occurs in quoted-printable, so this boundary cannot occur in a part.
    boundary = "=_alternative_" + hashlib.sha256((text + html).encode()).hexdigest()[:24]
    part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
    message = "".join(
        [
            _header("From", str(Address(display_name=display, addr_spec=address))),
            f"To: {format_to(to_name, to_address)}\r\n",
            _header("Subject", rendered.subject),
            f"Date: {format_datetime(date)}\r\n",
            f"Message-ID: <{message_id}@{domain}>\r\n",
            "MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
            f"Content-Language: {rendered.language}\r\n",
            # RFC 3834: autoresponders must not answer it (no vacation reply to a robot).
            "Auto-Submitted: auto-generated\r\n",
            f"\r\n--{boundary}\r\n{part.format('plain')}\r\n\r\n{text}\r\n",
            f"--{boundary}\r\n{part.format('html')}\r\n\r\n{html}\r\n--{boundary}--\r\n",
        ]
        # UTF-8 only in the To: of an internationalized address (RFC 6532, SMTPUTF8).
    ).encode("utf-8")
    signature = dkim.sign(message, date) if dkim is not None else b""
    return stuff(signature + message)


CONFIRM_MARKER = "_digest_confirm_"
"""Stem of the stand-in for the confirmation token; `confirm_marker` pads it."""
MAX_CONFIRM_TOKEN = 74
"""The token always follows a "/" in its URL: with it and the soft break it fills a
76-octet quoted-printable line."""


def confirm_marker(length: int) -> str:
    """The stand-in for a confirmation token of `length` characters."""
    if not len(CONFIRM_MARKER) <= length <= MAX_CONFIRM_TOKEN:
        raise ValueError(f"a confirmation token of {length} characters does not fit a line")
    return CONFIRM_MARKER + "0" * (length - len(CONFIRM_MARKER))


class _Slot(enum.IntEnum):
    TO = 0
    DATE = 1
    MESSAGE_ID = 2
    TOKEN = 3


class NoticeTemplate:
    """A confirmation mail rendered once per language, cut where the person's values go:
    their address, the date, the Message-ID and the confirmation token (as for an issue,
    see `message.MessageTemplate`, but with a notice's headers: no List-* nor Precedence).

    Build it with `build` from a rendering whose confirmation link carries
    `message.marker(CONFIRM_MARKER, token_length)`; `render` then joins bytes.
    """

    def __init__(self, chunks: list[bytes], slots: list[tuple[int, _Slot]], token_length: int):
        self._chunks = chunks
        self._slots = slots
        self._stuffed = [chunk.replace(b"\n.", b"\n..") for chunk in chunks]
        self._stuffed[-1] += b".\r\n"
        self._token = re.compile(rf"[A-Za-z0-9_.-]{{{token_length}}}")
        self.token_length = token_length
        for index, _ in slots:
            # As in MessageTemplate: no value starts a line, so stuffing the static bytes
            # once is stuffing the whole message.
            if chunks[index - 1].endswith(b"\n"):
                raise ValueError("a personal value would start a line")

    @classmethod
    def build(cls, rendered: RenderedEmail, *, sender: str, token_length: int) -> NoticeTemplate:
        """Serialize `rendered` once; raise ValueError when a part lacks the token marker."""
        display, address = sender_address(sender)
        domain = address.rpartition("@")[2].lower()
        if not _LANGUAGE_TAG.fullmatch(rendered.language):
            raise ValueError(f"language {rendered.language!r} is not a tag like 'fr' or 'nl-BE'")
        stand_in = confirm_marker(token_length)
        for part, content in (("text", rendered.text), ("HTML", rendered.html)):
            count = content.count(stand_in)
            if count == 0 or content.count("/" + stand_in) != count:
                raise ValueError(f"the {part} part has no confirmation link ending in /{stand_in}")
        pattern = re.compile(re.escape(stand_in))
        text = quoted_printable(rendered.text, pattern)
        html = quoted_printable(rendered.html, pattern)
        boundary = "=_alternative_" + hashlib.sha256((text + html).encode()).hexdigest()[:24]
        part = (
            'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
        )
        segments: list[str | _Slot] = [
            _header("From", str(Address(display_name=display, addr_spec=address))),
            "To: ", _Slot.TO, "\r\n",
            _header("Subject", rendered.subject),
            "Date: ", _Slot.DATE, "\r\n",
            "Message-ID: <", _Slot.MESSAGE_ID, f"@{domain}>\r\n",
            "MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
            f"Content-Language: {rendered.language}\r\n",
            "Auto-Submitted: auto-generated\r\n",
            f"\r\n--{boundary}\r\n{part.format('plain')}\r\n\r\n{text}\r\n",
            f"--{boundary}\r\n{part.format('html')}\r\n\r\n{html}\r\n--{boundary}--\r\n",
        ]  # fmt: skip
        chunks: list[bytes] = [b""]
        slots: list[tuple[int, _Slot]] = []
        for segment in segments:
            if isinstance(segment, _Slot):
                slots.append((len(chunks), segment))
                chunks.extend([b"", b""])
                continue
            pieces = segment.split(stand_in)
            chunks[-1] += pieces[0].encode("utf-8")
            for piece in pieces[1:]:
                slots.append((len(chunks), _Slot.TOKEN))
                chunks.extend([b"", piece.encode("utf-8")])
        return cls(chunks, slots, token_length)

    def _join(self, chunks: list[bytes], values: tuple[bytes, ...], headers: bytes) -> bytes:
        parts = chunks.copy()
        parts[0] = headers + parts[0]
        for index, slot in self._slots:
            parts[index] = values[slot]
        return b"".join(parts)

    def values(
        self, *, to_address: str, to_name: str, message_id: str, date: datetime, token: str
    ) -> tuple[bytes, ...]:
        """Check and encode one person's values; raise ValueError for a bad one."""
        if not self._token.fullmatch(token):
            raise ValueError(f"the confirmation token is not {self.token_length} characters")
        if not _DOT_ATOM.fullmatch(message_id):
            raise ValueError(f"message_id {message_id!r} must be a dot-atom without '@'")
        if date.tzinfo is None:
            raise ValueError("date must be an aware datetime")
        return (
            format_to(to_name, to_address).encode("utf-8"),
            format_datetime(date).encode("ascii"),
            message_id.encode("ascii"),
            token.encode("ascii"),
        )

    def render(self, values: tuple[bytes, ...], dkim: DkimSigner | None, date: datetime) -> bytes:
        """The SMTP DATA payload of one person's mail (dot-stuffed, DKIM-signed with `dkim`)."""
        headers = dkim.sign(self._join(self._chunks, values, b""), date) if dkim else b""
        if headers and (not headers.endswith(b"\r\n") or headers.startswith((b".", b" "))):
            raise ValueError("a DKIM signature must be whole CRLF-terminated header fields")
        return self._join(self._stuffed, values, headers.replace(b"\n.", b"\n.."))
