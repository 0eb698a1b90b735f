"""What the editor's desk does besides curating: each action is one function here (or the
pipeline function its CLI verb calls), so a role check or an audit record goes in one
place.

    item_words()    the title, excerpt and note an item has in one language (the edit form)
    edit_item()     the editor's words, section and per-language drops for one item
    move()          one place up or down in its section
    place()         to a given place in its section (drag and drop)
    undo()          put the curation back as it was before the last change
    draft_now()     `digest draft` for a cadence
    collect_now()   `digest collect` (every due source, or the named ones)
    pause_source()  stop collecting a source, or start again
    add_source()    `digest sources add` + `check` (kept only when the check reads it)
    edit_source()   address, language, topics, section of a source added at the desk
    remove_source() `digest sources remove`
    source_rows()   `digest sources list`
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings, SourceSettings
from digest.errors import NotFoundError
from digest.pipeline import editorial, history
from digest.pipeline.collecting import CollectReport, SourceReport, check_sources, collect_sources
from digest.pipeline.database import utcnow
from digest.pipeline.drafting import Drafted, draft, full_plan
from digest.store import db, issues, sources
from digest.store.models import Source, SourceOrigin


def describe_source(source: Source) -> dict[str, Any]:
    """A source's state as plain values, for `digest sources list` and the dashboard."""
    return {
        "name": source.name,
        "kind": source.kind.value,
        "url": source.url,
        "language": source.language,
        "section": source.section,
        "topics": list(source.topics),
        "origin": source.origin.value,
        "active": source.active,
        "last_fetched_at": source.last_fetched_at,
        "last_status": source.last_status,
        "last_error": source.last_error,
        "consecutive_failures": source.consecutive_failures,
        "next_fetch_at": source.next_fetch_at,
    }


@dataclass(frozen=True)
class ItemWords:
    """An item of an issue as readers of one language get it, and the editor's hand on it."""

    key: str
    language: str
    title: str
    excerpt: str
    note: str
    section: str
    moved: bool
    """Whether the editor put it in `section` (else its source did)."""
    hidden_in: tuple[str, ...]
    edited: bool
    """Whether the title or excerpt are the editor's."""


def item_words(
    settings: Settings, factory: sessionmaker[Session], number: int, key: str, *, language: str
) -> ItemWords:
    """Return item `key` of issue `number` as readers of `language` get it (or, when they
    do not get it, as the first language that does)."""
    with factory() as session:
        issue = issues.by_number(session, number)
        plan = full_plan(settings, session, issue).complete()
        curation = issues.curation_of(issue)
    order = [language, *(v.language for v in plan.variants if v.language != language)]
    for wanted in order:
        for section in plan.variant(wanted).sections:
            for item in section.items:
                if key == item.key or key in item.members:
                    keys = item.members or (item.key,)
                    edited = [curation.edits.get(k, {}).get(language) for k in keys]
                    own = next((words for words in edited if words), {})
                    return ItemWords(
                        key=key,
                        language=language,
                        title=own.get("title", item.title if wanted == language else ""),
                        excerpt=own.get("excerpt", item.excerpt if wanted == language else ""),
                        note=own.get("note", ""),
                        section=section.name,
                        moved=any(k in curation.moved for k in keys),
                        hidden_in=tuple(lang for k in keys for lang in curation.hidden.get(k, ())),
                        edited=bool(own.get("title") or own.get("excerpt")),
                    )
    raise NotFoundError(f"issue #{number} has no item {key!r}")


def edit_item(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    key: str,
    *,
    language: str,
    title: str,
    excerpt: str,
    note: str,
    section: str,
    hidden_in: tuple[str, ...],
    now: datetime | None = None,
) -> Drafted:
    """Give item `key` the editor's title, excerpt and note in `language` ("" keeps the
    item's own), put it in `section` ("" or its own: where its source puts it), and drop it
    for the readers of `hidden_in`; then compose the draft again."""
    current = item_words(settings, factory, number, key, language=language)
    changes = editorial.Changes(
        language=language,
        edits={key: {language: {"title": title, "excerpt": excerpt, "note": note}}},
        moved={key: section if section != current.section or current.moved else ""},
        hidden={key: hidden_in},
    )
    return editorial.curate(settings, factory, number, changes, now=now)


def move(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    key: str,
    step: int,
    *,
    now: datetime | None = None,
) -> Drafted:
    """Move item `key` `step` places in its section (-1: up, 1: down); pinned items stay
    first whatever the order."""
    return _reorder(settings, factory, number, key, lambda at: at + step, now=now)


def place(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    key: str,
    position: int,
    *,
    now: datetime | None = None,
) -> Drafted:
    """Put item `key` at `position` (1-based) in its section: what dragging it does."""
    return _reorder(settings, factory, number, key, lambda _at: position - 1, now=now)


