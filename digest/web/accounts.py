"""The desk's named accounts: sign in by an emailed link, and the audit log page.

    /{lang}/admin/login/link     POST an address: mail it a sign-in link (when it has an
                                 account; the answer is the same either way)
                                 GET ?token=…: a button that signs in (POST with the token:
                                 mail scanners that fetch links must not spend it)
    /{lang}/admin/audit          the audit log (admins)

Both link steps are rate limited with the login form's limit.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import DigestError
from digest.pipeline import accounts, audit
from digest.web import access
from digest.web.admin import _desk_page, _text, editor_only
from digest.web.public import read_form, site_of
from digest.web.security import CSRF_FIELD, client_address, client_bucket, csrf_ok

log = logging.getLogger("digest.web")

AUDIT_ROWS = 200


async def login_link(request: Request) -> Response:
    """Mail a sign-in link (POST an address), or sign in with one (GET shows, POST spends)."""
    site = site_of(request)
    language = site.language_of(request)
    action = site.path(language, "admin", "login", "link")
    token = request.query_params.get("token", "")
    if request.method == "GET":
        return _desk_page(
            request, site, "admin_link.html.jinja", language, action=action, token=token
        )
    wait = site.login_limit.hit(client_bucket(request))
    if wait:
        return site.page(
            request,
            "message.html.jinja",
            language,
            status=429,
            headers={"Retry-After": str(wait)},
            kind="rate_limited",
        )
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return site.page(request, "message.html.jinja", language, status=403, kind="csrf")
    token = _text(form, "token")
    if token:
        who = await run_in_threadpool(
            lambda: accounts.read_sign_in(site.settings, site.factory, token, now=site.clock())
        )
        if who is None:
            return _desk_page(
                request,
                site,
                "admin_link.html.jinja",
                language,
                action=action,
                token="",
                error="link_invalid",
                status=400,
            )
        access.sign_in(request, who)
        log.info(
            "editor's desk: account:%s signed in by link from %s", who.name, client_address(request)
        )
        return RedirectResponse(site.path(language, "admin", ""), status_code=303)
    link = site.settings.publication.base_url.rstrip("/") + action[len(site.prefix) :]
    try:
        await run_in_threadpool(
            lambda: accounts.send_sign_in(
                site.settings, site.factory, _text(form, "email"), link=link, now=site.clock()
            )
        )
    except DigestError as exc:
        # The operator hears of a transport failure; the visitor learns nothing either way.
        log.warning("editor's desk: a sign-in link was not sent: %s", exc)
    return _desk_page(
        request, site, "admin_link.html.jinja", language, action=action, token="", sent=True
    )


@editor_only
@access.requires("audit")
async def audit_page(request: Request) -> Response:
    """The latest entries of the audit log, newest first."""
    site = site_of(request)
    language = site.language_of(request)
    wanted = request.query_params.get("action") or None
    if wanted not in audit.ACTIONS:
        wanted = None
    rows = await run_in_threadpool(
        lambda: audit.entries(site.factory, limit=AUDIT_ROWS, action=wanted)
    )
    return _desk_page(
        request,
        site,
        "admin_audit.html.jinja",
        language,
        rows=rows,
        actions=audit.ACTIONS,
        wanted=wanted or "",
        audit_url=site.path(language, "admin", "audit"),
    )
