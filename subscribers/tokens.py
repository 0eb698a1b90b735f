"""Signed tokens for the links in our mail: confirm, unsubscribe, preferences.

A token carries a subscriber's `public_id` (random, opaque), never the address: anyone can
read a token's payload, only we can sign one. Every token is signed with a key derived
for mailed links (`keys.derive_key(secret, KeyPurpose.LINKS)`, never the raw secret, so a
session cookie or a Message-ID key cannot sign a link), and the token's purpose is part of
what is signed, so an unsubscribe token never opens the preferences page.

- Confirmation tokens are `PUBLICID.TIMESTAMP.SIGNATURE` (itsdangerous) and expire after
  `max_age_days`.
- Unsubscribe and preferences tokens are `PUBLICID.STAMP.SIGNATURE`: STAMP is when the
  token was made (seconds, 8 characters), SIGNATURE a truncated HMAC-SHA256 (128 bits, 22
  characters). Every such token has the same length (`token_length`, 54): delivery builds
  a message once and swaps each recipient's tokens into the bytes.
  - Unsubscribe tokens never expire (RFC 8058: the link in an old mail must still work)
    and can do nothing but unsubscribe.
  - Preferences tokens expire after `link_days` (default 90), and the web app refuses one
    made before the subscriber's `links_valid_from` (set when they ask for new links or
    change address): `read_preferences_link` gives the stamp to compare. Export and erase
    want a token younger than `FRESH_LINK` (one just mailed on request).

Key rotation: `Tokens(["new", "old"], previous_until=...)` signs with the first key and
accepts the others until `previous_until` (then only the first), so links already sent keep
working for the set time after the operator puts a new key in front.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, TimestampSigner

from subscribers.errors import TokenExpired, TokenInvalid
from subscribers.keys import KeyPurpose, derive_key
from subscribers.model import PUBLIC_ID_LENGTH

__all__ = ["FRESH_LINK", "LinkToken", "Purpose", "TokenExpired", "TokenInvalid", "Tokens"]

_PUBLIC_ID = re.compile(rf"[A-Za-z0-9_-]{{{PUBLIC_ID_LENGTH}}}")
_SAMPLE_ID = "A" * PUBLIC_ID_LENGTH
_STAMP_BYTES = 6  # seconds since 1970 in 48 bits: 8 base64 characters, good for ages
_SIGNATURE_BYTES = 16  # HMAC-SHA256 cut to 128 bits: 22 base64 characters
_LINK = re.compile(
    rf"(?P<id>[A-Za-z0-9_-]{{{PUBLIC_ID_LENGTH}}})\.(?P<stamp>[A-Za-z0-9_-]{{8}})"
    r"\.(?P<signature>[A-Za-z0-9_-]{22})"
)
FRESH_LINK = timedelta(hours=24)
"""Export and erase need a preferences token at most this old: one mailed on request."""


class Purpose(enum.StrEnum):
    """What a token lets its bearer do; also part of what is signed."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


@dataclass(frozen=True)
class LinkToken:
    """What a genuine unsubscribe or preferences token says."""

    public_id: str
    issued_at: datetime
    """When the token was made (aware UTC, whole seconds)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _ClockedSigner(TimestampSigner):
    """A timestamp signer that reads the caller's `now` instead of the system clock."""

    def __init__(self, secret_key: list[bytes], *, salt: str, now: datetime) -> None:
        super().__init__(secret_key, salt=salt, digest_method=hashlib.sha256)
        self._now = int(now.timestamp())

    def get_timestamp(self) -> int:
        return self._now


