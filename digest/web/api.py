"""The JSON API for integrations, under /api/v1/ (described in `openapi.json`, served at
/api/v1/openapi.json).

    POST    /api/v1/subscribers            subscribe (double opt-in)       scope subscribe
    OPTIONS /api/v1/subscribers            CORS preflight                   none
    GET     /api/v1/subscribers/{email}    a subscriber's status            scope read
    GET     /api/v1/issues                 issues with delivery counts      scope read
    GET     /api/v1/issues/{number}        one issue with delivery counts   scope read
    POST    /api/v1/collect                collect the due sources now      scope admin
    POST    /api/v1/draft                  draft the current slot now       scope admin
    GET     /api/v1/openapi.json           this API's description           none

Every call but the last two carries `Authorization: Bearer <token>` (`digest api-keys add`);
scopes nest (admin ⊇ read ⊇ subscribe), checked by `accounts.permits` like the desk's
roles. Errors are JSON, `{"error": code, "message": words}`: 400 invalid, 401 no or
unknown token, 403 scope too small, 404, 429 rate limited (with Retry-After).

A sign-up takes the web form's path (`signup.Signup` checks it, `signup.sign_up` adds the
subscriber with its confirmation mail queued, sent after the answer), counts against the
form's limit per client address, and answers 202 the same whether or not the address was new, so the
API tells no one who is on the list. Browsers may post it from the origins in
[web] api_allowed_origins (CORS); the other endpoints send no CORS headers: call them from
a server, where the token stays secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from digest import pipeline
from digest.errors import DigestError
from digest.pipeline import accounts, api_keys, audit
from digest.store import deliveries
from digest.store.models import ApiScope, Issue
from digest.web.public import current_topics, read_form, read_topics, site_of
from digest.web.security import client_bucket
from digest.web.signup import Signup, sign_up  # the web form's own path, on purpose
from subscribers import registry
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress

log = logging.getLogger("digest.web")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
MAX_BODY = 16_384
"""Bytes of a JSON body at most (a sign-up is far smaller)."""
ISSUES_LISTED = 50
MAX_NUMBER = 2**31 - 1
"""The largest issue number a database integer column holds."""


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """A JSON error: `{"error": code, "message": message}`."""
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def needs(action: str) -> Callable[[Handler], Handler]:
    """Refuse calls without a live key (401) or whose key's scope does not allow `action`
    (403); the key's name is kept on `request.state.key` for the audit log."""

    def decorate(handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            site = site_of(request)
            token = _bearer(request)
            if not token:
                return error(
                    401,
                    "unauthorized",
                    "send an API key as `Authorization: Bearer <token>` (digest api-keys add)",
                    **{"WWW-Authenticate": "Bearer", **_cors(request)},
                )
            key = await run_in_threadpool(
                lambda: api_keys.key_of(site.factory, token, now=site.clock())
            )
            if key is None:
                return error(
                    401,
                    "unauthorized",
                    "this API key is unknown or revoked",
                    **{"WWW-Authenticate": 'Bearer error="invalid_token"', **_cors(request)},
                )
            if not accounts.permits(ApiScope(key.scope), action):
                return error(
                    403,
                    "forbidden",
                    f"the key {key.name!r} has the scope {key.scope!r}, which does not allow "
                    f"{action}; make a key with a wider scope (digest api-keys add)",
                    **_cors(request),
                )
            request.state.key = key
            response = await handler(request)
            response.headers["Cache-Control"] = "no-store"
            return response

        checked.__name__ = handler.__name__
        checked.__doc__ = handler.__doc__
        return checked

    return decorate


def _actor(request: Request) -> str:
    return f"api:{request.state.key.name}"


# --- CORS (sign-up only) ------------------------------------------------------------------


def _cors(request: Request) -> dict[str, str]:
    """CORS headers for the sign-up endpoint when the request's Origin is allowed."""
    if not request.url.path.endswith("/api/v1/subscribers"):
        return {}
    origin = request.headers.get("origin", "")
    allowed = site_of(request).settings.web.api_allowed_origins
    if not origin or not ("*" in allowed or origin in allowed):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def preflight(request: Request) -> Response:
    """Answer a browser's CORS preflight for the sign-up endpoint."""
    headers = _cors(request)
    if not headers:
        return error(403, "origin_not_allowed", "this origin is not in [web] api_allowed_origins")
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        }
    )
    return Response(status_code=204, headers=headers)


