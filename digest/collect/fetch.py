"""Fetch one source's bytes over HTTP(S), or from a local file the operator configured.

The rules (STANDARDS.md, "Fetching sources"):

- conditional GET with the stored ETag / Last-Modified; a 304 carries no body;
- our own User-Agent; redirects followed by hand, at most 5, http/https only, and the
  stored URL moves only when every hop was permanent (301/308);
- 410 deactivates the source, 429/503 postpone it (Retry-After), other statuses fail it;
- one hard deadline per fetch over connect, redirects and body; the body is capped after
  decompression, so a gzip bomb stops at the cap;
- the SSRF guard (`addresses.py`) checks every resolved address at connect time, on every
  hop, and we connect to the address we checked;
- per-host politeness: a concurrency limit and a minimum interval between requests.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import re
import stat
import urllib.parse
import urllib.request
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import httpx

import digest
from digest.collect import Fetched
from digest.collect.addresses import GuardedTransport, check_address
from digest.collect.networks import Network, parse_networks
from digest.config import CollectSettings
from digest.errors import (
    BlockedAddressError,
    FetchError,
    FetchTimeout,
    GoneError,
    HTTPStatusError,
    RateLimitedError,
    TooLargeError,
)

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_STEP = 64 * 1024
"""Most bytes one decompression step may produce, so memory stays near max_bytes."""
_DRAIN = 64 * 1024
"""Most bytes read (and dropped) of a body we do not keep (a 304, a redirect, an error), so
that its connection goes back to the pool: httpcore closes a connection whose response was
not read to the end, which made every conditional fetch open a new connection."""
_DRAIN_SECONDS = 1.0
"""Longest wait for such a body: one that trickles in is not worth the connection (a
redirect is followed, an error reported, at once)."""


def user_agent(url: str) -> str:
    """Return our User-Agent: name/version plus the URL where a webmaster can read about us."""
    return f"digest/{digest.__version__} (+{url})"


USER_AGENT = user_agent(CollectSettings().user_agent_url)


@dataclass(frozen=True)
class FetchPolicy:
    """How we fetch: limits, the SSRF allow list, politeness and our name."""

    timeout_seconds: float
    max_bytes: int
    allow_networks: tuple[Network, ...]
    per_host_interval_seconds: float
    per_host_connections: int
    user_agent: str = USER_AGENT

    @classmethod
    def from_settings(cls, collect: CollectSettings) -> FetchPolicy:
        """Build the policy from the [collect] settings."""
        return cls(
            timeout_seconds=collect.timeout_seconds,
            max_bytes=collect.max_bytes,
            allow_networks=parse_networks(collect.allow_networks),
            per_host_interval_seconds=collect.per_host_interval_seconds,
            per_host_connections=collect.per_host_connections,
            user_agent=user_agent(collect.user_agent_url),
        )


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Return when a Retry-After header (seconds or HTTP-date) asks us back, None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]+", text):
        try:
            return now + timedelta(seconds=int(text))
        except OverflowError:
            return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    # "-0000" parses naive; HTTP-dates are always GMT (RFC 9110 section 5.6.7).
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class _HostGate:
    """Politeness for one host: a concurrency limit and a minimum gap between request starts."""

    def __init__(self, connections: int, interval: float) -> None:
        self._slots = asyncio.Semaphore(max(1, connections))
        self._order = asyncio.Lock()
        self._interval = interval
        self._next_start = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            async with self._order:
                loop = asyncio.get_running_loop()
                wait = self._next_start - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start = loop.time() + self._interval
            yield


class Fetcher:
    """Fetches sources under one `FetchPolicy`; use it as an async context manager.

    Politeness state lives here, so share one Fetcher across a collect run (one event loop).
    """

    def __init__(
        self, policy: FetchPolicy, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._policy = policy
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(policy.allow_networks) if transport is None else transport,
            # trust_env=False: an HTTP(S)_PROXY variable would mount a proxy transport in
            # front of ours, and the proxy, not the guard, would pick the address.
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(policy.timeout_seconds),
            # Only what _Inflater can undo in bounded steps.
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._gates: dict[str, _HostGate] = {}

    async def __aenter__(self) -> Fetcher:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        now: datetime | None = None,
    ) -> Fetched:
        """Fetch `url` (http(s), file: or a local path) unless unchanged since the validators."""
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme in ("", "file"):
            path = _local_path(url)
            return await asyncio.to_thread(self._read_file, path, etag, last_modified)
        if scheme not in ("http", "https"):
            raise FetchError(
                f"{url}: {scheme}: URLs are not supported; "
                "a source is an http(s) URL or a local path"
            )
        headers = {"If-None-Match": etag or "", "If-Modified-Since": last_modified or ""}
        headers = {name: value for name, value in headers.items() if value}
        deadline = asyncio.timeout(None)  # armed when the first request leaves, see _request
        try:
            async with deadline:
                return await self._fetch_http(
                    url, headers, etag, last_modified, now or datetime.now(UTC), deadline
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise FetchTimeout(
                f"{url} took longer than {self._policy.timeout_seconds:g}s "
                "([collect] timeout_seconds); the server is slow or unreachable: the next run "
                "tries again (raise timeout_seconds if it is always this slow)"
            ) from exc

    async def _fetch_http(
        self,
        url: str,
        headers: Mapping[str, str],
        etag: str | None,
        last_modified: str | None,
        now: datetime,
        deadline: asyncio.Timeout,
    ) -> Fetched:
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise FetchError(f"{url} is not a valid URL ({exc}); fix the source's url") from exc
        permanent = True
        for hop in range(MAX_REDIRECTS + 1):
            where = url if hop == 0 else f"{url} (redirected to {current})"
            async with self._request(current, headers, where, deadline) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    permanent = permanent and response.status_code in _PERMANENT
                    current = _redirect_target(where, current, location)
                    await _drain(response)
                    continue
                moved = str(current) if permanent and hop > 0 else None
                return await self._finish(response, where, etag, last_modified, now, moved)
        raise FetchError(
            f"{url} redirected more than {MAX_REDIRECTS} times; set the source's url to "
            "the final address"
        )

    @asynccontextmanager
    async def _request(
        self, url: httpx.URL, headers: Mapping[str, str], where: str, deadline: asyncio.Timeout
    ) -> AsyncIterator[httpx.Response]:
        """Send one GET (politely, after the literal-address check) and stream its response."""
        try:
            literal = ipaddress.ip_address(url.host)
        except ValueError:
            pass
        else:
            try:
                check_address(str(literal), self._policy.allow_networks)
            except BlockedAddressError as exc:
                raise BlockedAddressError(f"{where}: {exc}") from exc
        gate = self._gates.setdefault(
            url.host,
            _HostGate(self._policy.per_host_connections, self._policy.per_host_interval_seconds),
        )
        async with gate.slot():
            if deadline.when() is None:
                # Time spent queued behind other fetches to this host is politeness, not
                # this source being slow: the deadline starts with our first request.
                loop = asyncio.get_running_loop()
                deadline.reschedule(loop.time() + self._policy.timeout_seconds)
            try:
                request = self._client.build_request("GET", url, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    yield response
                finally:
                    await response.aclose()
            except BlockedAddressError as exc:
                raise BlockedAddressError(f"{where}: {exc}") from exc
            except httpx.TimeoutException:
                raise
            except httpx.ConnectError as exc:
                raise FetchError(
                    f"{where}: cannot connect ({exc}); check the host name in the source's url, "
                    "or the next run tries again if the server is down"
                ) from exc
            except httpx.HTTPError as exc:
                raise FetchError(
                    f"{where}: the transfer failed ({type(exc).__name__}: {exc}); "
                    "the next run tries again"
                ) from exc

    async def _finish(
        self,
        response: httpx.Response,
        where: str,
        etag: str | None,
        last_modified: str | None,
        now: datetime,
        moved: str | None,
    ) -> Fetched:
        """Turn the final response into a Fetched, or raise what its status means."""
        status = response.status_code
        headers = response.headers
        if not 200 <= status < 300:
            await _drain(response)
        if status == 304:
            # A 304 may omit the validators; the ones we sent still describe our copy.
            return Fetched(
                url=str(response.url),
                body=None,
                content_type=headers.get("content-type"),
                etag=headers.get("etag") or etag,
                last_modified=headers.get("last-modified") or last_modified,
                status=304,
                permanent_url=moved,
            )
        said = f"{where} returned {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
        if status == 410:
            raise GoneError(
                f"{said}; this source is now deactivated (remove it with "
                "`digest sources remove` or fix its url)"
            )
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), now)
            when = f"until {retry_after:%Y-%m-%d %H:%M:%S %Z}" if retry_after else "to a later run"
            raise RateLimitedError(f"{said}; the next fetch is postponed {when}", retry_after)
        if not 200 <= status < 300:
            advice = (
                "the server failed; the next run tries again"
                if status >= 500
                else "check the source's url (open it in a browser)"
            )
            raise HTTPStatusError(f"{said}; {advice}", status)
        return Fetched(
            url=str(response.url),
            body=await self._read_body(response, where),
            content_type=headers.get("content-type"),
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            status=status,
            permanent_url=moved,
        )

    async def _read_body(self, response: httpx.Response, where: str) -> bytes:
        """Read and decompress the body, stopping as soon as it passes max_bytes."""
        cap = self._policy.max_bytes
        too_large = (
            f"more than [collect] max_bytes ({cap:,} bytes after decompression); "
            "raise max_bytes if this source really is that big"
        )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise TooLargeError(f"{where} announced {int(declared):,} bytes, {too_large}")
        if response.is_stream_consumed:
            # Built in memory (httpx.MockTransport): httpx read and decoded it already.
            if len(response.content) > cap:
                raise TooLargeError(f"{where} sent {too_large}")
            return response.content
        inflater = _Inflater(response.headers.get("content-encoding", ""), where)
        parts: list[bytes] = []
        total = 0
        # aiter_raw, not aiter_bytes: httpx inflates each 64 KiB network chunk in one go,
        # which for a gzip bomb is ~64 MB before we could look at it.
        async for raw in response.aiter_raw():
            for piece in inflater.feed(raw):
                total += len(piece)
                if total > cap:
                    raise TooLargeError(f"{where} sent {too_large}")
                parts.append(piece)
        tail = inflater.flush()
        if total + len(tail) > cap:
            raise TooLargeError(f"{where} sent {too_large}")
        parts.append(tail)
        return b"".join(parts)

    def _read_file(self, path: Path, etag: str | None, last_modified: str | None) -> Fetched:
        """Read a local source file, or report it unchanged (same mtime and size)."""
        fix = "fix the source's url (a local path must name a readable file)"
        try:
            info = path.stat()
            # Checked before opening: opening a FIFO would block, /dev/zero never ends.
            if not stat.S_ISREG(info.st_mode):
                raise FetchError(f"{path} is not a regular file; {fix}")
            stamp = email.utils.formatdate(info.st_mtime, usegmt=True)
            # Last-Modified has one-second resolution; the ETag also catches quick rewrites.
            tag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
            if last_modified == stamp and etag in (None, tag):
                return Fetched(url=str(path), body=None, etag=tag, last_modified=stamp, status=304)
            with path.open("rb") as file:
                body = file.read(self._policy.max_bytes + 1)
        except FileNotFoundError as exc:
            raise FetchError(f"{path}: no such file; {fix}") from exc
        except OSError as exc:
            raise FetchError(f"{path}: cannot read it ({exc.strerror}); {fix}") from exc
        if len(body) > self._policy.max_bytes:
            raise TooLargeError(
                f"{path} is larger than [collect] max_bytes ({self._policy.max_bytes:,} bytes); "
                "raise max_bytes if this file really is that big"
            )
        # No Content-Type: feedparser would read a charset-less text/xml as us-ascii
        # (RFC 3023); without one it honours the file's own XML declaration.
        return Fetched(url=str(path), body=body, etag=tag, last_modified=stamp, status=200)


async def _drain(response: httpx.Response) -> None:
    """Read what is left of a body we do not keep, up to `_DRAIN` bytes and `_DRAIN_SECONDS`,
    so that the connection can be reused (past either, closing it is cheaper)."""
    if response.is_stream_consumed:
        return
    read = 0
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for raw in response.aiter_raw():
                read += len(raw)
                if read > _DRAIN:
                    return
    except (httpx.HTTPError, TimeoutError):
        return  # closing the connection is cheaper; what the status said still stands


def _redirect_target(where: str, current: httpx.URL, location: str) -> httpx.URL:
    """Resolve a Location header, refusing anything but http and https."""
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise FetchError(
            f"{where} redirected to an invalid address {location!r}; fix the source's url"
        ) from exc
    if target.scheme not in ("http", "https"):
        raise FetchError(
            f"{where} redirected to {location}, which is not http or https; redirects may not "
            "lead to local files or other protocols: fix the source's url or remove it"
        )
    return target


def _local_path(url: str) -> Path:
    """Return the path an operator's local source names (a plain path or a file: URL)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme:
        return Path(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"{url}: file: URLs must be local (file:///path); use a local path")
    return Path(urllib.request.url2pathname(parts.path))


