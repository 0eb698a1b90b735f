"""Signed tokens for the links in our mail: confirm, unsubscribe, preferences.

A token carries a subscriber's `public_id` (random, opaque), never the address: anyone can
read a token's payload, only we can sign one. Each purpose has its own salt, so an
unsubscribe token never confirms anything.

- Confirmation tokens are `PUBLICID.TIMESTAMP.SIGNATURE` and expire after `max_age_days`.
- Unsubscribe and preferences tokens are `PUBLICID.SIGNATURE`: no timestamp, so they keep
  working for months, and the same id and key always give the same token of the same
  length (`token_length`). Delivery relies on that: it builds a message once and swaps
  each recipient's token into the bytes. (itsdangerous's serializers would JSON-encode and
  sometimes zlib-compress the payload, so we use its signers directly.)

Key rotation: `Tokens(["new", "old"])` signs with the first key and accepts all of them, so
links already sent keep working after the operator adds a new key in front.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from itsdangerous import BadSignature, Signer, TimestampSigner

from subscribers.errors import TokenExpired, TokenInvalid
from subscribers.model import PUBLIC_ID_LENGTH

__all__ = ["Purpose", "TokenExpired", "TokenInvalid", "Tokens"]

_PUBLIC_ID = re.compile(rf"[A-Za-z0-9_-]{{{PUBLIC_ID_LENGTH}}}")
_SAMPLE_ID = "A" * PUBLIC_ID_LENGTH


class Purpose(enum.StrEnum):
    """What a token lets its bearer do; also its signing salt."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class _ClockedSigner(TimestampSigner):
    """A timestamp signer that reads the caller's `now` instead of the system clock."""

    def __init__(self, secret_key: list[str], *, salt: str, now: datetime) -> None:
        super().__init__(secret_key, salt=salt, digest_method=hashlib.sha256)
        self._now = int(now.timestamp())

    def get_timestamp(self) -> int:
        return self._now


class Tokens:
    """Signs and verifies link tokens with the operator's secret keys, newest first."""

    def __init__(self, secret_keys: Sequence[str], *, max_age_days: int = 7) -> None:
        if isinstance(secret_keys, str):
            raise TypeError("secret_keys is a sequence of keys, newest first, not one string")
        if not secret_keys or not all(secret_keys):
            raise ValueError(
                "no secret key to sign links with; set [web] secret_key "
                "(DIGEST_WEB__SECRET_KEY) to a long random string"
            )
        if max_age_days < 1:
            raise ValueError(f"max_age_days is {max_age_days}; confirmation links need >= 1 day")
        # itsdangerous signs with the last key of its list and verifies with all of them.
        self._keys = list(reversed(secret_keys))
        self.max_age = timedelta(days=max_age_days)

    def __repr__(self) -> str:
        # Never the keys themselves: reprs end up in logs and tracebacks.
        return f"<Tokens {len(self._keys)} key(s), confirmation max age {self.max_age.days} days>"

    def _signer(self, purpose: Purpose) -> Signer:
        return Signer(self._keys, salt=purpose.value, digest_method=hashlib.sha256)

    def _clocked(self, now: datetime) -> _ClockedSigner:
        return _ClockedSigner(self._keys, salt=Purpose.CONFIRM.value, now=now)

    @staticmethod
    def _check_id(public_id: str) -> str:
        if not _PUBLIC_ID.fullmatch(public_id):
            raise ValueError(f"{public_id!r} is not a subscriber public_id")
        return public_id

    def confirm_token(self, public_id: str, *, now: datetime) -> str:
        """Return a confirmation token for `public_id`, valid for `max_age_days` from `now`."""
        return self._clocked(now).sign(self._check_id(public_id)).decode("ascii")

    def unsubscribe_token(self, public_id: str) -> str:
        """Return the (never expiring, fixed-length) unsubscribe token for `public_id`."""
        return self._sign(Purpose.UNSUBSCRIBE, public_id)

    def preferences_token(self, public_id: str) -> str:
        """Return the (never expiring, fixed-length) preferences token for `public_id`."""
        return self._sign(Purpose.PREFERENCES, public_id)

    def _sign(self, purpose: Purpose, public_id: str) -> str:
        return self._signer(purpose).sign(self._check_id(public_id)).decode("ascii")

    def read_confirm(self, token: str, *, now: datetime) -> str:
        """Return the public_id a confirmation token carries; raise TokenExpired or TokenInvalid."""
        try:
            value, signed_at = self._clocked(now).unsign(token, return_timestamp=True)
        except BadSignature:
            raise self._invalid(Purpose.CONFIRM) from None
        # Compared here rather than by itsdangerous, which also refuses a genuine token
        # stamped a little after `now` (a second server whose clock runs ahead).
        if now - signed_at > self.max_age:
            raise TokenExpired(
                f"this confirmation link is older than {self.max_age.days} days; "
                "sign up again to get a new one"
            )
        return self._payload(Purpose.CONFIRM, value)

    def read_unsubscribe(self, token: str) -> str:
        """Return the public_id an unsubscribe token carries; raise `TokenInvalid`."""
        return self._read(Purpose.UNSUBSCRIBE, token)

    def read_preferences(self, token: str) -> str:
        """Return the public_id a preferences token carries; raise `TokenInvalid`."""
        return self._read(Purpose.PREFERENCES, token)

    def _read(self, purpose: Purpose, token: str) -> str:
        try:
            value = self._signer(purpose).unsign(token)
        except BadSignature:
            raise self._invalid(purpose) from None
        return self._payload(purpose, value)

    def _payload(self, purpose: Purpose, value: bytes) -> str:
        public_id = value.decode("ascii", errors="replace")
        if not _PUBLIC_ID.fullmatch(public_id):
            raise self._invalid(purpose)
        return public_id

    @staticmethod
    def _invalid(purpose: Purpose) -> TokenInvalid:
        return TokenInvalid(
            f"this {purpose.value} link is not valid (mistyped, cut short, or from another "
            "site); use the link from the latest email"
        )

    def token_length(self, purpose: Purpose) -> int:
        """Return the length every unsubscribe or preferences token has with these keys."""
        if purpose is Purpose.CONFIRM:
            raise ValueError("confirmation tokens carry a timestamp; their length is not fixed")
        return len(self._sign(purpose, _SAMPLE_ID))
