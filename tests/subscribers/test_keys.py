"""Derived keys: one per purpose, stable, and never equal across purposes or secrets."""

import pytest

from subscribers.keys import KeyPurpose, derive_key


def test_same_secret_and_purpose_give_the_same_key() -> None:
    assert derive_key("s" * 40, KeyPurpose.LINKS) == derive_key(b"s" * 40, "links")
    assert len(derive_key("s" * 40, KeyPurpose.LINKS)) == 32


def test_purposes_and_secrets_are_separated() -> None:
    keys = {derive_key("s" * 40, purpose) for purpose in KeyPurpose}
    assert len(keys) == len(KeyPurpose)
    assert derive_key("s" * 40, "links") != derive_key("t" * 40, "links")


def test_an_empty_secret_or_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="secret_key"):
        derive_key("", "links")
    with pytest.raises(ValueError, match="purpose"):
        derive_key("s" * 40, "")
