"""One key per purpose, derived from the operator's secret.

The operator sets one `secret_key`; everything that signs or verifies gets its own key
derived from it with HKDF-SHA256 (RFC 5869) and a purpose label, so a value signed for one
purpose (a session cookie, an unsubscribe link, a Message-ID) never verifies for another,
and a key that leaks from one use does not give the others away.

Purposes are plain strings; the ones in use are listed in `Purpose` so that two places
never pick the same label by accident. Add new ones there.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["MIN_SECRET_BYTES", "KeyPurpose", "derive_key", "weakness"]

MIN_SECRET_BYTES = 32
"""A secret shorter than this (in UTF-8 bytes) is refused."""

_COMMON = frozenset(
    {
        "changeme", "change-me", "change_me", "changethis", "secret", "secretkey",
        "secret-key", "secret_key", "password", "passw0rd", "letmein", "default", "example",
        "test", "testing", "development", "dev", "django-insecure", "insecure", "admin",
        "digest", "your-secret-key", "yoursecretkey", "mysecretkey", "supersecret",
        "super-secret-key", "notasecret", "xxx", "12345678", "123456789", "1234567890",
        "qwerty", "abcdef",
    }
)  # fmt: skip
"""Values (lowercased, stripped of repeats and digits at the end) people copy into configs."""

# A fixed salt: the secret itself is the entropy; the salt only separates this project's
# derivations from any other use of the same secret (RFC 5869 §3.1).
_SALT = b"digest/keys/v1"


class KeyPurpose(enum.StrEnum):
    """What a derived key is for; its value is the HKDF info label."""

    LINKS = "links"  # confirm / unsubscribe / preferences tokens in mail
    SESSION = "session"  # the desk's session cookie
    CSRF = "csrf"  # form tokens
    MESSAGE_ID = "message-id"  # the keyed part of Message-IDs and VERP addresses
    SIGN_IN = "sign-in"  # the editor's emailed sign-in links


def derive_key(secret: str | bytes, purpose: str, *, length: int = 32) -> bytes:
    """Return a `length`-byte key for `purpose`, derived from `secret` with HKDF-SHA256."""
    if not secret:
        raise ValueError("no secret to derive keys from; set [web] secret_key")
    if not purpose:
        raise ValueError("a derived key needs a purpose label")
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=purpose.encode())
    return hkdf.derive(material)


def weakness(secret: str) -> str | None:
    """Return why `secret` is too weak to derive keys from (None when it is fine).

    Refused: shorter than `MIN_SECRET_BYTES`, a well-known value (or one repeated to the
    length, "changeme" x 4), or fewer than 8 different characters.
    """
    size = len(secret.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        return f"{size} bytes long; at least {MIN_SECRET_BYTES} are needed"
    lowered = secret.strip().lower()
    for common in _COMMON:
        if lowered.replace(common, "").strip(" -_.0123456789") == "":
            return "a well-known value that anyone can guess"
    if len(set(secret)) < 8:
        return "too repetitive (fewer than 8 different characters)"
    return None