def _reorder(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    key: str,
    target: Callable[[int], int],
    *,
    now: datetime | None,
) -> Drafted:
    """Move item `key` from its index in its section to `target(index)` (kept inside it)."""
    with factory() as session:
        issue = issues.by_number(session, number)
        listed = editorial.listed(full_plan(settings, session, issue), issues.curation_of(issue))
    sections: dict[str, list[str]] = {}
    for item in listed:
        sections.setdefault(item.section, []).append(item.key)
    for members in sections.values():
        if key in members:
            at = members.index(key)
            to = max(0, min(len(members) - 1, target(at)))
            members.insert(to, members.pop(at))
            break
    else:
        raise NotFoundError(f"issue #{number} has no item {key!r}")
    order = tuple(k for members in sections.values() for k in members)
    return editorial.curate(settings, factory, number, editorial.Changes(order=order), now=now)


def undo(
    settings: Settings, factory: sessionmaker[Session], number: int, *, now: datetime | None = None
) -> Drafted | None:
    """Undo the last change to draft `number`'s curation and compose it again; None when
    there is nothing to undo."""
    now = now or utcnow()
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        if not issues.is_open_draft(issue):
            raise editorial.DeskError(
                f"issue #{number} is {issue.status.value}; only a draft can be curated",
                "not_a_draft",
                number=number,
                status=issue.status.value,
            )
        raw = json.loads(issue.curation or "{}")
        if not history.undo(raw):
            return None
        issue.curation = json.dumps(raw, sort_keys=True, ensure_ascii=False)
        cadence, slot = issue.cadence, issue.slot
    at = editorial.slot_now(settings, factory, slot, cadence, now)
    return draft(settings, factory, now=at, cadence=cadence)


def draft_now(
    settings: Settings, factory: sessionmaker[Session], cadence: str, *, now: datetime | None = None
) -> Drafted:
    """`digest draft [--daily]`: compose the next issue of `cadence` from what is stored."""
    return draft(settings, factory, now=now or utcnow(), cadence=cadence)


def collect_now(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    names: tuple[str, ...] = (),
    now: datetime | None = None,
) -> CollectReport:
    """`digest collect [NAMES]`: fetch the due sources, or the named ones now."""
    return collect_sources(settings, factory, now=now or utcnow(), names=names)


def pause_source(
    factory: sessionmaker[Session], name: str, *, active: bool, now: datetime | None = None
) -> None:
    """Stop collecting source `name` (`active=False`) or start again (due at once)."""
    with db.transaction(factory) as session:
        source = sources.by_name(session, name)
        source.active = active
        if active:
            source.next_fetch_at = now or utcnow()


# --- sources ------------------------------------------------------------------------------


def _web_address(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise editorial.DeskError(
            f"{url or '(empty)'}: a source added at the desk is an http(s) address",
            "not_a_web_address",
        )
    return url


def add_source(
    settings: Settings,
    factory: sessionmaker[Session],
    item: SourceSettings,
    *,
    backfill_days: int | None = None,
    now: datetime | None = None,
) -> SourceReport:
    """`digest sources add` then `digest sources check`: the source stays only when the
    check read it; otherwise it is removed again and the check's error raised."""
    now = now or utcnow()
    item = dataclasses.replace(item, url=_web_address(item.url))
    with db.transaction(factory) as session:
        sources.add(
            session,
            item,
            default_language=settings.default_language,
            now=now,
            backfill_days=backfill_days,
        )
    report = check_sources(settings, factory, names=(item.name,), now=now)
    checked = report.sources[0]
    if checked.failed:
        with db.transaction(factory) as session:
            sources.remove(session, item.name)
        raise editorial.DeskError(str(checked.error), "check_failed")
    return checked


def edit_source(
    settings: Settings,
    factory: sessionmaker[Session],
    name: str,
    *,
    url: str,
    language: str,
    topics: tuple[str, ...],
    section: str,
) -> None:
    """Change a source added at the desk or with `digest sources add` (one declared in
    the config file is changed there: each run reads the file again)."""
    url = _web_address(url)
    if language not in settings.publication.languages:
        raise editorial.DeskError(
            f"{language!r} is not a language of this publication",
            "not_a_language",
            language=language,
        )
    with db.transaction(factory) as session:
        source = sources.by_name(session, name)
        if source.origin is SourceOrigin.CONFIG:
            raise editorial.DeskError(
                f"source {name!r} is declared in the config file; change it there",
                "in_config",
                name=name,
            )
        if source.url != url:
            source.url = source.declared_url = url
            source.etag = source.last_modified = None
            source.next_fetch_at = None
        source.language = language
        source.topics = [t.strip().lower() for t in topics if t.strip()]
        source.section = section.strip() or "news"


def remove_source(factory: sessionmaker[Session], name: str) -> None:
    """`digest sources remove NAME`."""
    with db.transaction(factory) as session:
        sources.remove(session, name)


def source_rows(settings: Settings, factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """`digest sources list --json`: every source with its health."""
    with db.transaction(factory) as session:
        sources.sync_config(
            session, settings.sources, default_language=settings.default_language, now=utcnow()
        )
        return [describe_source(s) for s in sources.all_sources(session)]
