"""Build a variant's message once, then personalize it per recipient by joining byte slices.

Building and serializing an `EmailMessage` per recipient costs milliseconds; here the
variant is serialized once, with markers where the recipient's values go, and cut at every
marker. `render` then joins the slices with the values (microseconds per message).

Transfer encoding: quoted-printable for both parts, with our own encoder. premailer writes
HTML lines of 100 KB and the text part holds long URLs, while SMTP allows 998 octets a line.
QP folds any line at any point without changing the decoded content, and keeps the message
7-bit, so it needs no 8BITMIME and survives any relay (a relay that downgrades 8bit mail
re-encodes the body and breaks DKIM). Wrapping the HTML ourselves and sending 8bit would
change the document where a break falls inside text or `<pre>`, and a 5,000-character URL
has no safe break at all. The cost is size: "=" becomes "=3D" in every attribute and
non-ASCII letters take 6 octets (bench/message.py prints it). The encoder treats each
marker as one unbreakable word that never starts a line, so a token (itsdangerous tokens
may start with ".") never lands where SMTP dot-stuffing or a soft break would touch it, and
tokens must have the marker's length so that no line grows past 76 octets.
"""

from __future__ import annotations

import email.policy
import enum
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses
from types import MappingProxyType

from digest.render import Links, RenderedEmail

UNSUBSCRIBE_MARKER = "_digest_unsubscribe_"
PREFERENCES_MARKER = "_digest_preferences_"
"""Stems of the stand-ins for the recipient's tokens; `marker()` pads them to a length."""
MIN_TOKEN_LENGTH = len(UNSUBSCRIBE_MARKER)
# A marker plus the character kept before it and the soft break "=" fit a 76-octet QP line.
MAX_TOKEN_LENGTH = 72


class Slot(enum.IntEnum):
    """Where a per-recipient value goes; also its index in `MessageTemplate._values`."""

    TO = 0
    DATE = 1
    MESSAGE_ID = 2
    UNSUBSCRIBE = 3
    PREFERENCES = 4


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_OURS = {
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "content-language", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "auto-submitted", "precedence",
}  # fmt: skip
_ATEXT = "-A-Za-z0-9!#$%&'*+/=?^_`{|}~"  # "-" first: literal in a class
_ADDRESS = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_ID_LEFT = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_DATE = re.compile(
    r"(?:[A-Z][a-z]{2}, )?[0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}(?::[0-9]{2})? [+-][0-9]{4}"
)
_PHRASE = re.compile(rf"[{_ATEXT} ]+")
_ATOM = re.compile(rf"[{_ATEXT}]+")
_Q_SAFE = re.compile(r"[A-Za-z0-9!*+/-]")  # what a Q encoded word may hold in a phrase
_CONTROLS = {code: " " for code in [*range(32), 127]}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Literal where QP allows it (RFC 2045 6.7), "=XX" elsewhere; space and tab are fixed up at
# the end of a line, where they must be encoded.
_QP = [chr(b) if (33 <= b <= 126 and b != 61) or b in (9, 32) else f"={b:02X}" for b in range(256)]


def marker(stem: str, length: int) -> str:
    """Return the stand-in for a `length`-character token: `stem` padded with "0"s."""
    if not MIN_TOKEN_LENGTH <= length <= MAX_TOKEN_LENGTH:
        raise ValueError(
            f"token length {length} is outside {MIN_TOKEN_LENGTH}..{MAX_TOKEN_LENGTH}; "
            "tokens must fit one quoted-printable line"
        )
    return stem + "0" * (length - len(stem))


def unsubscribe_url(base_url: str, language: str, token: str) -> str:
    """Return the one-click unsubscribe URL (RFC 8058) of `token`."""
    return f"{base_url.rstrip('/')}/{language}/unsubscribe/{token}"


def preferences_url(base_url: str, language: str, token: str) -> str:
    """Return the preferences page URL of `token`."""
    return f"{base_url.rstrip('/')}/{language}/preferences/{token}"


def marker_links(base_url: str, language: str, archive_url: str, length: int) -> Links:
    """Return the `Links` to render a variant with for sending: markers for the tokens."""
    return Links(
        base_url=base_url,
        archive_url=archive_url,
        unsubscribe_url=unsubscribe_url(base_url, language, marker(UNSUBSCRIBE_MARKER, length)),
        preferences_url=preferences_url(base_url, language, marker(PREFERENCES_MARKER, length)),
    )


