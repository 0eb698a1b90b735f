"""Fetching sources against a real local HTTP server: validators, limits, redirects, guard."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import gzip
import http.server
import os
import threading
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

import digest
from digest.collect import Fetched
from digest.collect.fetch import Fetcher, FetchPolicy, parse_retry_after
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
from tests.httpserver import LocalServer, gzip_bomb

NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
LOOPBACK = ["127.0.0.0/8"]
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def make_policy(allow: list[str] | None = None, **changes: Any) -> FetchPolicy:
    """The default policy, with loopback allowed (the test server lives there) and no pauses."""
    settings = CollectSettings(
        allow_networks=LOOPBACK if allow is None else allow,
        timeout_seconds=5.0,
        per_host_interval_seconds=0.0,
    )
    return dataclasses.replace(FetchPolicy.from_settings(settings), **changes)


def fetch(url: str, policy: FetchPolicy | None = None, **options: Any) -> Fetched:
    """Fetch one URL with a fresh Fetcher on a fresh event loop."""

    async def run() -> Fetched:
        async with Fetcher(policy or make_policy()) as fetcher:
            return await fetcher.fetch(url, now=NOW, **options)

    return asyncio.run(run())


def fetch_all(urls: list[str], policy: FetchPolicy) -> list[Fetched]:
    """Fetch several URLs concurrently through one Fetcher (sharing its politeness)."""

    async def run() -> list[Fetched]:
        async with Fetcher(policy) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(url) for url in urls)))

    return asyncio.run(run())


# --- the ordinary case, validators and our name -------------------------------------------


def test_fetch_returns_body_headers_and_sends_our_user_agent(http_server: LocalServer) -> None:
    http_server.route(
        "/feed.xml",
        body=FEED,
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},
        etag='"v1"',
        last_modified="Mon, 16 Nov 2026 07:00:00 GMT",
    )
    fetched = fetch(http_server.url("/feed.xml"))
    assert fetched == Fetched(
        url=http_server.url("/feed.xml"),
        body=FEED,
        content_type="application/rss+xml; charset=utf-8",
        etag='"v1"',
        last_modified="Mon, 16 Nov 2026 07:00:00 GMT",
        status=200,
    )
    sent = http_server.received_at("/feed.xml")[0].headers
    assert sent["user-agent"] == (
        f"digest/{digest.__version__} (+https://github.com/digest-publisher/digest)"
    )
    assert "if-none-match" not in sent
    assert "if-modified-since" not in sent


def test_conditional_get_with_etag_gets_304_and_no_body(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", body=FEED, etag='"v1"')
    first = fetch(http_server.url("/feed.xml"))
    second = fetch(http_server.url("/feed.xml"), etag=first.etag)
    assert first.body == FEED
    assert second.not_modified
    assert (second.body, second.status, second.etag) == (None, 304, '"v1"')
    assert http_server.received_at("/feed.xml")[1].headers["if-none-match"] == '"v1"'


def test_conditional_get_with_last_modified_gets_304(http_server: LocalServer) -> None:
    stamp = "Mon, 16 Nov 2026 07:00:00 GMT"
    http_server.route("/feed.xml", body=FEED, last_modified=stamp)
    fetched = fetch(http_server.url("/feed.xml"), last_modified=stamp)
    assert (fetched.body, fetched.status, fetched.last_modified) == (None, 304, stamp)
    assert http_server.received_at("/feed.xml")[0].headers["if-modified-since"] == stamp


def test_304_without_validators_keeps_the_ones_we_sent(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", status=304)
    fetched = fetch(
        http_server.url("/feed.xml"), etag='"old"', last_modified="Sun, 15 Nov 2026 00:00:00 GMT"
    )
    assert fetched.not_modified
    assert fetched.etag == '"old"'
    assert fetched.last_modified == "Sun, 15 Nov 2026 00:00:00 GMT"


class _KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (unlike tests.httpserver): /feed answers 304 to its ETag,
    /moved redirects there, /missing is a 404 with a body; each connection is counted."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[list[int]] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_GET(self) -> None:
        if self.path == "/moved":
            status, body, headers = 301, b"<p>moved</p>", {"Location": "/feed"}
        elif self.path == "/missing":
            status, body, headers = 404, b"<p>not here</p>" * 100, {}
        elif self.headers.get("If-None-Match") == '"v1"':
            status, body, headers = 304, b"", {"ETag": '"v1"'}
        else:
            status, body, headers = 200, FEED, {"ETag": '"v1"'}
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_304s_redirects_and_errors_leave_the_connection_open_for_the_next_fetch() -> None:
    # httpcore closes a connection whose response body was not read to its end: a nothing-
    # new collect then opened one connection per source. Bodies we do not keep are drained.
    _KeepAliveHandler.connections = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    async def run() -> list[Fetched | HTTPStatusError]:
        results: list[Fetched | HTTPStatusError] = []
        async with Fetcher(make_policy()) as fetcher:
            for path, etag in [("/feed", None), ("/feed", '"v1"'), ("/moved", '"v1"'),
                               ("/missing", None), ("/feed", '"v1"')]:  # fmt: skip
                try:
                    results.append(await fetcher.fetch(base + path, etag=etag, now=NOW))
                except HTTPStatusError as exc:
                    results.append(exc)
        return results

    try:
        results = asyncio.run(run())
    finally:
        server.shutdown()
        server.server_close()
    statuses = [r.status for r in results]
    assert statuses == [200, 304, 304, 404, 304]
    assert len(_KeepAliveHandler.connections) == 1


# --- time and size limits -----------------------------------------------------------------


def test_slow_drip_is_cut_off_at_the_deadline(http_server: LocalServer) -> None:
    # 200 bytes at one byte per 0.1 s would take 20 s; each byte beats the read timeout.
    http_server.route("/drip", body=b"x" * 200, drip=0.1)
    started = time.monotonic()
    with pytest.raises(FetchTimeout, match=r"took longer than 1s \(\[collect\] timeout_seconds\)"):
        fetch(http_server.url("/drip"), make_policy(timeout_seconds=1.0))
    assert time.monotonic() - started < 5


def test_server_that_never_answers_times_out(http_server: LocalServer) -> None:
    http_server.route("/silent", delay=30)
    started = time.monotonic()
    with pytest.raises(FetchTimeout, match="/silent took longer than"):
        fetch(http_server.url("/silent"), make_policy(timeout_seconds=1.0))
    assert time.monotonic() - started < 5


def test_announced_length_over_the_cap_is_refused_before_reading(http_server: LocalServer) -> None:
    http_server.route("/big", body=b"x" * 2_000_000)
    with pytest.raises(TooLargeError, match=r"announced 2,000,000 bytes.*max_bytes \(1,000,000"):
        fetch(http_server.url("/big"), make_policy(max_bytes=1_000_000))


def test_unannounced_body_over_the_cap_is_cut_at_the_cap(http_server: LocalServer) -> None:
    http_server.route("/big", body=b"x" * 3_000_000, content_length=False)
    with pytest.raises(TooLargeError, match="sent more than"):
        fetch(http_server.url("/big"), make_policy(max_bytes=1_000_000))


def test_gzip_bomb_stops_at_the_cap_without_inflating_everything(
    http_server: LocalServer,
) -> None:
    bomb = gzip_bomb(50_000_000)
    http_server.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(TooLargeError, match="after decompression"):
            fetch(http_server.url("/bomb"), make_policy(max_bytes=1_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflating the whole bomb (or even one 64 KiB network chunk of it) takes far more.
    assert peak < 16_000_000


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw, as some servers send
    ],
)
def test_compressed_body_within_the_cap_is_decompressed(
    http_server: LocalServer, encoding: str, compress: Any
) -> None:
    http_server.route(
        "/feed.xml", body=compress(FEED * 1000), headers={"Content-Encoding": encoding}
    )
    assert fetch(http_server.url("/feed.xml")).body == FEED * 1000
    assert "gzip" in http_server.received_at("/feed.xml")[0].headers["accept-encoding"]


def test_encoding_we_did_not_ask_for_is_refused(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", body=b"\x1b\x00", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="Content-Encoding 'br', which we did not ask for"):
        fetch(http_server.url("/feed.xml"))


# --- redirects ----------------------------------------------------------------------------


def test_a_redirect_or_error_whose_body_trickles_in_is_not_waited_for(
    http_server: LocalServer,
) -> None:
    # Bodies we drop are read so the connection can be reused, but not at any price: one
    # byte a second would otherwise hold the fetch until its deadline (5 s here).
    http_server.route("/feed.xml", body=FEED)
    trickle = {"body": b"x" * 100, "drip": 1.0}
    http_server.route("/old", status=301, headers={"Location": "/feed.xml"}, **trickle)
    http_server.route("/missing", status=404, **trickle)
    assert fetch(http_server.url("/old")).body == FEED
    with pytest.raises(HTTPStatusError, match="404"):
        fetch(http_server.url("/missing"))


@pytest.mark.parametrize(
    ("chain", "moved"),
    [
        ([301], True),
        ([308], True),
        ([301, 308], True),
        ([302], False),
        ([307], False),
        ([303], False),
        ([301, 302], False),
        ([307, 301], False),
    ],
)
def test_only_an_all_permanent_chain_moves_the_source(
    http_server: LocalServer, chain: list[int], moved: bool
) -> None:
    for hop, status in enumerate(chain):
        http_server.route(f"/hop{hop}", status=status, headers={"Location": f"/hop{hop + 1}"})
    http_server.route(f"/hop{len(chain)}", body=FEED)
    final = http_server.url(f"/hop{len(chain)}")
    fetched = fetch(http_server.url("/hop0"))
    assert (fetched.url, fetched.body) == (final, FEED)
    assert fetched.permanent_url == (final if moved else None)


def test_no_redirect_means_no_permanent_url(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", body=FEED)
    assert fetch(http_server.url("/feed.xml")).permanent_url is None


def test_redirect_loop_stops_after_five_hops(http_server: LocalServer) -> None:
    http_server.route("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="redirected more than 5 times"):
        fetch(http_server.url("/loop"))
    assert len(http_server.received_at("/loop")) == 6


@pytest.mark.parametrize("target", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://x/y"])
def test_redirect_to_another_protocol_is_refused(http_server: LocalServer, target: str) -> None:
    http_server.route("/feed.xml", status=302, headers={"Location": target})
    with pytest.raises(FetchError, match="which is not http or https") as caught:
        fetch(http_server.url("/feed.xml"))
    assert http_server.url("/feed.xml") in str(caught.value)


# --- the SSRF guard on the wire -----------------------------------------------------------


def test_guard_refuses_loopback_unless_allowed(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", body=FEED)
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1 is a loopback address") as caught:
        fetch(http_server.url("/feed.xml"), make_policy(allow=[]))
    assert str(caught.value).startswith(http_server.url("/feed.xml"))
    assert http_server.received == []


def test_guard_checks_the_resolved_address_of_a_host_name(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", body=FEED)
    with pytest.raises(BlockedAddressError, match=r"localhost resolves to 127\.0\.0\.1, and"):
        fetch(http_server.url("/feed.xml", host="localhost"), make_policy(allow=[]))
    assert http_server.received == []


def test_redirect_to_a_blocked_address_is_refused(http_server: LocalServer) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    http_server.route("/feed.xml", status=301, headers={"Location": target})
    with pytest.raises(BlockedAddressError, match=f"redirected to {target}.*link-local"):
        fetch(http_server.url("/feed.xml"))


def test_redirect_to_a_name_resolving_to_a_blocked_address_is_refused(
    http_server: LocalServer,
) -> None:
    # 2130706434 is a host name to httpx, and getaddrinfo reads it as 127.0.0.2.
    http_server.route(
        "/feed.xml", status=302, headers={"Location": f"http://2130706434:{http_server.port}/"}
    )
    with pytest.raises(BlockedAddressError, match=r"2130706434 resolves to 127\.0\.0\.2"):
        fetch(http_server.url("/feed.xml"), make_policy(allow=["127.0.0.1/32"]))


def test_literal_address_is_refused_even_with_another_transport() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=FEED)

    async def run() -> None:
        async with Fetcher(make_policy(allow=[]), transport=httpx.MockTransport(answer)) as f:
            with pytest.raises(BlockedAddressError, match="link-local"):
                await f.fetch("http://169.254.169.254/latest/meta-data/")
            with pytest.raises(BlockedAddressError, match=r"NAT64 form of 169\.254\.169\.254"):
                await f.fetch("http://[64:ff9b::a9fe:a9fe]/")
            assert (await f.fetch("https://example.org/feed")).body == FEED

    asyncio.run(run())
    assert [str(request.url) for request in calls] == ["https://example.org/feed"]


# --- statuses -----------------------------------------------------------------------------


def test_410_gone_deactivates_the_source(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", status=410)
    with pytest.raises(GoneError) as caught:
        fetch(http_server.url("/feed.xml"))
    assert str(caught.value) == (
        f"{http_server.url('/feed.xml')} returned 410 Gone; this source is now deactivated "
        "(remove it with `digest sources remove` or fix its url)"
    )


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "120", NOW + timedelta(seconds=120)),
        (429, "Mon, 16 Nov 2026 10:30:00 GMT", datetime(2026, 11, 16, 10, 30, tzinfo=UTC)),
        (503, "3600", NOW + timedelta(hours=1)),
        (503, None, None),
        (429, "soon", None),
    ],
)
def test_rate_limits_postpone_the_next_fetch(
    http_server: LocalServer, status: int, header: str | None, expected: datetime | None
) -> None:
    http_server.route("/feed.xml", status=status, headers={"Retry-After": header} if header else {})
    with pytest.raises(RateLimitedError, match=f"returned {status} .*postponed") as caught:
        fetch(http_server.url("/feed.xml"))
    assert caught.value.retry_after == expected


@pytest.mark.parametrize("status", [404, 500])
def test_other_statuses_fail_with_their_number(http_server: LocalServer, status: int) -> None:
    http_server.route("/feed.xml", status=status)
    with pytest.raises(HTTPStatusError, match=f"returned {status} ") as caught:
        fetch(http_server.url("/feed.xml"))
    assert caught.value.status == status


def test_retry_after_parsing() -> None:
    assert parse_retry_after(" 30 ", NOW) == NOW + timedelta(seconds=30)
    assert parse_retry_after("Mon, 16 Nov 2026 09:00:00 -0000", NOW) == NOW + timedelta(hours=1)
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("9" * 30, NOW) is None


# --- connection failures ------------------------------------------------------------------


def test_refused_connection_says_so() -> None:
    with LocalServer() as closed:
        url = closed.url("/feed.xml")
    with pytest.raises(FetchError, match="cannot connect"):
        fetch(url)


def test_unknown_host_says_it_cannot_be_resolved() -> None:
    with pytest.raises(FetchError, match=r"cannot resolve host name nonexistent\.invalid"):
        fetch("http://nonexistent.invalid/feed.xml")


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "javascript:alert(1)"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="URLs are not supported"):
        fetch(url)


# --- politeness ---------------------------------------------------------------------------


def test_one_host_gets_one_request_at_a_time(http_server: LocalServer) -> None:
    http_server.route("/slow", body=FEED, delay=0.3)
    fetch_all([http_server.url("/slow")] * 3, make_policy(per_host_connections=1))
    first, second, third = http_server.received_at("/slow")
    assert first.finished is not None
    assert second.finished is not None
    assert second.started >= first.finished
    assert third.started >= second.finished


def test_one_host_gets_requests_spaced_by_the_interval(http_server: LocalServer) -> None:
    http_server.route("/feed.xml", body=FEED)
    fetch_all([http_server.url("/feed.xml")] * 2, make_policy(per_host_interval_seconds=1.0))
    first, second = http_server.received_at("/feed.xml")
    # The client spaces its sends by 1 s; the server sees the first one late by the
    # connection setup (tens of ms on a loaded machine), never the second one early.
    assert second.started - first.started >= 0.7


def test_different_hosts_are_fetched_concurrently(http_server: LocalServer) -> None:
    http_server.route("/slow", body=FEED, delay=0.5)
    urls = [http_server.url("/slow"), http_server.url("/slow", host="localhost")]
    policy = make_policy(allow=[*LOOPBACK, "::1/128"], per_host_connections=1)
    fetched = fetch_all(urls, policy)
    assert [f.body for f in fetched] == [FEED, FEED]
    first, second = http_server.received_at("/slow")
    assert {first.headers["host"].split(":")[0], second.headers["host"].split(":")[0]} == {
        "127.0.0.1",
        "localhost",
    }
    assert first.finished is not None
    assert second.started < first.finished  # overlapping, not one after the other


# --- local files --------------------------------------------------------------------------


def test_local_file_is_read_and_unchanged_mtime_gives_304(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    first = fetch(str(path))
    assert (first.url, first.body, first.status, first.content_type) == (str(path), FEED, 200, None)
    assert first.last_modified == email.utils.formatdate(1_700_000_000, usegmt=True)
    again = fetch(str(path), etag=first.etag, last_modified=first.last_modified)
    assert (again.body, again.status, again.last_modified) == (None, 304, first.last_modified)
    path.write_bytes(FEED + b" ")
    os.utime(path, (1_700_000_100, 1_700_000_100))
    changed = fetch(str(path), etag=first.etag, last_modified=first.last_modified)
    assert (changed.body, changed.status) == (FEED + b" ", 200)


def test_local_file_rewritten_within_the_same_second_is_not_304(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    os.utime(path, ns=(1_700_000_000_100_000_000, 1_700_000_000_100_000_000))
    first = fetch(str(path))
    path.write_bytes(FEED + b"!")
    os.utime(path, ns=(1_700_000_000_900_000_000, 1_700_000_000_900_000_000))
    again = fetch(str(path), etag=first.etag, last_modified=first.last_modified)
    assert again.last_modified == first.last_modified
    assert again.body == FEED + b"!"


def test_file_url_is_read(tmp_path: Path) -> None:
    path = tmp_path / "events.ics"
    path.write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    assert fetch(path.as_uri()).body == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


def test_missing_local_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"
    with pytest.raises(FetchError, match="no such file; fix the source's url") as caught:
        fetch(str(missing))
    assert str(missing) in str(caught.value)


def test_local_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="is not a regular file"):
        fetch(str(tmp_path))


def test_local_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2000)
    with pytest.raises(TooLargeError, match="larger than \\[collect\\] max_bytes"):
        fetch(str(path), make_policy(max_bytes=1000))


# --- policy -------------------------------------------------------------------------------


def test_policy_from_settings() -> None:
    settings = CollectSettings(
        timeout_seconds=7.5,
        max_bytes=1234,
        allow_networks=["10.0.0.0/8"],
        per_host_interval_seconds=2.0,
        per_host_connections=3,
        user_agent_url="https://digest.example.org/about",
    )
    policy = FetchPolicy.from_settings(settings)
    assert (policy.timeout_seconds, policy.max_bytes) == (7.5, 1234)
    assert [str(n) for n in policy.allow_networks] == ["10.0.0.0/8"]
    assert (policy.per_host_interval_seconds, policy.per_host_connections) == (2.0, 3)
    assert policy.user_agent == f"digest/{digest.__version__} (+https://digest.example.org/about)"
