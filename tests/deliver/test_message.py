"""Personal messages from a template, read back the way a mail client reads them."""

from __future__ import annotations

import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from digest.deliver.message import (
    MAX_TOKEN_LENGTH,
    MIN_TOKEN_LENGTH,
    PREFERENCES_MARKER,
    UNSUBSCRIBE_MARKER,
    marker,
    parse_verp,
    preferences_url,
    quoted_printable,
    stuff,
    unstuff,
    unsubscribe_url,
    verp_address,
)
from digest.render import RenderedEmail
from tests.deliver.messages import (
    DATE,
    LONG_LINE,
    PREFERENCES_TOKEN,
    SENDER,
    TOKEN_LENGTH,
    UNSUBSCRIBE_TOKEN,
    awkward,
    build,
    personal,
    rendered,
)
from tests.render.plans import BASE_URL

REQUIRED = (
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "Content-Language", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
    "Auto-Submitted", "Precedence",
)  # fmt: skip
UNSUBSCRIBE_URL = unsubscribe_url(BASE_URL, "fr", UNSUBSCRIBE_TOKEN)
PREFERENCES_URL = preferences_url(BASE_URL, "fr", PREFERENCES_TOKEN)


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    text, html = message.iter_parts()
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text, html


def raw_headers(data: bytes) -> list[str]:
    """The header fields as sent, folded and not decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return re.split(r"\r\n(?![ \t])", head)


@pytest.fixture(params=["en", "nl", "fr"])
def issue(request: pytest.FixtureRequest) -> tuple[RenderedEmail, bytes]:
    """The example issue in each language, rendered for Alice."""
    variant = rendered(request.param)
    return variant, build(variant).render(personal())


def test_every_header_once_and_parts_in_order(issue: tuple[RenderedEmail, bytes]) -> None:
    variant, data = issue
    message = parse(data)
    for name in REQUIRED:
        assert len(message.get_all(name, [])) == 1, name
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert message["Content-Language"] == variant.language
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == DATE
    assert message["Message-ID"] == "<12.fr.4711@example.org>"
    text, html = parts(message)
    assert [text.get_content_type(), html.get_content_type()] == ["text/plain", "text/html"]
    for part in (text, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.defects == [] and text.defects == [] and html.defects == []


def test_parts_decode_to_the_rendering_with_tokens(issue: tuple[RenderedEmail, bytes]) -> None:
    variant, data = issue
    text, html = parts(parse(data))
    language = variant.language
    expected_text = variant.text.replace(
        marker(UNSUBSCRIBE_MARKER, TOKEN_LENGTH), UNSUBSCRIBE_TOKEN
    )
    expected_text = expected_text.replace(
        marker(PREFERENCES_MARKER, TOKEN_LENGTH), PREFERENCES_TOKEN
    )
    assert text.get_content().replace("\r\n", "\n") == expected_text
    html_content = html.get_content()
    assert f'<html lang="{language}"' in html_content
    for stem in (UNSUBSCRIBE_MARKER, PREFERENCES_MARKER):
        assert stem not in text.get_content() + html_content
        assert stem.encode() not in data


def test_visible_and_one_click_unsubscribe_agree(issue: tuple[RenderedEmail, bytes]) -> None:
    variant, data = issue
    message = parse(data)
    url = unsubscribe_url(BASE_URL, variant.language, UNSUBSCRIBE_TOKEN)
    text, html = parts(message)
    assert url in text.get_content()
    assert f'href="{url}"' in html.get_content()
    assert preferences_url(BASE_URL, variant.language, PREFERENCES_TOKEN) in text.get_content()
    header = message["List-Unsubscribe"]
    assert re.findall(r"<([^>]+)>", header) == [
        url,
        "mailto:unsubscribe@example.org?subject=unsubscribe",
    ]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == f"Cités & Migration Digest <{variant.language}.digest.example.org>"


def test_non_ascii_headers_are_encoded_words() -> None:
    data = build(awkward()).render(personal())
    fields = {field.split(":", 1)[0]: field for field in raw_headers(data)}
    for name in ("From", "To", "Subject", "List-Id"):
        assert fields[name].isascii()
        assert "=?utf-8?" in fields[name]
    message = parse(data)
    assert message["Subject"] == "Actualités de la semaine — Bruxelles"
    assert message["From"] == SENDER
    assert message["To"].addresses[0].display_name == "Zoë Dupont-Éléonore"
    assert message["To"].addresses[0].addr_spec == "alice@example.net"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", ""),
        ("Alice Martin", "Alice Martin"),
        ('Martin, Alice "Al"', 'Martin, Alice "Al"'),
        ("Eve\r\nBcc: victim@example.com", "Eve Bcc: victim@example.com"),
        ("Zoë  Dupont Élise-Éléonore", "Zoë Dupont Élise-Éléonore"),
        ("Ŝŝ Ĝĝ Martin Ŝŝ Ĝĝ", "Ŝŝ Ĝĝ Martin Ŝŝ Ĝĝ"),
    ],
)
def test_to_names_quoted_encoded_and_folded(name: str, expected: str) -> None:
    data = build(awkward()).render(personal(to_name=name))
    message = parse(data)
    assert message["To"].addresses[0].display_name == expected
    assert message["To"].addresses[0].addr_spec == "alice@example.net"
    assert "Bcc" not in message
    field = raw_headers(data)[1]
    assert field.isascii() and field.startswith("To: ")
    assert all(len(line) <= 78 for line in field.split("\r\n"))


def test_long_names_are_cut_between_characters() -> None:
    # Python's address parser puts a space between adjacent encoded words; RFC 2047 6.2
    # says to drop it, as email.header (and mail clients) do.
    for name, expected in [("Ŝ" * 130, "Ŝ" * 128), ("Ŝ " * 30 + "Martin", "Ŝ " * 30 + "Martin")]:
        data = build(awkward()).render(personal(to_name=name))
        field = raw_headers(data)[1].removeprefix("To: ")
        assert str(make_header(decode_header(field))) == f"{expected} <alice@example.net>"
        assert all(len(line) <= 78 for line in field.split("\r\n"))


def test_crlf_everywhere_and_no_line_over_998_octets() -> None:
    variant = awkward()
    assert len(LONG_LINE) > 5000
    data = build(variant).render(personal())
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert data.isascii()
    text, html = parts(parse(data))
    assert LONG_LINE in html.get_content()
    assert "From the editor: bonne lecture. \n" in text.get_content().replace("\r\n", "\n")
    # mbox readers quote "From " at the start of a line; QP spells it so they cannot.
    assert b"\r\n=46rom the editor" in data


def test_markers_are_never_cut_nor_start_a_line() -> None:
    token = marker(UNSUBSCRIBE_MARKER, TOKEN_LENGTH)
    pattern = re.compile(re.escape(token))
    for offset in range(160):
        encoded = quoted_printable("é" * (offset // 2) + "a" * offset + "/" + token + "!", pattern)
        lines = encoded.split("\r\n")
        assert max(map(len, lines)) <= 76
        assert sum(line.count(token) for line in lines) == 1
        assert not any(line.startswith(token) for line in lines)
    with pytest.raises(ValueError, match="starts the line"):
        quoted_printable(f"x\n{token} at the start", pattern)


def test_dot_stuffed_once_per_variant_equals_stuffing_each_message() -> None:
    template = build(awkward())
    # The token starts with "." and, after a run of x's, sits at the end of a long line:
    # it must still not start a line once the encoder has folded it.
    for alice in (personal(), personal(unsubscribe_token="." * TOKEN_LENGTH)):
        message = template.render(alice)
        data = template.render_stuffed(alice)
        # What smtplib does to every message: double each "." that starts a line.
        assert data == re.sub(rb"(?m)^\.", b"..", message) + b".\r\n"
        assert data == stuff(message)
        assert unstuff(data) == message
        assert b"\r\n..Ce paragraphe" in data and b"\r\n..\r\n" in data
        assert not re.search(rb"\r\n\.{1,2}" + re.escape(b"." * 10), data)
    signature = b"DKIM-Signature: v=1;\r\n\tb=abc\r\n"
    assert template.render_stuffed(personal(), signature) == stuff(
        signature + template.render(personal())
    )


def test_tokens_and_values_are_checked() -> None:
    template = build(awkward())
    with pytest.raises(ValueError, match="40 characters"):
        template.render(personal(unsubscribe_token="short"))
    with pytest.raises(ValueError, match="40 characters"):
        template.render(personal(preferences_token="a/b" + "c" * 37))
    with pytest.raises(ValueError, match="dot-atom"):
        template.render(personal(message_id="12@elsewhere.example"))
    with pytest.raises(ValueError, match="RFC 5322 date"):
        template.render(personal(date="2026-11-23T07:00:00Z"))
    # An internationalized address is written as UTF-8 (RFC 6532; sent with SMTPUTF8).
    assert "<zoë@example.net>\r\n".encode() in template.render(
        personal(to_address="zoë@example.net")
    )
    for bad in ("alice@example.net\r\nBcc: x@y.z", "zoë@exämple.net", "zo ë@example.net"):
        with pytest.raises(ValueError, match="IDNA"):
            template.render(personal(to_address=bad))
    for length in (MIN_TOKEN_LENGTH - 1, MAX_TOKEN_LENGTH + 1):
        with pytest.raises(ValueError, match="outside"):
            marker(UNSUBSCRIBE_MARKER, length)


def test_build_refuses_a_rendering_without_unsubscribe_links() -> None:
    variant = awkward()
    without = RenderedEmail(variant.language, variant.subject, "", variant.html, "Bonne lecture.\n")
    with pytest.raises(ValueError, match="text part has no visible unsubscribe link"):
        build(without)
    with pytest.raises(ValueError, match="HTML part"):
        build(RenderedEmail(variant.language, variant.subject, "", "<html></html>", variant.text))
    with pytest.raises(ValueError, match="https"):
        build(variant, base_url="http://digest.example.org")
    with pytest.raises(ValueError, match="sender"):
        build(variant, sender="nobody")
    with pytest.raises(ValueError, match="language tag"):
        build(variant, language="fr\r\nBcc: x@example.com")


def test_extra_headers_once_and_ours_protected() -> None:
    variant = awkward()
    edited = RenderedEmail("fr", "Actualités\r\nBcc: x@example.com", "", variant.html, variant.text)
    template = build(edited, headers={"X-Campaign": "issue 12 —\nsemaine"})
    message = parse(template.render(personal()))
    assert message.get_all("X-Campaign") == ["issue 12 — semaine"]
    assert message["Subject"] == "Actualités Bcc: x@example.com"
    assert "Bcc" not in message
    with pytest.raises(ValueError, match="written by the builder"):
        build(awkward(), headers={"list-unsubscribe": "<https://elsewhere.example/>"})


def test_mailto_is_optional() -> None:
    message = parse(build(awkward(), unsubscribe_mailto=None).render(personal()))
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>"


def test_verp_round_trip() -> None:
    address = verp_address("bounces", "example.org", "alice@example.net")
    assert address == "bounces+alice=example.net@example.org"
    assert parse_verp(address) == "alice@example.net"
    assert parse_verp(f"<{address}>") == "alice@example.net"
    tricky = "a.b+news=weekly@mail.example.co.uk"
    assert parse_verp(verp_address("bounces", "example.org", tricky)) == tricky
    assert build(awkward()).envelope_from("alice@example.net") == address
    assert parse_verp("postmaster@example.org") is None
    assert parse_verp("bounces+nobody@example.org") is None
    with pytest.raises(ValueError, match="without"):
        verp_address("bounces+x", "example.org", "alice@example.net")


def test_verp_carries_a_signed_reference_and_still_names_the_subscriber() -> None:
    from digest.deliver.references import sign, verify

    key = b"k" * 32
    reference = sign(key, "d", 41)
    address = verp_address("bounces", "example.org", "alice@example.net", reference)
    assert address == f"bounces+{reference}+alice=example.net@example.org"
    assert parse_verp(address) == "alice@example.net"
    assert verify(key, address) is not None and verify(key, address).delivery_id == 41  # type: ignore[union-attr]
    assert verify(b"x" * 32, address) is None, "another key"
    assert verify(key, address.replace(reference[-4:], "0000")) is None, "a guessed tag"
    # An address that cannot stand in a local part: the reference alone.
    assert verp_address("bounces", "example.org", "änne@example.net", reference) == (
        f"bounces+{reference}@example.org"
    )