class _Inflater:
    """Undoes gzip or deflate in steps of at most 64 KiB, so a gzip bomb stops at the cap."""

    def __init__(self, content_encoding: str, where: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(
                f"{where} sent Content-Encoding {content_encoding!r}, which we did not ask "
                "for (we accept gzip and deflate); the server is misconfigured"
            )
        self._coding = codings[0] if codings else None
        self._where = where
        self._zlib: zlib._Decompress | None = None
        self._head = b""
        if self._coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield the decompressed bytes of `data`, one bounded piece at a time."""
        if self._coding is None:
            if data:
                yield data
            return
        if self._zlib is None:
            self._head += data  # deflate: wait for the two bytes that tell its flavour
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
        try:
            inflate = self._zlib or self._start_deflate(data)
            output = inflate.decompress(data, _STEP)
            while True:
                if output:
                    yield output
                if inflate.eof or not inflate.unconsumed_tail:
                    return  # bytes after the end of the stream are ignored, as browsers do
                output = inflate.decompress(inflate.unconsumed_tail, _STEP)
        except zlib.error as exc:
            raise self._broken(exc) from exc

    def flush(self) -> bytes:
        """Return what the decompressor still holds once the body has ended."""
        if self._zlib is None:
            return self._head  # deflate of under two bytes is not a stream; let it be the body
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise self._broken(exc) from exc

    def _start_deflate(self, data: bytes) -> zlib._Decompress:
        # "deflate" means zlib-wrapped (RFC 9110), but some servers send raw deflate: the
        # zlib header is two bytes whose value is a multiple of 31 (RFC 1950).
        wrapped = data[0] & 0x0F == 8 and int.from_bytes(data[:2]) % 31 == 0
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return self._zlib

    def _broken(self, exc: zlib.error) -> FetchError:
        return FetchError(
            f"{self._where}: the body is not valid {self._coding} ({exc}); "
            "the server is misconfigured, the next run tries again"
        )
