"""The subscriber's preferences pages, reached by the personal link in every mail: the
form, export, erase and a fresh link. The other public pages (unsubscribe, new links) and
what every public form shares are in `web.public`.

    /{lang}/preferences/{token}      GET the form, POST saves (CSRF)
    /{lang}/preferences/{token}/export   POST: everything we hold, as JSON (CSRF)
    /{lang}/preferences/{token}/erase    POST: forget me, keep only the suppression hash (CSRF)
    /{lang}/preferences/{token}/renew    POST: mail a fresh preferences link (CSRF)

Preference links expire (`[web] link_days`) and stop working once the subscriber asks for
new links; export and erase need a link at most `FRESH_LINK` old, mailed on request. No GET
changes anything; the rate limit and what CSRF checks need no body run before a form is
read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.pipeline import links, people, transport
from digest.store import db
from digest.store.models import Delivery, Issue
from digest.web import public
from digest.web.pages import Site
from digest.web.public import (
    CADENCES,
    _mail_links,
    _text,
    _texts,
    forbidden,
    read_form,
    site_of,
    too_many,
)
from digest.web.security import (
    CSRF_FIELD,
    client_bucket,
    csrf_ok,
    csrf_possible,
    csrf_token,
)
from subscribers import preferences, registry
from subscribers.errors import InvalidField, TokenError
from subscribers.model import Subscriber
from subscribers.tokens import FRESH_LINK, LinkToken, TokenExpired, TokenInvalid

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


@dataclass
class PreferencesLink:
    """What a preferences URL's token gives: whose it is, and whether it still works."""

    public_id: str | None = None
    problem: str | None = None
    """None, "link_invalid" (forged, cut), or "link_old" (expired or revoked)."""
    fresh: bool = False
    """Young enough (`FRESH_LINK`) to export or erase with."""


def _preferences_link(site: Site, request: Request) -> PreferencesLink:
    now = site.clock()
    token = str(request.path_params["token"])
    try:
        link: LinkToken = site.tokens.read_preferences_link(token, now=now)
    except TokenExpired:
        return PreferencesLink(_genuine_id(site, token), "link_old")
    except TokenInvalid:
        return PreferencesLink(problem="link_invalid")
    return PreferencesLink(link.public_id, None, now - link.issued_at <= FRESH_LINK)


def _genuine_id(site: Site, token: str) -> str | None:
    """The public_id of a genuine (signed by us) but expired preferences token."""
    try:
        return site.tokens.read_preferences_link(token, expired_ok=True).public_id
    except TokenError:
        return None


def _revoked(site: Site, public_id: str, token: str) -> bool:
    """Whether the subscriber asked for new links after this token was made."""
    issued = site.tokens.read_preferences_link(token, expired_ok=True).issued_at
    with site.factory() as session:
        found = registry.by_public_id(session, public_id)
        return found is not None and links.links_revoked(found, issued)


async def _usable_link(request: Request, site: Site, language: str) -> PreferencesLink | Response:
    """The preferences link of this request, or the page that says why it cannot be used
    (invalid: 400; expired or revoked: 410 with a button to mail a new one)."""
    link = _preferences_link(site, request)
    token = str(request.path_params["token"])
    if (
        link.problem is None
        and link.public_id is not None
        and await run_in_threadpool(_revoked, site, link.public_id, token)
    ):
        link.problem = "link_old"
    if link.problem == "link_invalid" or link.public_id is None:
        return site.page(request, "message.html.jinja", language, status=400, kind="link_invalid")
    if link.problem == "link_old":
        return _old_link_page(request, site, language, token)
    return link


def _old_link_page(request: Request, site: Site, language: str, token: str) -> Response:
    return site.page(
        request,
        "message.html.jinja",
        language,
        status=410,
        kind="link_old",
        renew_action=site.path(language, "preferences", token, "renew"),
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
    )


