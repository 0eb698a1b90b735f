"""What keeps the web app safe: security headers, CSRF tokens, rate limits, the editor's
login, a cap on request bodies, and access logs without tokens.

- **Headers** on every response: a Content-Security-Policy with no scripts at all
  (`default-src 'none'`), inline styles (our pages and the emails carry them), images from
  https (the emails' pictures), frames only from ourselves (the draft preview is a
  sandboxed `<iframe srcdoc>`, which inherits this policy), forms posting only to us, and
  nobody framing us;
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
  `<token>`; uvicorn's own access log (which would print them) is switched off.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

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
"""No script may run anywhere; see the module docstring for each directive's reason."""

# /{lang}/confirm/TOKEN, /{lang}/unsubscribe/TOKEN, /{lang}/preferences/TOKEN[/...]
_TOKEN_PATH = re.compile(r"(/(?:confirm|unsubscribe|preferences)/)[^/?#]+")


def redact(path: str) -> str:
    """Return `path` with the token of a subscriber's link replaced by "<token>"."""
    return _TOKEN_PATH.sub(r"\1<token>", path)


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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
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


class BodyLimit:
    """ASGI middleware refusing request bodies over `limit` bytes with 413."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _plain(send, 413, b"request body too large\n")
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counted, send)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


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

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            log.info(
                "%s %s %s %.0fms",
                scope["method"],
                redact(scope["path"]),
                status,
                (time.monotonic() - started) * 1000,
            )


# --- CSRF ---------------------------------------------------------------------------------

CSRF_FIELD = "csrf"
_CSRF_KEY = "csrf"


def csrf_token(request: Request) -> str:
    """Return the session's CSRF token for a form, creating it (and the session) if needed."""
    token = request.session.get(_CSRF_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF_KEY] = token
    return token


def csrf_ok(request: Request, submitted: object) -> bool:
    """Whether a form's CSRF field matches the session's token (constant-time)."""
    expected = request.session.get(_CSRF_KEY)
    if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


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
