"""The editor's desk beyond the issue page (`digest.web.admin`): the item editor and the
order (`items`), and running the publication from the dashboard (`publication`)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route


def routes() -> list[BaseRoute]:
    """The desk's routes besides those of `digest.web.admin` (all need an editor)."""
    from digest.web.desk import additions, items, preview, publication

    issue = "/{lang}/admin/issues/{number:int}"
    return [
        Route(f"{issue}/item", items.item, methods=["GET", "POST"]),
        Route(f"{issue}/move", items.move, methods=["POST"]),
        Route(f"{issue}/undo", items.undo, methods=["POST"]),
        Route(f"{issue}/add", additions.add, methods=["GET", "POST"]),
        Route(f"{issue}/preview", preview.preview, methods=["GET"]),
        Route("/{lang}/admin/draft", publication.draft_now, methods=["POST"]),
        Route("/{lang}/admin/collect", publication.collect_now, methods=["POST"]),
        Route("/{lang}/admin/sources/pause", publication.pause_source, methods=["POST"]),
    ]
