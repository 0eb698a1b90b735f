"""A subscriber's preferences: name, language, topics, cadence and pause, checked and changed.

The checks here are shared by `registry.add`, the CSV import and the preferences page, so
a value refused in one place is refused everywhere with the same message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from subscribers.errors import InvalidField
from subscribers.model import Cadence, Subscriber

NAME_MAX = 200
"""Characters; longer names are refused rather than cut."""


_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_name(name: str) -> str:
    """Return `name` on one line (no control characters: it goes into the To: header)."""
    # No control characters (it goes into the To: header), no bidi overrides or isolates
    # (they would reverse what follows the name), no lone surrogates; NFC.
    if name.isascii() and name.isprintable():
        # Most names (and every blank one): nothing to replace, and NFC leaves ASCII as is.
        cleaned = " ".join(name.split())
    else:
        printable = "".join(
            " " if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI else c for c in name
        )
        cleaned = unicodedata.normalize("NFC", " ".join(printable.split()))
    if len(cleaned) > NAME_MAX:
        raise InvalidField("name", f"the name is {len(cleaned)} characters; at most {NAME_MAX}")
    return cleaned


def clean_topics(topics: Iterable[str]) -> list[str]:
    """Return the topics stripped, lowercased, without blanks or repeats, in their order."""
    if isinstance(topics, str):
        # A string is iterable too, and would become one topic per letter.
        raise TypeError(f"topics is a list of topics, not one string ({topics!r})")
    cleaned = (topic.strip().lower() for topic in topics)
    return list(dict.fromkeys(topic for topic in cleaned if topic))


def check_language(language: str, languages: Sequence[str]) -> str:
    """Return the publication's spelling of `language`; raise `InvalidField` listing them."""
    wanted = language.strip().lower()
    for known in languages:
        if known.lower() == wanted:
            return known
    raise InvalidField(
        "language",
        f"language {language!r} is not one of this publication's: {', '.join(languages)}",
    )


def change(
    session: Session,
    subscriber: Subscriber,
    *,
    languages: Sequence[str],
    name: str | None = None,
    language: str | None = None,
    topics: Iterable[str] | None = None,
    cadence: Cadence | str | None = None,
    paused: bool | None = None,
) -> None:
    """Change what the preferences page offers; None leaves a field as it is.

    Every value is checked before any is set, so a refused change leaves all of them as
    they were.
    """
    new_name = clean_name(name) if name is not None else subscriber.name
    new_language = (
        check_language(language, languages) if language is not None else subscriber.language
    )
    new_topics = clean_topics(topics) if topics is not None else subscriber.topics
    new_cadence = Cadence.parse(cadence) if cadence is not None else subscriber.cadence
    subscriber.name = new_name
    subscriber.language = new_language
    subscriber.topics = new_topics
    subscriber.cadence = new_cadence
    if paused is not None:
        subscriber.paused = paused
    session.flush()
