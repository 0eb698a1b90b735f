"""The full-screen preview of an issue: one channel, one variant (language × topics), at a
phone's or the email's width.

    GET /{lang}/admin/issues/{n}/preview?variant=L&channel=C&width=375|600&topic=T…
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest import pipeline
from digest.errors import NotFoundError
from digest.web import access
from digest.web.admin import PREVIEW_WIDTHS, _desk_page, _variant, editor_only
from digest.web.public import offered_topics, site_of


@editor_only
@access.requires("read")
async def preview(request: Request) -> Response:
    """The issue as one variant's readers get it in one channel, filling the window."""
    site = site_of(request)
    language = site.language_of(request)
    number = int(request.path_params["number"])
    variant = _variant(site, request, language)
    channel = request.query_params.get("channel", "email")
    channel = channel if channel in pipeline.CHANNELS else "email"
    width = request.query_params.get("width", "600")
    width = width if width in PREVIEW_WIDTHS else "600"
    offered = offered_topics(site)
    topics = [t for t in request.query_params.getlist("topic") if t in offered]
    try:
        shown = await run_in_threadpool(
            lambda: pipeline.preview_channel(
                site.settings,
                site.factory,
                channel,
                number=number,
                language=variant,
                topics=topics if channel in ("email", "text") else (),
            )
        )
    except NotFoundError:
        return site.page(request, "message.html.jinja", language, status=404, kind="not_found")
    base = site.path(language, "admin", "issues", number)

    def url(**changed: str | list[str]) -> str:
        query: dict[str, str | list[str]] = {
            "variant": variant,
            "channel": channel,
            "width": width,
            "topic": topics,
        }
        query.update(changed)
        return f"{base}/preview?{urlencode(query, doseq=True)}"

    return _desk_page(
        request,
        site,
        "admin_preview.html.jinja",
        language,
        number=number,
        variant=variant,
        channel=channel,
        width=width,
        shown=shown,
        topics=topics,
        offered=offered,
        back=f"{base}?variant={variant}&channel={channel}&width={width}",
        variant_urls=[(code, url(variant=code)) for code in site.languages],
        channel_urls=[(name, url(channel=name)) for name in pipeline.CHANNELS],
        width_urls=[(w, url(width=w)) for w in PREVIEW_WIDTHS],
        action=f"{base}/preview",
    )
