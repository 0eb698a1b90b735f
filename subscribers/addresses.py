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

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from subscribers.errors import InvalidAddress

__all__ = ["InvalidAddress", "normalize"]


def _control_characters(text: str) -> list[str]:
    return sorted({f"U+{ord(char):04X}" for char in text if unicodedata.category(char) == "Cc"})


# A plain ASCII dot-atom local part, as email-validator accepts it (RFC 5322 atext).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LOCAL_MAX = 64
_ADDRESS_MAX = 254
_DOMAINS_KEPT = 20_000
_valid_domains: dict[str, str] = {}
"""Domains as written → their ASCII form, for domains email-validator already accepted."""


def normalize(address: str) -> str:
    """Return the canonical form of one address; raise `InvalidAddress` saying what is wrong."""
    candidate = address.strip()
    if not candidate:
        raise InvalidAddress("the address is empty; give one like name@example.org")
    # Fast path for imports of many addresses on few domains: a domain email-validator has
    # accepted once is not checked again (its IDNA and special-use checks dominate), and a
    # plain ASCII local part is checked here exactly as email-validator checks it.
    local, at, domain = candidate.rpartition("@")
    known = _valid_domains.get(domain) if at else None
    if (
        known is not None
        and len(local) <= _LOCAL_MAX
        and len(local) + 1 + len(known) <= _ADDRESS_MAX
        and _PLAIN_LOCAL.fullmatch(local)
    ):
        return f"{local.lower()}@{known}"
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
    if at and valid.ascii_domain and "[" not in domain:
        if len(_valid_domains) >= _DOMAINS_KEPT:
            _valid_domains.clear()
        _valid_domains[domain] = valid.ascii_domain
    return f"{valid.local_part.lower()}@{valid.ascii_domain}"
