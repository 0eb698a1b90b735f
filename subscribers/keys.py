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

__all__ = ["KeyPurpose", "derive_key"]

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
