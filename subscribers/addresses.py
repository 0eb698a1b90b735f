"""Email addresses: one canonical spelling per mailbox, or a clear reason why not.

`normalize` is the only way an address enters the list, the suppression hashes and the
lookups, so "Alice@Example.ORG " and "alice@example.org" are one subscriber and one
suppression. The canonical form:

- surrounding whitespace is stripped; anything else that is not an address is refused with
  the reason: display names ("Alice <a@example.org>"), line breaks or other control
  characters (header injection: "a@example.org\\r\\nBcc: x@example.net"), quoted local parts,
  IP literals, special-use domains (localhost, .local, .test);
- the domain is lowercased and stored in its ASCII (IDNA) form, "xn--bcher-kva.de" for
  "bücher.de": SMTP and headers need it, and both spellings are one domain;
- the local part is lowercased too. RFC 5321 lets a server treat it case-sensitively, but
  no mailbox provider in use does, and folding it is what keeps an unsubscribed
  "Alice@example.org" from being re-imported as "alice@example.org". Internationalized
  (non-ASCII) local parts are accepted; sending to them needs SMTPUTF8.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from subscribers.errors import InvalidAddress

__all__ = ["InvalidAddress", "normalize"]


def _control_characters(text: str) -> list[str]:
    return sorted({f"U+{ord(char):04X}" for char in text if unicodedata.category(char) == "Cc"})


def normalize(address: str) -> str:
    """Return the canonical form of one address; raise `InvalidAddress` saying what is wrong."""
    candidate = address.strip()
    if not candidate:
        raise InvalidAddress("the address is empty; give one like name@example.org")
    # Checked before email-validator so the message names the danger, not just the characters.
    controls = _control_characters(candidate)
    if controls:
        raise InvalidAddress(
            f"{address!r} contains line breaks or control characters ({', '.join(controls)}); "
            "give exactly one address, nothing else"
        )
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{candidate!r} is not a usable email address: {exc}") from None
    return f"{valid.local_part.lower()}@{valid.ascii_domain}"
