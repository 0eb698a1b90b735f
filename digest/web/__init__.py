"""The web app: the subscriber's pages, the public archive and feeds, the editor's desk.

`create_app(settings)` returns a Starlette ASGI app; `digest serve` runs it with uvicorn,
and `uvicorn --factory digest.web:app_from_env` does too (config from DIGEST_CONFIG).
Nothing in digest imports this package but `digest/cli/web.py`.

Modules, one noun each: `pages` (the site, languages, rendering), `public` (sign-up,
confirm, unsubscribe, preferences), `archive` (the published files), `admin` (the
editor's desk) and `security` (headers, CSRF, rate limits, login, logs). Routes and the
security choices are described in docs/web.md.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from digest import config
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import open_database, transport, utcnow
from digest.web import admin, archive, desk, public
from digest.web.pages import Site
from digest.web.security import AccessLog, BodyLimit, RateLimit, SecurityHeaders

__all__ = ["app_from_env", "create_app"]

SESSION_COOKIE = "digest_session"
BODY_LIMIT = 1_000_000
"""Bytes; the largest form (an issue's curation) is far smaller."""
LOGIN_ATTEMPTS = 10
"""Login attempts per client address in 15 minutes."""

_GET = ["GET"]
_POST = ["POST"]
_BOTH = ["GET", "POST"]


def routes() -> list[BaseRoute]:
    """Every route of the app (relative to the base URL's path)."""
    return [
        Route("/", public.root, methods=_GET),
        Route("/healthz", _health, methods=_GET),
        Route("/events.ics", archive.calendar, methods=_GET),
        Route("/events/{slug}.ics", archive.event_file, methods=_GET),
        Route("/calendars/{name}.ics", archive.named_calendar, methods=_GET),
        Route("/feeds/{lang}-items.atom", archive.items_feed, methods=_GET),
        Route("/feeds/{lang}.atom", archive.feed, methods=_GET),
        Route("/archive/search.js", archive.search_script, methods=_GET),
        Route("/archive/{lang}/search.html", archive.search_page, methods=_GET),
        Route("/archive/{lang}/search.json", archive.search_index, methods=_GET),
        Route("/archive/{lang}/", archive.archive_index, methods=_GET),
        Route("/archive/{lang}/index.html", archive.archive_index, methods=_GET),
        Route("/archive/{lang}/{number:int}.html", archive.issue_page, methods=_GET),
        Route("/admin", admin.admin_root, methods=_GET),
        Route("/{lang}/admin/", admin.dashboard, methods=_GET),
        Route("/{lang}/admin/login", admin.login, methods=_BOTH),
        Route("/{lang}/admin/logout", admin.logout, methods=_POST),
        Route("/{lang}/admin/issues/{number:int}", admin.issue, methods=_GET),
        Route("/{lang}/admin/issues/{number:int}/curate", admin.curate, methods=_POST),
        Route("/{lang}/admin/issues/{number:int}/test", admin.test_send, methods=_POST),
        Route("/{lang}/admin/issues/{number:int}/approve", admin.approve, methods=_POST),
        *desk.routes(),
        Route("/{lang}/", public.home, methods=_GET),
        Route("/{lang}/archive", archive.archive_redirect, methods=_GET),
        Route("/{lang}/subscribe", public.home, methods=_GET),
        Route("/{lang}/subscribe", public.subscribe, methods=_POST),
        Route("/{lang}/confirm/{token}", public.confirm, methods=_BOTH),
        Route("/{lang}/unsubscribe", public.token_help, methods=_GET),
        Route("/{lang}/unsubscribe/{token}", public.unsubscribe, methods=_BOTH),
        Route("/{lang}/preferences", public.token_help, methods=_GET),
        Route("/{lang}/preferences/{token}", public.preferences_page, methods=_BOTH),
        Route("/{lang}/preferences/{token}/export", public.export, methods=_POST),
        Route("/{lang}/preferences/{token}/erase", public.erase, methods=_POST),
    ]


async def _health(request: Request) -> Response:
    """For the reverse proxy or a monitor: the process answers."""
    return PlainTextResponse("ok\n")


async def _error_page(request: Request, exc: Exception) -> Response:
    """404, 405 and the like as a page in the path's language (or the default one)."""
    site: Site = request.app.state.site
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    path = request.url.path[len(site.prefix) :]
    first = path.lstrip("/").split("/")[0]
    language = first if first in site.languages else site.settings.default_language
    kind = {404: "not_found", 405: "not_found", 413: "too_large"}.get(status, "error")
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return site.page(
        request, "message.html.jinja", language, status=status, headers=headers, kind=kind
    )


def _closing(
    factory: sessionmaker[Session],
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that closes the database connections the app opened when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine = factory.kw["bind"]
            engine.dispose()

    return lifespan


def create_app(
    settings: Settings,
    *,
    factory: sessionmaker[Session] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Starlette:
    """Return the web app for `settings` (its database opened unless `factory` is given).

    Raises `ConfigError` when a secret the app needs is missing: [web] secret_key (links
    and sessions) or [subscribers] suppression_key (unsubscribing, erasing).
    """
    tokens = transport.tokens(settings)
    transport.suppression_key(settings)
    opened = factory is None
    site = Site(
        settings=settings,
        factory=factory or open_database(settings),
        tokens=tokens,
        clock=clock,
        signup_limit=RateLimit(max(1, settings.web.subscribe_per_ip_per_hour), 3600),
        login_limit=RateLimit(LOGIN_ATTEMPTS, 900),
    )
    mounted: list[BaseRoute] = routes()
    if site.prefix:
        # Behind a proxy that passes the base URL's path on; `/` still finds the home page.
        mounted = [Route("/", public.root, methods=_GET), Mount(site.prefix, routes=routes())]
    app = Starlette(
        routes=mounted,
        middleware=[
            Middleware(AccessLog),
            Middleware(SecurityHeaders, hsts=settings.publication.base_url.startswith("https://")),
            Middleware(BodyLimit, limit=BODY_LIMIT),
            Middleware(
                SessionMiddleware,
                secret_key=settings.web.secret_key.reveal(),
                session_cookie=SESSION_COOKIE,
                max_age=site.session_max_age,
                path=site.prefix or "/",
                same_site="lax",
                https_only=settings.web.secure_cookies,
            ),
        ],
        exception_handlers={HTTPException: _error_page, Exception: _error_page},
        lifespan=_closing(site.factory) if opened else None,
    )
    app.state.site = site
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
