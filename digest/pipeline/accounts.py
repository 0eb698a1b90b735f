"""Named accounts of the editor's desk: add, list, remove, check a password, sign in by an
emailed link, and the one role check the desk and the API share (`permits`).

Passwords are hashed with argon2id (argon2-cffi's defaults: RFC 9106's second recommended
profile) and re-hashed at the next sign-in when those defaults change. The emailed link
carries the account, an expiry and a stamp of the account's last sign-in, signed with a key
of its own (`KeyPurpose.SIGN_IN`): it works once (signing in changes the stamp) and for
`SIGN_IN_MINUTES`.

Without any account the desk keeps the shared [web] admin_password, and whoever knows it is
an admin: the one-person publication.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import argon2
from markupsafe import escape
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver.message import verp_address
from digest.deliver.notice import build_notice, sender_domain
from digest.errors import ConfigError, DigestError, NotFoundError
from digest.pipeline import audit, transport, utcnow
from digest.render import RenderedEmail
from digest.store import accounts, db
from digest.store.models import Account, ApiScope, Role
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress
from subscribers.keys import KeyPurpose, derive_key

__all__ = [
    "MIN_PASSWORD",
    "SIGN_IN_MINUTES",
    "AccountRow",
    "SignedIn",
    "add_account",
    "check_password",
    "has_accounts",
    "list_accounts",
    "permits",
    "read_sign_in",
    "remove_account",
    "send_sign_in",
    "sign_in_token",
]

SIGN_IN_MINUTES = 15
"""How long an emailed sign-in link works."""

MIN_PASSWORD = 12
"""Characters a password needs at least (NIST SP 800-63B asks 8; a desk deserves more)."""

_hasher = argon2.PasswordHasher()

# What each role and each API scope may do. Editors curate, test and approve; admins also
# manage sources, subscribers and accounts, and read the audit log. API scopes nest.
# (Two tables: a role and a scope may share a name, "admin", and differ.)
_EDITOR = frozenset({"read", "curate", "test", "approve", "schedule", "draft", "collect"})
_ROLE_GRANTS: dict[Role, frozenset[str]] = {
    Role.EDITOR: _EDITOR,
    Role.ADMIN: _EDITOR | {"sources", "subscribers", "accounts", "audit", "subscribe"},
}
_SCOPE_GRANTS: dict[ApiScope, frozenset[str]] = {
    ApiScope.SUBSCRIBE: frozenset({"subscribe"}),
    ApiScope.READ: frozenset({"subscribe", "read"}),
    ApiScope.ADMIN: frozenset({"subscribe", "read", "draft", "collect", "subscribers"}),
}


def permits(grant: Role | ApiScope, action: str) -> bool:
    """Whether an account's role or an API key's scope allows `action` ("approve",
    "subscribers", "audit", "read", "draft", …)."""
    if isinstance(grant, ApiScope):
        return action in _SCOPE_GRANTS[grant]
    return action in _ROLE_GRANTS[grant]


@dataclass(frozen=True)
class AccountRow:
    """An account as shown: plain values, no password hash."""

    name: str
    email: str
    role: str
    created_at: datetime
    last_login_at: datetime | None
    has_password: bool

    @classmethod
    def of(cls, account: Account) -> AccountRow:
        return cls(
            name=account.name,
            email=account.email,
            role=account.role.value,
            created_at=account.created_at,
            last_login_at=account.last_login_at,
            has_password=account.password_hash is not None,
        )


def _address(email: str) -> str:
    try:
        return normalize(email)
    except InvalidAddress as exc:
        raise DigestError(f"{email!r} is not an email address: {exc}") from exc


def add_account(
    factory: sessionmaker[Session],
    name: str,
    email: str,
    *,
    role: Role,
    password: str | None,
    by: str,
    now: datetime | None = None,
) -> AccountRow:
    """Add an account; `password` None means it signs in by emailed link only.

    Raises `DigestError` naming the culprit for an empty name, a bad address, a short
    password, or a name or address already taken."""
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 100:
        raise DigestError(f"{name!r}: an account's name has 1 to 100 characters")
    address = _address(email)
    if password is not None and len(password) < MIN_PASSWORD:
        raise DigestError(
            f"the password for {name!r} is too short: use at least {MIN_PASSWORD} characters"
        )
    hashed = _hasher.hash(password) if password is not None else None
    with db.transaction(factory) as session:
        if accounts.account_by_name(session, name) is not None:
            raise DigestError(f"an account called {name!r} exists; `digest editors list`")
        if accounts.account_by_email(session, address) is not None:
            raise DigestError(f"{address} already has an account; `digest editors list`")
        account = Account(name=name, email=address, role=role, password_hash=hashed, created_at=now)
        session.add(account)
        audit.record_in(session, now, by, "account_added", f"account {name}", role.value)
        return AccountRow.of(account)


def list_accounts(factory: sessionmaker[Session]) -> list[AccountRow]:
    """Every account, by name."""
    with factory() as session:
        return [AccountRow.of(account) for account in accounts.all_accounts(session)]


def has_accounts(factory: sessionmaker[Session]) -> bool:
    """Whether any named account exists (else the desk takes the shared password)."""
    with factory() as session:
        return accounts.count_accounts(session) > 0


def remove_account(
    factory: sessionmaker[Session], name_or_email: str, *, by: str, now: datetime | None = None
) -> AccountRow:
    """Remove the account with this name or address; `NotFoundError` when there is none.

    Refuses to remove the last admin while other accounts remain: nobody could manage them.
    """
    now = now or utcnow()
    with db.transaction(factory) as session:
        account = _find(session, name_or_email)
        others = [a for a in accounts.all_accounts(session) if a.id != account.id]
        if account.role is Role.ADMIN and others and all(a.role is not Role.ADMIN for a in others):
            raise DigestError(
                f"{account.name} is the last admin: add another admin first "
                "(`digest editors add NAME EMAIL --role admin`)"
            )
        row = AccountRow.of(account)
        session.delete(account)
        audit.record_in(session, now, by, "account_removed", f"account {account.name}")
        return row


def _find(session: Session, name_or_email: str) -> Account:
    account = accounts.account_by_name(session, name_or_email)
    if account is None and "@" in name_or_email:
        try:
            account = accounts.account_by_email(session, normalize(name_or_email))
        except InvalidAddress:
            account = None
    if account is None:
        raise NotFoundError(f"no account {name_or_email!r}; `digest editors list` shows them")
    return account


@dataclass(frozen=True)
class SignedIn:
    """Who signed in: what the desk keeps in its session."""

    name: str
    role: str


def check_password(
    factory: sessionmaker[Session], email: str, password: str, *, now: datetime | None = None
) -> SignedIn | None:
    """The account whose address and password these are, or None (the same time is spent
    hashing whether or not the address has an account)."""
    now = now or utcnow()
    try:
        address = normalize(email)
    except InvalidAddress:
        address = ""
    with db.transaction(factory) as session:
        account = accounts.account_by_email(session, address) if address else None
        stored = account.password_hash if account is not None else None
        if account is None or stored is None:
            _spend_a_hash(password)
            return None
        try:
            _hasher.verify(stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return None
        if _hasher.check_needs_rehash(stored):
            account.password_hash = _hasher.hash(password)
        account.last_login_at = now
        return SignedIn(account.name, account.role.value)


@functools.cache
def _dummy() -> str:
    """A hash of nothing anyone knows, made on first use (not at import: start-up time)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _spend_a_hash(password: str) -> None:
    """Verify against a throwaway hash, so an unknown address answers no faster."""
    with contextlib.suppress(argon2.exceptions.VerificationError):
        _hasher.verify(_dummy(), password)


