"""The site every handler works with, and rendering its pages in the reader's language.

A page's language is the first segment of its path (`/nl/...`); `/` sends a browser to its
best language by Accept-Language. Pages come from `templates/web/*.html.jinja` through the
publication's Jinja environment (operator templates first), translated with the same
catalogs as the emails. Every page gets a language switcher that keeps the rest of the path
(a token too), so a subscriber can read their preferences in another language.
"""

from __future__ import annotations

import functools
import time
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import jinja2
from babel import Locale
from babel.dates import format_date, format_time
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from digest import layout
from digest.compose import readable_name
from digest.config import Settings
from digest.pipeline import environment
from digest.pipeline.confirmations import Waker
from digest.pipeline.signups import SignupWriter
from digest.render.environment import translation_context
from digest.render.i18n import language_name
from digest.web.cache import PublishedFiles, RenderedPages
from digest.web.security import RouteLimit
from subscribers.tokens import Tokens


class Wakes(Protocol):
    """What sends the queued confirmation mails: a `Waker` in this process, or the
    `pipeline.mailroom.Mailroom` child of `digest serve`."""

    def needed(self) -> bool:
        """Whether `wake` must run after the answer (False: it was woken already)."""
        ...

    def wake(self) -> None:
        """Send what is queued (after a sign-up's commit)."""
        ...


@dataclass
class Site:
    """The app's settings, database, signer, clock and rate limits, shared by handlers."""

    settings: Settings
    factory: sessionmaker[Session]
    tokens: Tokens
    clock: Callable[[], datetime]
    signup_limit: RouteLimit
    login_limit: RouteLimit
    form_limit: RouteLimit
    session_max_age: int = 12 * 3600
    ticker: Callable[[], float] = time.monotonic
    """Seconds, for the in-memory answers' freshness (`web.cache`); tests move it."""
    prefix: str = field(init=False)
    """The path of [publication] base_url ("" at the root of a host, or "/digest")."""
    files: PublishedFiles = field(init=False)
    """The published files, kept in memory."""
    pages: RenderedPages = field(init=False)
    """Pages the same for every reader (the sign-up form), kept in memory."""
    mailer: Wakes = field(init=False)
    """Sends the queued confirmation mails after a sign-up's answer: a `Waker` (one drain
    at a time, in this process), or under `digest serve` the mailroom's child process."""
    signups: SignupWriter = field(init=False)
    """Stores the sign-ups, many to a transaction."""
    topics_kept: tuple[float, list[str]] | None = field(default=None, init=False)
    """The offered topics and when they were read (`public.current_topics`)."""

    def __post_init__(self) -> None:
        self.prefix = urlsplit(self.settings.publication.base_url).path.rstrip("/")
        self.files = PublishedFiles(self.settings.publish.output_dir, self.ticker)
        self.pages = RenderedPages(self.ticker)
        # One writer thread: the sign-ups, and the sender's claims and marks, share its
        # transactions (on SQLite they would otherwise wait for each other's write lock).
        self.signups = SignupWriter(self.settings, self.factory, now=self.clock)
        self.mailer = Waker(self.settings, self.factory, now=self.clock, write=self.signups.run)

    @functools.cached_property
    def env(self) -> jinja2.Environment:
        """The Jinja environment, made once: it keeps the compiled templates (and reloads
        an override template whose file changed)."""
        return environment(self.settings)

    @property
    def languages(self) -> list[str]:
        """The publication's languages, the default first."""
        return list(self.settings.publication.languages)

    def path(self, *parts: str | int) -> str:
        """Return the site path of `parts`: path("nl", "subscribe") → "/nl/subscribe"."""
        return self.prefix + "/" + "/".join(str(part).strip("/") for part in parts)

    def absolute(self, path: str) -> str:
        """Return the absolute URL of a site path, on [publication] base_url's host (never
        the request's Host header)."""
        parts = urlsplit(self.settings.publication.base_url)
        return f"{parts.scheme}://{parts.netloc}{path}"

    def redirect(self, path: str, *, status: int = 303, **headers: str) -> RedirectResponse:
        """A redirect to a site path, as an absolute URL on base_url."""
        return RedirectResponse(self.absolute(path), status_code=status, headers=headers or None)

    def public_url(self, relative: str) -> str:
        """Return the absolute URL of a layout path (a feed, the calendar)."""
        return layout.url(self.settings.publication.base_url, relative)

    def language_of(self, request: Request) -> str:
        """The `{lang}` of the path; 404 when it is not one of the publication's."""
        language = str(request.path_params.get("lang", ""))
        if language not in self.languages:
            raise HTTPException(404)
        return language

    def best_language(self, accept: str) -> str:
        """The publication language an Accept-Language header prefers (else the default)."""
        return best_language(accept, self.languages)

    def when(self, moment: datetime | None, language: str) -> str:
        """A moment as readers of `language` say it, in the publication's time zone."""
        if moment is None:
            return ""
        zone = zoneinfo.ZoneInfo(self.settings.publication.timezone)
        locale = Locale.parse(_babel_locale(language))
        local = moment.astimezone(zone)
        day = format_date(local, "medium", locale=locale)
        time = format_time(local, "short", locale=locale)
        # The locale's own joining of a date and a time ("{1}, {0}", "{1} 'à' {0}").
        pattern = str(locale.datetime_formats["medium"]).replace("'", "")
        return pattern.replace("{1}", day).replace("{0}", time)

    def page(
        self,
        request: Request,
        template: str,
        language: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """Render `templates/web/<template>` in `language` as a response."""
        html = self.env.get_template(f"web/{template}").render(
            **translation_context(language),
            **self.common(request, language),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def common(self, request: Request, language: str) -> dict[str, Any]:
        """What every page template gets: titles, paths, feeds and the language switcher."""
        pub = self.settings.publication
        labels = self.settings.labels.topics
        return {
            "language": language,
            "title": pub.title_in(language),
            "topic_label": lambda slug: labels.get(slug, {}).get(language) or readable_name(slug),
            "home_url": self.path(language, ""),
            "archive_url": self.path("archive", language, ""),
            "calendar_url": self.public_url(layout.calendar()),
            "feed_url": self.public_url(layout.feed(language)),
            "feeds": [
                {
                    "language": code,
                    "url": self.public_url(layout.feed(code)),
                    "name": language_name(code, code),
                }
                for code in self.languages
            ],
            "switch": self.switcher(request, language),
            "when": lambda moment: self.when(moment, language),
        }

    def switcher(self, request: Request, language: str) -> list[dict[str, Any]]:
        """Links to this page in every language: the path with its language segment swapped."""
        path = request.url.path
        rest = path[len(self.prefix) :] if path.startswith(self.prefix) else path
        segments = rest.lstrip("/").split("/")
        links = []
        for code in self.languages:
            if segments and segments[0] in self.languages:
                target = self.prefix + "/" + "/".join([code, *segments[1:]])
            else:
                target = self.path(code, "")
            links.append(
                {
                    "language": code,
                    "name": language_name(code, code),
                    "url": target,
                    "current": code == language,
                }
            )
        return links


def _babel_locale(language: str) -> str:
    return language.replace("-", "_")


def best_language(accept: str, languages: Sequence[str]) -> str:
    """Return the language of `languages` that the Accept-Language value `accept` ranks
    highest ("fr-BE,fr;q=0.9,en;q=0.5" → "fr"), or the first of `languages`."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        for language in languages:
            wanted = language.lower()
            if tag == wanted or tag.split("-")[0] == wanted.split("-")[0]:
                return language
    return languages[0]
