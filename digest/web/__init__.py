"""The web app: the subscriber's pages, the public archive and feeds, the editor's desk.

`create_app(settings)` returns a Starlette ASGI app; `digest serve` runs it with uvicorn,
and `uvicorn --factory digest.web:app_from_env` does too (config from DIGEST_CONFIG).
Nothing in digest imports this package but `digest/cli/web.py`.

Modules, one noun each: `pages` (the site, languages, rendering), `signup` (home, sign-up,
confirm), `public` (unsubscribe, preferences), `archive` (the published files), `admin` (the
editor's desk) and `security` (headers, CSRF, rate limits, login, logs). Routes and the
security choices are described in docs/web.md.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from http import HTTPStatus
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from digest import config
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import open_database, transport, utcnow
from digest.pipeline.mailroom import Mailroom
from digest.web import (
    accounts,
    admin,
    api,
    archive,
    desk,
    preferences,
    probes,
    public,
    scripts,
    signup,
)
from digest.web.pages import Site
from digest.web.security import (
    AccessLog,
    BodyLimit,
    ErrorPages,
    HeadWithoutBody,
    RateLimit,
    RouteLimit,
    SecurityHeaders,
)
from subscribers.keys import KeyPurpose, derive_key

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("digest.web")

SESSION_COOKIE = "digest_session"
BODY_LIMIT = 1_000_000
"""Bytes; the largest form (an issue's curation) is far smaller."""
LOGIN_ATTEMPTS = 10
"""Login attempts per client address (IPv6: per /64) in 15 minutes."""
LOGIN_ATTEMPTS_OVERALL = 100
"""Login attempts from everyone together in 15 minutes (a botnet gets no more)."""
SIGNUPS_OVERALL = 20
"""Times the per-address hourly sign-up limit that all clients together may post."""
FORM_POSTS = 30
"""Preference, export, erase and new-link posts per client in 10 minutes."""
FORM_POSTS_OVERALL = 600
"""The same posts from everyone together in 10 minutes."""


class NumberConvertor(Convertor[int]):
    """`{n:number}`: an issue number, 1 to 9 digits (a longer one is simply not found)."""

    regex = "[0-9]{1,9}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("number", NumberConvertor())

HTTP_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_GET = ["GET"]
_POST = ["POST"]
_BOTH = ["GET", "POST"]


def routes() -> list[BaseRoute]:
    """Every route of the app (relative to the base URL's path)."""
    return [
        Route("/", signup.root, methods=_GET),
        Route("/healthz", probes.healthz, methods=_GET),
        Route("/readyz", probes.readyz, methods=_GET),
        Route("/metrics", probes.metrics, methods=_GET),
        Route("/events.ics", archive.calendar, methods=_GET),
        Route("/events/{slug}.ics", archive.event_file, methods=_GET),
        Route("/calendars/{name}.ics", archive.named_calendar, methods=_GET),
        Route("/feeds/{lang}-items.atom", archive.items_feed, methods=_GET),
        Route("/feeds/{lang}.atom", archive.feed, methods=_GET),
        Route("/archive/search.js", archive.search_script, methods=_GET),
        Route("/static/desk.{version}.js", scripts.desk_script, methods=_GET),
        Route("/archive/{lang}/search.html", archive.search_page, methods=_GET),
        Route("/archive/{lang}/search.json", archive.search_index, methods=_GET),
        Route("/archive/{lang}/search-{page:number}.json", archive.search_part, methods=_GET),
        Route("/archive/{lang}/page-{page:number}.html", archive.archive_page, methods=_GET),
        Route("/archive/{lang}/", archive.archive_index, methods=_GET),
        Route("/archive/{lang}/index.html", archive.archive_index, methods=_GET),
        Route("/archive/{lang}/{number:number}.html", archive.issue_page, methods=_GET),
        *api.routes(),
        Route("/admin", admin.admin_root, methods=_GET),
        Route("/{lang}/admin/", admin.dashboard, methods=_GET),
        Route("/{lang}/admin/login", admin.login, methods=_BOTH),
        Route("/{lang}/admin/login/link", accounts.login_link, methods=_BOTH),
        Route("/{lang}/admin/audit", accounts.audit_page, methods=_GET),
        Route("/{lang}/admin/logout", admin.logout, methods=_POST),
        Route("/{lang}/admin/issues/{number:number}", admin.issue, methods=_GET),
        Route("/{lang}/admin/issues/{number:number}/curate", admin.curate, methods=_POST),
        *desk.routes(),
        Route("/{lang}/", signup.home, methods=_GET),
        Route("/{lang}/archive", archive.archive_redirect, methods=_GET),
        Route("/{lang}/subscribe", signup.home, methods=_GET),
        Route("/{lang}/subscribe", signup.subscribe, methods=_POST),
        Route("/{lang}/confirm/{token}", signup.confirm, methods=_BOTH),
        Route("/{lang}/unsubscribe", public.token_help, methods=_GET),
        Route("/{lang}/links", public.new_links, methods=_POST),
        Route("/{lang}/unsubscribe/{token}", public.unsubscribe, methods=_BOTH),
        Route("/{lang}/preferences", public.token_help, methods=_GET),
        Route("/{lang}/preferences/{token}", preferences.preferences_page, methods=_BOTH),
        Route("/{lang}/preferences/{token}/export", preferences.export, methods=_POST),
        Route("/{lang}/preferences/{token}/erase", preferences.erase, methods=_POST),
        Route("/{lang}/preferences/{token}/renew", preferences.renew, methods=_POST),
    ]


def _language_of_path(site: Site, path: str) -> str:
    first = path[len(site.prefix) :].lstrip("/").split("/")[0]
    return first if first in site.languages else site.settings.default_language


_PLAIN_ROUTES = routes()
"""The routes without the base URL's path, to look a path up in (see `_slash_twin`)."""


def _slash_twin(request: Request, site: Site) -> str | None:
    """The path with its trailing slash added or removed, when a route answers that one."""
    path = request.url.path
    if site.prefix:
        if not path.startswith(site.prefix + "/"):
            return None
        path = path[len(site.prefix) :]
    twin = path[:-1] if path.endswith("/") else path + "/"
    scope = {"type": "http", "path": twin, "root_path": "", "method": "GET"}
    for route in _PLAIN_ROUTES:
        if route.matches(scope)[0] is Match.FULL:
            return site.prefix + twin
    return None


async def _error_page(request: Request, exc: Exception) -> Response:
    """404, 405 and the like as our page in the path's language (or the default one).

    A GET that misses only a trailing slash is redirected, to an absolute URL on
    [publication] base_url (never one built from the Host header)."""
    site: Site = request.app.state.site
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    path = request.url.path[len(site.prefix) :]
    if path.startswith("/api/"):
        return api.error(
            status,
            {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(status, "error"),
            HTTP_PHRASES.get(status, "error"),
        )
    if status == 404 and request.method in ("GET", "HEAD"):
        twin = _slash_twin(request, site)
        if twin is not None:
            query = request.url.query
            return site.redirect(twin + (f"?{query}" if query else ""), status=308)
    language = _language_of_path(site, request.url.path)
    kind = {404: "not_found", 405: "not_found", 413: "too_large"}.get(status, "error")
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return site.page(
        request, "message.html.jinja", language, status=status, headers=headers, kind=kind
    )


def _too_large_page(site: Site) -> Callable[[Scope, int], Any]:
    """The 413 page BodyLimit answers before reading a body: ours, in the path's language."""

    async def page(scope: Scope, status: int) -> tuple[bytes, str]:
        language = _language_of_path(site, scope["path"])
        response = site.page(
            Request(scope), "message.html.jinja", language, status=status, kind="too_large"
        )
        return bytes(response.body), "text/html; charset=utf-8"

    return page


def _server_error_page(site: Site) -> Callable[[Scope, str], Any]:
    """The 500 page: our message page with the request id, in the path's language."""

    async def page(scope: Scope, request_id: str) -> tuple[bytes, str]:
        request = Request(scope)
        language = _language_of_path(site, scope["path"])
        response = site.page(
            request,
            "message.html.jinja",
            language,
            status=500,
            kind="error",
            request_id=request_id,
        )
        return bytes(response.body), "text/html; charset=utf-8"

    return page


def _lifespan(
    site: Site, *, opened: bool, mailroom: Mailroom | None
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that runs the mailroom's sender child while the app serves (when given)
    and closes the database connections the app opened when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if mailroom is not None:
            mailroom.start()
        try:
            yield
        finally:
            try:
                if mailroom is not None:
                    await run_in_threadpool(mailroom.stop)
            finally:
                if opened:
                    engine = site.factory.kw["bind"]
                    engine.dispose()

    return lifespan


def create_app(
    settings: Settings,
    *,
    factory: sessionmaker[Session] | None = None,
    clock: Callable[[], datetime] = utcnow,
    ticker: Callable[[], float] = time.monotonic,
    mailroom: bool = False,
) -> Starlette:
    """Return the web app for `settings` (its database opened unless `factory` is given).

    `mailroom` (`digest serve`): the confirmation mails are sent by a child process the
    app runs while it serves (`pipeline.mailroom`), not in this process after the answers.

    `ticker` (seconds) times the in-memory answers' freshness (`web.cache`).
    Raises `ConfigError` when a secret the app needs is missing: [web] secret_key (links
    and sessions) or [subscribers] suppression_key (unsubscribing, erasing).
    """
    for note in settings.notes:  # secrets written in the config file
        log.warning("%s", note)
    tokens = transport.tokens(settings, clock=clock)
    secret = transport.secret_key(settings)
    transport.suppression_key(settings)
    opened = factory is None
    per_hour = max(1, settings.web.subscribe_per_ip_per_hour)
    site = Site(
        settings=settings,
        factory=factory or open_database(settings),
        tokens=tokens,
        clock=clock,
        signup_limit=RouteLimit(
            RateLimit(per_hour, 3600), RateLimit(per_hour * SIGNUPS_OVERALL, 3600)
        ),
        login_limit=RouteLimit(
            RateLimit(LOGIN_ATTEMPTS, 900), RateLimit(LOGIN_ATTEMPTS_OVERALL, 900)
        ),
        form_limit=RouteLimit(RateLimit(FORM_POSTS, 600), RateLimit(FORM_POSTS_OVERALL, 600)),
        ticker=ticker,
    )
    room: Mailroom | None = None
    if mailroom:
        room = Mailroom(settings)
        site.mailer = room
    mounted: list[BaseRoute] = routes()
    if site.prefix:
        # Behind a proxy that passes the base URL's path on; `/` still finds the home page.
        mounted = [Route("/", signup.root, methods=_GET), Mount(site.prefix, routes=routes())]
    app = Starlette(
        routes=mounted,
        middleware=[
            Middleware(AccessLog),
            Middleware(SecurityHeaders, hsts=settings.publication.base_url.startswith("https://")),
            Middleware(HeadWithoutBody),
            Middleware(ErrorPages, page=_server_error_page(site)),
            Middleware(BodyLimit, limit=BODY_LIMIT, page=_too_large_page(site)),
            Middleware(
                SessionMiddleware,
                # Its own key: a session cookie and a link in mail never verify each other.
                secret_key=derive_key(secret, KeyPurpose.SESSION).hex(),
                session_cookie=SESSION_COOKIE,
                max_age=site.session_max_age,
                path=site.prefix or "/",
                same_site="lax",
                https_only=settings.web.secure_cookies,
            ),
        ],
        exception_handlers={HTTPException: _error_page},
        lifespan=_lifespan(site, opened=opened, mailroom=room) if opened or room else None,
    )
    # Starlette's own slash redirect builds its URL from the Host header; ours uses base_url.
    app.router.redirect_slashes = False
    for route in app.router.routes:
        if isinstance(route, Mount):
            route.app.redirect_slashes = False  # type: ignore[attr-defined]
    app.state.site = site
    app.state.csrf_key = derive_key(secret, KeyPurpose.CSRF)
    return app


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory digest.web:app_from_env`: settings from DIGEST_CONFIG
    (or ./digest.toml) and the environment. A configuration or database problem (an old
    schema: `digest upgrade`) is one line on standard error and exit status 1."""
    try:
        return create_app(config.load())
    except DigestError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        raise SystemExit(1) from exc
