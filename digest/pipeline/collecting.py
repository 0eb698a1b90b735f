"""Collecting: fetch every due source, parse it, store what it holds (`digest collect`).

    fetch (asyncio, httpx) ─▶ parse (long-lived bounded workers) ─▶ store (one thread, batches)

The event loop only fetches. Each body goes to a `bounded.ParserPool` worker (time limit,
memory cap; a worker that overruns is killed and replaced) and each parsed source to a
storing thread, which writes whatever sources are ready in one transaction, a savepoint
each, and each source's items in bulk (`store.items.record_entries`). So fetching never
waits for storing. One failing source is recorded on that source and never stops the
others; one refused item is left out and never fails its source.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import collect
from digest.config import Settings, source_location
from digest.errors import GoneError, HTTPStatusError, RateLimitedError, SourceError
from digest.store import db, items, sources
from digest.store.models import Issue, IssueStatus, Source, SourceKind

if TYPE_CHECKING:
    from digest.collect.bounded import ParserPool
    from digest.collect.fetch import Fetcher

log = logging.getLogger("digest.pipeline")

# A parse needs a moment even when the download used the whole budget; below this a
# parse would be refused for no good reason.
MIN_PARSE_SECONDS = 2.0
CALENDAR_PAST = timedelta(days=7)
STORE_BATCH = 50
"""Sources the storing thread writes in one transaction at most (a savepoint each)."""
STORE_LINGER = 0.05
"""Seconds the storing thread waits for more outcomes before it writes a batch: 304s come in
faster than one commit each (measured: 141 commits for 200 sources without it)."""


@dataclass
class SourceReport:
    """What happened to one source in one collect (or check)."""

    name: str
    url: str
    kind: str
    outcome: str
    """"collected", "not modified" or "failed"."""
    counts: items.Counts = field(default_factory=items.Counts)
    error: str | None = None
    warnings: tuple[str, ...] = ()
    found: int = 0
    """Entries or occurrences the document held (for `sources check`)."""
    title: str | None = None

    @property
    def failed(self) -> bool:
        """Whether this source failed."""
        return self.outcome == "failed"


@dataclass
class CollectReport:
    """The per-source summary of a collect run."""

    sources: list[SourceReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceReport]:
        """The sources that failed."""
        return [report for report in self.sources if report.failed]


@dataclass(frozen=True)
class _Job:
    """A source detached from the session, everything a fetch needs."""

    id: int
    name: str
    url: str
    kind: SourceKind
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    fetched: collect.Fetched | None = None
    parsed: collect.Parsed | None = None
    error: SourceError | None = None


def parser_workers(settings: Settings) -> int:
    """How many parser processes a collect runs: one per core, at most one per fetch."""
    return max(1, min(os.cpu_count() or 1, settings.collect.concurrency))


def collect_sources(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    names: Sequence[str] = (),
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[SourceReport], None] | None = None,
) -> CollectReport:
    """Fetch every due source (or the named ones, or all with `force`) and store the results."""
    now = now or datetime.now(UTC)
    with db.transaction(factory) as session:
        sources.sync_config(
            session, settings.sources, default_language=settings.default_language, now=now
        )
        if names:
            chosen: Sequence[Source] = [sources.by_name(session, name) for name in names]
        elif force:
            chosen = [s for s in sources.all_sources(session) if s.active]
        else:
            chosen = sources.due(session, now)
        jobs = [_job(settings, source) for source in chosen]
    if on_start:
        on_start(len(jobs))
    report = CollectReport()

    def stored(result: SourceReport) -> None:
        report.sources.append(result)
        if on_done:
            on_done(result)

    storer = _Storer(settings, factory, now, stored)
    try:
        import asyncio  # here: its import (ssl, subprocess) is for commands that fetch

        asyncio.run(_fetch_and_parse(settings, jobs, now, conditional=True, done=storer.put))
    finally:
        storer.finish()
    report.sources.sort(key=lambda r: r.name)
    return report


def check_sources(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    names: Sequence[str] = (),
    now: datetime | None = None,
) -> CollectReport:
    """Fetch and parse sources without conditional headers and without storing anything."""
    now = now or datetime.now(UTC)
    with db.transaction(factory) as session:
        sources.sync_config(
            session, settings.sources, default_language=settings.default_language, now=now
        )
        chosen = [sources.by_name(session, n) for n in names] or sources.all_sources(session)
        jobs = [_job(settings, source) for source in chosen]
    report = CollectReport()

    def note(outcome: _Outcome) -> None:
        report.sources.append(_describe(outcome))

    import asyncio  # here: its import (ssl, subprocess) is for commands that fetch

    asyncio.run(_fetch_and_parse(settings, jobs, now, conditional=False, done=note))
    report.sources.sort(key=lambda r: r.name)
    return report


def _job(settings: Settings, source: Source) -> _Job:
    return _Job(
        id=source.id,
        name=source.name,
        url=source_location(settings, source.url),
        kind=source.kind,
        etag=source.etag,
        last_modified=source.last_modified,
    )


def calendar_window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The span recurring events are expanded over: a week back, the configured days ahead."""
    return now - CALENDAR_PAST, now + timedelta(days=settings.collect.calendar_window_days)


