"""Address normalization: one spelling per mailbox, and a clear refusal for anything else."""

from __future__ import annotations

import pytest

from subscribers.addresses import InvalidAddress, normalize


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("alice@example.org", "alice@example.org"),
        ("Alice@Example.ORG", "alice@example.org"),
        ("  bob@example.org \t", "bob@example.org"),
        ("carol@example.org\r\n", "carol@example.org"),
        ("user@Bücher.de", "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
        ("Jürgen@Example.org", "jürgen@example.org"),
        ("first.last+digest@sub.example.org", "first.last+digest@sub.example.org"),
    ],
)
def test_normalize_gives_one_spelling_per_mailbox(given: str, expected: str) -> None:
    assert normalize(given) == expected


@pytest.mark.parametrize(
    "given", ["Alice@Example.ORG", "user@Bücher.de", "Jürgen@Straße.de", "İlkay@example.org"]
)
def test_normalizing_twice_changes_nothing(given: str) -> None:
    once = normalize(given)
    assert normalize(once) == once


def test_idn_spellings_are_one_address() -> None:
    assert normalize("info@Bücher.DE") == normalize("INFO@xn--bcher-kva.de")


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("a@b.c\r\nBcc: x@y", "line breaks"),
        ("alice@example.org\nBcc: eve@example.net", "line breaks"),
        ("alice@exa\x00mple.org", "control characters"),
        ("Alice <alice@example.org>", "display name"),
        ('"Alice" <alice@example.org>', "display name"),
        ("alice@example.org, bob@example.org", "invalid characters"),
        ("al ice@example.org", "invalid characters"),
        ("alice.example.org", "@-sign"),
        ("alice@@example.org", "@"),
        ("alice@localhost", "period"),
        ("alice@printer.local", "special-use"),
        ('"quoted"@example.org', "Quoting"),
        ("alice@[192.0.2.1]", "IP address"),
    ],
)
def test_normalize_refuses_what_is_not_one_address(given: str, why: str) -> None:
    with pytest.raises(InvalidAddress, match=why) as caught:
        normalize(given)
    assert repr(given.strip()) in str(caught.value)


def test_empty_address_says_so() -> None:
    with pytest.raises(InvalidAddress, match="empty"):
        normalize("   ")


def test_invalid_address_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a usable email address"):
        normalize("nobody")