# --- subscribe ----------------------------------------------------------------------------


async def _posted(request: Request) -> FormData | None:
    """The body as form fields: JSON (an object) or a form; None when it is neither."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        return await read_form(request)
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    pairs: list[tuple[str, str | UploadFile]] = []
    for name, value in data.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((str(name), item) for item in values if isinstance(item, str))
    return FormData(pairs)


@needs("subscribe")
async def subscribe(request: Request) -> Response:
    """Sign an address up: it gets the confirmation mail, as from the web form."""
    site = site_of(request)
    cors = _cors(request)
    wait = site.signup_limit.hit(client_bucket(request))
    if wait:
        return error(
            429,
            "rate_limited",
            "too many sign-ups from this address; wait and try again",
            **{"Retry-After": str(wait), **cors},
        )
    form = await _posted(request)
    if form is None:
        return error(400, "invalid", "send a JSON object or a form", **cors)
    topics = current_topics(site)
    if topics is None:
        topics = await run_in_threadpool(read_topics, site)
    signup = Signup.read(form, site.languages, topics)
    if signup.errors:
        return JSONResponse(
            {
                "error": "invalid",
                "message": "some fields are not right; see fields",
                "fields": signup.errors,
            },
            status_code=400,
            headers=cors,
        )
    actor = _actor(request)
    await sign_up(site, signup)

    def record_and_mail() -> None:
        # Never the address: the log must hold nothing an erasure would have to remove.
        audit.record(site.factory, actor, "subscribed", "a subscriber", signup.language)
        site.mailer.wake()

    return JSONResponse(
        {
            "status": "check_inbox",
            "message": "if this address can receive our mail, a confirmation link is on its "
            f"way; it works for {site.settings.subscribers.confirm_days} days",
        },
        status_code=202,
        headers=cors,
        background=BackgroundTask(record_and_mail),
    )


@needs("read")
async def subscriber(request: Request) -> Response:
    """A subscriber's status, language, topics and cadence; 404 when not on the list."""
    site = site_of(request)
    try:
        wanted = normalize(str(request.path_params["email"]))
    except InvalidAddress:
        return error(400, "invalid", "that is not an email address")

    def look() -> dict[str, Any] | None:
        with site.factory() as session:
            found = registry.by_email(session, wanted)
            if found is None:
                return None
            return {
                "email": found.email,
                "status": found.status.value,
                "paused": found.paused,
                "language": found.language,
                "topics": list(found.topics),
                "cadence": found.cadence.value,
                "created_at": _iso(found.created_at),
                "confirmed_at": _iso(found.confirmed_at),
            }

    row = await run_in_threadpool(look)
    if row is None:
        return error(404, "not_found", f"{wanted} is not on the list")
    return JSONResponse(row)


# --- issues -------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _issue_json(session: Session, issue: Issue) -> dict[str, Any]:
    counts = deliveries.counts(session, issue.id)
    return {
        "number": issue.number,
        "cadence": issue.cadence,
        "slot": _iso(issue.slot),
        "status": issue.status.value,
        "approved_at": _iso(issue.approved_at),
        "sent_at": _iso(issue.sent_at),
        "published_at": _iso(issue.published_at),
        "paused": issue.paused_reason is not None,
        "deliveries": {state.value: count for state, count in counts.items()},
    }


def issues_json(factory: sessionmaker[Session], number: int | None) -> Any:
    """The latest issues (or issue `number`, None when it does not exist) as JSON values."""
    with factory() as session:
        if number is not None:
            found = session.scalar(sa.select(Issue).where(Issue.number == number))
            return _issue_json(session, found) if found is not None else None
        latest = session.scalars(
            sa.select(Issue).order_by(Issue.number.desc()).limit(ISSUES_LISTED)
        ).all()
        return [_issue_json(session, issue) for issue in latest]


