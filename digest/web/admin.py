"""The editor's desk: log in, see how things stand, curate, test and approve an issue.

    /admin                               → /{lang}/admin/ by Accept-Language
    /{lang}/admin/login                  GET the form, POST the password
    /{lang}/admin/logout                 POST
    /{lang}/admin/                       dashboard
    /{lang}/admin/issues/{n}             issue n: preview per language (?variant=nl), items
    /{lang}/admin/issues/{n}/curate      POST drops, pins, order, intro and subject
    /{lang}/admin/login/link, /audit     see `digest.web.accounts`

Once named accounts exist (`digest editors add`), the login asks for an address and a
password (argon2id, `pipeline.accounts`) and each action is checked against the account's
role (`web.access`) and written to the audit log. Until then the password comes from [web]
admin_password (DIGEST_WEB__ADMIN_PASSWORD or its _FILE) and is compared in constant
time. Failed and successful attempts alike are rate limited per client address. Every
POST needs the session's CSRF token. Pages are never cached.

The item editor, the order, undo, the full-screen preview, a test copy, approval and the
time an issue goes out are in `digest.web.desk`. `wants_fragment` tells a request from the
desk's script (`web.scripts`), which gets the changed part of the page (`after_action`).
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest import pipeline
from digest.errors import DigestError, NotFoundError
from digest.pipeline import accounts, audit, editorial
from digest.render.email import section_title
from digest.web import access, scripts
from digest.web.pages import Site
from digest.web.public import DESK_FORM_LIMITS, forbidden, read_form, site_of, too_many
from digest.web.security import (
    CSRF_FIELD,
    client_address,
    client_bucket,
    csrf_ok,
    csrf_possible,
    csrf_token,
    is_editor,
    log_out,
    password_ok,
)

log = logging.getLogger("digest.web")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
ISSUE_STATES = ("draft", "approved", "sending", "sent")
UPLOAD_LIMITS = {"max_files": 1, "max_part_size": 1_000_000}
"""One file of at most the request body limit (1 MB)."""
PREVIEW_WIDTHS = ("375", "600")
"""The widths the preview shows an email at: a phone's, and the email's own."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [value for value in form.getlist(name) if isinstance(value, str)]


def _desk_page(
    request: Request, site: Site, template: str, language: str, **context: Any
) -> Response:
    """Render a desk page: the CSRF token, the logout form and any flash message."""
    flash = request.session.pop("flash", None)
    status = context.pop("status", 200)
    return site.page(
        request,
        template,
        language,
        status=status,
        csrf=csrf_token(request),
        csrf_field=CSRF_FIELD,
        flash=flash if isinstance(flash, dict) else None,
        desk_url=site.path(language, "admin", ""),
        audit_link=site.path(language, "admin", "audit") if access.may(request, "audit") else "",
        logout_action=site.path(language, "admin", "logout"),
        desk_script=scripts.url(site),
        **context,
    )


def wants_fragment(request: Request) -> bool:
    """Whether the desk's script asked (`X-Requested-With: fetch`) for the changed part of
    the page instead of a redirect to the whole of it."""
    return request.headers.get("x-requested-with", "").lower() == "fetch"


def _flash(
    request: Request,
    kind: str,
    detail: str = "",
    reason: str = "",
    values: Mapping[str, str | int] | None = None,
) -> None:
    """Keep a message for the next page: `kind` and `reason` pick its sentence in the desk's
    language, `values` fill it; `detail` is technical text shown as such (a server's reply)."""
    request.session["flash"] = {**(values or {}), "kind": kind, "detail": detail, "reason": reason}


def _login_redirect(site: Site, language: str, request: Request) -> Response:
    target = site.path(language, "admin", "login") + "?next=" + quote(request.url.path, safe="/")
    return RedirectResponse(target, status_code=303)


def editor_only(handler: Handler) -> Handler:
    """Send visitors without an editor's session to the login page; check CSRF on POSTs."""
    return _guarded(handler, files=False)


def editor_upload(handler: Handler) -> Handler:
    """`editor_only` for a form that uploads one file (a subscriber CSV)."""
    return _guarded(handler, files=True)


def _guarded(handler: Handler, *, files: bool) -> Handler:
    async def guarded(request: Request) -> Response:
        site = site_of(request)
        language = site.language_of(request)
        if not is_editor(request, time.time(), site.session_max_age):
            return _login_redirect(site, language, request)
        if not await access.current(request):
            return _login_redirect(site, language, request)
        if request.method == "POST":
            # What CSRF can check without the body first, then the (larger) desk form.
            if not csrf_possible(request, site.settings.publication.base_url):
                return forbidden(request, site, language)
            if files:
                form = await request.form(**{**DESK_FORM_LIMITS, **UPLOAD_LIMITS})
            else:
                form = await read_form(request, DESK_FORM_LIMITS)
            if not csrf_ok(request, form.get(CSRF_FIELD)):
                return site.page(request, "message.html.jinja", language, status=403, kind="csrf")
            request.state.form = form
        return await handler(request)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


