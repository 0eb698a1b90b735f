"""API keys: add (the token is shown once), list, revoke, and find the key of a token.

A token is "dg_" and 32 random bytes in base64url; only its SHA-256 is stored (a token has
256 bits of entropy, so a fast hash is enough: nothing to brute-force), with its first
characters to tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DigestError, NotFoundError
from digest.pipeline import audit, utcnow
from digest.store import accounts, db
from digest.store.models import ApiKey, ApiScope

__all__ = ["ApiKeyRow", "add_key", "key_of", "list_keys", "revoke_key"]

PREFIX = "dg_"


@dataclass(frozen=True)
class ApiKeyRow:
    """An API key as shown; `token` only right after it was made."""

    name: str
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    token: str = ""

    @classmethod
    def of(cls, key: ApiKey, token: str = "") -> ApiKeyRow:
        return cls(
            key.name,
            key.scope.value,
            key.prefix,
            key.created_at,
            key.revoked_at,
            key.last_used_at,
            token,
        )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_key(
    factory: sessionmaker[Session],
    name: str,
    scope: ApiScope,
    *,
    by: str,
    now: datetime | None = None,
) -> ApiKeyRow:
    """Make a key called `name` with `scope`; the returned row carries its token (the only
    time it is known). Raises `DigestError` when the name is empty or taken."""
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 100:
        raise DigestError(f"{name!r}: an API key's name has 1 to 100 characters")
    token = PREFIX + secrets.token_urlsafe(32)
    with db.transaction(factory) as session:
        if accounts.api_key_by_name(session, name) is not None:
            raise DigestError(f"an API key called {name!r} exists; `digest api-keys list`")
        key = ApiKey(
            name=name, scope=scope, token_hash=_hash(token), prefix=token[:10], created_at=now
        )
        session.add(key)
        audit.record_in(session, now, by, "api_key_added", f"api key {name}", scope.value)
        return ApiKeyRow.of(key, token)


def list_keys(factory: sessionmaker[Session]) -> list[ApiKeyRow]:
    """Every key, revoked ones too, by name."""
    with factory() as session:
        return [ApiKeyRow.of(key) for key in accounts.all_api_keys(session)]


def revoke_key(
    factory: sessionmaker[Session], name: str, *, by: str, now: datetime | None = None
) -> ApiKeyRow:
    """Revoke the key called `name` (kept, marked revoked); `NotFoundError` when unknown."""
    now = now or utcnow()
    with db.transaction(factory) as session:
        key = accounts.api_key_by_name(session, name)
        if key is None:
            raise NotFoundError(f"no API key {name!r}; `digest api-keys list` shows them")
        if key.revoked_at is None:
            key.revoked_at = now
            audit.record_in(session, now, by, "api_key_revoked", f"api key {name}")
        return ApiKeyRow.of(key)


def key_of(
    factory: sessionmaker[Session], token: str, *, now: datetime | None = None
) -> ApiKeyRow | None:
    """The live key whose token this is (its last use noted), or None (unknown, revoked)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    with db.transaction(factory) as session:
        key = accounts.api_key_by_hash(session, _hash(token))
        if key is None or key.revoked_at is not None:
            return None
        key.last_used_at = now or utcnow()
        return ApiKeyRow.of(key)
