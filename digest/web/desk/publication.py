"""Running the publication from the dashboard: each action is its CLI verb's code path.

POST /{lang}/admin/draft                  cadence=weekly|daily   `digest draft [--daily]`
POST /{lang}/admin/collect                (name=…)               `digest collect [NAMES]`
POST /{lang}/admin/sources/pause          name, active=0|1       stop or resume a source
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import DigestError, NotFoundError
from digest.pipeline import desk
from digest.web.admin import _flash, _text, _texts, editor_only
from digest.web.public import site_of

CADENCES = ("weekly", "daily")


def _dashboard(request: Request, anchor: str = "") -> Response:
    site = site_of(request)
    target = site.path(site.language_of(request), "admin", "") + (f"#{anchor}" if anchor else "")
    return RedirectResponse(target, status_code=303)


@editor_only
async def draft_now(request: Request) -> Response:
    """Draft the next issue of a cadence now, and open it."""
    site = site_of(request)
    language = site.language_of(request)
    cadence = _text(request.state.form, "cadence")
    if cadence not in CADENCES:
        cadence = "weekly"
    try:
        made = await run_in_threadpool(
            lambda: desk.draft_now(site.settings, site.factory, cadence, now=site.clock())
        )
    except DigestError as exc:
        _flash(request, "action_failed", str(exc))
        return _dashboard(request, "next")
    _flash(request, "drafted", values={"number": made.number})
    return RedirectResponse(site.path(language, "admin", "issues", made.number), status_code=303)


@editor_only
async def collect_now(request: Request) -> Response:
    """Collect the due sources now (or the named ones: "retry now")."""
    site = site_of(request)
    names = tuple(_texts(request.state.form, "name"))
    try:
        report = await run_in_threadpool(
            lambda: desk.collect_now(site.settings, site.factory, names=names, now=site.clock())
        )
    except NotFoundError as exc:
        _flash(request, "action_failed", str(exc))
        return _dashboard(request, "sources")
    except DigestError as exc:
        _flash(request, "action_failed", str(exc))
        return _dashboard(request, "sources")
    failed = sum(1 for source in report.sources if source.failed)
    _flash(request, "collected", values={"sources": len(report.sources), "failed": failed})
    return _dashboard(request, "sources")


@editor_only
async def pause_source(request: Request) -> Response:
    """Pause a source (it is not collected) or resume it (due at once)."""
    site = site_of(request)
    name = _text(request.state.form, "name")
    active = _text(request.state.form, "active") == "1"
    try:
        await run_in_threadpool(
            lambda: desk.pause_source(site.factory, name, active=active, now=site.clock())
        )
    except DigestError as exc:
        _flash(request, "action_failed", str(exc))
    else:
        _flash(request, "source_resumed" if active else "source_paused", values={"name": name})
    return _dashboard(request, "sources")
