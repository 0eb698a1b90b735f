"""The editor's desk beyond the issue page (`digest.web.admin`): the item editor and the
order (`items`), a test copy, approval and the time an issue goes out (`sending`), and
running the publication from the dashboard (`publication`)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route


def routes() -> list[BaseRoute]:
    """The desk's routes besides those of `digest.web.admin` (all need an editor)."""
    from digest.web.desk import additions, items, people, preview, publication, sending

    issue = "/{lang}/admin/issues/{number:number}"
    who = "/{lang}/admin/subscribers/{public_id:str}"
    return [
        Route(f"{issue}/item", items.item, methods=["GET", "POST"]),
        Route(f"{issue}/move", items.move, methods=["POST"]),
        Route(f"{issue}/undo", items.undo, methods=["POST"]),
        Route(f"{issue}/test", sending.test_send, methods=["POST"]),
        Route(f"{issue}/approve", sending.approve, methods=["POST"]),
        Route(f"{issue}/schedule", sending.schedule, methods=["POST"]),
        Route(f"{issue}/add", additions.add, methods=["GET", "POST"]),
        Route(f"{issue}/preview", preview.preview, methods=["GET"]),
        Route("/{lang}/admin/draft", publication.draft_now, methods=["POST"]),
        Route("/{lang}/admin/collect", publication.collect_now, methods=["POST"]),
        Route("/{lang}/admin/sources/pause", publication.pause_source, methods=["POST"]),
        Route("/{lang}/admin/sources", publication.sources_page, methods=["GET"]),
        Route("/{lang}/admin/sources/add", publication.add_source, methods=["POST"]),
        Route("/{lang}/admin/sources/edit", publication.edit_source, methods=["POST"]),
        Route("/{lang}/admin/sources/remove", publication.remove_source, methods=["POST"]),
        Route("/{lang}/admin/subscribers", people.subscribers, methods=["GET"]),
        Route("/{lang}/admin/subscribers/add", people.add, methods=["POST"]),
        Route("/{lang}/admin/subscribers/import", people.import_csv, methods=["POST"]),
        Route("/{lang}/admin/subscribers/unsuppress", people.unsuppress, methods=["POST"]),
        Route("/{lang}/admin/subscribers/export.{format:str}", people.export, methods=["GET"]),
        Route("/{lang}/admin/subscribers/{public_id:str}", people.person, methods=["GET"]),
        Route(f"{who}/change", people.change, methods=["POST"]),
        Route(f"{who}/remove", people.remove, methods=["POST"]),
    ]