def _parser(
    settings: Settings, job: _Job, fetched: collect.Fetched, now: datetime
) -> Callable[[], collect.Parsed]:
    from digest.collect.documents import parse_document

    return functools.partial(
        parse_document,
        job.kind.value,
        fetched.body or b"",
        content_type=fetched.content_type,
        url=fetched.url,
        window=calendar_window(settings, now),
    )


async def _fetch_and_parse(
    settings: Settings,
    jobs: Sequence[_Job],
    now: datetime,
    *,
    conditional: bool,
    done: Callable[[_Outcome], None],
) -> None:
    """Run every job concurrently (the fetcher keeps per-host politeness), parse in the
    worker pool, and hand each outcome to `done` as soon as it is ready (`done` must not
    block: storing happens elsewhere)."""
    import asyncio

    from digest.collect.bounded import ParserPool
    from digest.collect.documents import PARSERS
    from digest.collect.fetch import Fetcher, FetchPolicy

    concurrency = max(1, settings.collect.concurrency)
    limit = asyncio.Semaphore(concurrency)
    timeout = settings.collect.timeout_seconds
    loop = asyncio.get_running_loop()

    async def one(
        fetcher: Fetcher, pool: ParserPool, waiters: ThreadPoolExecutor, job: _Job
    ) -> None:
        async with limit:
            started = time.monotonic()
            try:
                fetched = await fetcher.fetch(
                    job.url,
                    etag=job.etag if conditional else None,
                    last_modified=job.last_modified if conditional else None,
                    now=now,
                )
                if fetched.not_modified:
                    outcome = _Outcome(job, fetched)
                else:
                    budget = max(MIN_PARSE_SECONDS, timeout - (time.monotonic() - started))
                    parse = _parser(settings, job, fetched, now)
                    run = functools.partial(pool.run, parse, timeout=budget, what=job.url)
                    parsed = await loop.run_in_executor(waiters, run)
                    # The body is not needed any more: only its fetch state is stored.
                    outcome = _Outcome(job, _without_body(fetched), parsed)
            except SourceError as exc:
                outcome = _Outcome(job, error=exc)
            except Exception as exc:
                outcome = _Outcome(job, error=SourceError(f"{job.url}: unexpected error {exc!r}"))
        done(outcome)

    with (
        ParserPool(min(parser_workers(settings), len(jobs) or 1), preload=PARSERS) as pool,
        ThreadPoolExecutor(concurrency, thread_name_prefix="digest-parse") as waiters,
    ):
        async with Fetcher(FetchPolicy.from_settings(settings.collect)) as fetcher:
            await asyncio.gather(*(one(fetcher, pool, waiters, job) for job in jobs))


def _without_body(fetched: collect.Fetched) -> collect.Fetched:
    import dataclasses

    return dataclasses.replace(fetched, body=None)


class _Storer:
    """The storing thread: writes outcomes as they come, in batches, off the event loop.

    Whatever sources are waiting (up to `STORE_BATCH`) are written in one transaction, each
    in a savepoint: a source whose writes fail is rolled back alone and its failure
    recorded. If the transaction itself fails, each source of the batch is retried in a
    transaction of its own (as one at a time always did). An error that stops even that
    (the database is gone) is raised by `finish`, and later outcomes are not written.
    """

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        now: datetime,
        stored: Callable[[SourceReport], None],
    ) -> None:
        self.settings, self.factory, self.now, self.stored = settings, factory, now, stored
        self.inbox: queue.SimpleQueue[_Outcome | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="digest-store", daemon=True)
        self.thread.start()

    def put(self, outcome: _Outcome) -> None:
        """Queue `outcome` for storing (never blocks)."""
        self.inbox.put(outcome)

    def finish(self) -> None:
        """Wait until everything queued is stored; raise what stopped the storing."""
        self.inbox.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        finished = False
        while not finished:
            batch: list[_Outcome] = []
            first = self.inbox.get()
            until = time.monotonic() + STORE_LINGER
            while first is not None:
                batch.append(first)
                if len(batch) >= STORE_BATCH:
                    break
                try:
                    first = self.inbox.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
            finished = first is None
            if batch and self.error is None:
                try:
                    self._store_batch(batch)
                except BaseException as exc:
                    self.error = exc

    def _store_batch(self, batch: list[_Outcome]) -> None:
        try:
            with db.transaction(self.factory) as session:
                # Plain 304s (most of a run with nothing new) all get the same fetch state:
                # one UPDATE. The other sources are read in one query (`_store` then finds
                # them in the session) and stored one by one.
                unchanged = [outcome.job.id for outcome in batch if _plain_not_modified(outcome)]
                sources.record_not_modified(
                    session, unchanged, now=self.now, every=self.settings.collect.every
                )
                others = [o.job.id for o in batch if not _plain_not_modified(o)]
                if others:
                    session.scalars(sa.select(Source).where(Source.id.in_(others))).all()
                results = [
                    _describe(outcome)
                    if _plain_not_modified(outcome)
                    else self._store_alone(session, outcome)
                    for outcome in batch
                ]
        except Exception:
            log.debug("a batch of %d sources failed; storing them one by one", len(batch))
            results = [self._store_own(outcome) for outcome in batch]
        for result in results:
            self.stored(result)

    def _store_alone(self, session: Session, outcome: _Outcome) -> SourceReport:
        """Store `outcome` in a savepoint; if that fails, record the failure instead.

        An outcome with nothing parsed (not modified, or failed) only sets its source's
        fetch state: no savepoint, its UPDATE goes with the batch's (a failure there fails
        the batch, which is then stored source by source)."""
        if outcome.parsed is None:
            return _store(self.settings, session, outcome, self.now)
        try:
            with session.begin_nested():
                return _store(self.settings, session, outcome, self.now)
        except Exception as exc:
            if db.is_transient(exc):
                raise
            with session.begin_nested():
                return _store(self.settings, session, _unstorable(outcome, exc), self.now)

    def _store_own(self, outcome: _Outcome) -> SourceReport:
        """Store `outcome` in a transaction of its own (the batch it came in failed)."""
        try:
            with db.transaction(self.factory) as session:
                return _store(self.settings, session, outcome, self.now)
        except Exception as exc:
            # Its writes were rolled back; record why on the source in a fresh transaction.
            with db.transaction(self.factory) as session:
                return _store(self.settings, session, _unstorable(outcome, exc), self.now)


