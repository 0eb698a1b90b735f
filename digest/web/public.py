"""The subscriber's pages: home and sign-up, confirm, unsubscribe, preferences, export, erase.

    /{lang}/                         home: what the digest is, the sign-up form, feeds
    /{lang}/subscribe                GET the form, POST sign up (double opt-in mail)
    /{lang}/confirm/{token}          GET shows a button, POST confirms
    /{lang}/unsubscribe/{token}      GET shows a button, POST unsubscribes (RFC 8058)
    /{lang}/preferences/{token}      GET the form, POST saves (CSRF)
    /{lang}/preferences/{token}/export   POST: everything we hold, as JSON (CSRF)
    /{lang}/preferences/{token}/erase    POST: forget me, keep only the suppression hash (CSRF)

Link scanners follow every GET in a mail, so no GET changes anything. The sign-up answer
is the same whether the address is new, pending, subscribed or suppressed, and the mail
goes out after the answer (a background task), so its timing tells nothing either.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import ConfigError, DigestError
from digest.pipeline import transport
from digest.pipeline.people import add_subscriber
from digest.store import db, sources
from digest.store.models import Delivery, Issue
from digest.web.pages import Site
from digest.web.security import CSRF_FIELD, client_address, csrf_ok, csrf_token
from subscribers import preferences, registry
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress, InvalidField, SubscriberError
from subscribers.model import Cadence, ConsentSource, Subscriber, SubscriberStatus
from subscribers.tokens import TokenExpired, TokenInvalid

log = logging.getLogger("digest.web")

FORM_LIMITS: dict[str, Any] = {"max_files": 0, "max_fields": 200, "max_part_size": 64 * 1024}
HONEYPOT = "website"
CADENCES = [cadence.value for cadence in Cadence]


def site_of(request: Request) -> Site:
    """The `Site` the app was made with."""
    site: Site = request.app.state.site
    return site


async def read_form(request: Request) -> FormData:
    """The posted form (urlencoded or multipart), within sane limits."""
    return await request.form(**FORM_LIMITS)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [value for value in form.getlist(name) if isinstance(value, str)]


# --- home and sign-up ---------------------------------------------------------------------


def offered_topics(site: Site) -> list[str]:
    """The topics subscribers can choose: those of every source, configured or added."""
    found = {t.strip().lower() for s in site.settings.sources for t in s.topics if t.strip()}
    with site.factory() as session:
        for source in sources.all_sources(session):
            found.update(t.strip().lower() for t in source.topics if t.strip())
    return sorted(found)


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
        topics = await run_in_threadpool(offered_topics, site)
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
    """POST the sign-up form: check it, answer "check your inbox", mail afterwards."""
    site = site_of(request)
    language = site.language_of(request)
    address = client_address(request)
    if not site.signup_limit.hit(address):
        wait = site.signup_limit.retry_after(address)
        return site.page(
            request,
            "message.html.jinja",
            language,
            status=429,
            headers={"Retry-After": str(wait)},
            kind="rate_limited",
        )
    form = await read_form(request)
    if _text(form, HONEYPOT):
        # A person never sees this field: answer as if all went well, do nothing.
        log.info("sign-up ignored: the hidden honeypot field was filled in")
        return _check_inbox(request, site, language)
    topics = await run_in_threadpool(offered_topics, site)
    signup = Signup.read(form, site.languages, topics)
    if signup.errors:
        return _signup_page(request, site, language, signup, topics, status=400)
    response = _check_inbox(request, site, language)
    response.background = BackgroundTask(_sign_up, site, signup)
    return response


def _check_inbox(request: Request, site: Site, language: str) -> Response:
    return site.page(
        request,
        "message.html.jinja",
        language,
        kind="check_inbox",
        confirm_days=site.settings.subscribers.confirm_days,
    )


def _sign_up(site: Site, signup: Signup) -> None:
    """Add the subscriber and send the confirmation mail; never says anything to the page."""
    try:
        add_subscriber(
            site.settings,
            site.factory,
            signup.email,
            name=signup.name,
            language=signup.language,
            topics=signup.topics,
            cadence=signup.cadence,
            source=ConsentSource.FORM,
            now=site.clock(),
        )
    except ConfigError as exc:
        log.error("sign-up failed: %s", exc)
    except DigestError as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, SubscriberError):
            # The transport refused the mail: the operator must hear of it.
            log.warning(
                "sign-up: a confirmation mail was not sent: %s",
                str(cause).replace(signup.email, "<address>"),
            )
        else:
            # Already on the list, suppressed, or mailed today: by design, nothing happens.
            log.info("sign-up changed nothing (the address is known or was mailed today)")
    else:
        log.info("sign-up: a confirmation mail was sent")


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
        registry.confirm(session, found, now=site.clock())
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
    posting = request.method == "POST"
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
        preferences_token = site.tokens.preferences_token(public_id)
        return site.page(
            request,
            "message.html.jinja",
            language,
            kind="confirmed" if posting else "already_confirmed",
            preferences_url=site.path(language, "preferences", preferences_token),
        )
    return site.page(request, "message.html.jinja", language, status=410, kind="link_closed")


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
    if request.method == "GET":
        return site.page(
            request,
            "unsubscribe.html.jinja",
            language,
            action=site.path(language, "unsubscribe", token),
        )
    # Mail clients post "List-Unsubscribe=One-Click"; the token alone decides, and a body
    # we cannot read must not keep anyone on the list.
    with contextlib.suppress(Exception):
        await read_form(request)
    await run_in_threadpool(_unsubscribe, site, public_id)
    return site.page(request, "message.html.jinja", language, kind="unsubscribed")


async def token_help(request: Request) -> Response:
    """`/{lang}/unsubscribe` and `/{lang}/preferences` without a token (the archive's links)."""
    site = site_of(request)
    language = site.language_of(request)
    return site.page(request, "message.html.jinja", language, kind="use_your_link")


# --- preferences, export, erase -----------------------------------------------------------


def _profile(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "language": subscriber.language,
        "topics": list(subscriber.topics),
        "cadence": subscriber.cadence.value,
        "paused": subscriber.paused,
        "status": subscriber.status.value,
    }


def _load_profile(site: Site, public_id: str) -> dict[str, Any] | None:
    with site.factory() as session:
        found = registry.by_public_id(session, public_id)
        return _profile(found) if found is not None else None


def _preferences_token(site: Site, request: Request) -> str | None:
    try:
        return site.tokens.read_preferences(str(request.path_params["token"]))
    except TokenInvalid:
        return None


def _preferences_page(
    request: Request,
    site: Site,
    language: str,
    public_id: str,
    profile: dict[str, Any],
    topics: Sequence[str],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    token = str(request.path_params["token"])
    return site.page(
        request,
        "preferences.html.jinja",
        language,
        status=status,
        profile=profile,
        topics=sorted(set(topics) | set(profile["topics"])),
        cadences=CADENCES,
        newsletter_languages=[
            {"language": entry["language"], "name": entry["name"]}
            for entry in site.switcher(request, language)
        ],
        errors=errors or {},
        saved=saved,
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
        action=site.path(language, "preferences", token),
        export_action=site.path(language, "preferences", token, "export"),
        erase_action=site.path(language, "preferences", token, "erase"),
        unsubscribe_url=site.path(
            language, "unsubscribe", site.tokens.unsubscribe_token(public_id)
        ),
    )


async def preferences_page(request: Request) -> Response:
    """GET the preferences form; POST saves it (CSRF) and comes back with "saved"."""
    site = site_of(request)
    language = site.language_of(request)
    public_id = _preferences_token(site, request)
    if public_id is None:
        return site.page(request, "message.html.jinja", language, status=400, kind="link_invalid")
    profile = await run_in_threadpool(_load_profile, site, public_id)
    if profile is None:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    topics = await run_in_threadpool(offered_topics, site)
    if request.method == "GET":
        saved = request.query_params.get("saved") == "1"
        return _preferences_page(request, site, language, public_id, profile, topics, saved=saved)
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return site.page(request, "message.html.jinja", language, status=403, kind="csrf")
    wanted = {
        "name": _text(form, "name"),
        "language": _text(form, "language") or profile["language"],
        "topics": [t for t in _texts(form, "topics") if t in set(topics) | set(profile["topics"])],
        "cadence": _text(form, "cadence") or profile["cadence"],
        "paused": _text(form, "paused") == "yes",
    }
    errors = await run_in_threadpool(_change, site, public_id, wanted)
    if errors is None:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    if errors:
        return _preferences_page(
            request,
            site,
            language,
            public_id,
            {**profile, **wanted},
            topics,
            status=400,
            errors=errors,
        )
    return RedirectResponse(request.url.path + "?saved=1", status_code=303)


def _change(site: Site, public_id: str, wanted: dict[str, Any]) -> dict[str, str] | None:
    """Apply the preferences; return field errors ({} when saved, None when not listed)."""
    with db.transaction(site.factory) as session:
        found = registry.by_public_id(session, public_id)
        if found is None:
            return None
        try:
            preferences.change(
                session,
                found,
                languages=site.languages,
                name=wanted["name"],
                language=wanted["language"],
                topics=wanted["topics"],
                cadence=wanted["cadence"],
                paused=wanted["paused"],
            )
        except InvalidField as exc:
            # change() checks every value before setting any: nothing to undo.
            return {exc.field: "name_long" if exc.field == "name" else "choice"}
    return {}


def _export(site: Site, public_id: str) -> dict[str, Any] | None:
    with site.factory() as session:
        found = registry.by_public_id(session, public_id)
        if found is None:
            return None
        data = registry.export(found)
        rows = session.execute(
            sa.select(Issue.number, Delivery.state, Delivery.sent_at)
            .join(Issue, Issue.id == Delivery.issue_id)
            .where(Delivery.subscriber_id == found.id)
            .order_by(Issue.number)
        ).all()
    data["deliveries"] = [
        {
            "issue": number,
            "state": str(getattr(state, "value", state)),
            "sent_at": sent.isoformat() if sent else None,
        }
        for number, state, sent in rows
    ]
    return data


async def export(request: Request) -> Response:
    """POST: everything we hold about the subscriber, as a JSON download (CSRF)."""
    site = site_of(request)
    language = site.language_of(request)
    public_id = _preferences_token(site, request)
    if public_id is None:
        return site.page(request, "message.html.jinja", language, status=400, kind="link_invalid")
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return site.page(request, "message.html.jinja", language, status=403, kind="csrf")
    data = await run_in_threadpool(_export, site, public_id)
    if data is None:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    body = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-subscription.json"'},
    )


def _erase(site: Site, public_id: str) -> bool:
    key = transport.suppression_key(site.settings)
    with db.transaction(site.factory) as session:
        found = registry.by_public_id(session, public_id)
        if found is None:
            return False
        registry.erase(session, found, now=site.clock(), suppression_key=key)
    return True


async def erase(request: Request) -> Response:
    """POST with the "yes" box ticked: delete everything but the suppression hash (CSRF)."""
    site = site_of(request)
    language = site.language_of(request)
    public_id = _preferences_token(site, request)
    if public_id is None:
        return site.page(request, "message.html.jinja", language, status=400, kind="link_invalid")
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return site.page(request, "message.html.jinja", language, status=403, kind="csrf")
    if _text(form, "confirm") != "yes":
        profile = await run_in_threadpool(_load_profile, site, public_id)
        if profile is None:
            return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
        topics = await run_in_threadpool(offered_topics, site)
        return _preferences_page(
            request,
            site,
            language,
            public_id,
            profile,
            topics,
            status=400,
            errors={"erase": "tick"},
        )
    erased = await run_in_threadpool(_erase, site, public_id)
    if not erased:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    return site.page(request, "message.html.jinja", language, kind="erased")
