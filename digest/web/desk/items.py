"""Editing one issue's items at the desk.

    GET  /{lang}/admin/issues/{n}/item?key=K&variant=L   the item editor in language L
    POST /{lang}/admin/issues/{n}/item                   save title, excerpt, note, section,
                                                         the languages it is dropped for
    POST /{lang}/admin/issues/{n}/move                   "up" or "down" = an item key, or
                                                         "key" and "to" (a place, 1-based)
    POST /{lang}/admin/issues/{n}/undo                   undo the last change

Each calls one function of `digest.pipeline.desk`, as `digest.web.admin.curate` calls
`editorial.curate`. Asked by the desk's script (`admin.wants_fragment`), move and undo
answer the changed part of the issue page instead of a redirect.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import DigestError, NotFoundError
from digest.pipeline import desk, editorial, labels_of
from digest.render.email import section_title
from digest.web import access
from digest.web.admin import (
    _desk_page,
    _flash,
    _issue_path,
    _text,
    _texts,
    _variant,
    after_action,
    editor_only,
)
from digest.web.public import site_of


def _not_found(request: Request) -> Response:
    site = site_of(request)
    language = site.language_of(request)
    return site.page(request, "message.html.jinja", language, status=404, kind="not_found")


@editor_only
@access.requires("curate")
async def item(request: Request) -> Response:
    """The item editor (GET), or save it (POST) and go back to the issue."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    form = getattr(request.state, "form", None)
    key = _text(form, "key") if form is not None else request.query_params.get("key", "")
    error: dict[str, str | int] | None = None
    if form is not None:
        try:
            await run_in_threadpool(
                lambda: desk.edit_item(
                    site.settings,
                    site.factory,
                    number,
                    key,
                    language=variant,
                    title=_text(form, "title"),
                    excerpt=_text(form, "excerpt"),
                    note=_text(form, "note"),
                    section=_text(form, "section"),
                    hidden_in=tuple(_texts(form, "hidden")),
                    now=site.clock(),
                )
            )
        except NotFoundError:
            return _not_found(request)
        except editorial.DeskError as exc:
            error = {**exc.values, "reason": exc.kind, "detail": str(exc)}
        except DigestError as exc:
            error = {"reason": "", "detail": str(exc)}
        else:
            _flash(request, "curated")
            target = _issue_path(site, language, number, variant) + f"#item-{key}"
            return RedirectResponse(target, status_code=303)
    try:
        words = await run_in_threadpool(
            desk.item_words, site.settings, site.factory, number, key, language=variant
        )
    except NotFoundError:
        return _not_found(request)
    if form is not None:
        words = desk.ItemWords(
            key=key,
            language=variant,
            title=_text(form, "title"),
            excerpt=_text(form, "excerpt"),
            note=_text(form, "note"),
            section=_text(form, "section") or words.section,
            moved=words.moved,
            hidden_in=tuple(_texts(form, "hidden")),
            edited=words.edited,
        )
    labels = labels_of(site.settings)
    base = site.path(language, "admin", "issues", number)
    return _desk_page(
        request,
        site,
        "admin_item.html.jinja",
        language,
        status=400 if error else 200,
        number=number,
        words=words,
        error=error,
        variant=variant,
        action=f"{base}/item",
        back=_issue_path(site, language, number, variant),
        sections=[
            (name, section_title(name, language, labels))
            for name in editorial.section_names(site.settings)
        ],
        languages=site.languages,
    )


@editor_only
@access.requires("curate")
async def move(request: Request) -> Response:
    """Move an item one place up or down in its section (`up=K`, `down=K`), or to a place
    in it (`key=K&to=N`, 1-based: what dragging it does)."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    form = request.state.form
    key, step = (_text(form, "up"), -1) if _text(form, "up") else (_text(form, "down"), 1)
    to = _text(form, "to")
    if to:
        key = _text(form, "key")
    try:
        if to:
            position = int(to)
            await run_in_threadpool(
                lambda: desk.place(
                    site.settings, site.factory, number, key, position, now=site.clock()
                )
            )
        else:
            await run_in_threadpool(
                lambda: desk.move(site.settings, site.factory, number, key, step, now=site.clock())
            )
    except NotFoundError:
        return _not_found(request)
    except ValueError:
        _flash(request, "curate_failed", f"{to!r} is not a place in the section")
    except editorial.DeskError as exc:
        _flash(request, "curate_failed", reason=exc.kind, values=exc.values)
    except DigestError as exc:
        _flash(request, "curate_failed", str(exc))
    else:
        _flash(request, "curated")
    return await after_action(request, number, variant, f"#item-{key}")


@editor_only
@access.requires("curate")
async def undo(request: Request) -> Response:
    """Undo the last change to the curation."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    try:
        done = await run_in_threadpool(
            lambda: desk.undo(site.settings, site.factory, number, now=site.clock())
        )
    except NotFoundError:
        return _not_found(request)
    except editorial.DeskError as exc:
        _flash(request, "curate_failed", reason=exc.kind, values=exc.values)
    except DigestError as exc:
        _flash(request, "curate_failed", str(exc))
    else:
        _flash(request, "undone" if done else "nothing_to_undo")
    return await after_action(request, number, variant)
