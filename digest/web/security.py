"""What keeps the web app safe: security headers, CSRF tokens, rate limits, the editor's
login, a cap on request bodies, and access logs without tokens.

- **Headers** on every response: a Content-Security-Policy with no scripts at all
  (`default-src 'none'`) but on the desk's pages, which may load our own script file and
  fetch from us (`script-src 'self'; connect-src 'self'`, never an inline script), inline
  styles (our pages and the emails carry them), images from https (the emails' pictures),
  frames only from ourselves (the draft preview is a sandboxed `<iframe srcdoc>`, which
  inherits this policy but runs no script), forms posting only to us, and nobody framing us;
  `nosniff`, `Referrer-Policy: no-referrer` (token URLs must not leak to the sites our
  pages link to), and HSTS when the publication is served over https.
- **Private pages** (the editor's desk and every page reached through a subscriber's
  token) are `Cache-Control: no-store` and `X-Robots-Tag: noindex`.
- **CSRF**: a random token kept in the signed session cookie and repeated in every form
  that the session authorizes (the desk, a subscriber's preferences); compared in
  constant time. The one-click unsubscribe POST is exempt by design (RFC 8058: the URL's
  token is the credential and mail clients send no cookie).
- **Rate limits** are counted in memory, per process: run one process (as `digest serve`
  does) or accept that each process counts on its own. Good enough for sign-up forms and
  login attempts; put a limit in the reverse proxy too if the site is busy.
- **Logs**: `AccessLog` writes method, path and status with every token replaced by
  `<token>` and every control character escaped, plus a request id; uvicorn's own access
  log (which would print them) is switched off.
- **Bodies** are capped before anything reads them (`BodyLimit`: a few KB on the public
  forms, more on the desk), forms are parsed with field and part limits, and HEAD answers
  carry no body (`HeadWithoutBody`).
- **Errors** (`ErrorPages`): an unexpected exception answers a plain 500 page and logs one
  line with the request id, never a traceback page.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("digest.web")

CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src 'self' https: data:",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
"""No script may run on public pages; see the module docstring for each directive's reason."""
DESK_CSP = CSP + "; script-src 'self'; connect-src 'self'"
"""The desk's pages: the same, plus our own script file (`web.scripts`; never inline, never
another site's) and its `fetch()` to our own routes."""

# /{lang}/confirm/TOKEN, /{lang}/unsubscribe/TOKEN, /{lang}/preferences/TOKEN[/...]
_TOKEN_PATH = re.compile(r"(/(?:confirm|unsubscribe|preferences)/)[^/?#]+")


def redact(path: str) -> str:
    """Return `path` with the token of a subscriber's link replaced by "<token>"."""
    return _TOKEN_PATH.sub(r"\1<token>", path)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters and bidi overrides shown as escapes (for logs)."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else "?", text)


def is_desk(path: str) -> bool:
    """Whether `path` is a page of the editor's desk (`/{lang}/admin/…`)."""
    return "/admin/" in path or path.endswith("/admin")


def is_private(path: str) -> bool:
    """Whether `path` is the editor's desk or a page reached through a personal token."""
    return "/admin" in path or _TOKEN_PATH.search(path) is not None