@needs("read")
async def issues(request: Request) -> Response:
    """The latest issues, newest first, with their delivery counts."""
    site = site_of(request)
    listed = await run_in_threadpool(issues_json, site.factory, None)
    return JSONResponse({"issues": listed})


@needs("read")
async def issue(request: Request) -> Response:
    """One issue with its delivery counts."""
    site = site_of(request)
    number = int(request.path_params["number"])
    if number > MAX_NUMBER:  # no database integer is that large (found by schemathesis)
        return error(404, "not_found", f"there is no issue {number}")
    found = await run_in_threadpool(issues_json, site.factory, number)
    if found is None:
        return error(404, "not_found", f"there is no issue {number}")
    return JSONResponse(found)


# --- collect and draft --------------------------------------------------------------------


@needs("collect")
async def collect(request: Request) -> Response:
    """Collect the due sources now (as `digest collect`); answers when it is done."""
    site = site_of(request)
    report = await run_in_threadpool(
        lambda: pipeline.collect_sources(site.settings, site.factory, now=site.clock())
    )
    failed = [item.name for item in report.failed]
    audit.record(
        site.factory,
        _actor(request),
        "collected",
        f"{len(report.sources)} sources",
        f"{len(failed)} failed",
    )
    return JSONResponse(
        {
            "sources": [
                {"name": item.name, "outcome": item.outcome, "error": item.error}
                for item in report.sources
            ],
            "failed": failed,
        }
    )


@needs("draft")
async def draft(request: Request) -> Response:
    """Draft the current slot's issue now (as `digest draft`); `{"cadence": "daily"}`
    drafts the daily one."""
    site = site_of(request)
    form = await _posted(request) if await request.body() else FormData()
    cadence = (form.get("cadence") if form is not None else None) or "weekly"
    if cadence not in ("weekly", "daily"):
        return error(400, "invalid", 'cadence is "weekly" or "daily"')
    try:
        made = await run_in_threadpool(
            lambda: pipeline.draft(
                site.settings, site.factory, now=site.clock(), cadence=str(cadence)
            )
        )
    except DigestError as exc:
        return error(409, "not_drafted", str(exc))
    audit.record(site.factory, _actor(request), "drafted", f"issue {made.number}", "api")
    return JSONResponse(
        {
            "number": made.number,
            "created": made.created,
            "slot": _iso(made.slot),
            "cadence": made.cadence,
            "empty": made.plan.is_empty,
        },
        status_code=201 if made.created else 200,
    )


# --- the description ----------------------------------------------------------------------


@cache
def description() -> dict[str, Any]:
    """The packaged OpenAPI description (`openapi.json` beside this module)."""
    found: dict[str, Any] = json.loads(
        resources.files("digest.web").joinpath("openapi.json").read_bytes()
    )
    return found


async def openapi(request: Request) -> Response:
    """This API's OpenAPI 3.1 description, with this publication's languages as the
    sign-up's choices."""
    described = json.loads(json.dumps(description()))
    signup = described["components"]["schemas"]["Signup"]["properties"]
    signup["language"]["enum"] = list(site_of(request).languages)
    return JSONResponse(described)


async def not_found(request: Request) -> Response:
    """Anything else under /api/: a JSON 404."""
    return error(404, "not_found", "no such endpoint; see /api/v1/openapi.json")


def routes() -> list[BaseRoute]:
    """The API's routes, relative to the app's base path."""
    return [
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/subscribers", subscribe, methods=["POST"]),
        Route("/api/v1/subscribers", preflight, methods=["OPTIONS"]),
        Route("/api/v1/subscribers/{email}", subscriber, methods=["GET"]),
        Route("/api/v1/issues", issues, methods=["GET"]),
        Route("/api/v1/issues/{number:number}", issue, methods=["GET"]),
        Route("/api/v1/collect", collect, methods=["POST"]),
        Route("/api/v1/draft", draft, methods=["POST"]),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