class Tokens:
    """Signs and verifies link tokens with keys derived from the operator's secrets."""

    def __init__(
        self,
        secret_keys: Sequence[str],
        *,
        max_age_days: int = 7,
        link_days: int = 90,
        previous_until: datetime | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if isinstance(secret_keys, str):
            raise TypeError("secret_keys is a sequence of keys, newest first, not one string")
        if not secret_keys or not all(secret_keys):
            raise ValueError(
                "no secret key to sign links with; set [web] secret_key "
                "(DIGEST_WEB__SECRET_KEY) to a long random string"
            )
        if max_age_days < 1:
            raise ValueError(f"max_age_days is {max_age_days}; confirmation links need >= 1 day")
        if link_days < 1:
            raise ValueError(f"link_days is {link_days}; preference links need >= 1 day")
        self._keys = [derive_key(key, KeyPurpose.LINKS) for key in secret_keys]
        self.max_age = timedelta(days=max_age_days)
        self.link_age = timedelta(days=link_days)
        self.previous_until = previous_until
        self.clock = clock

    def __repr__(self) -> str:
        # Never the keys themselves: reprs end up in logs and tracebacks.
        return (
            f"<Tokens {len(self._keys)} key(s), confirmation max age {self.max_age.days} days, "
            f"preference links {self.link_age.days} days>"
        )

    def _verifying_keys(self, now: datetime) -> list[bytes]:
        """The current key, plus the previous ones while their time lasts."""
        if self.previous_until is not None and now >= self.previous_until:
            return self._keys[:1]
        return self._keys

    @staticmethod
    def _check_id(public_id: str) -> str:
        if not _PUBLIC_ID.fullmatch(public_id):
            raise ValueError(f"{public_id!r} is not a subscriber public_id")
        return public_id

    # --- confirmation ---------------------------------------------------------------------

    def _clocked(self, now: datetime, keys: list[bytes]) -> _ClockedSigner:
        # itsdangerous signs with the last key of its list and verifies with all of them.
        return _ClockedSigner(list(reversed(keys)), salt=Purpose.CONFIRM.value, now=now)

    def confirm_token(self, public_id: str, *, now: datetime) -> str:
        """Return a confirmation token for `public_id`, valid for `max_age_days` from `now`."""
        signer = self._clocked(now, self._keys[:1])
        return signer.sign(self._check_id(public_id)).decode("ascii")

    def read_confirm(self, token: str, *, now: datetime) -> str:
        """Return the public_id a confirmation token carries; raise TokenExpired or TokenInvalid."""
        try:
            signer = self._clocked(now, self._verifying_keys(now))
            value, signed_at = signer.unsign(token, return_timestamp=True)
        except BadSignature:
            raise self._invalid(Purpose.CONFIRM) from None
        # Compared here rather than by itsdangerous, which also refuses a genuine token
        # stamped a little after `now` (a second server whose clock runs ahead).
        if now - signed_at > self.max_age:
            raise TokenExpired(
                f"this confirmation link is older than {self.max_age.days} days; "
                "sign up again to get a new one"
            )
        return self._payload(Purpose.CONFIRM, value.decode("ascii", errors="replace"))

    # --- unsubscribe and preferences ------------------------------------------------------

    def unsubscribe_token(self, public_id: str, *, now: datetime | None = None) -> str:
        """Return the (never expiring, fixed-length) unsubscribe token for `public_id`."""
        return self._sign(Purpose.UNSUBSCRIBE, public_id, now or self.clock())

    def preferences_token(self, public_id: str, *, now: datetime | None = None) -> str:
        """Return the (fixed-length) preferences token for `public_id`, made at `now`."""
        return self._sign(Purpose.PREFERENCES, public_id, now or self.clock())

    def _signature(self, key: bytes, purpose: Purpose, public_id: str, stamp: str) -> str:
        message = f"{purpose.value}|{public_id}|{stamp}".encode("ascii")
        return _b64(hmac.new(key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES])

    def _sign(self, purpose: Purpose, public_id: str, now: datetime) -> str:
        self._check_id(public_id)
        seconds = max(0, int(now.timestamp()))
        stamp = _b64(seconds.to_bytes(_STAMP_BYTES, "big"))
        return f"{public_id}.{stamp}.{self._signature(self._keys[0], purpose, public_id, stamp)}"

    def _read(self, purpose: Purpose, token: str, now: datetime) -> LinkToken:
        found = _LINK.fullmatch(token)
        if found is None:
            raise self._invalid(purpose)
        public_id, stamp, given = found["id"], found["stamp"], found["signature"]
        if not any(
            hmac.compare_digest(self._signature(key, purpose, public_id, stamp), given)
            for key in self._verifying_keys(now)
        ):
            raise self._invalid(purpose)
        seconds = int.from_bytes(_unb64(stamp), "big")
        return LinkToken(public_id, datetime.fromtimestamp(seconds, UTC))

    def read_unsubscribe(self, token: str, *, now: datetime | None = None) -> str:
        """Return the public_id an unsubscribe token carries (they never expire)."""
        return self._read(Purpose.UNSUBSCRIBE, token, now or self.clock()).public_id

    def read_preferences_link(
        self, token: str, *, now: datetime | None = None, expired_ok: bool = False
    ) -> LinkToken:
        """Return what a preferences token says; raise `TokenExpired` past `link_days`
        (unless `expired_ok`: to mail a new link to whoever an old one belonged to).

        The caller still compares `issued_at` with the subscriber's `links_valid_from`.
        """
        now = now or self.clock()
        link = self._read(Purpose.PREFERENCES, token, now)
        if not expired_ok and now - link.issued_at > self.link_age:
            raise TokenExpired(
                f"this preferences link is older than {self.link_age.days} days; "
                "ask for a new one on the page it opens"
            )
        return link

    def read_preferences(self, token: str, *, now: datetime | None = None) -> str:
        """Return the public_id a (current) preferences token carries."""
        return self.read_preferences_link(token, now=now).public_id

    def _payload(self, purpose: Purpose, public_id: str) -> str:
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
        """Return the length every unsubscribe or preferences token has (54)."""
        if purpose is Purpose.CONFIRM:
            raise ValueError("confirmation tokens carry a timestamp; their length is not fixed")
        return len(self._sign(purpose, _SAMPLE_ID, datetime(2000, 1, 1, tzinfo=UTC)))