# --- sign-in by emailed link --------------------------------------------------------------


def _link_key(settings: Settings) -> bytes:
    transport.tokens(settings)  # the same error as elsewhere when the secret is missing
    return derive_key(settings.web.secret_key.reveal(), KeyPurpose.SIGN_IN)


def _stamp(account: Account) -> str:
    seen = account.last_login_at.isoformat() if account.last_login_at else "never"
    return hashlib.sha256(f"{seen}|{account.password_hash or ''}".encode()).hexdigest()[:16]


def _sign(key: bytes, payload: str) -> str:
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:20]
    raw = payload.encode() + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign_in_token(settings: Settings, account: Account, *, now: datetime) -> str:
    """A token that signs `account` in until `SIGN_IN_MINUTES` from `now`, once."""
    expires = int((now + timedelta(minutes=SIGN_IN_MINUTES)).timestamp())
    return _sign(_link_key(settings), f"{account.id}:{expires}:{_stamp(account)}")


def read_sign_in(
    settings: Settings, factory: sessionmaker[Session], token: str, *, now: datetime | None = None
) -> SignedIn | None:
    """The account a sign-in link's token signs in (and mark it signed in, which spends the
    token), or None for a token that is forged, expired or already used."""
    now = now or utcnow()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        payload, _, _mac = raw.rpartition(".")
        account_id, expires, stamp = payload.split(":")
        ident, deadline = int(account_id), int(expires)
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(_sign(_link_key(settings), payload), token.rstrip("=")):
        return None
    if now.timestamp() > deadline:
        return None
    with db.transaction(factory) as session:
        account = session.get(Account, ident)
        if account is None or not hmac.compare_digest(_stamp(account), stamp):
            return None
        account.last_login_at = now
        return SignedIn(account.name, account.role.value)


