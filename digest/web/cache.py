"""Public answers kept in memory: the published files and the sign-up page.

The archive, feeds, calendars and search index are the files `digest publish` wrote; the
sign-up page is rendered from templates and the sources' topics. Both are the same for
every reader, so each is kept in memory with its headers (a strong ETag, the hash of the
bytes) and answered without touching the disk or the database, a 304 without building a
body. Freshness is checked at most once a second per entry (`INTERVAL`):

- a file is `stat()`ed again; a different mtime, size or inode (publish replaces files by
  rename) means it is read again, and a file gone means 404;
- the sign-up page is rendered again (its topics come from the database, its template may
  be the operator's), so a change shows within a second. It carries an ETag (a browser
  revalidating gets a 304) and no Cache-Control, as before.

So a publish is seen by the app within a second, with no signal between the two. The
clock (`ticker`) is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

INTERVAL = 1.0
"""Seconds an entry is answered from memory before its source is checked again."""
MISSING_LIMIT = 1024
"""At most this many "no such file" answers are remembered (URLs are the reader's to
choose; the files are not), then that memory starts over."""

RawHeaders = tuple[tuple[bytes, bytes], ...]


class Prepared(Response):
    """A response whose headers and body were built once (for a cached answer)."""

    def __init__(self, status_code: int, raw_headers: RawHeaders, body: bytes) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        # A fresh list: middleware adds its headers to the list it is sent.
        self.raw_headers = list(raw_headers)


@dataclass(frozen=True)
class Entry:
    """One answer kept in memory: its body and the headers of a 200 and of a 304."""

    body: bytes
    etag: str
    modified: datetime | None
    full: RawHeaders
    not_modified: RawHeaders

    @classmethod
    def of(
        cls,
        body: bytes,
        media_type: str,
        *,
        modified: datetime | None = None,
        cache_control: str | None = None,
    ) -> Entry:
        """The entry for `body` served as `media_type` (Last-Modified when `modified`)."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        validators = [(b"etag", etag.encode("latin-1"))]
        if modified is not None:
            modified = modified.replace(microsecond=0)
            stamp = format_datetime(modified, usegmt=True)
            validators.append((b"last-modified", stamp.encode("latin-1")))
        if cache_control is not None:
            validators.append((b"cache-control", cache_control.encode("latin-1")))
        full = (
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", media_type.encode("latin-1")),
            *validators,
        )
        return cls(body, etag, modified, full, tuple(validators))

    def answer(self, request: Request) -> Response:
        """200 with the body, or 304 when the request's validators match."""
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:
            fresh = matches(if_none_match, self.etag)
        else:
            since = request.headers.get("if-modified-since")
            fresh = (
                since is not None
                and self.modified is not None
                and not_modified_since(since, self.modified)
            )
        if fresh:
            return Prepared(304, self.not_modified, b"")
        return Prepared(200, self.full, self.body)


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match value names `etag` (weak comparison, as for GET)."""
    if if_none_match.strip() == "*":
        return True
    return etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))


def not_modified_since(if_modified_since: str, modified: datetime) -> bool:
    """Whether an If-Modified-Since value is at or after `modified` (second precision)."""
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since is None:
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return modified.replace(microsecond=0) <= since


@dataclass
class _File:
    entry: Entry | None
    """None: there is no such file."""
    stamp: tuple[int, int, int]
    checked: float


class PublishedFiles:
    """The output folder's files in memory, each checked at most once per `INTERVAL`."""

    def __init__(self, folder: Path, ticker: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self.ticker = ticker
        self._files: dict[str, _File] = {}
        self._missing = 0

    def fresh(self, relative: str) -> _File | None:
        """The kept answer for `relative` if it was checked within `INTERVAL`, else None
        (then call `load`, off the event loop: it touches the disk)."""
        known = self._files.get(relative)
        if known is not None and self.ticker() - known.checked < INTERVAL:
            return known
        return None

    def load(self, relative: str, media_type: str) -> _File:
        """Check `relative` on disk, reading it again only when it changed."""
        now = self.ticker()
        path = self.folder / relative
        known = self._files.get(relative)
        try:
            stat = path.stat()
            if not path.is_file():
                raise FileNotFoundError(relative)
        except (FileNotFoundError, NotADirectoryError):
            return self._remember(relative, _File(None, (0, 0, 0), now))
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if known is not None and known.entry is not None and known.stamp == stamp:
            known.checked = now
            return known
        try:
            body = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return self._remember(relative, _File(None, (0, 0, 0), now))
        modified = datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=UTC)
        entry = Entry.of(body, media_type, modified=modified, cache_control="public, max-age=300")
        return self._remember(relative, _File(entry, stamp, now))

    def _remember(self, relative: str, found: _File) -> _File:
        before = self._files.get(relative)
        if found.entry is None and (before is None or before.entry is not None):
            self._missing += 1
            if self._missing > MISSING_LIMIT:
                self._files = {k: v for k, v in self._files.items() if v.entry is not None}
                self._missing = 1
        elif found.entry is not None and before is not None and before.entry is None:
            self._missing -= 1
        self._files[relative] = found
        return found


@dataclass
class _Page:
    entry: Entry
    made: float


class RenderedPages:
    """Pages that are the same for every reader (the sign-up form), by URL path, each
    rendered again at most once per `INTERVAL`."""

    def __init__(self, ticker: Callable[[], float] = time.monotonic) -> None:
        self.ticker = ticker
        self._pages: dict[str, _Page] = {}

    def fresh(self, key: str) -> Entry | None:
        """The kept page for `key` if it was rendered within `INTERVAL`, else None."""
        page = self._pages.get(key)
        if page is not None and self.ticker() - page.made < INTERVAL:
            return page.entry
        return None

    def keep(self, key: str, response: Response) -> Entry:
        """Keep a rendered 200 `response` (its body and content type) under `key`."""
        body = bytes(response.body)
        media_type = response.headers.get("content-type", "text/html; charset=utf-8")
        entry = Entry.of(body, media_type)
        self._pages[key] = _Page(entry, self.ticker())
        return entry
