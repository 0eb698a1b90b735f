"""Running the publication from the dashboard: each action is its CLI verb's code path.

POST /{lang}/admin/draft                  cadence=weekly|daily   `digest draft [--daily]`
POST /{lang}/admin/collect                (name=…)               `digest collect [NAMES]`
POST /{lang}/admin/sources/pause          name, active=0|1       stop or resume a source
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.config import SOURCE_KINDS, SourceSettings
from digest.errors import DigestError, NotFoundError
from digest.pipeline import desk, editorial
from digest.web import access
from digest.web.admin import _desk_page, _flash, _text, _texts, editor_only
from digest.web.public import site_of

CADENCES = ("weekly", "daily")


def _dashboard(request: Request, anchor: str = "") -> Response:
    """Back to the dashboard, or to the sources page when the form came from there."""
    site = site_of(request)
    language = site.language_of(request)
    form = getattr(request.state, "form", None)
    if form is not None and _text(form, "back") == "sources":
        return RedirectResponse(site.path(language, "admin", "sources"), status_code=303)
    target = site.path(language, "admin", "") + (f"#{anchor}" if anchor else "")
    return RedirectResponse(target, status_code=303)


@editor_only
@access.requires("draft")
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
@access.requires("collect")
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
@access.requires("sources")
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


# --- the sources page ---------------------------------------------------------------------

SOURCE_FIELDS = ("name", "url", "kind", "language", "topics", "section", "backfill")


async def _sources_page(
    request: Request,
    *,
    errors: dict[str, dict[str, str | int]] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    site = site_of(request)
    language = site.language_of(request)
    rows = await run_in_threadpool(desk.source_rows, site.settings, site.factory)
    base = site.path(language, "admin", "sources")
    return _desk_page(
        request,
        site,
        "admin_sources.html.jinja",
        language,
        status=status,
        rows=rows,
        errors=errors or {},
        values={"kind": "feed", "language": site.settings.default_language, **(values or {})},
        kinds=SOURCE_KINDS,
        languages=site.languages,
        sections=editorial.section_names(site.settings),
        base=base,
        collect_action=site.path(language, "admin", "collect"),
        pause_action=site.path(language, "admin", "sources", "pause"),
    )


@editor_only
@access.requires("sources")
async def sources_page(request: Request) -> Response:
    """Every source with its health; add, edit, pause, retry, remove."""
    return await _sources_page(request)


def _error(exc: DigestError) -> dict[str, str | int]:
    if isinstance(exc, editorial.DeskError):
        return {**exc.values, "reason": exc.kind, "detail": str(exc)}
    return {"reason": "", "detail": str(exc)}


@editor_only
@access.requires("sources")
async def add_source(request: Request) -> Response:
    """`digest sources add` + `digest sources check`: kept only when the check reads it."""
    site = site_of(request)
    form = request.state.form
    values = {name: _text(form, name).strip() for name in SOURCE_FIELDS}
    field = "name" if not values["name"] else ""
    backfill = None
    if values["backfill"]:
        try:
            backfill = max(0, int(values["backfill"]))
        except ValueError:
            field = "backfill"
    if field:
        error: dict[str, str | int] = {"reason": f"{field}_missing", "detail": ""}
        return await _sources_page(request, errors={field: error}, values=values, status=400)
    item = SourceSettings(
        name=values["name"],
        url=values["url"],
        kind=values["kind"] if values["kind"] in SOURCE_KINDS else "feed",
        language=values["language"],
        topics=[t.strip() for t in values["topics"].split(",") if t.strip()],
        section=values["section"] or "news",
    )
    try:
        checked = await run_in_threadpool(
            lambda: desk.add_source(
                site.settings, site.factory, item, backfill_days=backfill, now=site.clock()
            )
        )
    except DigestError as exc:
        where = "name" if "exists already" in str(exc) else "url"
        errors = {where: _error(exc)}
        return await _sources_page(request, errors=errors, values=values, status=400)
    _flash(request, "source_added", values={"name": item.name, "found": checked.found})
    return _dashboard_sources(request)


def _dashboard_sources(request: Request) -> Response:
    site = site_of(request)
    target = site.path(site.language_of(request), "admin", "sources")
    return RedirectResponse(target, status_code=303)


@editor_only
@access.requires("sources")
async def edit_source(request: Request) -> Response:
    """Change a source added at the desk (or with the CLI)."""
    site = site_of(request)
    form = request.state.form
    name = _text(form, "name")
    try:
        await run_in_threadpool(
            lambda: desk.edit_source(
                site.settings,
                site.factory,
                name,
                url=_text(form, "url"),
                language=_text(form, "language"),
                topics=tuple(_text(form, "topics").split(",")),
                section=_text(form, "section"),
            )
        )
    except DigestError as exc:
        errors = {f"edit:{name}": _error(exc)}
        return await _sources_page(request, errors=errors, status=400)
    _flash(request, "source_changed", values={"name": name})
    return _dashboard_sources(request)


@editor_only
@access.requires("sources")
async def remove_source(request: Request) -> Response:
    """`digest sources remove NAME`."""
    site = site_of(request)
    name = _text(request.state.form, "name")
    try:
        await run_in_threadpool(desk.remove_source, site.factory, name)
    except DigestError as exc:
        _flash(request, "action_failed", str(exc))
    else:
        _flash(request, "source_removed", values={"name": name})
    return _dashboard_sources(request)