async def admin_root(request: Request) -> Response:
    """`/admin`: the desk in the browser's best language."""
    site = site_of(request)
    language = site.best_language(request.headers.get("accept-language", ""))
    return RedirectResponse(site.path(language, "admin", ""), status_code=302)


def _safe_next(site: Site, language: str, target: str) -> str:
    """Only our own desk pages are places to go back to after login (no open redirect)."""
    desk = site.path(language, "admin", "")
    if target.startswith(desk) and "//" not in target and "\\" not in target:
        return target
    return desk


async def login(request: Request) -> Response:
    """GET the login form; POST the password (rate limited, CSRF, constant-time check)."""
    site = site_of(request)
    language = site.language_of(request)
    named = await run_in_threadpool(accounts.has_accounts, site.factory)
    configured = named or bool(site.settings.web.admin_password)
    target = _safe_next(site, language, request.query_params.get("next", ""))
    action = site.path(language, "admin", "login") + "?next=" + quote(target, safe="/")
    if request.method == "GET":
        if is_editor(request, time.time(), site.session_max_age):
            return RedirectResponse(target, status_code=303)
        return _desk_page(
            request,
            site,
            "admin_login.html.jinja",
            language,
            action=action,
            configured=configured,
            named=named,
            link_action=site.path(language, "admin", "login", "link"),
        )
    address = client_address(request)
    wait = site.login_limit.hit(client_bucket(request))
    if wait:
        return too_many(request, site, language, wait)
    if not csrf_possible(request, site.settings.publication.base_url):
        return forbidden(request, site, language)
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return site.page(request, "message.html.jinja", language, status=403, kind="csrf")
    who: accounts.SignedIn | None = None
    if named:
        # Named accounts replace the shared password: the audit log names who acted.
        who = await run_in_threadpool(
            lambda: accounts.check_password(
                site.factory, _text(form, "email"), _text(form, "password"), now=site.clock()
            )
        )
        good = who is not None
    else:
        good = password_ok(_text(form, "password"), site.settings.web.admin_password.reveal())
    if not good:
        log.warning("editor's desk: a login failed from %s", address)
        return _desk_page(
            request,
            site,
            "admin_login.html.jinja",
            language,
            action=action,
            configured=configured,
            named=named,
            link_action=site.path(language, "admin", "login", "link"),
            error="wrong_password",
            status=401,
        )
    access.sign_in(request, who)
    log.info("editor's desk: %s logged in from %s", access.actor(request), address)
    return RedirectResponse(target, status_code=303)


@editor_only
async def logout(request: Request) -> Response:
    """End the editor's session."""
    site = site_of(request)
    language = site.language_of(request)
    log_out(request)
    return RedirectResponse(site.path(language, "admin", "login"), status_code=303)


@editor_only
async def dashboard(request: Request) -> Response:
    """Next slots, issues and deliveries, subscribers, source health."""
    site = site_of(request)
    language = site.language_of(request)
    desk = await run_in_threadpool(editorial.desk, site.settings, site.factory, now=site.clock())
    return _desk_page(
        request,
        site,
        "admin_dashboard.html.jinja",
        language,
        desk=desk,
        issue_url=lambda number: site.path(language, "admin", "issues", number),
        draft_action=site.path(language, "admin", "draft"),
        collect_action=site.path(language, "admin", "collect"),
        pause_action=site.path(language, "admin", "sources", "pause"),
    )


def _variant(site: Site, request: Request, language: str) -> str:
    wanted = request.query_params.get("variant") or _text(
        getattr(request.state, "form", FormData()), "variant"
    )
    if wanted in site.languages:
        return wanted
    return language if language in site.languages else site.settings.default_language


def _issue_path(site: Site, language: str, number: int, variant: str) -> str:
    return site.path(language, "admin", "issues", number) + f"?variant={variant}"


@editor_only
async def issue(request: Request) -> Response:
    """Issue n as a subscriber gets it in one language, with its curation form."""
    site = site_of(request)
    number = int(request.path_params["number"])
    return await issue_page(request, number, _variant(site, request, site.language_of(request)))


