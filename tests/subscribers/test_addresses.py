"""Address normalization: one spelling per mailbox, and a clear refusal for anything else."""

from __future__ import annotations

import contextlib

import pytest

from subscribers import addresses
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


SEEN_DOMAIN_CASES = [
    "plain@example.org",
    "First.Last+tag@Example.ORG",
    "o'hara@example.org",
    "a..b@example.org",
    ".lead@example.org",
    "trail.@example.org",
    "Jürgen@example.org",
    '"quoted@local"@example.org',
    "Alice <alice@example.org>",
    "a b@example.org",
    "x" * 64 + "@example.org",
    "x" * 65 + "@example.org",
    "user@Bücher.de",
    "other@Bücher.de",
    "user@example.org\r\nBcc: x@example.net",
    "user@localhost",
    "user@example.org@example.org",
]


def _outcome(address: str) -> str:
    try:
        return normalize(address)
    except InvalidAddress as exc:
        return f"refused: {exc}"


def test_a_domain_seen_before_changes_no_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports skip re-checking a domain email-validator accepted: same answer either way."""
    monkeypatch.setattr(addresses, "_valid_domains", {})
    cold = []
    for address in SEEN_DOMAIN_CASES:
        addresses._valid_domains.clear()
        cold.append(_outcome(address))
    for domain in ("example.org", "Example.ORG", "Bücher.de", "localhost", "example.net"):
        with contextlib.suppress(InvalidAddress):
            normalize(f"warm@{domain}")
    assert "example.org" in addresses._valid_domains  # the fast path is really taken
    assert [_outcome(address) for address in SEEN_DOMAIN_CASES] == cold
