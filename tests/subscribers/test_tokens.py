"""Link tokens: purpose-bound, tamper-proof, expiring (but for unsubscribing), rotatable keys
kept only for a set time."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from subscribers.model import new_public_id
from subscribers.tokens import Purpose, TokenExpired, TokenInvalid, Tokens
from tests.subscribers.common import NOW

TOKENS = Tokens(["current key", "previous key"])
PUBLIC_ID = "Zq3v0TnXy8Kp2LmWcR5sGA"  # fixed, so the tests never depend on chance


def make(tokens: Tokens, purpose: Purpose, public_id: str) -> str:
    if purpose is Purpose.CONFIRM:
        return tokens.confirm_token(public_id, now=NOW)
    if purpose is Purpose.UNSUBSCRIBE:
        return tokens.unsubscribe_token(public_id, now=NOW)
    return tokens.preferences_token(public_id, now=NOW)


def reader(tokens: Tokens, purpose: Purpose) -> Callable[[str], str]:
    if purpose is Purpose.CONFIRM:
        return lambda token: tokens.read_confirm(token, now=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=1)
    if purpose is Purpose.UNSUBSCRIBE:
        return lambda token: tokens.read_unsubscribe(token, now=later)
    return lambda token: tokens.read_preferences(token, now=later)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_round_trip(purpose: Purpose) -> None:
    token = make(TOKENS, purpose, PUBLIC_ID)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token), "tokens go into URLs unescaped"
    assert reader(TOKENS, purpose)(token) == PUBLIC_ID


@pytest.mark.parametrize(
    ("made_for", "read_as"),
    [(made, read) for made in Purpose for read in Purpose if made is not read],
)
def test_a_token_only_serves_its_purpose(made_for: Purpose, read_as: Purpose) -> None:
    token = make(TOKENS, made_for, PUBLIC_ID)
    with pytest.raises(TokenInvalid, match=f"this {read_as.value} link is not valid"):
        reader(TOKENS, read_as)(token)


def flip(token: str, index: int) -> str:
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


@pytest.mark.parametrize("purpose", list(Purpose))
def test_tampered_tokens_are_refused(purpose: Purpose) -> None:
    token = make(TOKENS, purpose, PUBLIC_ID)
    other = make(TOKENS, purpose, new_public_id())
    forged = [
        flip(token, 0),  # another subscriber's id under this signature
        # Not the last character: its low bits are base64 padding, which decoders ignore.
        flip(token, len(token) - 2),
        token[:-5],
        other.split(".")[0] + token[len(PUBLIC_ID) :],
        "",
        "no-dots-at-all",
        "é" * 30,
    ]
    read = reader(TOKENS, purpose)
    for bad in forged:
        with pytest.raises(TokenInvalid):
            read(bad)


def test_confirmation_tokens_expire_after_max_age() -> None:
    token = TOKENS.confirm_token(PUBLIC_ID, now=NOW)
    assert TOKENS.read_confirm(token, now=NOW + timedelta(days=7)) == PUBLIC_ID
    with pytest.raises(TokenExpired, match="older than 7 days"):
        TOKENS.read_confirm(token, now=NOW + timedelta(days=7, seconds=1))


def test_max_age_is_a_parameter() -> None:
    short = Tokens(["current key"], max_age_days=2)
    token = short.confirm_token(PUBLIC_ID, now=NOW)
    assert short.read_confirm(token, now=NOW + timedelta(days=1)) == PUBLIC_ID
    with pytest.raises(TokenExpired, match="older than 2 days"):
        short.read_confirm(token, now=NOW + timedelta(days=3))


def test_expired_and_invalid_are_told_apart() -> None:
    token = TOKENS.confirm_token(PUBLIC_ID, now=NOW)
    later = NOW + timedelta(days=30)
    with pytest.raises(TokenExpired):
        TOKENS.read_confirm(token, now=later)
    with pytest.raises(TokenInvalid):
        TOKENS.read_confirm(flip(token, len(token) - 2), now=later)
    assert not issubclass(TokenExpired, TokenInvalid)
    assert not issubclass(TokenInvalid, TokenExpired)


def test_a_token_stamped_slightly_after_now_still_confirms() -> None:
    token = TOKENS.confirm_token(PUBLIC_ID, now=NOW + timedelta(seconds=30))
    assert TOKENS.read_confirm(token, now=NOW) == PUBLIC_ID


def test_unsubscribe_tokens_never_expire_preferences_tokens_do() -> None:
    unsubscribe = make(TOKENS, Purpose.UNSUBSCRIBE, PUBLIC_ID)
    assert TOKENS.read_unsubscribe(unsubscribe, now=NOW + timedelta(days=3650)) == PUBLIC_ID
    preferences = make(TOKENS, Purpose.PREFERENCES, PUBLIC_ID)
    assert TOKENS.read_preferences(preferences, now=NOW + timedelta(days=90)) == PUBLIC_ID
    with pytest.raises(TokenExpired, match="older than 90 days"):
        TOKENS.read_preferences(preferences, now=NOW + timedelta(days=90, seconds=1))
    link = TOKENS.read_preferences_link(preferences, now=NOW + timedelta(days=400), expired_ok=True)
    assert link.public_id == PUBLIC_ID and link.issued_at == NOW.replace(microsecond=0)
    short = Tokens(["current key"], link_days=5)
    with pytest.raises(TokenExpired, match="older than 5 days"):
        short.read_preferences(
            short.preferences_token(PUBLIC_ID, now=NOW), now=NOW + timedelta(days=6)
        )


@pytest.mark.parametrize("purpose", list(Purpose))
def test_previous_keys_verify_only_until_their_day(purpose: Purpose) -> None:
    before = Tokens(["old key"])
    old_token = make(before, purpose, PUBLIC_ID)
    until = NOW + timedelta(days=3)  # within a confirmation link's 7 days
    after = Tokens(["new key", "old key"], previous_until=until)
    if purpose is Purpose.CONFIRM:
        assert after.read_confirm(old_token, now=until - timedelta(seconds=1)) == PUBLIC_ID
        with pytest.raises(TokenInvalid):
            after.read_confirm(old_token, now=until)
        return
    read = after.read_unsubscribe if purpose is Purpose.UNSUBSCRIBE else after.read_preferences
    assert read(old_token, now=until - timedelta(seconds=1)) == PUBLIC_ID
    with pytest.raises(TokenInvalid):
        read(old_token, now=until)
    new_token = make(after, purpose, PUBLIC_ID)
    assert reader(Tokens(["new key"]), purpose)(new_token) == PUBLIC_ID


def test_links_are_signed_with_a_derived_key_not_the_secret() -> None:
    import hashlib
    import hmac

    token = make(TOKENS, Purpose.UNSUBSCRIBE, PUBLIC_ID)
    public_id, stamp, signature = token.split(".")
    raw = hmac.new(b"current key", f"unsubscribe|{public_id}|{stamp}".encode(), hashlib.sha256)
    assert base64.urlsafe_b64encode(raw.digest()[:16]).decode().rstrip("=") != signature


@pytest.mark.parametrize("purpose", list(Purpose))
def test_rotation_keeps_old_tokens_working(purpose: Purpose) -> None:
    before = Tokens(["old key"])
    after = Tokens(["new key", "old key"])
    old_token = make(before, purpose, PUBLIC_ID)
    assert reader(after, purpose)(old_token) == PUBLIC_ID

    new_token = make(after, purpose, PUBLIC_ID)
    assert reader(Tokens(["new key"]), purpose)(new_token) == PUBLIC_ID, "newest key signs"
    with pytest.raises(TokenInvalid):
        reader(before, purpose)(new_token)
    with pytest.raises(TokenInvalid):
        reader(Tokens(["new key"]), purpose)(old_token)  # the old key was retired


@pytest.mark.parametrize("purpose", [Purpose.UNSUBSCRIBE, Purpose.PREFERENCES])
def test_unsubscribe_tokens_have_a_fixed_length(purpose: Purpose) -> None:
    length = TOKENS.token_length(purpose)
    assert length == 22 + 1 + 8 + 1 + 22  # public_id, stamp, 128 bits of an HMAC-SHA256
    lengths = {len(make(TOKENS, purpose, new_public_id())) for _ in range(500)}
    assert lengths == {length}
    assert make(TOKENS, purpose, PUBLIC_ID) == make(TOKENS, purpose, PUBLIC_ID), "deterministic"
    assert Tokens(["a much longer and entirely different key"]).token_length(purpose) == length


def test_confirmation_tokens_have_no_promised_length() -> None:
    with pytest.raises(ValueError, match="not fixed"):
        TOKENS.token_length(Purpose.CONFIRM)


def decoded_parts(token: str) -> list[bytes]:
    parts = []
    for part in token.split("."):
        parts.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return parts


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_never_contains_the_address(purpose: Purpose) -> None:
    address = "alice.jansen@example.org"
    token = make(TOKENS, purpose, PUBLIC_ID)
    assert "alice" not in token.lower()
    for part in decoded_parts(token):
        assert b"alice" not in part.lower()
        assert b"example" not in part.lower()
    assert address not in token


def test_only_public_ids_are_signed() -> None:
    with pytest.raises(ValueError, match="public_id"):
        TOKENS.unsubscribe_token("alice@example.org")


def test_keys_are_required_and_never_shown() -> None:
    with pytest.raises(ValueError, match="DIGEST_WEB__SECRET_KEY"):
        Tokens([])
    with pytest.raises(ValueError, match="secret_key"):
        Tokens(["key", ""])
    with pytest.raises(TypeError, match="sequence of keys"):
        Tokens("one string")
    assert "current key" not in repr(TOKENS)
    assert "previous key" not in repr(TOKENS)
