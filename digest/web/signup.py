"""Signing up: the home page with its form, the sign-up POST, and the confirmation link.

    /{lang}/                         home: what the digest is, the sign-up form, feeds
    /{lang}/subscribe                GET the form, POST sign up (double opt-in mail)
    /{lang}/confirm/{token}          GET shows a button, POST confirms

The sign-up POST checks the form and stores the subscriber with their confirmation mail
queued, in one transaction, then answers; the mail is rendered once per language and
sent after the answer (`pipeline.confirmations`). The answer is the same whether the
address is new, pending, subscribed or suppressed, and never carries the name typed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.pipeline import signups, transport
from digest.store import db
from digest.web import public
from digest.web.cache import Prepared
from digest.web.pages import Site
from digest.web.public import (
    CADENCES,
    HONEYPOT,
    _text,
    _texts,
    current_topics,
    read_form,
    read_topics,
    site_of,
    too_many,
)
from digest.web.security import client_bucket
from subscribers import preferences, registry
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress, InvalidField
from subscribers.model import SubscriberStatus
from subscribers.tokens import TokenExpired, TokenInvalid

log = logging.getLogger("digest.web")


@dataclass
class Signup:
    """The sign-up form as posted, and what is wrong with it."""

    email: str = ""
    name: str = ""
    language: str = ""
    topics: list[str] = field(default_factory=list)
    cadence: str = "weekly"
    errors: dict[str, str] = field(default_factory=dict)
    """Field → error code (the template words it in the reader's language)."""

    @classmethod
    def read(cls, form: FormData, languages: Sequence[str], topics: Sequence[str]) -> Signup:
        """Read and check the posted values."""
        signup = cls(
            email=_text(form, "email").strip(),
            name=_text(form, "name"),
            language=_text(form, "language") or languages[0],
            topics=[t for t in _texts(form, "topics") if t in topics],
            cadence=_text(form, "cadence") or "weekly",
        )
        try:
            signup.email = normalize(signup.email)
        except InvalidAddress:
            signup.errors["email"] = "email_empty" if not signup.email else "email_invalid"
        try:
            signup.name = preferences.clean_name(signup.name)
        except InvalidField:
            signup.errors["name"] = "name_long"
        try:
            signup.language = preferences.check_language(signup.language, languages)
        except InvalidField:
            signup.errors["language"] = "choice"
        if signup.cadence not in CADENCES:
            signup.errors["cadence"] = "choice"
        return signup


async def root(request: Request) -> Response:
    """`/`: send the browser to the home page in its best language."""
    site = site_of(request)
    language = site.best_language(request.headers.get("accept-language", ""))
    return RedirectResponse(
        site.path(language, ""), status_code=302, headers={"Vary": "Accept-Language"}
    )


async def home(request: Request) -> Response:
    """The home page: the digest, its sign-up form, the archive and the feeds."""
    site = site_of(request)
    language = site.language_of(request)
    kept = site.pages.fresh(request.url.path)  # the same for everyone: kept a second
    if kept is None:
        topics = await run_in_threadpool(public.offered_topics, site)  # tests count the calls
        page = _signup_page(request, site, language, Signup(language=language), topics)
        kept = site.pages.keep(request.url.path, page)
    return kept.answer(request)


def _signup_page(
    request: Request,
    site: Site,
    language: str,
    signup: Signup,
    topics: Sequence[str],
    status: int = 200,
) -> Response:
    return site.page(
        request,
        "home.html.jinja",
        language,
        status=status,
        signup=signup,
        topics=topics,
        cadences=CADENCES,
        languages=site.switcher(request, language),
        action=site.path(language, "subscribe"),
        consent_version=site.settings.subscribers.consent_version,
        confirm_days=site.settings.subscribers.confirm_days,
        honeypot=HONEYPOT,
    )


async def subscribe(request: Request) -> Response:
    """POST the sign-up form: check it, store the subscriber with their confirmation mail
    queued (one transaction), answer "check your inbox"; the mail leaves after the answer
    (`Site.mailer`), so nothing about the address shows in the answer or its timing but
    one insert."""
    site = site_of(request)
    language = site.language_of(request)
    wait = site.signup_limit.hit(client_bucket(request))
    if wait:
        return too_many(request, site, language, wait)
    form = await read_form(request)
    if _text(form, HONEYPOT):
        # A person never sees this field: answer as if all went well, do nothing.
        log.info("sign-up ignored: the hidden honeypot field was filled in")
        return _check_inbox(request, site, language)
    topics = current_topics(site)
    if topics is None:
        topics = await run_in_threadpool(read_topics, site)
    signup = Signup.read(form, site.languages, topics)
    if signup.errors:
        return _signup_page(request, site, language, signup, topics, status=400)
    await sign_up(site, signup)
    response = _check_inbox(request, site, language)
    if site.mailer.needed():
        response.background = BackgroundTask(site.mailer.wake)
    return response


def _check_inbox(request: Request, site: Site, language: str) -> Response:
    """The "check your inbox" page: the same for every address, kept a second per path."""
    key = f"POST {request.url.path}"
    kept = site.pages.fresh(key)
    if kept is None:
        page = site.page(
            request,
            "message.html.jinja",
            language,
            kind="check_inbox",
            confirm_days=site.settings.subscribers.confirm_days,
        )
        kept = site.pages.keep(key, page)
    return Prepared(200, kept.full, kept.body)


async def sign_up(site: Site, signup: Signup) -> bool:
    """Store the subscriber with their confirmation mail queued (the web form's and the
    API's path; many sign-ups share a transaction, `signups.SignupWriter`); return whether
    a mail was queued. Never says anything to the page."""
    queued = await site.signups.store(
        signups.Signup(
            email=signup.email,
            name=signup.name,
            language=signup.language,
            topics=signup.topics,
            cadence=signup.cadence,
        )
    )
    if not queued:
        log.info("sign-up: no mail queued (known address, or one sent or queued today)")
    return queued


# --- confirm ------------------------------------------------------------------------------


def _read_confirm(site: Site, token: str) -> tuple[str | None, str | None]:
    """(public_id, None) for a good confirmation token, else (None, the error's kind)."""
    try:
        return site.tokens.read_confirm(token, now=site.clock()), None
    except TokenExpired:
        return None, "link_expired"
    except TokenInvalid:
        return None, "link_invalid"


def _status_of(site: Site, public_id: str) -> str | None:
    with site.factory() as session:
        found = registry.by_public_id(session, public_id)
        return found.status.value if found is not None else None


def _confirm(site: Site, public_id: str) -> str | None:
    """Confirm the subscriber; return their status afterwards (None: not on the list)."""
    with db.transaction(site.factory) as session:
        found = registry.by_public_id(session, public_id)
        if found is None:
            return None
        # The key: a person who had left and signed up again is unsuppressed by this click.
        key = transport.suppression_key(site.settings)
        registry.confirm(session, found, now=site.clock(), suppression_key=key)
        return found.status.value


async def confirm(request: Request) -> Response:
    """GET: a page with a button (scanners follow links); POST: confirm the subscription."""
    site = site_of(request)
    language = site.language_of(request)
    token = str(request.path_params["token"])
    public_id, problem = _read_confirm(site, token)
    if public_id is None:
        status = 410 if problem == "link_expired" else 400
        return site.page(request, "message.html.jinja", language, status=status, kind=problem)
    posting = request.method == "POST"  # GET and HEAD only look
    if posting:
        status_now = await run_in_threadpool(_confirm, site, public_id)
    else:
        status_now = await run_in_threadpool(_status_of, site, public_id)
    if status_now is None:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    if status_now == SubscriberStatus.PENDING.value:
        return site.page(
            request, "confirm.html.jinja", language, action=site.path(language, "confirm", token)
        )
    if status_now == SubscriberStatus.CONFIRMED.value:
        preferences_token = site.tokens.preferences_token(public_id, now=site.clock())
        return site.page(
            request,
            "message.html.jinja",
            language,
            kind="confirmed" if posting else "already_confirmed",
            preferences_url=site.path(language, "preferences", preferences_token),
        )
    return site.page(request, "message.html.jinja", language, status=410, kind="link_closed")
