"""Curating a draft: the editor's pins, drops, order, words, sections, stories, intro and
subject, stored on the issue and composed again.

    curate()    store the editor's `Changes` on draft N and re-draft it
    slot_now()  the moment to re-draft at so that `pipeline.draft` lands on a draft's slot

Curation lives on the issue (`issues.curation`, JSON) and survives every re-draft of its
slot: `pipeline.draft` reads it back and composes with it. Besides the keys `Curation`
reads, the JSON keeps the titles of dropped items (so the desk can offer them back) and
the change log (`pipeline.history`).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.collect.clean import clean_text, clean_title
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import Drafted, draft, full_plan, history, rules_of, utcnow
from digest.pipeline.dashboard import next_slot
from digest.pipeline.issue_view import listed
from digest.store import db, issues

SUBJECT_MAX = 200
INTRO_MAX = 5000
TITLE_MAX = 300
EXCERPT_MAX = 2000
NOTE_MAX = 1000
CURATION_KEYS = history.CURATION_KEYS


def section_names(settings: Settings) -> tuple[str, ...]:
    """Every section an item can be put in: the usual ones, then the sources' own."""
    found = [*rules_of(settings).section_order, *(s.section for s in settings.sources)]
    return tuple(dict.fromkeys([*found, *settings.labels.sections]))


class DeskError(DigestError):
    """A refusal the editor's desk explains in its own language: `kind` names it and
    `values` fill its sentence; the English message is for logs and the command line."""

    def __init__(self, message: str, kind: str, **values: str | int) -> None:
        super().__init__(message)
        self.kind = kind
        self.values = values


