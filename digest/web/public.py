"""The subscriber's pages once on the list: unsubscribe and new links; and what every
public form shares (reading forms, rate-limit and CSRF answers, the offered topics).
Signing up and confirming are in `web.signup`, the preferences pages (the form, export,
erase, renew) in `web.preferences`.

    /{lang}/unsubscribe/{token}      GET shows a button, POST unsubscribes (RFC 8058)
    /{lang}/unsubscribe, /{lang}/preferences   without a token: where the links are
    /{lang}/links                    POST an address: "send me new links"

Link scanners follow every GET in a mail, so no GET (nor HEAD, nor OPTIONS) changes
anything: only POST does. Mail asked for here goes out after the answer (a background
task), so its timing tells nothing.

Rate limits and what CSRF checks need no body run before a form is read, and forms are
read with small limits.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from digest.errors import DigestError
from digest.pipeline import links, transport
from digest.store import db, sources
from digest.web.pages import Site
from digest.web.security import (
    client_bucket,
)
from subscribers import registry
from subscribers.model import Cadence
from subscribers.tokens import TokenInvalid

log = logging.getLogger("digest.web")

FORM_LIMITS: dict[str, Any] = {"max_files": 0, "max_fields": 64, "max_part_size": 4 * 1024}
"""Public forms: a few dozen fields (topics are checkboxes), none longer than 4 KB."""
DESK_FORM_LIMITS: dict[str, Any] = {
    "max_files": 0,
    "max_fields": 2000,
    "max_part_size": 64 * 1024,
}
"""The desk's curation form has fields per item and a long intro."""
HONEYPOT = "website"
CADENCES = [cadence.value for cadence in Cadence]


def site_of(request: Request) -> Site:
    """The `Site` the app was made with."""
    site: Site = request.app.state.site
    return site


async def read_form(request: Request, limits: dict[str, Any] | None = None) -> FormData:
    """The posted form (urlencoded or multipart), within the limits (public ones unless
    told); a form over them answers 400. Starlette limits multipart fields as it parses;
    an urlencoded body (already capped in size by `BodyLimit`) is counted here first."""
    chosen = limits or FORM_LIMITS
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        body = await request.body()
        fields = body.split(b"&") if body else []
        if len(fields) > chosen["max_fields"]:
            raise HTTPException(400, f"more than {chosen['max_fields']} form fields")
        if any(len(field) > chosen["max_part_size"] for field in fields):
            raise HTTPException(400, "a form field is too long")
    return await request.form(**chosen)


def too_many(request: Request, site: Site, language: str, wait: int) -> Response:
    """The 429 page with its Retry-After."""
    return site.page(
        request,
        "message.html.jinja",
        language,
        status=429,
        headers={"Retry-After": str(wait)},
        kind="rate_limited",
    )


def forbidden(request: Request, site: Site, language: str) -> Response:
    """The 403 page of a form whose CSRF check failed."""
    return site.page(request, "message.html.jinja", language, status=403, kind="csrf")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [value for value in form.getlist(name) if isinstance(value, str)]


# --- the offered topics -------------------------------------------------------------------


def offered_topics(site: Site) -> list[str]:
    """The topics subscribers can choose: those of every source, configured or added."""
    found = {t.strip().lower() for s in site.settings.sources for t in s.topics if t.strip()}
    with site.factory() as session:
        for source in sources.all_sources(session):
            found.update(t.strip().lower() for t in source.topics if t.strip())
    return sorted(found)


TOPICS_FRESH = 1.0
"""Seconds the offered topics are used from memory by the sign-up POST."""


def current_topics(site: Site) -> list[str] | None:
    """The offered topics read within `TOPICS_FRESH`, or None (then `read_topics`)."""
    kept = site.topics_kept
    if kept is not None and site.ticker() - kept[0] < TOPICS_FRESH:
        return kept[1]
    return None


def read_topics(site: Site) -> list[str]:
    """Read the offered topics (in a worker thread) and keep them for `current_topics`."""
    topics = offered_topics(site)
    site.topics_kept = (site.ticker(), topics)
    return topics


# --- unsubscribe --------------------------------------------------------------------------


def _unsubscribe(site: Site, public_id: str) -> bool:
    """Unsubscribe at once; False when they were not on the list (any more)."""
    key = transport.suppression_key(site.settings)
    with db.transaction(site.factory) as session:
        found = registry.by_public_id(session, public_id)
        if found is None:
            return False
        return registry.unsubscribe(session, found, now=site.clock(), suppression_key=key)


async def unsubscribe(request: Request) -> Response:
    """GET: a page whose button unsubscribes. POST: unsubscribe now (RFC 8058 one-click:
    urlencoded or multipart, no cookie, 200 and no redirect)."""
    site = site_of(request)
    language = site.language_of(request)
    token = str(request.path_params["token"])
    try:
        public_id = site.tokens.read_unsubscribe(token)
    except TokenInvalid:
        return site.page(request, "message.html.jinja", language, status=400, kind="link_invalid")
    if request.method != "POST":  # GET and HEAD (link scanners) only look
        return site.page(
            request,
            "unsubscribe.html.jinja",
            language,
            action=site.path(language, "unsubscribe", token),
        )
    # Mail clients post "List-Unsubscribe=One-Click"; the token alone decides, so the
    # body is never read (nothing in it can keep anyone on the list or stall us).
    await run_in_threadpool(_unsubscribe, site, public_id)
    return site.page(request, "message.html.jinja", language, kind="unsubscribed")


async def token_help(request: Request) -> Response:
    """`/{lang}/unsubscribe` and `/{lang}/preferences` without a token (the archive's links):
    where the personal links are, and a form to have new ones mailed."""
    site = site_of(request)
    language = site.language_of(request)
    return site.page(
        request,
        "message.html.jinja",
        language,
        kind="use_your_link",
        links_action=site.path(language, "links"),
    )


async def new_links(request: Request) -> Response:
    """POST an address: when it is subscribed, revoke its preference links and mail a new
    one. The answer is the same whether or not the address is known."""
    site = site_of(request)
    language = site.language_of(request)
    wait = site.form_limit.hit(client_bucket(request))
    if wait:
        return too_many(request, site, language, wait)
    form = await read_form(request)
    response = site.page(request, "message.html.jinja", language, kind="links_sent")
    address = _text(form, "email").strip()
    if address and not _text(form, HONEYPOT):
        response.background = BackgroundTask(_mail_links, site, None, address)
    return response


def _mail_links(site: Site, public_id: str | None, address: str | None) -> None:
    """Mail new links (a background task: its outcome is never shown on the page)."""
    try:
        sent = links.send_links(
            site.settings, site.factory, public_id=public_id, email=address, now=site.clock()
        )
    except (DigestError, ValueError, OSError) as exc:
        log.warning("new links were not mailed: %s", type(exc).__name__)
    else:
        log.info("new links %s", "mailed" if sent else "not mailed (unknown, or mailed lately)")