def verp_address(bounce_local: str, domain: str, recipient: str, reference: str = "") -> str:
    """Return the VERP envelope sender: ("bounces", "our.domain", "alice@example.net",
    "d41.<tag>") → "bounces+d41.<tag>+alice=example.net@our.domain", so a bounce names the
    message (signed, see `references`) and the subscriber. An address that cannot stand in
    a local part (internationalized) is left out: the reference alone names them."""
    if "+" in bounce_local or "=" in bounce_local or not _ID_LEFT.fullmatch(bounce_local):
        raise ValueError(f"bounce local part {bounce_local!r} must be a dot-atom without + or =")
    if reference and not _ID_LEFT.fullmatch(reference):
        raise ValueError(f"VERP reference {reference!r} must be a dot-atom")
    local, at, recipient_domain = recipient.rpartition("@")
    tag = f"{reference}+" if reference else ""
    if at and _ADDRESS.fullmatch(recipient):
        return f"{bounce_local}+{tag}{local}={recipient_domain}@{domain}"
    if at and _utf8_address(recipient):
        # Internationalized: the envelope sender stays ASCII; the reference names them.
        return f"{bounce_local}+{reference}@{domain}" if reference else f"{bounce_local}@{domain}"
    raise ValueError(f"cannot build a VERP address for {recipient!r}: not a plain address")


_VERP_REFERENCE = re.compile(r"[dc][0-9]+\.[0-9a-f]+\+")


def parse_verp(address: str) -> str | None:
    """Return the recipient a VERP address names, or None when it is not one of ours (or
    carries only a reference)."""
    local, at, _ = address.strip().strip("<>").rpartition("@")
    _, plus, tagged = local.partition("+")
    reference = _VERP_REFERENCE.match(tagged)
    if reference:
        tagged = tagged[reference.end() :]
    # Recipient domains never hold "=", so the last one separates local part and domain.
    recipient_local, equals, recipient_domain = tagged.rpartition("=")
    if not (at and plus and equals and recipient_local and recipient_domain):
        return None
    recipient = f"{recipient_local}@{recipient_domain}"
    return recipient if _ADDRESS.fullmatch(recipient) else None


def stuff(message: bytes) -> bytes:
    """Return `message` (CRLF lines) as SMTP DATA: dot-stuffed, ending in CRLF "." CRLF."""
    body = message if message.endswith(b"\r\n") else message + b"\r\n"
    body = body.replace(b"\r\n.", b"\r\n..")
    return (b"." + body if body.startswith(b".") else body) + b".\r\n"


def unstuff(data: bytes) -> bytes:
    """Return the message an SMTP server stores for DATA `data` (the inverse of `stuff`)."""
    if not data.endswith(b"\r\n.\r\n"):
        raise ValueError('SMTP DATA must end with CRLF "." CRLF')
    message = b"\r\n" + data[: -len(b".\r\n")]
    return message.replace(b"\r\n..", b"\r\n.")[2:]


@dataclass(frozen=True)
class Personal:
    """What differs per recipient; every other byte of the message is shared."""

    to_address: str
    to_name: str
    unsubscribe_token: str
    preferences_token: str
    message_id: str
    """The part before "@": the template adds "@" and the sender's domain."""
    date: str
    """RFC 5322 date, as `email.utils.format_datetime` writes it."""
    envelope_from: str
    """The VERP envelope sender (`MessageTemplate.envelope_from`); not in the message."""


def format_to(name: str, address: str) -> str:
    """Return the To: value for one recipient, RFC 2047-encoded and folded when needed.

    An internationalized address ("änne@example.net") is written as UTF-8 (RFC 6532): such
    a message can only travel over SMTPUTF8, which the transport checks. Its domain must
    be in its ASCII (IDNA) form already, as `subscribers.addresses.normalize` stores it.
    """
    if not _ADDRESS.fullmatch(address) and not _utf8_address(address):
        raise ValueError(
            f"cannot send to {address!r}: not a plain address with an ASCII (IDNA) domain"
        )
    name = " ".join(name.translate(_CONTROLS).split())[:128]
    if not name:
        return address
    words: list[str] = []
    if name.isascii():
        words.append(_phrase(name))
    else:
        # Plain atoms stay readable; each run of other words becomes encoded words, spaces
        # inside, since whitespace between two encoded words is dropped (RFC 2047 6.2).
        for plain, group in itertools.groupby(name.split(" "), key=_is_atom):
            run = list(group)
            words.extend(run if plain else _encoded_words(" ".join(run)))
    words.append(f"<{address}>")
    # Fold between words at 78 columns ("To: " comes first); a word is never cut.
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) > (74 if not lines else 77):
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\r\n ".join([*lines, line])


