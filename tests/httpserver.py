"""A real HTTP server on 127.0.0.1 for tests, with routes each test configures.

    server.route("/feed.xml", body=FEED, headers={"Content-Type": "application/rss+xml"})
    server.route("/old", status=301, headers={"Location": "/feed.xml"})
    server.route("/slow", body=b"x" * 100, drip=0.1)   # one byte every 0.1 s
    url = server.url("/feed.xml")                      # http://127.0.0.1:PORT/feed.xml
    server.received_at("/feed.xml")[0].headers["user-agent"]

A route with `etag` / `last_modified` answers 304 when the request's If-None-Match /
If-Modified-Since match, like a well-behaved feed server. Every request is recorded with
its headers and server-side start / finish times (`time.monotonic`), so tests can check
ordering and overlap. Responses are HTTP/1.0: the connection closes after each one, so a
body without Content-Length simply ends there.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from types import TracebackType

HOST = "127.0.0.1"


@dataclass
class Route:
    """How the server answers one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering (after the request is recorded)."""
    drip: float = 0.0
    """When set, the body is sent one byte at a time with this many seconds between bytes."""
    content_length: bool = True
    """False: send no Content-Length; the body ends when the connection closes."""


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    started: float
    finished: float | None = None


@functools.cache
def gzip_bomb(size: int = 50_000_000) -> bytes:
    """Return `size` zero bytes gzipped (50 MB become about 50 KB)."""
    return gzip.compress(bytes(size), compresslevel=9)


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 and a free port; use it as a context manager."""

    def __init__(self, host: str = HOST) -> None:
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.received: list[Received] = []
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.owner = self
        self.host = host
        self.port: int = self._httpd.server_address[1]
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()  # ends delays and drips, so handler threads can be joined
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the handler threads
        self._thread.join()

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """Return the absolute URL of `path`; `host="localhost"` names the server differently."""
        return f"http://{host or self.host}:{self.port}{path}"

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        drip: float = 0.0,
        content_length: bool = True,
    ) -> Route:
        """Answer GETs of `path` as described (see `Route`); return the route to change later."""
        route = Route(
            status, body, dict(headers or {}), etag, last_modified, delay, drip, content_length
        )
        self._routes[path] = route
        return route

    def received_at(self, path: str) -> list[Received]:
        """Return the requests made for `path`, in arrival order."""
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _answer(self, handler: _Handler) -> None:
        path = urllib.parse.urlsplit(handler.path).path
        record = Received(
            path, {k.lower(): v for k, v in handler.headers.items()}, time.monotonic()
        )
        with self._lock:
            self.received.append(record)
        route = self._routes.get(path, Route(status=404, body=b"no such route"))
        try:
            if route.delay and self._stopping.wait(route.delay):
                return
            self._send(handler, route)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, which is what several tests want it to do
        finally:
            record.finished = time.monotonic()

    def _send(self, handler: _Handler, route: Route) -> None:
        unchanged = (route.etag is not None and handler.headers["if-none-match"] == route.etag) or (
            route.last_modified is not None
            and handler.headers["if-modified-since"] == route.last_modified
        )
        status = 304 if unchanged else route.status
        handler.send_response(status)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        if route.etag is not None:
            handler.send_header("ETag", route.etag)
        if route.last_modified is not None:
            handler.send_header("Last-Modified", route.last_modified)
        if status == 304:
            handler.end_headers()
            return
        if route.content_length:
            handler.send_header("Content-Length", str(len(route.body)))
        handler.end_headers()
        if not route.drip:
            handler.wfile.write(route.body)
            return
        for i in range(len(route.body)):
            if self._stopping.wait(route.drip):
                return
            handler.wfile.write(route.body[i : i + 1])
            handler.wfile.flush()


class _Server(http.server.ThreadingHTTPServer):
    # Non-daemon handler threads, so server_close() joins them and no thread outlives a test.
    daemon_threads = False
    owner: LocalServer


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.owner._answer(self)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""