class SecurityHeaders:
    """ASGI middleware adding the security headers (and no-store on private pages)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = is_private(scope["path"])
        policy = DESK_CSP if is_desk(scope["path"]) else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
                if private:
                    headers["Cache-Control"] = "no-store"
                    headers["X-Robots-Tag"] = "noindex, nofollow"
            await send(message)

        await self.app(scope, receive, send_with_headers)


PUBLIC_BODY_LIMIT = 8 * 1024
"""Bytes: the sign-up, preferences and login forms are far smaller."""
DESK_BODY_LIMIT = 256 * 1024
"""Bytes: an issue's curation form (every item's fields) on the desk."""


def body_limit_for(path: str, overall: int) -> int:
    """The largest body a request to `path` may send: small for public forms."""
    if "/admin/issues/" in path:
        return min(overall, DESK_BODY_LIMIT)
    return min(overall, PUBLIC_BODY_LIMIT)


class BodyLimit:
    """ASGI middleware refusing request bodies over their path's limit with 413, before
    any of it is read: a declared Content-Length over the limit (or one that is not a
    number) is answered at once with `page` (the site's 413 page), and a chunked body is
    counted as it arrives (an `HTTPException`, so the same page answers)."""

    def __init__(self, app: ASGIApp, *, limit: int, page: StatusPage | None = None) -> None:
        self.app = app
        self.overall = limit
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["path"], self.overall)
        declared_too_large = any(
            name == b"content-length" and (not value.isdigit() or int(value) > limit)
            for name, value in scope.get("headers", ())
        )
        if declared_too_large:
            body, content_type = b"request body too large\n", "text/plain; charset=utf-8"
            if self.page is not None:
                with contextlib.suppress(Exception):
                    body, content_type = await self.page(scope, 413)
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", content_type.encode("latin-1")),
                        (b"content-length", str(len(body)).encode("ascii")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counted, send)


class HeadWithoutBody:
    """ASGI middleware: a HEAD request gets the GET answer's status and headers, no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, headers_only)


class AccessLog:
    """ASGI middleware logging each request as "METHOD path status ms", tokens redacted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500
        scope.setdefault("state", {})["request_id"] = request_id = secrets.token_hex(6)

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            log.info(
                "%s %s %s %.0fms request=%s",
                printable(scope["method"][:16]),
                printable(redact(scope["path"])[:500]),
                status,
                (time.monotonic() - started) * 1000,
                request_id,
            )


ErrorPage = Callable[[Scope, str], Awaitable[tuple[bytes, str]]]
StatusPage = Callable[[Scope, int], Awaitable[tuple[bytes, str]]]
"""Renders the page of an HTTP status for a request: (body, content type)."""
"""Renders the 500 page for a request id: (body, content type)."""

FALLBACK_500 = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Error</title></head><body>"
    b"<h1>Something went wrong</h1><p>Please try again later.</p></body></html>\n"
)


class ErrorPages:
    """ASGI middleware turning an unexpected exception into a plain 500 page and one log
    line with the request id (no traceback page, no second response)."""

    def __init__(self, app: ASGIApp, *, page: ErrorPage | None = None) -> None:
        self.app = app
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            request_id = scope.get("state", {}).get("request_id", "-")
            log.error(
                "request=%s %s %s failed: %s",
                request_id,
                printable(scope["method"][:16]),
                printable(redact(scope["path"])[:500]),
                printable(f"{type(exc).__name__}: {exc}"[:300]),
            )
            if started:
                return  # Too late for a page; the server closes the connection.
            body, content_type = FALLBACK_500, "text/html; charset=utf-8"
            if self.page is not None:
                # If even our page fails (a broken override template), the fallback answers.
                with contextlib.suppress(Exception):
                    body, content_type = await self.page(scope, request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", content_type.encode("latin-1")),
                        (b"content-length", str(len(body)).encode("ascii")),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
            )


# --- CSRF ---------------------------------------------------------------------------------

CSRF_FIELD = "csrf"
_CSRF_KEY = "csrf"


def _csrf_key(request: Request) -> bytes:
    key = getattr(request.app.state, "csrf_key", None)
    if not isinstance(key, bytes) or not key:
        raise RuntimeError("the app has no CSRF key; create it with digest.web.create_app")
    return key


def _form_token(request: Request, nonce: str) -> str:
    """The token a form carries: the session's nonce keyed with the CSRF key (so neither a
    session cookie's key nor a leaked nonce alone makes a valid form)."""
    digest = hmac.new(_csrf_key(request), nonce.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def csrf_token(request: Request) -> str:
    """Return the session's CSRF token for a form, creating it (and the session) if needed."""
    nonce = request.session.get(_CSRF_KEY)
    if not isinstance(nonce, str) or len(nonce) < 32:
        nonce = secrets.token_urlsafe(32)
        request.session[_CSRF_KEY] = nonce
    return _form_token(request, nonce)


def csrf_possible(request: Request, base_url: str) -> bool:
    """What CSRF can be checked before the body is read: the session holds a nonce, and
    the browser does not say the form came from another site (Origin, Sec-Fetch-Site)."""
    nonce = request.session.get(_CSRF_KEY)
    if not isinstance(nonce, str) or len(nonce) < 32:
        return False
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        parts = urlsplit(base_url)
        if origin.rstrip("/").lower() != f"{parts.scheme}://{parts.netloc}".lower():
            return False
    return True


def csrf_ok(request: Request, submitted: object) -> bool:
    """Whether a form's CSRF field matches the session's token (constant-time)."""
    nonce = request.session.get(_CSRF_KEY)
    if not isinstance(nonce, str) or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(_form_token(request, nonce).encode(), submitted.encode())


def renew_csrf(request: Request) -> None:
    """Give the session a new CSRF token (at login and logout)."""
    request.session[_CSRF_KEY] = secrets.token_urlsafe(32)


# --- the editor's login -------------------------------------------------------------------

_ADMIN_KEY = "editor_since"


def password_ok(given: str, expected: str) -> bool:
    """Whether `given` is the editor's password; always False when none is configured."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def log_in(request: Request, now: float) -> None:
    """Mark the session as the editor's (and renew its CSRF token)."""
    request.session.clear()
    request.session[_ADMIN_KEY] = int(now)
    renew_csrf(request)


def log_out(request: Request) -> None:
    """End the editor's session."""
    request.session.clear()


def is_editor(request: Request, now: float, max_age: float) -> bool:
    """Whether the session belongs to a logged-in editor whose login is not too old."""
    since = request.session.get(_ADMIN_KEY)
    return isinstance(since, int) and 0 <= now - since <= max_age


# --- rate limits --------------------------------------------------------------------------


class RateLimit:
    """At most `limit` hits per key in any `window` seconds, counted in this process's memory.

    Keys (client addresses) are forgotten once their hits are older than the window, and
    at most `max_keys` are tracked (the oldest go first), so memory stays bounded.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Count one hit for `key`; return False (not counted) when it is over the limit."""
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            allowed = len(hits) < self.limit
            if allowed:
                hits.append(now)
            if hits:
                self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return allowed

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may hit again (0 when it may now)."""
        with self._lock:
            hits = self._hits.get(key)
            if not hits or len(hits) < self.limit:
                return 0
            return max(1, int(self.window - (self.clock() - hits[0])) + 1)


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy: what uvicorn's
    --forwarded-allow-ips lets it trust from X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


def client_bucket(request: Request) -> str:
    """The rate-limit key of the client: its IPv4 address, or its IPv6 /64 network (one
    host usually holds a whole /64, and would otherwise get 2^64 fresh buckets)."""
    return address_bucket(client_address(request))


def address_bucket(address: str) -> str:
    """`address` as a rate-limit key: IPv4 as is (also when mapped into IPv6), IPv6 by /64."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class RouteLimit:
    """A route's limits: per client bucket, and for all clients together."""

    per_client: RateLimit
    overall: RateLimit

    def hit(self, bucket: str) -> int:
        """Count one hit; return 0 when allowed, else the seconds to wait (Retry-After)."""
        # The client's own limit first: one noisy client does not use up everyone's share.
        if not self.per_client.hit(bucket):
            return max(1, self.per_client.retry_after(bucket))
        if not self.overall.hit("*"):
            return max(1, self.overall.retry_after("*"))
        return 0