def _utf8_address(address: str) -> bool:
    """Whether `address` is an internationalized address we can write (RFC 6532): a
    non-ASCII local part without spaces, quotes, controls or brackets, and an IDNA domain."""
    local, at, domain = address.rpartition("@")
    return bool(
        at
        and local
        and not local.isascii()
        and not any(c.isspace() or c in '"<>()[]\\,;:@' or ord(c) < 32 for c in local)
        and _ADDRESS.fullmatch(f"x@{domain}")
    )


def is_internationalized(address: str) -> bool:
    """Whether sending to `address` needs SMTPUTF8 (a non-ASCII local part)."""
    return not address.isascii()


def _is_atom(word: str) -> bool:
    return _ATOM.fullmatch(word) is not None


def _encoded_words(text: str) -> list[str]:
    """Return `text` as RFC 2047 Q encoded words of at most 75 characters each."""
    words: list[str] = []
    current = ""
    for char in text:
        literal = "_" if char == " " else char if _Q_SAFE.fullmatch(char) else None
        encoded = literal or "".join(f"={b:02X}" for b in char.encode())
        if len(current) + len(encoded) > 63:  # 75 minus "=?utf-8?q?" and "?="
            words.append(current)
            current = ""
        current += encoded
    return [f"=?utf-8?q?{word}?=" for word in [*words, current]]


def _phrase(name: str) -> str:
    """Return an ASCII display name as atoms, or as a quoted string when it needs one."""
    if _PHRASE.fullmatch(name) or not name:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quoted_printable(text: str, markers: re.Pattern[str]) -> str:
    """Encode `text` as quoted-printable with CRLF line breaks, lines of at most 76
    octets, and each `markers` match kept whole and never at the start of a line."""
    lines: list[str] = []
    for line in _LINE_BREAK.split(text):
        units: list[str] = []
        at = 0
        for match in markers.finditer(line):
            units.extend(_QP[octet] for octet in line[at : match.start()].encode())
            units.append(match.group())
            at = match.end()
        units.extend(_QP[octet] for octet in line[at:].encode())
        if units and units[-1] in (" ", "\t"):
            units[-1] = "=20" if units[-1] == " " else "=09"
        lines.extend(_fold(units, line))
    return "\r\n".join(lines)


def _fold(units: list[str], line: str) -> list[str]:
    """Fill 76-octet lines with `units` (a character's encoding, or a marker: longer than 3),
    ending each but the last with the soft break "="."""
    out: list[str] = []
    current: list[str] = []
    width = 0
    last = len(units) - 1
    for i, unit in enumerate(units):
        # The last unit of the line needs no soft break after it, so it may use column 76.
        if width + len(unit) > (76 if i == last else 75):
            carried: list[str] = []
            if len(unit) > 3:  # a marker: take the character before it along
                if len(current[-1]) > 3:
                    raise ValueError(f"two personal markers touch in the line {line[:80]!r}")
                carried = [current.pop()]
            out.append("".join(current) + "=")
            current, width = carried, sum(map(len, carried))
        if not current:
            if len(unit) > 3:
                raise ValueError(
                    f"a personal marker starts the line {line[:80]!r}; tokens may start "
                    'with "." and must follow a character (put them in a URL)'
                )
            if unit == "F" and units[i + 1 : i + 5] == ["r", "o", "m", " "]:
                unit = "=46"  # mbox readers would turn "From " into ">From ", breaking DKIM
        current.append(unit)
        width += len(unit)
    out.append("".join(current))
    return out


def _fold_header(name: str, value: str) -> str:
    """Return `name: value` as CRLF-terminated, RFC 2047-encoded when not ASCII."""
    # policy.fold() passes short values through as they are, even when not ASCII.
    policy = email.policy.SMTP
    folded: str = policy.header_factory(name, value).fold(policy=policy)
    return folded


