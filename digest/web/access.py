"""Who is at the desk: the signed-in account (or the shared password), their role, and
the role check the desk's handlers use (`requires`), the same `accounts.permits` the API uses.

The session keeps the account's name; its role is read again from the database on each
request, so a removed account is signed out and a changed role applies at once. With the
shared password (no account exists) the person at the desk is "desk", an admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.pipeline import accounts
from digest.store import accounts as account_rows
from digest.store.models import Role
from digest.web.public import site_of
from digest.web.security import log_in

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_ACCOUNT_KEY = "account"
_ROLE_KEY = "role"
SHARED = "desk"
"""The actor of the shared password."""


def sign_in(request: Request, who: accounts.SignedIn | None) -> None:
    """Start a desk session for `who` (None: the shared password)."""
    log_in(request, time.time())
    if who is not None:
        request.session[_ACCOUNT_KEY] = who.name
        request.session[_ROLE_KEY] = who.role


def actor(request: Request) -> str:
    """The audit log's name for the person at the desk."""
    name = request.session.get(_ACCOUNT_KEY)
    return f"account:{name}" if isinstance(name, str) else SHARED


def role(request: Request) -> str:
    """The role of the person at the desk (checked by `current` on this request)."""
    found = request.session.get(_ROLE_KEY)
    return found if isinstance(found, str) else Role.ADMIN.value


def _role_now(factory: sessionmaker[Session], name: str | None) -> str | None:
    """The role the session's account has now; None when it must sign in again."""
    with factory() as session:
        if name is None:
            # A shared-password session stays good only while no account exists.
            return Role.ADMIN.value if account_rows.count_accounts(session) == 0 else None
        account = account_rows.account_by_name(session, name)
        return account.role.value if account is not None else None


async def current(request: Request) -> bool:
    """Whether the session's person may still use the desk (their account exists, or the
    shared password still applies); refreshes their role."""
    name = request.session.get(_ACCOUNT_KEY)
    site = site_of(request)
    found = await run_in_threadpool(
        _role_now, site.factory, name if isinstance(name, str) else None
    )
    if found is None:
        request.session.clear()
        return False
    if isinstance(name, str):
        request.session[_ROLE_KEY] = found
    return True


def may(request: Request, action: str) -> bool:
    """Whether the person at the desk may do `action` ("approve", "audit", …)."""
    try:
        return accounts.permits(Role(role(request)), action)
    except ValueError:  # a role this version does not know: nothing
        return False


def requires(action: str) -> Callable[[Handler], Handler]:
    """Answer 403 (a page in the desk's language) unless the person's role permits
    `action`; put it under `admin.editor_only`, which checks the session first."""

    def decorate(handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            if not may(request, action):
                site = site_of(request)
                language = site.language_of(request)
                return site.page(
                    request, "message.html.jinja", language, status=403, kind="forbidden"
                )
            return await handler(request)

        checked.__name__ = handler.__name__
        checked.__doc__ = handler.__doc__
        return checked

    return decorate