def _plain_not_modified(outcome: _Outcome) -> bool:
    """A 304 that moved nowhere: only the fetch times change (`sources.record_not_modified`)."""
    fetched = outcome.fetched
    return (
        outcome.error is None
        and outcome.parsed is None
        and fetched is not None
        and fetched.status == 304
        and fetched.permanent_url is None
    )


def _unstorable(outcome: _Outcome, exc: Exception) -> _Outcome:
    failed = SourceError(f"{outcome.job.url}: could not be stored ({exc!r})")
    return _Outcome(outcome.job, error=failed)


def _describe(outcome: _Outcome) -> SourceReport:
    job = outcome.job
    report = SourceReport(name=job.name, url=job.url, kind=job.kind.value, outcome="collected")
    if outcome.error is not None:
        report.outcome, report.error = "failed", str(outcome.error)
    elif outcome.parsed is None:
        report.outcome = "not modified"
    else:
        parsed = outcome.parsed
        report.warnings = parsed.warnings
        report.found = len(parsed.entries) + len(parsed.events)
        report.title = parsed.title
    return report


def _store(settings: Settings, session: Session, outcome: _Outcome, now: datetime) -> SourceReport:
    """Write one source's outcome: its items, its fetch state, or its failure."""
    report = _describe(outcome)
    source = session.get(Source, outcome.job.id)
    if source is None:  # removed while we fetched
        return report
    every = settings.collect.every
    if outcome.error is not None:
        error = outcome.error
        sources.record_failure(
            source,
            now=now,
            every=every,
            error=str(error),
            status=error.status if isinstance(error, HTTPStatusError) else None,
            retry_after=error.retry_after if isinstance(error, RateLimitedError) else None,
            deactivate=isinstance(error, GoneError),
        )
        return report
    fetched = outcome.fetched
    assert fetched is not None
    parsed = outcome.parsed
    if parsed is not None:
        first = sources.is_first_collection(source)
        if source.kind is SourceKind.CALENDAR:
            from digest.store import series  # (icalendar: only when a calendar is stored)

            report.counts = items.record_events(
                session, source, parsed.events, now=now, window=calendar_window(settings, now)
            )
            series.record(session, source, parsed.series, now=now)
        else:
            report.counts = items.record_entries(
                session,
                source,
                parsed.entries,
                now=now,
                first_collection=first,
                news_window=timedelta(days=settings.issue.news_window_days),
                history_before=_history_before(session, source, now) if first else None,
            )
        report.warnings = (*report.warnings, *(f"left out {s}" for s in report.counts.skipped))
    sources.record_success(
        source,
        now=now,
        every=every,
        status=fetched.status,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        permanent_url=fetched.permanent_url,
        title=parsed.title if parsed else None,
    )
    return report


def _history_before(session: Session, source: Source, now: datetime) -> datetime | None:
    """Where a new source's history ends: `--backfill DAYS` before now, else the last issue
    sent (its items predating it were never news to our readers); None: the news window."""
    if source.backfill_days is not None:
        return now - timedelta(days=source.backfill_days)
    last: datetime | None = session.scalar(
        sa.select(sa.func.max(Issue.sent_at)).where(Issue.status == IssueStatus.SENT)
    )
    return last