class MessageTemplate:
    """A variant serialized once, cut where the recipient's values go (make it with `build`)."""

    def __init__(
        self,
        chunks: list[bytes],
        slots: list[tuple[int, Slot]],
        *,
        token_length: int,
        domain: str,
        bounce_local: str,
    ) -> None:
        self._chunks = chunks
        self._slots = slots
        self._stuffed = [chunk.replace(b"\n.", b"\n..") for chunk in chunks]
        self._stuffed[-1] += b".\r\n"
        self._token = re.compile(rf"[A-Za-z0-9_.-]{{{token_length}}}")
        self.token_length = token_length
        self.domain = domain
        self.bounce_local = bounce_local
        for index, _ in slots:
            # The proof behind render_stuffed: no value begins a line, and the only line
            # breaks in values (folds of To:) are followed by a space, so only the static
            # bytes can start a line with ".", and those were stuffed here.
            if chunks[index - 1].endswith(b"\n"):
                raise ValueError("a personal value would start a line")
        if chunks[0].startswith(b".") or not chunks[-1].endswith(b"\r\n"):
            raise ValueError("a template must start with a header field and end with CRLF")

    @classmethod
    def build(
        cls,
        rendered: RenderedEmail,
        *,
        sender: str,
        list_id: str,
        base_url: str,
        unsubscribe_mailto: str | None,
        language: str,
        token_length: int,
        headers: Mapping[str, str] = _NO_HEADERS,
        bounce_local: str = "bounces",
    ) -> MessageTemplate:
        """Serialize `rendered` (made with `marker_links(..., token_length)`) with every
        header, and cut it at the personal values.

        `list_id` is the List-Id identifier ("en.digest.example.org"); `headers` adds
        fields of your own (not ones this builder writes). Raises ValueError when the
        rendering lacks a visible unsubscribe link in either part.
        """
        parsed = getaddresses([sender])
        if len(parsed) != 1 or not _ADDRESS.fullmatch(parsed[0][1]):
            raise ValueError(f"sender {sender!r} must be one address like 'Name <me@example.org>'")
        display, address = parsed[0]
        domain = address.rpartition("@")[2].lower()
        if not re.fullmatch(
            r"https://[\x21-\x7e]+|http://(localhost|127\.0\.0\.1)\b[\x21-\x7e]*", base_url
        ):
            raise ValueError(f"base_url {base_url!r} must be an ASCII https:// URL (RFC 8058)")
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", language):
            raise ValueError(f"language {language!r} is not a language tag like 'fr' or 'nl-BE'")
        if not _ID_LEFT.fullmatch(list_id):
            raise ValueError(f"list_id {list_id!r} must look like 'en.digest.example.org'")
        unsubscribe = unsubscribe_url(base_url, language, marker(UNSUBSCRIBE_MARKER, token_length))
        for part, content in (("text", rendered.text), ("HTML", rendered.html)):
            if unsubscribe not in content:
                raise ValueError(
                    f"the {part} part has no visible unsubscribe link to {unsubscribe}; "
                    "render it with marker_links(base_url, language, archive_url, token_length)"
                )
        list_unsubscribe = f"<{unsubscribe}>"
        if unsubscribe_mailto:
            mailto = unsubscribe_mailto.removeprefix("mailto:")
            if not re.fullmatch(r"[\x21-\x7e]+", mailto) or "<" in mailto or ">" in mailto:
                raise ValueError(f"unsubscribe_mailto {unsubscribe_mailto!r} must be ASCII")
            list_unsubscribe += f",\r\n <mailto:{mailto}>"
        extra = []
        for name, value in headers.items():
            if name.lower() in _OURS or not re.fullmatch(r"[!-9;-~]+", name):
                raise ValueError(f"header {name!r} is written by the builder or is not a name")
            extra.append(_fold_header(name, " ".join(value.split())))
        tokens = {
            marker(UNSUBSCRIBE_MARKER, token_length): Slot.UNSUBSCRIBE,
            marker(PREFERENCES_MARKER, token_length): Slot.PREFERENCES,
        }
        pattern = re.compile("|".join(map(re.escape, tokens)))
        text = quoted_printable(rendered.text, pattern)
        html = quoted_printable(rendered.html, pattern)
        # "=_" never occurs in quoted-printable, so this boundary cannot occur in a part.
        boundary = "=_alternative_" + hashlib.sha256((text + html).encode()).hexdigest()[:24]
        # Non-ASCII words become encoded words when folded (RFC 2919 allows them).
        phrase = display if not display.isascii() else _phrase(display)
        part = (
            'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
        )
        segments: list[str | Slot] = [
            _fold_header("From", str(Address(display_name=display, addr_spec=address))),
            "To: ", Slot.TO, "\r\n",
            _fold_header("Subject", " ".join(rendered.subject.split())),
            "Date: ", Slot.DATE, "\r\n",
            "Message-ID: <", Slot.MESSAGE_ID, f"@{domain}>\r\n",
            "MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
            f"Content-Language: {language}\r\n",
            _fold_header("List-Id", f"{phrase} <{list_id}>" if phrase else f"<{list_id}>"),
            f"List-Unsubscribe: {list_unsubscribe}\r\n",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            # RFC 3834 responders skip Auto-Submitted mail; older vacation programs only
            # look at Precedence, which Gmail's guidelines no longer ask for.
            "Auto-Submitted: auto-generated\r\n",
            "Precedence: bulk\r\n",
            *extra,
            f"\r\n--{boundary}\r\n{part.format('plain')}\r\n\r\n{text}\r\n"
            f"--{boundary}\r\n{part.format('html')}\r\n\r\n{html}\r\n--{boundary}--\r\n",
        ]  # fmt: skip
        chunks: list[bytes] = [b""]
        slots: list[tuple[int, Slot]] = []
        for segment in segments:
            if isinstance(segment, Slot):
                slots.append((len(chunks), segment))
                chunks.append(b"")
                chunks.append(b"")
                continue
            pieces = pattern.split(segment)
            for piece, found in zip(pieces, [*pattern.findall(segment), None], strict=True):
                chunks[-1] += piece.encode("ascii")
                if found is not None:
                    slots.append((len(chunks), tokens[found]))
                    chunks.append(b"")
                    chunks.append(b"")
        expected = len(pattern.findall(rendered.text + rendered.html + list_unsubscribe)) + 3
        if len(slots) != expected:
            raise ValueError("a personal marker was lost while encoding; report this as a bug")
        return cls(
            chunks, slots, token_length=token_length, domain=domain, bounce_local=bounce_local
        )

    def render(self, personal: Personal) -> bytes:
        """Return the RFC 5322 message for one recipient (CRLF lines, not dot-stuffed)."""
        return self._join(self._chunks, personal, b"")

    def render_stuffed(self, personal: Personal, headers: bytes = b"") -> bytes:
        """Return the SMTP DATA payload for one recipient: `headers` (e.g. the
        DKIM-Signature of `render(personal)`) and the message, dot-stuffed, ending in
        CRLF "." CRLF. The static bytes were stuffed once, when the template was built."""
        if headers and (not headers.endswith(b"\r\n") or headers.startswith((b".", b" "))):
            raise ValueError("headers must be whole CRLF-terminated header fields")
        return self._join(self._stuffed, personal, headers.replace(b"\n.", b"\n.."))

    def envelope_from(self, recipient: str, reference: str = "") -> str:
        """Return the VERP envelope sender for `recipient` at the sender's domain, carrying
        the signed `reference` of the message (see `references`)."""
        return verp_address(self.bounce_local, self.domain, recipient, reference)

    def _join(self, chunks: list[bytes], personal: Personal, headers: bytes) -> bytes:
        values = self._values(personal)
        parts = chunks.copy()
        parts[0] = headers + parts[0]
        for index, slot in self._slots:
            parts[index] = values[slot]
        return b"".join(parts)

    def _values(self, personal: Personal) -> tuple[bytes, ...]:
        """Check and encode the recipient's values, in `Slot` order."""
        for kind, token in (
            ("unsubscribe", personal.unsubscribe_token),
            ("preferences", personal.preferences_token),
        ):
            if not self._token.fullmatch(token):
                raise ValueError(
                    f"the {kind} token {token[:80]!r} is not {self.token_length} characters "
                    "of A-Z a-z 0-9 _ . -; build the template with the tokens' length"
                )
        if not _ID_LEFT.fullmatch(personal.message_id):
            raise ValueError(f"message_id {personal.message_id!r} must be a dot-atom without '@'")
        if not _DATE.fullmatch(personal.date):
            raise ValueError(f"date {personal.date!r} is not an RFC 5322 date")
        return (
            # UTF-8 only for an internationalized address (RFC 6532, sent with SMTPUTF8).
            format_to(personal.to_name, personal.to_address).encode("utf-8"),
            personal.date.encode("ascii"),
            personal.message_id.encode("ascii"),
            personal.unsubscribe_token.encode("ascii"),
            personal.preferences_token.encode("ascii"),
        )
