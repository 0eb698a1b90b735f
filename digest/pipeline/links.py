"""New links on request: a subscriber who lost their links, or whose preference link is
too old (or too old to export or erase with), gets a fresh one by mail.

Asking revokes every earlier preference link (`Subscriber.links_valid_from`), so a link in
an old, forwarded or leaked mail stops working; unsubscribe links keep working. The mail
goes only to the address on the list, never to an address typed into a form, and at most
`MAILS_PER_DAY` times a day per subscriber. It greets nobody by name.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Sender
from digest.deliver.message import preferences_url, unsubscribe_url, verp_address
from digest.deliver.notice import build_notice, sender_domain
from digest.pipeline import environment, transport
from digest.render.notices import render_links
from digest.store import db
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress
from subscribers.model import Subscriber, SubscriberStatus
from subscribers.tokens import FRESH_LINK

MAILS_PER_DAY = 3
"""New-link mails one subscriber may get in 24 hours."""


def revoke_links(subscriber: Subscriber, *, now: datetime) -> None:
    """Make every preference link made before `now` stop working (whole seconds: a link
    made in this same second, such as the one about to be mailed, still works)."""
    subscriber.links_valid_from = now.replace(microsecond=0)


def links_revoked(subscriber: Subscriber, issued_at: datetime) -> bool:
    """Whether a preference link made at `issued_at` was revoked for `subscriber`."""
    since = subscriber.links_valid_from
    if since is None:
        return False
    if since.tzinfo is None:  # SQLite hands back naive UTC
        since = since.replace(tzinfo=issued_at.tzinfo)
    return issued_at < since


def _may_mail(subscriber: Subscriber, now: datetime) -> bool:
    last = subscriber.links_sent_at
    if last is None:
        return True
    if last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    # Spread over the day: one mail per 24h / MAILS_PER_DAY.
    return now - last >= timedelta(days=1) / MAILS_PER_DAY


def send_links(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    public_id: str | None = None,
    email: str | None = None,
    now: datetime,
    sender: Sender | None = None,
) -> bool:
    """Revoke the subscriber's preference links and mail them a fresh one; return whether
    a mail went out. Finds them by `public_id` or by `email`; nobody found, not confirmed,
    or mailed too recently: nothing happens (the web page says the same either way)."""
    with db.transaction(factory) as session:
        subscriber = _find(session, public_id, email)
        if subscriber is None or subscriber.status is not SubscriberStatus.CONFIRMED:
            return False
        if not _may_mail(subscriber, now):
            return False
        revoke_links(subscriber, now=now)
        subscriber.links_sent_at = now
        address, language, found_id = subscriber.email, subscriber.language, subscriber.public_id
    tokens = transport.tokens(settings)
    base = settings.publication.base_url
    rendered = render_links(
        title=settings.publication.title,
        language=language,
        preferences_url=preferences_url(
            base, language, tokens.preferences_token(found_id, now=now)
        ),
        unsubscribe_url=unsubscribe_url(
            base, language, tokens.unsubscribe_token(found_id, now=now)
        ),
        env=environment(settings),
        fresh_hours=int(FRESH_LINK.total_seconds() // 3600),
    )
    domain = sender_domain(settings.publication.sender)
    envelope = verp_address(settings.delivery.bounce_local_part, domain, address)
    data = build_notice(
        rendered,
        sender=settings.publication.sender,
        to_address=address,
        to_name="",
        message_id=f"links.{now:%Y%m%d%H%M%S}.{secrets.token_hex(8)}",
        date=now,
        envelope_from=envelope,
        dkim=transport.dkim_signer(settings),
    )
    opened = sender is None
    channel = sender or transport.open_sender(settings)
    try:
        result = channel.send(envelope, address, data)
    finally:
        close = getattr(channel, "close", None)
        if opened and callable(close):
            close()
    return result.ok


def _find(session: Session, public_id: str | None, email: str | None) -> Subscriber | None:
    if public_id is not None:
        query = sa.select(Subscriber).where(Subscriber.public_id == public_id)
        return session.scalars(query).one_or_none()
    if email is not None:
        try:
            address = normalize(email)
        except InvalidAddress:
            return None
        return session.scalars(
            sa.select(Subscriber).where(Subscriber.email == address)
        ).one_or_none()
    return None
