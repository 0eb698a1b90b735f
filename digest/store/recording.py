"""What storing entries (`items`) and events (`events`) shares: the `Counts` of one fetch,
an item the database refused (`note_refused`, `REFUSALS`), content digests and the check
of a stored language tag."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from dataclasses import dataclass

import sqlalchemy as sa

from digest.collect.clean import clean_optional, clean_title

log = logging.getLogger("digest.store")

_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,3}")
"""What a stored language may look like (a BCP 47 tag); anything else becomes the source's."""


@dataclass
class Counts:
    """How many items one fetch added, changed and found unchanged, and which it skipped."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)
    """One line per item the database refused: its title and why (the others are kept)."""

    def __str__(self) -> str:
        text = f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged"
        return text + (f", {len(self.skipped)} skipped" if self.skipped else "")


def language_tag(value: str | None) -> str | None:
    """`value` cleaned, or None unless it looks like a BCP 47 tag."""
    value = clean_optional(value)
    return value if value is not None and _LANGUAGE.fullmatch(value) else None


def note_refused(counts: Counts, what: str, exc: Exception) -> None:
    """Note an item the database refused (its savepoint was rolled back)."""
    reason = clean_title(str(getattr(exc, "orig", None) or exc)).splitlines()[0][:200]
    counts.skipped.append(f"{clean_title(str(what or ''))[:80]!r}: {reason}")
    log.warning("an item was left out: %s", counts.skipped[-1])


REFUSALS = (sa.exc.SQLAlchemyError, ValueError, UnicodeError)
"""What storing one item may raise because of its content (not because the database is gone)."""


def content_digest(*parts: object) -> str:
    """The SHA-256 of `parts` (None as empty), to tell changed content from unchanged."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