async def issue_page(
    request: Request, number: int, variant: str, *, status: int = 200, **extra: Any
) -> Response:
    """The issue page (or, for the desk's script, only its working part: `wants_fragment`)
    with `extra` values for its template (a refused field and what was typed)."""
    site = site_of(request)
    language = site.language_of(request)
    try:
        found = await run_in_threadpool(
            editorial.issue_desk, site.settings, site.factory, number, language=variant
        )
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    base = site.path(language, "admin", "issues", number)
    channel, shown = await _channel(site, request, number, variant)
    labels = pipeline.labels_of(site.settings)
    width = request.query_params.get("width", "600")
    width = width if width in PREVIEW_WIDTHS else "600"
    preview_url = f"{base}/preview?variant={variant}&channel={channel}&width={width}"
    return _desk_page(
        request,
        site,
        "admin_issue.html.jinja",
        language,
        issue=found,
        variants=[
            {
                **entry,
                "url": f"{base}?variant={entry['language']}"
                + ("" if channel == "email" else f"&channel={channel}"),
                "current": entry["language"] == variant,
            }
            for entry in site.switcher(request, language)
        ],
        sections=_sections(found.items),
        curate_action=f"{base}/curate",
        test_action=f"{base}/test",
        approve_action=f"{base}/approve",
        editors=site.settings.web.editors,
        approval=site.settings.issue.approval,
        channel=channel,
        channel_body=shown,
        section_label=lambda name: section_title(name, language, labels),
        channels=[
            {"name": name, "url": f"{base}?variant={variant}&channel={name}"}
            for name in pipeline.CHANNELS
        ],
        width=width,
        widths=[
            {"width": w, "url": f"{base}?variant={variant}&channel={channel}&width={w}"}
            for w in PREVIEW_WIDTHS
        ],
        preview_url=preview_url,
        item_url=lambda key: f"{base}/item?variant={variant}&key={quote(key, safe='')}",
        move_action=f"{base}/move",
        undo_action=f"{base}/undo",
        add_url=f"{base}/add?variant={variant}",
        images=site.settings.render.images != "drop",
        schedule_action=f"{base}/schedule",
        zone=site.settings.publication.timezone,
        local_input=lambda moment: _local_input(site, moment),
        fragment=wants_fragment(request),
        headers={"X-Digest-Fragment": "issue-work"} if wants_fragment(request) else None,
        status=status,
        **extra,
    )


def _local_input(site: Site, moment: datetime | None) -> str:
    """`moment` as a `datetime-local` field's value, in the publication's zone."""
    if moment is None:
        return ""
    zone = zoneinfo.ZoneInfo(site.settings.publication.timezone)
    return f"{moment.astimezone(zone):%Y-%m-%dT%H:%M}"


async def _channel(site: Site, request: Request, number: int, variant: str) -> tuple[str, str]:
    """The channel the editor chose to look at (`?channel=`), and its rendering when it is
    not the email itself (the archive page or the feed entry); "" for the email."""
    channel = request.query_params.get("channel", "email")
    if channel not in pipeline.CHANNELS:
        channel = "email"
    if channel in ("email", "text"):
        return channel, ""
    shown = await run_in_threadpool(
        lambda: pipeline.preview_channel(
            site.settings, site.factory, channel, number=number, language=variant
        )
    )
    return channel, shown.body


def _sections(items: Sequence[editorial.DeskItem]) -> list[tuple[str, list[editorial.DeskItem]]]:
    """The items grouped by section, sections and items in the order the issue has them."""
    grouped: dict[str, list[editorial.DeskItem]] = {}
    for item in items:
        grouped.setdefault(item.section, []).append(item)
    return list(grouped.items())


def _changes(form: FormData, variant: str) -> editorial.Changes:
    """Read the curation form: drops, restores, pins, positions, intro and subject."""
    keys = _texts(form, "item")
    sections: dict[str, list[str]] = {}
    for key in keys:
        sections.setdefault(_text(form, f"section:{key}"), []).append(key)
    positions: dict[str, int] = {}
    changed = False
    for members in sections.values():
        for shown, key in enumerate(members, start=1):
            try:
                position = int(_text(form, f"position:{key}"))
            except ValueError:
                position = shown
            positions[key] = position
            changed = changed or position != shown
    order = None
    if changed:
        order = tuple(
            key
            for members in sections.values()
            for key in sorted(members, key=lambda k: (positions[k], members.index(k)))
        )
    pinned = [key for key in keys if key in set(_texts(form, "pin"))]
    pinned.sort(key=lambda k: (positions.get(k, 0), keys.index(k)))
    return editorial.Changes(
        dropped=frozenset(_texts(form, "drop")),
        restored=frozenset(_texts(form, "restore")),
        split=frozenset(_texts(form, "split")),
        joined=tuple(_texts(form, "join")),
        pinned=tuple(pinned),
        order=order,
        language=variant,
        intro=_text(form, "intro") if "intro" in form else None,
        subject=_text(form, "subject") if "subject" in form else None,
    )


@editor_only
@access.requires("curate")
async def curate(request: Request) -> Response:
    """Store the curation and re-draft the issue with it."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    changes = _changes(request.state.form, variant)
    try:
        await run_in_threadpool(
            editorial.curate, site.settings, site.factory, number, changes, now=site.clock()
        )
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    except editorial.DeskError as exc:
        _flash(request, "curate_failed", reason=exc.kind, values=exc.values)
    except DigestError as exc:
        _flash(request, "curate_failed", str(exc))
    else:
        _flash(request, "curated")
        audit.record(site.factory, access.actor(request), "edited", f"issue {number}", variant)
    return await after_action(request, number, variant)


async def after_action(request: Request, number: int, variant: str, anchor: str = "") -> Response:
    """After a desk action on issue `number`: the changed part of the page for the desk's
    script, else a redirect to the page (the flash message says what happened)."""
    if wants_fragment(request):
        return await issue_page(request, number, variant)
    site = site_of(request)
    target = _issue_path(site, site.language_of(request), number, variant) + anchor
    return RedirectResponse(target, status_code=303)
