"""Entries in the database: dedupe, first/last seen, and change tracking.

Entries are one row per item however many sources carry it: matched by guid, then link,
then (for link-less items) a fingerprint of title and text, so a feed whose guids change
on every fetch still yields one entry. Events are stored by `digest.store.events`
(re-exported here: `record_events`, `clean_event`), the `Counts` both return and what they
share by `digest.store.recording`.

Every string is cleaned here, once, before it is stored (`collect.clean.clean_text`; titles,
names, places and categories with `clean_title`). Entries are stored in bulk, a batch per
savepoint (`ENTRY_BATCH`); a batch the database refuses, and every event, is stored one
item per savepoint: an item the database still refuses is left out and named in
`Counts.skipped`, and the other items of its source are kept (on SQLite and PostgreSQL
alike).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest import collect
from digest.collect.clean import clean_optional, clean_text, clean_title
from digest.store.events import clean_event, record_events
from digest.store.models import (
    Entry,
    EntrySource,
    Source,
)
from digest.store.recording import REFUSALS, Counts, content_digest, language_tag, note_refused

__all__ = [
    "ENTRY_BATCH",
    "FUTURE_TOLERANCE",
    "Counts",
    "clean_entry",
    "clean_event",
    "entries_of",
    "fingerprint",
    "guid_key",
    "normalize_link",
    "record_entries",
    "record_events",
]

log = logging.getLogger("digest.store")

FUTURE_TOLERANCE = timedelta(hours=1)


def clean_entry(item: collect.Entry) -> collect.Entry:
    """Return `item` with every string cleaned for storage."""
    return dataclasses.replace(
        item,
        title=clean_title(item.title),
        link=clean_optional(item.link),
        guid=clean_optional(item.guid),
        summary_html=clean_text(item.summary_html),
        summary_text=clean_text(item.summary_text),
        author=clean_optional(item.author, title=True),
        language=language_tag(item.language),
        image_url=clean_optional(item.image_url),
        categories=tuple(c for c in (clean_title(c).strip() for c in item.categories) if c),
        alternates=tuple(a for a in (clean_text(a).strip() for a in item.alternates) if a),
    )


# --- entries ------------------------------------------------------------------------------

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|mc_cid$|mc_eid$)")


def normalize_link(link: str | None) -> str | None:
    """Return `link` with a lowercase scheme and host, no fragment and no tracking params."""
    if not link:
        return None
    parts = urlsplit(link.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        ]
    )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def guid_key(source: Source, guid: str | None) -> str | None:
    """Return the identity a guid gives across sources.

    URLs, tag:/urn: ids and Drupal's "123 at https://…" are global; a bare "123" is only
    unique inside its own feed, so it is scoped to the source.
    """
    if not guid or not guid.strip():
        return None
    guid = guid.strip()
    if ":" in guid or "@" in guid:
        return guid
    return f"source:{source.id}:{guid}"


def fingerprint(title: str, text: str) -> str:
    """Hash of the normalized title and the start of the text: identity of last resort."""
    squash = " ".join(f"{title} {text[:300]}".lower().split())
    return content_digest(squash)


def _find_entry(session: Session, key: str | None, link: str | None, print_: str) -> Entry | None:
    if key is not None:
        found = session.scalar(sa.select(Entry).where(Entry.guid == key))
        if found is not None:
            return found
    if link is not None:
        found = session.scalars(sa.select(Entry).where(Entry.link == link).limit(1)).first()
        if found is not None:
            return found
    else:
        # Only link-less items fall back to the fingerprint: two different articles may
        # share a title ("Newsletter"), but then they have different links.
        query = sa.select(Entry).where(Entry.fingerprint == print_, Entry.link.is_(None))
        return session.scalars(query.limit(1)).first()
    return None


ENTRY_BATCH = 500
"""Entries stored together: one lookup query, one insert, one link insert per batch."""


@dataclass(frozen=True)
class _Keyed:
    """A clean entry with the identities it is matched by."""

    item: collect.Entry
    key: str | None
    link: str | None
    print_: str
    content: str


def _keyed(source: Source, item: collect.Entry) -> _Keyed:
    link = normalize_link(item.link)
    return _Keyed(
        item=item,
        key=guid_key(source, item.guid),
        link=link,
        print_=fingerprint(item.title, item.summary_text),
        content=content_digest(item.title, link, item.summary_html),
    )


def record_entries(
    session: Session,
    source: Source,
    entries: Iterable[collect.Entry],
    *,
    now: datetime,
    first_collection: bool,
    news_window: timedelta,
    history_before: datetime | None = None,
) -> Counts:
    """Store a fetch's entries; on a source's first collection, history becomes backlog.

    History is what was published before `history_before` (the last issue sent, or what
    `--backfill DAYS` asked for); without it, before the news window.

    Entries are stored `ENTRY_BATCH` at a time, in bulk and in a savepoint: if the database
    refuses the batch (or the batch repeats an identity, which only one-at-a-time matching
    handles), it is rolled back and stored again one entry per savepoint, so only the
    entries the database refuses are left out."""
    counts = Counts()
    cutoff = history_before if history_before is not None else now - news_window
    cleaned = [clean_entry(raw) for raw in entries]
    for start in range(0, len(cleaned), ENTRY_BATCH):
        batch = cleaned[start : start + ENTRY_BATCH]
        kinds: list[str] | None = None
        try:
            with session.begin_nested():
                kinds = _record_batch(session, source, batch, now, first_collection, cutoff)
        except REFUSALS as exc:
            log.info("a batch of %d entries was refused (%s); storing one by one", len(batch), exc)
            kinds = None
        if kinds is None:
            _record_one_by_one(session, source, batch, now, first_collection, cutoff, counts)
        else:
            for kind in kinds:
                setattr(counts, kind, getattr(counts, kind) + 1)
    return counts


def _record_one_by_one(
    session: Session,
    source: Source,
    batch: Sequence[collect.Entry],
    now: datetime,
    first_collection: bool,
    cutoff: datetime,
    counts: Counts,
) -> None:
    for item in batch:
        try:
            with session.begin_nested():
                kind = _record_entry(session, source, item, now, first_collection, cutoff)
        except REFUSALS as exc:
            note_refused(counts, item.title, exc)
        else:
            setattr(counts, kind, getattr(counts, kind) + 1)


def _record_batch(
    session: Session,
    source: Source,
    batch: Sequence[collect.Entry],
    now: datetime,
    first_collection: bool,
    cutoff: datetime,
) -> list[str] | None:
    """Store `batch` (clean entries) in bulk and return each one's kind; None, storing
    nothing, when two of its entries may be the same item (matched one at a time)."""
    keyed = [_keyed(source, item) for item in batch]
    keys = [k.key for k in keyed if k.key is not None]
    links = [k.link for k in keyed if k.link is not None]
    prints = [k.print_ for k in keyed if k.link is None]
    if any(len(set(found)) != len(found) for found in (keys, links, prints)):
        return None
    by_key: dict[str, Entry] = {}
    by_link: dict[str, Entry] = {}
    by_print: dict[str, Entry] = {}
    if keys:
        for entry in session.scalars(sa.select(Entry).where(Entry.guid.in_(keys))):
            by_key[entry.guid or ""] = entry
    if links:
        query = sa.select(Entry).where(Entry.link.in_(links)).order_by(Entry.id)
        for entry in session.scalars(query):
            by_link.setdefault(entry.link or "", entry)
    if prints:
        query = (
            sa.select(Entry)
            .where(Entry.fingerprint.in_(prints), Entry.link.is_(None))
            .order_by(Entry.id)
        )
        for entry in session.scalars(query):
            by_print.setdefault(entry.fingerprint, entry)
    kinds: list[str] = []
    matched: list[tuple[Entry, collect.Entry]] = []
    seen: set[int] = set()
    for k in keyed:
        found = (by_key.get(k.key) if k.key is not None else None) or (
            by_link.get(k.link) if k.link is not None else by_print.get(k.print_)
        )
        if found is None:
            entry = _new_entry(source, k, now, first_collection, cutoff)
            session.add(entry)
            kinds.append("new")
        else:
            if found.id in seen:
                return None  # two items of the feed are one entry: matched one at a time
            seen.add(found.id)
            entry = found
            kinds.append(_update_entry(entry, k, now))
        matched.append((entry, k.item))
    session.flush()
    _link_sources(session, source, matched, now)
    return kinds


def _link_sources(
    session: Session, source: Source, matched: Sequence[tuple[Entry, collect.Entry]], now: datetime
) -> None:
    """Record that `source` carries each entry (once; existing links are kept)."""
    if not matched:
        return
    rows = [
        {"entry_id": entry.id, "source_id": source.id, "guid": item.guid, "first_seen_at": now}
        for entry, item in matched
    ]
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        # An upsert: one statement, links that exist already are left as they are.
        from sqlalchemy.dialects import postgresql, sqlite  # not for `digest status`

        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        statement = insert(EntrySource).on_conflict_do_nothing(
            index_elements=[EntrySource.entry_id, EntrySource.source_id]
        )
        session.execute(statement, rows)
        return
    ids = [row["entry_id"] for row in rows]
    known = set(
        session.scalars(
            sa.select(EntrySource.entry_id).where(
                EntrySource.source_id == source.id, EntrySource.entry_id.in_(ids)
            )
        )
    )
    if missing := [row for row in rows if row["entry_id"] not in known]:
        session.execute(sa.insert(EntrySource), missing)


def _new_entry(
    source: Source, k: _Keyed, now: datetime, first_collection: bool, cutoff: datetime
) -> Entry:
    item = k.item
    # A date in the future (a typo, a scheduled post) would keep an item on top of
    # every issue: it counts as published when we first saw it.
    published = item.published_at or now
    if published > now + FUTURE_TOLERANCE:
        published = now
    return Entry(
        guid=k.key,
        link=k.link,
        fingerprint=k.print_,
        title=item.title,
        summary_html=item.summary_html,
        summary_text=item.summary_text,
        author=item.author,
        language=item.language or source.language,
        image_url=item.image_url,
        categories=list(item.categories),
        published_at=published,
        dated_by_feed=item.published_at is not None,
        updated_at=item.updated_at,
        first_seen_at=now,
        last_seen_at=now,
        content_hash=k.content,
        # A new source's ten years of history must not fill the next issue: on its
        # first collection only items dated after the cutoff count as news.
        # A single page (a call, a vacancy) is the news itself when first seen.
        backlog=first_collection
        and not item.single_document
        and (item.published_at is None or item.published_at < cutoff),
        single_document=item.single_document,
        alternates=list(item.alternates),
    )


def _update_entry(entry: Entry, k: _Keyed, now: datetime) -> str:
    """Bring a stored entry up to date with `k`; return "changed" or "unchanged"."""
    item = k.item
    if entry.content_hash != k.content:
        entry.title, entry.summary_html = item.title, item.summary_html
        entry.summary_text, entry.fingerprint = item.summary_text, k.print_
        entry.link = k.link or entry.link
        entry.updated_at = item.updated_at or entry.updated_at
        entry.image_url = item.image_url or entry.image_url
        entry.alternates = list(item.alternates) or entry.alternates
        entry.content_hash, entry.changed_at, entry.last_seen_at = k.content, now, now
        return "changed"
    entry.last_seen_at = now
    return "unchanged"


def _record_entry(
    session: Session,
    source: Source,
    item: collect.Entry,
    now: datetime,
    first_collection: bool,
    cutoff: datetime,
) -> str:
    """Store one (clean) entry; return "new", "changed" or "unchanged". On a source's first
    collection, what was published before `cutoff` is history (backlog)."""
    k = _keyed(source, item)
    entry = _find_entry(session, k.key, k.link, k.print_)
    if entry is None:
        entry = _new_entry(source, k, now, first_collection, cutoff)
        session.add(entry)
        kind = "new"
    else:
        kind = _update_entry(entry, k, now)
    session.flush()
    _link_source(session, entry, source, item.guid, now)
    return kind


def _link_source(
    session: Session, entry: Entry, source: Source, guid: str | None, now: datetime
) -> None:
    exists = session.get(EntrySource, (entry.id, source.id))
    if exists is None:
        session.add(EntrySource(entry=entry, source=source, guid=guid, first_seen_at=now))
        session.flush()


def entries_of(session: Session, source: Source) -> Sequence[Entry]:
    """Return the entries a source carried, newest first."""
    query = (
        sa.select(Entry)
        .join(EntrySource)
        .where(EntrySource.source_id == source.id)
        .order_by(Entry.published_at.desc())
    )
    return session.scalars(query).all()
