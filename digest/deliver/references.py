"""Signed references: what our Message-IDs and VERP envelope senders carry so that a report
about a message can be trusted to be about a message we sent.

Anyone can write a bounce or an ARF complaint naming any address or a guessed Message-ID
("digest.3.41"); acting on it would let a stranger unsubscribe the list. So every message
carries a reference to what it was (a delivery row, a confirmation mail to a subscriber)
and an HMAC of that reference under a key derived from the secret for this purpose only
(`KeyPurpose.MESSAGE_ID`):

    d41.5f0c2a9e1b7d3c88      delivery 41            Message-ID <digest.3.d41.5f0c…@example.org>
    c7.0a9d4e2b6c1f8e37       confirmation to subscriber 7
                              VERP bounces+d41.5f0c2a9e1b7d3c88+alice=example.net@example.org

A report whose Message-ID or VERP address does not verify is reported and ignored.
64 bits of tag: a forger needs about 2^63 tries per reference, each one a mail we read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = ["Reference", "delivery_message_id", "sign", "verify"]

TAG_LENGTH = 16
_SIGNED = re.compile(
    rf"(?<![0-9A-Za-z])([dc])([0-9]{{1,18}})\.([0-9a-f]{{{TAG_LENGTH}}})(?![0-9a-f])"
)


@dataclass(frozen=True)
class Reference:
    """What a verified reference names."""

    kind: str
    """"d": a delivery row of an issue; "c": a confirmation mail to a subscriber."""
    id: int

    @property
    def delivery_id(self) -> int | None:
        """The delivery row, for "d" references."""
        return self.id if self.kind == "d" else None

    @property
    def subscriber_id(self) -> int | None:
        """The subscriber, for "c" references."""
        return self.id if self.kind == "c" else None


def _tag(key: bytes, reference: str) -> str:
    return hmac.new(key, reference.encode("ascii"), hashlib.sha256).hexdigest()[:TAG_LENGTH]


def sign(key: bytes, kind: str, number: int) -> str:
    """Return the signed reference "d41.<tag>" (kind "d" or "c")."""
    if kind not in ("d", "c") or number < 0:
        raise ValueError(f"cannot sign reference {kind}{number}")
    if not key:
        raise ValueError("no key for message references; set [web] secret_key")
    reference = f"{kind}{number}"
    return f"{reference}.{_tag(key, reference)}"


def delivery_message_id(key: bytes, number: int, delivery_id: int) -> str:
    """Return the Message-ID's left part of an issue's delivery: stable per delivery (a
    re-send carries the same id) and signed, "digest.3.d41.<tag>"."""
    return f"digest.{number}.{sign(key, 'd', delivery_id)}"


def verify(key: bytes, text: str | None) -> Reference | None:
    """Return the reference a Message-ID, VERP address or token carries, when its tag is
    ours; None for anything else (no reference, a guessed id, a wrong tag)."""
    if not text or not key:
        return None
    for found in _SIGNED.finditer(text.lower()):
        kind, number, tag = found.groups()
        if hmac.compare_digest(_tag(key, f"{kind}{int(number)}"), tag):
            return Reference(kind, int(number))
    return None