@dataclass(frozen=True)
class Changes:
    """What the editor asked for on the curation form."""

    dropped: frozenset[str] = frozenset()
    """Keys to leave out (keys of items now dropped stay dropped unless listed in `restored`)."""
    restored: frozenset[str] = frozenset()
    pinned: tuple[str, ...] | None = None
    """Keys shown first in their section, in this order (None: the pins stay as they are)."""
    order: tuple[str, ...] | None = None
    """Every key in the editor's order, or None to keep the order as it is."""
    language: str | None = None
    intro: str | None = None
    """The intro of `language` (None: unchanged; "": none)."""
    subject: str | None = None
    """The subject of `language` (None: unchanged; "": the default one)."""
    split: frozenset[str] = frozenset()
    """Keys of stories to take apart: each of their versions then stands alone."""
    joined: tuple[str, ...] = ()
    """Keys of items to make one story (two or more)."""
    edits: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """Item key → language → {"title", "excerpt", "note"}: the editor's words ("" or a
    missing word: the item's own; an empty dict: back to the item's own words)."""
    moved: dict[str, str] = field(default_factory=dict)
    """Item key → section to put its story in ("": back to its source's section)."""
    hidden: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Item key → every language whose readers do not get its story (replaces what was)."""
    added: tuple[str, ...] = ()
    """Keys of items the editor added (`pipeline.additions`): undoing drops them."""


def one_line(text: str) -> str:
    """`text` without control characters or line breaks: it becomes a Subject header."""
    text = clean_title(text)
    printable = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(printable.split())


def clean_intro(text: str) -> str:
    text = clean_text(text)
    kept = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    return kept.replace("\r\n", "\n").strip()


def slot_now(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_slot: datetime,
    cadence: str,
    now: datetime,
) -> datetime:
    """The moment to re-draft at so that `pipeline.draft` lands on `issue_slot`: now while
    the slot is the current one, else the slot itself (a draft whose slot has passed)."""
    with factory() as session:
        if next_slot(settings, session, cadence, now)[0] == issue_slot:
            return now
        if next_slot(settings, session, cadence, issue_slot)[0] == issue_slot:
            return issue_slot
    raise DeskError(
        "this draft's slot cannot be drafted again (another issue owns the slot before it); "
        "run `digest draft` for the current slot",
        "slot_taken",
    )


def _item_changes(
    settings: Settings,
    raw: dict[str, Any],
    changes: Changes,
    known: set[str],
    languages: Sequence[str],
) -> tuple[dict[str, Any], dict[str, str], dict[str, list[str]]]:
    """The edits, moves and per-language drops stored on the issue with `changes` applied."""
    limits = {"title": TITLE_MAX, "excerpt": EXCERPT_MAX, "note": NOTE_MAX}
    edits: dict[str, Any] = {k: dict(v) for k, v in dict(raw.get("edits") or {}).items()}
    for key, by_language in changes.edits.items():
        if key not in known:
            continue
        for language, words in by_language.items():
            if language not in languages:
                raise DeskError(
                    f"{language!r} is not a language of this publication",
                    "not_a_language",
                    language=language,
                )
            kept: dict[str, str] = {}
            for name, limit in limits.items():
                text = words.get(name, "")
                text = one_line(text) if name == "title" else clean_intro(text)
                if len(text) > limit:
                    raise DeskError(
                        f"the {name} is {len(text)} characters; at most {limit}",
                        f"{name}_too_long",
                        length=len(text),
                        limit=limit,
                    )
                if text:
                    kept[name] = text
            if kept:
                edits.setdefault(key, {})[language] = kept
            else:
                edits.get(key, {}).pop(language, None)
        if not edits.get(key):
            edits.pop(key, None)
    moved = {str(k): str(v) for k, v in dict(raw.get("moved") or {}).items()}
    sections = set(section_names(settings))
    for key, section in changes.moved.items():
        if key not in known:
            continue
        if section and section not in sections:
            raise DeskError(f"{section!r} is not a section", "not_a_section", section=section)
        if section:
            moved[key] = section
        else:
            moved.pop(key, None)
    hidden = {str(k): list(v) for k, v in dict(raw.get("hidden") or {}).items()}
    for key, hidden_in in changes.hidden.items():
        if key not in known:
            continue
        chosen = [language for language in languages if language in hidden_in]
        if chosen:
            hidden[key] = chosen
        else:
            hidden.pop(key, None)
    return edits, moved, hidden


def curate(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    changes: Changes,
    *,
    now: datetime | None = None,
) -> Drafted:
    """Store the editor's changes on draft `number` and compose it again with them.

    Raises `DigestError` when the issue is no longer a draft (approved, sent or published:
    what goes out is fixed), or when a subject or intro is too long.
    """
    now = now or utcnow()
    languages = settings.publication.languages
    if changes.language is not None and changes.language not in languages:
        raise DeskError(
            f"{changes.language!r} is not a language of this publication",
            "not_a_language",
            language=changes.language,
        )
    subject = one_line(changes.subject) if changes.subject is not None else None
    intro = clean_intro(changes.intro) if changes.intro is not None else None
    if subject is not None and len(subject) > SUBJECT_MAX:
        raise DeskError(
            f"the subject is {len(subject)} characters; at most {SUBJECT_MAX}",
            "subject_too_long",
            length=len(subject),
            limit=SUBJECT_MAX,
        )
    if intro is not None and len(intro) > INTRO_MAX:
        raise DeskError(
            f"the intro is {len(intro)} characters; at most {INTRO_MAX}",
            "intro_too_long",
            length=len(intro),
            limit=INTRO_MAX,
        )
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        if not issues.is_open_draft(issue):
            raise DeskError(
                f"issue #{number} is {issue.status.value}; only a draft can be curated",
                "not_a_draft",
                number=number,
                status=issue.status.value,
            )
        current = issues.curation_of(issue)
        raw = issues.raw_curation(issue)
        rows = {item.key: item for item in listed(full_plan(settings, session, issue), current)}
        titles = {
            k: v
            for k, v in dict(raw.get("titles") or {}).items()
            if k in current.dropped or k in current.hidden
        }
        known = set(rows) | set(current.dropped) | set(current.hidden)
        dropped = [k for k in current.dropped if k not in changes.restored]
        for key in sorted(changes.dropped & set(rows)):
            if key not in dropped:
                dropped.append(key)
                titles[key] = rows[key].title
        pins = current.pinned if changes.pinned is None else changes.pinned
        pinned = [k for k in dict.fromkeys(pins) if k in known and k not in dropped]
        order = list(current.order)
        if changes.order is not None:
            order = [k for k in dict.fromkeys(changes.order) if k in known]
        split = list(current.split)
        for key in sorted(changes.split & set(rows)):
            split.extend(m for m in rows[key].members or (key,) if m not in split)
        joined = [tuple(pair) for pair in current.joined]
        together = [k for k in dict.fromkeys(changes.joined) if k in rows]
        for other in together[1:]:
            joined.append((together[0], other))
        split = [k for k in split if k not in together]
        intros, subjects = dict(current.intro), dict(current.subject)
        if changes.language is not None:
            if intro is not None:
                intros[changes.language] = intro
            if subject is not None:
                subjects[changes.language] = subject
        edits, moved, hidden = _item_changes(settings, raw, changes, known, languages)
        for key in changes.restored:
            hidden.pop(key, None)
        for key in hidden:
            if key in rows:
                titles.setdefault(key, rows[key].title)
        titles = {k: v for k, v in titles.items() if k in dropped or k in hidden}
        before = {name: raw.get(name) for name in CURATION_KEYS}
        raw.update(
            pinned=pinned,
            dropped=dropped,
            order=order,
            intro={k: v for k, v in intros.items() if v},
            subject={k: v for k, v in subjects.items() if v},
            titles=titles,
            split=split,
            joined=[list(pair) for pair in dict.fromkeys(joined)],
            edits=edits,
            moved=moved,
            hidden=hidden,
            added=list(dict.fromkeys([*(raw.get("added") or ()), *changes.added])),
        )
        history.record(raw, before, {k: v.title for k, v in rows.items()}, now)
        issue.curation = json.dumps(raw, sort_keys=True, ensure_ascii=False)
        cadence, slot = issue.cadence, issue.slot
    drafted = draft(
        settings, factory, now=slot_now(settings, factory, slot, cadence, now), cadence=cadence
    )
    if drafted.number != number:  # pragma: no cover - _slot_now makes sure of it
        raise DigestError(f"re-drafting reached issue #{drafted.number}, not #{number}")
    return drafted
