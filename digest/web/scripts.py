"""The editor's desk's one script (`digest/web/static/desk.js`), served under a versioned
URL so that browsers may keep it a year: `/static/desk.<first 16 hex of its SHA-256>.js`.

The desk works without it (every action is a form that posts and redirects); with it, the
curation list reorders by drag and drop and the item actions post with `fetch()` and
replace the part of the page they change (see docs/web.md, "With JavaScript"). Only the
desk's pages load it, and only they allow scripts from 'self' (`security.DESK_CSP`).
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from digest.web.pages import Site

NAME = "desk.js"
CACHE_CONTROL = "public, max-age=31536000, immutable"
"""A year: a new script has a new URL."""


@cache
def body() -> bytes:
    """The script's bytes, read once from the package."""
    return resources.files("digest.web").joinpath("static", NAME).read_bytes()


def version() -> str:
    """The script's version: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(body()).hexdigest()[:16]


def url_path(prefix: str = "") -> str:
    """The script's path, under `prefix` (the path of `base_url`)."""
    return f"{prefix}/static/desk.{version()}.js"


def url(site: Site) -> str:
    """The script's path under the site (`base_url`'s path included)."""
    return url_path(site.prefix)


async def desk_script(request: Request) -> Response:
    """Serve the desk's script; another version than this one's is 404 (no stale copy)."""
    if request.path_params.get("version") != version():
        raise HTTPException(404)
    return Response(
        body(),
        media_type="text/javascript",
        headers={"Cache-Control": CACHE_CONTROL, "ETag": f'"{version()}"'},
    )
