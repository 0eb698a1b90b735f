"""Sources in the database: syncing the config's [[sources]], CLI changes, fetch outcomes.

The config file is declarative: each run upserts its [[sources]] by name. Sources added
with `digest sources add` live in the database only. Fetch state (validators, failures,
next fetch time) is written here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from digest.collect.clean import clean_text, clean_title
from digest.config import SourceSettings
from digest.errors import DigestError, NotFoundError
from digest.store.models import EntrySource, Source, SourceKind, SourceOrigin

# Failing sources back off exponentially from the normal interval, up to a day: a feed
# that is down for a week costs ~10 requests, not 336.
MAX_BACKOFF = timedelta(days=1)


def all_sources(session: Session) -> Sequence[Source]:
    """Return every source, active first, by name."""
    return session.scalars(sa.select(Source).order_by(Source.active.desc(), Source.name)).all()


def by_name(session: Session, name: str) -> Source:
    """Return the source called `name` or raise NotFoundError listing the known names."""
    name = clean_title(name)
    source = session.scalar(sa.select(Source).where(Source.name == name))
    if source is None:
        known = ", ".join(s.name for s in all_sources(session)) or "none yet"
        raise NotFoundError(f"no source named {name!r} (known: {known}); see `digest sources list`")
    return source


def sync_config(
    session: Session, declared: Sequence[SourceSettings], *, default_language: str, now: datetime
) -> None:
    """Upsert the config file's sources by name; config sources no longer declared go inactive."""
    names = {clean_title(item.name) for item in declared}
    known: dict[str, Source] = {}
    wanted = sorted(names)
    for start in range(0, len(wanted), 500):  # one query per 500 names, not one per source
        chunk = wanted[start : start + 500]
        known.update(
            (s.name, s) for s in session.scalars(sa.select(Source).where(Source.name.in_(chunk)))
        )
    for item in declared:
        name = clean_title(item.name)
        source = known.get(name)
        if source is None:
            source = known[name] = Source(name=name, created_at=now, origin=SourceOrigin.CONFIG)
            session.add(source)
        if source.declared_url != item.url:
            # New, or the operator edited the url: start afresh from what the file says,
            # and give a source that had gone away (410) another chance.
            if source.declared_url and not source.active:
                source.active = True
                source.consecutive_failures = 0
                source.next_fetch_at = None
            source.url = source.declared_url = item.url
            source.etag = source.last_modified = None
        source.kind = SourceKind(item.kind)
        source.language = item.language or default_language
        source.topics = list(item.topics)
        source.section = item.section
        source.origin = SourceOrigin.CONFIG
    stale = sa.select(Source).where(
        Source.origin == SourceOrigin.CONFIG, Source.name.not_in(names), Source.active
    )
    for source in session.scalars(stale):
        source.active = False
        source.last_error = "removed from the config file"
    session.flush()


def add(
    session: Session,
    item: SourceSettings,
    *,
    default_language: str,
    now: datetime,
    backfill_days: int | None = None,
) -> Source:
    """Add a source from the command line; its name must be new. `backfill_days`: on its
    first collection, items of that many past days are news (default: none older than the
    last issue sent)."""
    item = dataclasses.replace(item, name=clean_title(item.name), url=clean_text(item.url))
    if session.scalar(sa.select(Source.id).where(Source.name == item.name)) is not None:
        raise DigestError(
            f"a source named {item.name!r} exists already; pick another name "
            f"or `digest sources remove {item.name}` first"
        )
    source = Source(
        name=item.name,
        url=item.url,
        declared_url=item.url,
        kind=SourceKind(item.kind),
        language=item.language or default_language,
        topics=list(item.topics),
        section=item.section,
        origin=SourceOrigin.CLI,
        created_at=now,
        backfill_days=backfill_days,
    )
    session.add(source)
    session.flush()
    return source


def remove(session: Session, name: str) -> None:
    """Delete a source added with the CLI (entries other sources also carry are kept)."""
    source = by_name(session, name)
    if source.origin is SourceOrigin.CONFIG:
        raise DigestError(
            f"source {name!r} is declared in the config file; delete its [[sources]] table there"
        )
    # Its links to entries go first (the entries stay: other sources may carry them, and
    # issues already name them); the ORM would otherwise try to blank their primary key.
    session.execute(sa.delete(EntrySource).where(EntrySource.source_id == source.id))
    session.expire(source, ["entries"])
    session.delete(source)
    session.flush()


def due(session: Session, now: datetime) -> Sequence[Source]:
    """Return the active sources whose next fetch time has come."""
    query = (
        sa.select(Source)
        .where(Source.active, sa.or_(Source.next_fetch_at.is_(None), Source.next_fetch_at <= now))
        .order_by(Source.name)
    )
    return session.scalars(query).all()


def is_first_collection(source: Source) -> bool:
    """Whether this source has never been collected successfully (its items are history)."""
    return source.last_success_at is None


def record_success(
    source: Source,
    *,
    now: datetime,
    every: timedelta,
    status: int,
    etag: str | None,
    last_modified: str | None,
    permanent_url: str | None,
    title: str | None,
) -> None:
    """Store the validators and schedule the next fetch after a good fetch."""
    source.last_fetched_at = source.last_success_at = now
    source.last_status = status
    source.last_error = None
    source.consecutive_failures = 0
    source.next_fetch_at = now + every
    if status != 304:
        source.etag, source.last_modified = etag, last_modified
    if permanent_url and permanent_url != source.url:
        source.url = permanent_url
    if title:
        source.title = clean_title(title)


def record_not_modified(
    session: Session, ids: Sequence[int], *, now: datetime, every: timedelta
) -> None:
    """`record_success` of a 304 without a move for the sources `ids`, in one UPDATE (a
    304 keeps the validators, the url and the title, so every such source gets the same
    values). A source removed meanwhile is simply not there."""
    if not ids:
        return
    session.execute(
        sa.update(Source)
        .where(Source.id.in_(ids))
        .values(
            last_fetched_at=now,
            last_success_at=now,
            last_status=304,
            last_error=None,
            consecutive_failures=0,
            next_fetch_at=now + every,
        )
        # The caller has not loaded these sources in this session: nothing to refresh.
        .execution_options(synchronize_session=False)
    )


def record_failure(
    source: Source,
    *,
    now: datetime,
    every: timedelta,
    error: str,
    status: int | None = None,
    retry_after: datetime | None = None,
    deactivate: bool = False,
) -> None:
    """Record a failed fetch: the error, a backed-off next fetch, or deactivation (410)."""
    source.last_fetched_at = now
    source.last_status = status
    source.last_error = error
    source.consecutive_failures += 1
    backoff = min(every * (2 ** (source.consecutive_failures - 1)), max(every, MAX_BACKOFF))
    source.next_fetch_at = max(retry_after or now, now + backoff)
    if deactivate:
        source.active = False
