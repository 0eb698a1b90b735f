"""Adding an item to a draft at the desk, by URL or by hand.

    GET  /{lang}/admin/issues/{n}/add    the form
    POST /{lang}/admin/issues/{n}/add    url, or title and text; language, section

Calls `digest.pipeline.additions.add_item`.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.errors import DigestError, NotFoundError
from digest.pipeline import additions, editorial, labels_of
from digest.render.email import section_title
from digest.web import access
from digest.web.admin import _desk_page, _flash, _issue_path, _text, _variant, editor_only
from digest.web.public import site_of

FIELDS = ("url", "title", "text", "language", "section")
ERROR_FIELDS = {
    "not_a_web_address": "url",
    "fetch_failed": "url",
    "title_missing": "title",
    "title_too_long": "title",
    "not_a_language": "language",
    "not_a_section": "section",
}
"""Which field each refusal is shown next to."""


@editor_only
@access.requires("curate")
async def add(request: Request) -> Response:
    """The form (GET); add the item and go back to the issue (POST)."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    form = getattr(request.state, "form", None)
    values = {name: _text(form, name) if form is not None else "" for name in FIELDS}
    values["language"] = values["language"] or variant
    values["section"] = values["section"] or "news"
    error: dict[str, str | int] | None = None
    if form is not None:
        try:
            await run_in_threadpool(
                lambda: additions.add_item(
                    site.settings,
                    site.factory,
                    number,
                    url=values["url"],
                    title=values["title"],
                    text=values["text"],
                    language=values["language"],
                    section=values["section"],
                    now=site.clock(),
                )
            )
        except NotFoundError:
            return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
        except editorial.DeskError as exc:
            error = {**exc.values, "reason": exc.kind, "detail": str(exc)}
        except DigestError as exc:
            error = {"reason": "", "detail": str(exc)}
        else:
            _flash(request, "added")
            return RedirectResponse(_issue_path(site, language, number, variant), status_code=303)
    labels = labels_of(site.settings)
    return _desk_page(
        request,
        site,
        "admin_add.html.jinja",
        language,
        status=400 if error else 200,
        number=number,
        values=values,
        error=error,
        error_field=ERROR_FIELDS.get(str(error["reason"]), "") if error else "",
        variant=variant,
        action=site.path(language, "admin", "issues", number, "add") + f"?variant={variant}",
        back=_issue_path(site, language, number, variant),
        sections=[
            (name, section_title(name, language, labels))
            for name in editorial.section_names(site.settings)
        ],
        languages=site.languages,
    )