def send_sign_in(
    settings: Settings,
    factory: sessionmaker[Session],
    email: str,
    *,
    link: str,
    now: datetime | None = None,
) -> bool:
    """Mail a sign-in link to the account with this address, through the configured
    transport; `link` is the desk's URL that the token is appended to (after "?token=").
    Returns False (and sends nothing) when no account has this address.

    Raises `DigestError` when the transport refused the mail, `ConfigError` for a setting
    that makes it impossible."""
    now = now or utcnow()
    try:
        address = normalize(email)
    except InvalidAddress:
        return False
    with factory() as session:
        account = accounts.account_by_email(session, address)
        if account is None:
            return False
        token = sign_in_token(settings, account, now=now)
        name = account.name
    url = f"{link}?token={quote(token)}"
    title = settings.publication.title_in(settings.default_language)
    minutes = SIGN_IN_MINUTES
    text = (
        f"Hello {name},\n\nsign in to the editor's desk of {title}:\n\n{url}\n\n"
        f"The link works once, for {minutes} minutes. If you did not ask for it, ignore this "
        "mail.\n"
    )
    html = (
        f"<p>Hello {_html(name)},</p><p>sign in to the editor's desk of {_html(title)}:</p>"
        f'<p><a href="{_html(url)}">{_html(url)}</a></p><p>The link works once, for {minutes}'
        " minutes. If you did not ask for it, ignore this mail.</p>"
    )
    rendered = RenderedEmail(
        language=settings.default_language,
        subject=f"Sign in to {title}",
        preheader="",
        html=html,
        text=text,
    )
    _mail(settings, rendered, address, name, now)
    return True


def _html(value: str) -> str:
    return str(escape(value))


def _mail(
    settings: Settings, rendered: RenderedEmail, address: str, name: str, now: datetime
) -> None:
    """Send one notice the way the confirmation mail leaves (the configured transport)."""
    sender = settings.publication.sender
    try:
        domain = sender_domain(sender)
        envelope = verp_address(settings.delivery.bounce_local_part, domain, address)
    except ValueError as exc:
        raise ConfigError(f"[publication] sender or [delivery] bounce_local_part: {exc}") from exc
    data = build_notice(
        rendered,
        sender=sender,
        to_address=address,
        to_name=name,
        message_id=f"sign-in.{now:%Y%m%d%H%M%S}.{secrets.token_hex(6)}",
        date=now,
        envelope_from=envelope,
        dkim=transport.dkim_signer(settings),
    )
    opened = transport.open_sender(settings)
    try:
        result = opened.send(envelope, address, data)
    except OSError as exc:
        raise DigestError(f"the sign-in mail to {address} was not sent: {exc}") from exc
    finally:
        close = getattr(opened, "close", None)
        if callable(close):
            close()
    if not result.ok:
        raise DigestError(f"the sign-in mail to {address} was refused: {result.reply}")