async def _checked_form(request: Request, site: Site, language: str) -> FormData | Response:
    """Rate limit and the CSRF checks that need no body, then the form, then its token."""
    wait = site.form_limit.hit(client_bucket(request))
    if wait:
        return too_many(request, site, language, wait)
    if not csrf_possible(request, site.settings.publication.base_url):
        return forbidden(request, site, language)
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return forbidden(request, site, language)
    return form


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
    fresh: bool = False,
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
        renew_action=site.path(language, "preferences", token, "renew"),
        fresh=fresh,
        fresh_hours=int(FRESH_LINK.total_seconds() // 3600),
        unsubscribe_url=site.path(
            language, "unsubscribe", site.tokens.unsubscribe_token(public_id, now=site.clock())
        ),
    )


async def preferences_page(request: Request) -> Response:
    """GET the preferences form; POST saves it (CSRF) and comes back with "saved"."""
    site = site_of(request)
    language = site.language_of(request)
    link = await _usable_link(request, site, language)
    if isinstance(link, Response):
        return link
    public_id = str(link.public_id)
    form = FormData()
    if request.method == "POST":
        checked = await _checked_form(request, site, language)
        if isinstance(checked, Response):
            return checked
        form = checked
    profile = await run_in_threadpool(_load_profile, site, public_id)
    if profile is None:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    topics = await run_in_threadpool(public.offered_topics, site)
    if request.method != "POST":  # GET and HEAD only look
        saved = request.query_params.get("saved") == "1"
        return _preferences_page(
            request, site, language, public_id, profile, topics, saved=saved, fresh=link.fresh
        )
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
            fresh=link.fresh,
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
    """POST: everything we hold about the subscriber, as a JSON download (CSRF; needs a
    fresh link)."""
    site = site_of(request)
    language = site.language_of(request)
    link = await _usable_link(request, site, language)
    if isinstance(link, Response):
        return link
    public_id = str(link.public_id)
    form = await _checked_form(request, site, language)
    if isinstance(form, Response):
        return form
    if not link.fresh:
        return _fresh_link_needed(request, site, language)
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
        people.erase(session, found, now=site.clock(), suppression_key=key)
    return True


async def erase(request: Request) -> Response:
    """POST with the "yes" box ticked: delete everything but the suppression hash (CSRF;
    needs a fresh link)."""
    site = site_of(request)
    language = site.language_of(request)
    link = await _usable_link(request, site, language)
    if isinstance(link, Response):
        return link
    public_id = str(link.public_id)
    form = await _checked_form(request, site, language)
    if isinstance(form, Response):
        return form
    if not link.fresh:
        return _fresh_link_needed(request, site, language)
    if _text(form, "confirm") != "yes":
        profile = await run_in_threadpool(_load_profile, site, public_id)
        if profile is None:
            return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
        topics = await run_in_threadpool(public.offered_topics, site)
        return _preferences_page(
            request,
            site,
            language,
            public_id,
            profile,
            topics,
            status=400,
            errors={"erase": "tick"},
            fresh=link.fresh,
        )
    erased = await run_in_threadpool(_erase, site, public_id)
    if not erased:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_listed")
    return site.page(request, "message.html.jinja", language, kind="erased")


def _fresh_link_needed(request: Request, site: Site, language: str) -> Response:
    token = str(request.path_params["token"])
    return site.page(
        request,
        "message.html.jinja",
        language,
        status=403,
        kind="fresh_link_needed",
        renew_action=site.path(language, "preferences", token, "renew"),
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
        fresh_hours=int(FRESH_LINK.total_seconds() // 3600),
    )


async def renew(request: Request) -> Response:
    """POST from a preferences page or an expired link's page: mail the subscriber a fresh
    preferences link (revoking the older ones). CSRF; the token may be expired or revoked,
    but must be ours."""
    site = site_of(request)
    language = site.language_of(request)
    token = str(request.path_params["token"])
    public_id = _genuine_id(site, token)
    if public_id is None:
        return site.page(request, "message.html.jinja", language, status=400, kind="link_invalid")
    form = await _checked_form(request, site, language)
    if isinstance(form, Response):
        return form
    response = site.page(request, "message.html.jinja", language, kind="links_sent")
    response.background = BackgroundTask(_mail_links, site, public_id, None)
    return response
