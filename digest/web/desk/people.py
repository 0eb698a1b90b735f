"""The subscriber list at the desk: each action is the pipeline function its
`digest subscribers …` verb calls (`pipeline.people`), or `pipeline.roster` where the CLI
has none (search, one person's record, changing their preferences).

    GET  /{lang}/admin/subscribers?q=            search by address or name; add, import,
                                                 export, unsuppress
    POST /{lang}/admin/subscribers/add           email, name, language, confirmed
    POST /{lang}/admin/subscribers/import        a CSV file (multipart) with vouched consent
    GET  /{lang}/admin/subscribers/export.csv    (and .json) the whole list, a download
    POST /{lang}/admin/subscribers/unsuppress    email, reason
    GET  /{lang}/admin/subscribers/{id}          consent, deliveries, bounces; change, remove
    POST /{lang}/admin/subscribers/{id}/change   name, language, topics, cadence, paused
    POST /{lang}/admin/subscribers/{id}/remove   how = unsubscribe | erase | delete
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import DigestError, NotFoundError
from digest.pipeline import people, roster
from digest.web import access
from digest.web.admin import _desk_page, _flash, _text, _texts, editor_only, editor_upload
from digest.web.public import CADENCES, offered_topics, site_of
from subscribers.csvio import ImportReport


def _list_path(request: Request) -> str:
    site = site_of(request)
    return site.path(site.language_of(request), "admin", "subscribers")


async def _list_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    report: ImportReport | None = None,
    status: int = 200,
) -> Response:
    site = site_of(request)
    language = site.language_of(request)
    query = request.query_params.get("q", "")
    found = await run_in_threadpool(roster.search, site.factory, query)
    base = _list_path(request)
    return _desk_page(
        request,
        site,
        "admin_subscribers.html.jinja",
        language,
        status=status,
        query=query,
        found=found,
        errors=errors or {},
        values={"language": language, **(values or {})},
        report=report,
        base=base,
        languages=site.languages,
    )


@editor_only
@access.requires("subscribers")
async def subscribers(request: Request) -> Response:
    """Search the list; the add, import, export and unsuppress forms."""
    return await _list_page(request)


@editor_only
@access.requires("subscribers")
async def add(request: Request) -> Response:
    """`digest subscribers add`: a confirmation mail goes out unless consent is vouched."""
    site = site_of(request)
    form = request.state.form
    values = {name: _text(form, name) for name in ("email", "name", "language", "confirmed")}
    try:
        added = await run_in_threadpool(
            lambda: people.add_subscriber(
                site.settings,
                site.factory,
                values["email"],
                name=values["name"],
                language=values["language"] or None,
                confirmed=values["confirmed"] == "1",
                now=site.clock(),
            )
        )
    except DigestError as exc:
        errors = {"email": str(exc)}
        return await _list_page(request, errors=errors, values=values, status=400)
    _flash(
        request,
        "subscriber_added",
        added.subscriber.email,
        values={"mailed": int(added.confirmation is not None)},
    )
    return RedirectResponse(f"{_list_path(request)}/{added.subscriber.public_id}", status_code=303)


@editor_upload
@access.requires("subscribers")
async def import_csv(request: Request) -> Response:
    """`digest subscribers import --confirmed`: a CSV upload, with its row report."""
    site = site_of(request)
    form = request.state.form
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        await form.close()
        return await _list_page(request, errors={"file": "choose"}, status=400)
    try:
        data = await upload.read()
    finally:
        await form.close()
    confirmed = _text(form, "confirmed") == "1"

    def run() -> ImportReport:
        with tempfile.TemporaryDirectory(prefix="digest-import-") as folder:
            path = Path(folder) / "subscribers.csv"
            path.write_bytes(data)
            return people.import_subscribers(
                site.settings, site.factory, path, confirmed=confirmed, now=site.clock()
            )

    try:
        report = await run_in_threadpool(run)
    except DigestError as exc:
        message = str(exc).replace(str(Path(tempfile.gettempdir())), "").lstrip("/")
        return await _list_page(request, errors={"file": message}, status=400)
    return await _list_page(request, report=report)


@editor_only
@access.requires("subscribers")
async def export(request: Request) -> Response:
    """`digest subscribers export`: the whole list as CSV (import format) or JSON."""
    site = site_of(request)
    fmt: people.ExportFormat = "json" if request.path_params["format"] == "json" else "csv"

    def run() -> str:
        out = io.StringIO(newline="")
        people.export_subscribers(site.settings, site.factory, out, fmt=fmt)
        return out.getvalue()

    body = await run_in_threadpool(run)
    stamp = site.clock().strftime("%Y-%m-%d")
    return Response(
        body,
        media_type="application/json" if fmt == "json" else "text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="subscribers-{stamp}.{fmt}"'},
    )


@editor_only
@access.requires("subscribers")
async def unsuppress(request: Request) -> Response:
    """`digest subscribers unsuppress EMAIL --reason TEXT`: the reason is kept."""
    site = site_of(request)
    form = request.state.form
    values = {"unsuppress_email": _text(form, "email"), "reason": _text(form, "reason")}
    if not values["reason"].strip():
        return await _list_page(request, errors={"reason": "empty"}, values=values, status=400)
    try:
        done = await run_in_threadpool(
            lambda: people.unsuppress(
                site.settings,
                site.factory,
                values["unsuppress_email"],
                why=values["reason"],
                by="editor's desk",
                now=site.clock(),
            )
        )
    except DigestError as exc:
        return await _list_page(
            request, errors={"unsuppress_email": str(exc)}, values=values, status=400
        )
    _flash(request, "unsuppressed", done.email)
    return RedirectResponse(_list_path(request), status_code=303)


async def _person_page(
    request: Request, public_id: str, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    site = site_of(request)
    language = site.language_of(request)
    try:
        found = await run_in_threadpool(roster.record, site.factory, public_id)
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    base = f"{_list_path(request)}/{public_id}"
    topics: list[Any] = await run_in_threadpool(offered_topics, site)
    return _desk_page(
        request,
        site,
        "admin_subscriber.html.jinja",
        language,
        status=status,
        person=found,
        errors=errors or {},
        topics=topics,
        cadences=CADENCES,
        languages=site.languages,
        change_action=f"{base}/change",
        remove_action=f"{base}/remove",
        back=_list_path(request),
    )


@editor_only
@access.requires("subscribers")
async def person(request: Request) -> Response:
    """One subscriber: consent, deliveries, bounces; change or remove them."""
    return await _person_page(request, request.path_params["public_id"])


@editor_only
@access.requires("subscribers")
async def change(request: Request) -> Response:
    """Change name, language, topics, cadence and pause, as their preferences page does."""
    site = site_of(request)
    public_id = request.path_params["public_id"]
    form = request.state.form
    try:
        await run_in_threadpool(
            lambda: roster.change(
                site.settings,
                site.factory,
                public_id,
                name=_text(form, "name"),
                language=_text(form, "language"),
                topics=_texts(form, "topics"),
                cadence=_text(form, "cadence"),
                paused=_text(form, "paused") == "1",
            )
        )
    except NotFoundError:
        return await _person_page(request, public_id)
    except DigestError as exc:
        field = str(exc).partition(":")[0]
        return await _person_page(request, public_id, errors={field: str(exc)}, status=400)
    _flash(request, "subscriber_changed")
    return RedirectResponse(f"{_list_path(request)}/{public_id}", status_code=303)


@editor_only
@access.requires("subscribers")
async def remove(request: Request) -> Response:
    """`digest subscribers remove EMAIL [--unsubscribe | --erase]`."""
    site = site_of(request)
    public_id = request.path_params["public_id"]
    form = request.state.form
    how = _text(form, "how")
    if how not in {r.value for r in people.Removal}:
        how = people.Removal.UNSUBSCRIBE.value
    if how != people.Removal.UNSUBSCRIBE.value and _text(form, "sure") != "1":
        return await _person_page(request, public_id, errors={f"sure-{how}": "tick"}, status=400)
    try:
        found = await run_in_threadpool(roster.record, site.factory, public_id)
        removed = await run_in_threadpool(
            lambda: people.remove_subscriber(
                site.settings,
                site.factory,
                found.row.email,
                how=people.Removal(how),
                now=site.clock(),
            )
        )
    except NotFoundError:
        return await _person_page(request, public_id)
    except DigestError as exc:
        _flash(request, "action_failed", str(exc))
        return RedirectResponse(f"{_list_path(request)}/{public_id}", status_code=303)
    _flash(request, f"subscriber_{removed.how.value}", removed.email)
    if removed.how is people.Removal.UNSUBSCRIBE:
        return RedirectResponse(f"{_list_path(request)}/{public_id}", status_code=303)
    return RedirectResponse(_list_path(request), status_code=303)
