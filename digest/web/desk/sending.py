"""Sending an issue from the desk: a test copy, approval, and the time it goes out.

    POST /{lang}/admin/issues/{n}/test       one copy marked [TEST] to an address
    POST /{lang}/admin/issues/{n}/approve    approve the draft (`digest approve N`)
    POST /{lang}/admin/issues/{n}/schedule   `at` = a time in the publication's zone: it goes
                                             out then (`digest send N --at`); `action=cancel`:
                                             at its slot again (`digest send N --unschedule`)

Each calls the function its CLI verb calls and writes the same audit record.
"""

from __future__ import annotations

import logging
import zoneinfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import DigestError, NotFoundError
from digest.pipeline import audit, send_times, sending
from digest.pipeline.curation import DeskError
from digest.web import access
from digest.web.admin import (
    _flash,
    _issue_path,
    _text,
    _variant,
    after_action,
    editor_only,
    issue_page,
)
from digest.web.public import site_of
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress

log = logging.getLogger("digest.web")


@editor_only
@access.requires("test")
async def test_send(request: Request) -> Response:
    """Send one copy marked [TEST] of the issue in the chosen language to an address."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    back = RedirectResponse(_issue_path(site, language, number, variant), status_code=303)
    try:
        address = normalize(_text(request.state.form, "address"))
    except InvalidAddress:
        _flash(request, "test_invalid")
        return back
    editors = {e.strip().lower() for e in site.settings.web.editors if e.strip()}
    if editors and address not in editors:
        _flash(request, "test_not_editor", address)
        return back
    try:
        result = await run_in_threadpool(
            lambda: sending.send_test(
                site.settings, site.factory, address, number=number, language=variant
            )
        )
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    except OSError as exc:
        _flash(request, "test_failed", str(exc), reason="unreachable")
        return back
    except DigestError as exc:
        _flash(request, "test_failed", str(exc))
        return back
    audit.record(site.factory, access.actor(request), "test_sent", f"issue {number}", address)
    if result.ok:
        _flash(request, "test_sent", address)
    else:
        _flash(request, "test_failed", result.reply, reason="refused")
    return back


@editor_only
@access.requires("approve")
async def approve(request: Request) -> Response:
    """Approve the draft: the scheduled send (or `digest send`) takes it from here."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    try:
        approved = await run_in_threadpool(
            sending.approve, site.settings, site.factory, number, now=site.clock()
        )
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    _flash(request, "approved" if approved.status.value == "approved" else "not_a_draft")
    if approved.status.value == "approved":
        audit.record(site.factory, access.actor(request), "approved", f"issue {number}")
    log.info("editor's desk: issue #%s is %s", number, approved.status.value)
    return RedirectResponse(_issue_path(site, language, number, variant), status_code=303)


@editor_only
@access.requires("schedule")
async def schedule(request: Request) -> Response:
    """Have the approved issue go out at the time typed (or, `action=cancel`, at its slot)."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    form = request.state.form
    typed = _text(form, "at")
    zone = zoneinfo.ZoneInfo(site.settings.publication.timezone)
    actor = access.actor(request)
    try:
        if _text(form, "action") == "cancel":
            chosen = await run_in_threadpool(send_times.cancel_send, site.factory, number)
            audit.record(site.factory, actor, "unscheduled", f"issue {number}")
            _flash(request, "unscheduled", values={"when": site.when(chosen.slot, language)})
        else:
            chosen = await run_in_threadpool(
                lambda: send_times.schedule_send(
                    site.settings, site.factory, number, typed, now=site.clock()
                )
            )
            local = f"{chosen.goes_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
            audit.record(site.factory, actor, "scheduled", f"issue {number}", local)
            _flash(request, "scheduled", values={"when": site.when(chosen.goes_at, language)})
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    except DeskError as exc:
        error = {**exc.values, "reason": exc.kind, "detail": str(exc)}
        return await issue_page(
            request, number, variant, status=400, schedule_error=error, schedule_typed=typed
        )
    return await after_action(request, number, variant, "#schedule-heading")
