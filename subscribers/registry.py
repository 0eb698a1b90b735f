"""The subscriber list: add, confirm, unsubscribe, erase, look up and walk the recipients.

Every function takes the caller's session (and `now`) and never commits: the caller owns
the transaction. Addresses go through `addresses.normalize` on the way in. Double opt-in:
`add` leaves a subscriber pending unless `confirmed`; `request_confirmation` then mails the
link through the `send` callable it is given, at most once a day per address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from subscribers import suppression
from subscribers.addresses import normalize
from subscribers.errors import Duplicate, SubscriberError, Suppressed
from subscribers.model import (
    Cadence,
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    SuppressionLift,
    SuppressionReason,
    new_public_id,
)
from subscribers.preferences import check_language, clean_name, clean_topics
from subscribers.tokens import Tokens

CONFIRMATION_INTERVAL = timedelta(days=1)
"""At most one confirmation mail per address in this time: signup forms get abused."""


def add(
    session: Session,
    email: str,
    *,
    name: str = "",
    language: str | None = None,
    topics: Iterable[str] = (),
    cadence: Cadence | str = Cadence.WEEKLY,
    source: ConsentSource,
    consent_version: str,
    confirmed: bool = False,
    consent_ip: str | None = None,
    now: datetime,
    languages: Sequence[str],
    suppression_key: bytes,
    consent_at: datetime | None = None,
    confirmed_at: datetime | None = None,
    consent_origin: str | None = None,
) -> Subscriber:
    """Add a subscriber, pending unless `confirmed`; the default language is `languages[0]`.

    `consent_at`, `confirmed_at` and `consent_origin` keep what an imported list knew of
    their consent (default: now, and no origin).

    Raises `InvalidAddress`, `InvalidField` (language, cadence, name), `Suppressed` when the
    address unsubscribed, was erased, bounced or complained, and `Duplicate` when it is
    already on the list.
    """
    values = new_values(
        normalize(email),
        name=name,
        language=language,
        topics=topics,
        cadence=cadence,
        source=source,
        consent_version=consent_version,
        confirmed=confirmed,
        consent_ip=consent_ip,
        now=now,
        languages=languages,
        consent_at=consent_at,
        confirmed_at=confirmed_at,
        consent_origin=consent_origin,
    )
    address = values["email"]
    found = suppression.find(session, address, key=suppression_key)
    if found is not None:
        raise suppressed_error(address, found.reason, found.created_at)
    if by_email(session, address) is not None:
        raise Duplicate(f"{address} is already subscribed")
    subscriber = Subscriber(**values)
    session.add(subscriber)
    session.flush()
    return subscriber


def new_values(
    address: str,
    *,
    name: str = "",
    language: str | None = None,
    topics: Iterable[str] = (),
    cadence: Cadence | str = Cadence.WEEKLY,
    source: ConsentSource,
    consent_version: str,
    confirmed: bool = False,
    consent_ip: str | None = None,
    now: datetime,
    languages: Sequence[str],
    consent_at: datetime | None = None,
    confirmed_at: datetime | None = None,
    consent_origin: str | None = None,
) -> dict[str, Any]:
    """Return the checked column values of a new subscriber with the normalized `address`,
    without touching the database (`add` checks suppression and duplicates; the bulk import
    checks them for a whole batch at once).

    Raises `InvalidField` naming the language, cadence or name that is wrong.
    """
    if not languages:
        raise ValueError("the publication has no languages; set [publication] languages")
    # Every field is checked before suppression and duplicates, so a bad row says what to fix.
    chosen = check_language(language if language is not None else languages[0], languages)
    chosen_cadence = Cadence.parse(cadence)
    cleaned_name = clean_name(name)
    status = SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.PENDING
    return {
        "public_id": new_public_id(),
        "email": address,
        "name": cleaned_name,
        "language": chosen,
        "topics": clean_topics(topics),
        "cadence": chosen_cadence,
        "status": status,
        "paused": False,
        "resubscribing": False,
        "created_at": now,
        "confirmed_at": (confirmed_at or now) if confirmed else None,
        "status_changed_at": now,
        "bounce_count": 0,
        "consent_at": consent_at or now,
        "consent_source": source,
        "consent_version": consent_version,
        "consent_ip": consent_ip,
        "consent_origin": consent_origin,
    }


def suppressed_error(address: str, reason: SuppressionReason, since: datetime) -> Suppressed:
    """Return the error refusing a suppressed `address` (suppressed for `reason` on `since`)."""
    return Suppressed(
        f"{address} is suppressed ({reason.value} on {since:%Y-%m-%d}); "
        "addresses that left the list are never re-added"
    )


def by_public_id(session: Session, public_id: str) -> Subscriber | None:
    """Return the subscriber a token's `public_id` names, or None."""
    return session.scalars(
        sa.select(Subscriber).where(Subscriber.public_id == public_id)
    ).one_or_none()


def by_email(session: Session, email: str) -> Subscriber | None:
    """Return the subscriber with this address (any spelling), or None; may raise InvalidAddress."""
    return session.scalars(
        sa.select(Subscriber).where(Subscriber.email == normalize(email))
    ).one_or_none()


_ON_LIST = (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED)


def _suppress(
    session: Session, subscriber: Subscriber, reason: SuppressionReason, now: datetime, key: bytes
) -> None:
    suppression.suppress(session, subscriber.email, key=key, reason=reason, now=now)


def _set_status(subscriber: Subscriber, status: SubscriberStatus, now: datetime) -> None:
    subscriber.status = status
    subscriber.status_changed_at = now


def confirm(
    session: Session,
    subscriber: Subscriber,
    *,
    now: datetime,
    suppression_key: bytes | None = None,
) -> bool:
    """Confirm a pending subscriber; return False (and change nothing) for any other status.

    An old confirmation link used after unsubscribing must not subscribe anyone again. With
    `suppression_key`, a person who had left and signed up again has their own suppression
    lifted by this click (and only by it: see `resubscribe`), recorded as theirs.
    """
    if subscriber.status is not SubscriberStatus.PENDING:
        return False
    if subscriber.resubscribing:
        if suppression_key is None:
            raise ValueError("confirming a re-subscription lifts a suppression: pass its key")
        suppression.lift(
            session,
            subscriber.email,
            key=suppression_key,
            by="subscriber",
            why="signed up again through the form and confirmed with the link mailed to them",
            now=now,
        )
        subscriber.resubscribing = False
    _set_status(subscriber, SubscriberStatus.CONFIRMED, now)
    subscriber.confirmed_at = now
    session.flush()
    return True


RESUBSCRIBABLE = (
    SuppressionReason.UNSUBSCRIBED,
    SuppressionReason.ERASED,
    SuppressionReason.BOUNCED,
)
"""Suppressions a person may end by signing up again and confirming (not complaints:
the operator decides those with `unsuppress`)."""


def resubscribe(
    session: Session,
    email: str,
    *,
    name: str = "",
    language: str | None = None,
    topics: Iterable[str] = (),
    cadence: Cadence | str = Cadence.WEEKLY,
    source: ConsentSource,
    consent_version: str,
    consent_ip: str | None = None,
    now: datetime,
    languages: Sequence[str],
    suppression_key: bytes,
) -> Subscriber:
    """Let a person who unsubscribed, was erased or bounced sign up again: they become
    pending, with a new consent record, and receive nothing but the confirmation mail; the
    suppression stays until they confirm (`confirm` with the key lifts it).

    Raises `Suppressed` for complaints, and what `add` raises otherwise.
    """
    address = normalize(email)
    found = suppression.find(session, address, key=suppression_key)
    if found is None or found.reason not in RESUBSCRIBABLE:
        return add(
            session, email, name=name, language=language, topics=topics, cadence=cadence,
            source=source, consent_version=consent_version, consent_ip=consent_ip, now=now,
            languages=languages, suppression_key=suppression_key,
        )  # fmt: skip
    chosen = check_language(language if language is not None else languages[0], languages)
    chosen_cadence = Cadence.parse(cadence)
    existing = by_email(session, address)
    if existing is not None and existing.status in _ON_LIST:
        raise Duplicate(f"{address} is already subscribed")
    subscriber = existing or Subscriber(email=address, created_at=now, bounce_count=0, paused=False)
    subscriber.name = clean_name(name)
    subscriber.language = chosen
    subscriber.topics = clean_topics(topics)
    subscriber.cadence = chosen_cadence
    subscriber.confirmed_at = None
    subscriber.consent_at = now
    subscriber.consent_source = source
    subscriber.consent_version = consent_version
    subscriber.consent_ip = consent_ip
    subscriber.resubscribing = True
    subscriber.bounce_count = 0
    _set_status(subscriber, SubscriberStatus.PENDING, now)
    if existing is None:
        session.add(subscriber)
    session.flush()
    return subscriber


def request_confirmation(
    session: Session,
    subscriber: Subscriber,
    *,
    now: datetime,
    send: Callable[[Subscriber, str], None],
    tokens: Tokens,
) -> bool:
    """Send a pending subscriber the confirmation link via `send(subscriber, token)`.

    Returns False without sending when the subscriber is not pending or was sent one less
    than `CONFIRMATION_INTERVAL` ago. The time is recorded only after `send` returns, so a
    failed send can be retried at once.
    """
    if subscriber.status is not SubscriberStatus.PENDING:
        return False
    last = subscriber.last_confirmation_sent_at
    if last is not None and now - last < CONFIRMATION_INTERVAL:
        return False
    send(subscriber, tokens.confirm_token(subscriber.public_id, now=now))
    subscriber.last_confirmation_sent_at = now
    session.flush()
    return True


def unsubscribe(
    session: Session, subscriber: Subscriber, *, now: datetime, suppression_key: bytes
) -> bool:
    """Unsubscribe at once and suppress the address; return False if it already had left."""
    _suppress(session, subscriber, SuppressionReason.UNSUBSCRIBED, now, suppression_key)
    if subscriber.status not in _ON_LIST:
        return False
    _set_status(subscriber, SubscriberStatus.UNSUBSCRIBED, now)
    subscriber.unsubscribed_at = now
    session.flush()
    return True


def record_bounce(
    session: Session,
    subscriber: Subscriber,
    *,
    permanent: bool,
    now: datetime,
    suppression_key: bytes,
    threshold: int = 3,
) -> bool:
    """Count a bounce; a permanent one, or `threshold` in all, end the subscription.

    Returns True when this bounce moved the subscriber to `bounced` (and suppressed it).
    """
    subscriber.bounce_count += 1
    ends = permanent or subscriber.bounce_count >= threshold
    if not ends or subscriber.status not in _ON_LIST:
        session.flush()
        return False
    _set_status(subscriber, SubscriberStatus.BOUNCED, now)
    subscriber.bounced_at = now
    _suppress(session, subscriber, SuppressionReason.BOUNCED, now, suppression_key)
    return True


def record_complaint(
    session: Session, subscriber: Subscriber, *, now: datetime, suppression_key: bytes
) -> bool:
    """Record a spam complaint: the subscriber gets nothing more, ever; False if known."""
    if subscriber.status is SubscriberStatus.COMPLAINED:
        return False
    _set_status(subscriber, SubscriberStatus.COMPLAINED, now)
    subscriber.complained_at = now
    _suppress(session, subscriber, SuppressionReason.COMPLAINED, now, suppression_key)
    return True


def erase(
    session: Session, subscriber: Subscriber, *, now: datetime, suppression_key: bytes
) -> None:
    """Delete the subscriber entirely, keeping only the keyed hash that blocks re-adding."""
    _suppress(session, subscriber, SuppressionReason.ERASED, now, suppression_key)
    session.delete(subscriber)
    session.flush()


def remove(session: Session, subscriber: Subscriber) -> None:
    """Delete the subscriber without suppressing the address (typos, test addresses).

    When the person asked to leave, use `unsubscribe` or `erase` instead, so they stay gone.
    """
    session.delete(subscriber)
    session.flush()


def purge_pending(session: Session, *, older_than: timedelta, now: datetime) -> int:
    """Delete subscribers still unconfirmed `older_than` after their last confirmation
    mail; never those who were never mailed one. Return how many."""
    # Only people who were asked: a pending subscriber never sent a confirmation mail (an
    # old import, a mail that failed) is the operator's to look at, never silently deleted.
    stale = sa.and_(
        Subscriber.status == SubscriberStatus.PENDING,
        Subscriber.last_confirmation_sent_at.is_not(None),
        Subscriber.created_at < now - older_than,
        Subscriber.last_confirmation_sent_at < now - older_than,
    )
    count = session.scalar(sa.select(sa.func.count()).select_from(Subscriber).where(stale)) or 0
    session.execute(sa.delete(Subscriber).where(stale))
    return count


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def export(subscriber: Subscriber) -> dict[str, Any]:
    """Return everything we hold about the subscriber, JSON-ready (their data export)."""
    return {
        "email": subscriber.email,
        "public_id": subscriber.public_id,
        "name": subscriber.name,
        "language": subscriber.language,
        "topics": list(subscriber.topics),
        "cadence": subscriber.cadence.value,
        "status": subscriber.status.value,
        "paused": subscriber.paused,
        "created_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "unsubscribed_at": _iso(subscriber.unsubscribed_at),
        "bounced_at": _iso(subscriber.bounced_at),
        "complained_at": _iso(subscriber.complained_at),
        "status_changed_at": _iso(subscriber.status_changed_at),
        "last_confirmation_sent_at": _iso(subscriber.last_confirmation_sent_at),
        "bounce_count": subscriber.bounce_count,
        "consent": {
            "at": _iso(subscriber.consent_at),
            "source": subscriber.consent_source.value,
            "version": subscriber.consent_version,
            "ip": subscriber.consent_ip,
            "origin": subscriber.consent_origin,
        },
    }


def iter_subscribers(
    session: Session, *, status: SubscriberStatus | None = None, batch: int = 1000
) -> Iterator[Subscriber]:
    """Yield every subscriber (or those with `status`) in id order, `batch` rows at a time."""
    query = sa.select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    # The context closes the (server-side, on PostgreSQL) cursor when the caller stops early.
    with session.scalars(query.execution_options(yield_per=batch)) as result:
        yield from result


def iter_recipients(
    session: Session,
    *,
    cadence: Cadence | str,
    languages: Sequence[str],
    topics: Iterable[str] | None = None,
    batch: int = 1000,
) -> Iterator[Subscriber]:
    """Yield confirmed, unpaused subscribers of `cadence` and `languages` in id order.

    Streams `batch` rows at a time (never the whole list). With `topics` (what an issue
    covers), only subscribers who chose one of them, or chose none (everything), come out.
    """
    query = (
        sa.select(Subscriber)
        .where(
            Subscriber.status == SubscriberStatus.CONFIRMED,
            Subscriber.paused.is_(False),
            Subscriber.cadence == Cadence.parse(cadence),
            Subscriber.language.in_(list(languages)),
        )
        .order_by(Subscriber.id)
        .execution_options(yield_per=batch)
    )
    wanted = set(clean_topics(topics)) if topics is not None else None
    # Topics are a JSON list, which SQLite and PostgreSQL query differently: filter here.
    with session.scalars(query) as result:
        for subscriber in result:
            if wanted is None or not subscriber.topics or wanted.intersection(subscriber.topics):
                yield subscriber


def unsuppress(
    session: Session, email: str, *, suppression_key: bytes, by: str, why: str, now: datetime
) -> tuple[SuppressionLift, Subscriber | None]:
    """Lift the suppression of `email` (an operator's undo), keeping who/when/why.

    A subscriber still on record who was marked bounced is confirmed again (the bounce was
    the mistake being undone); one who unsubscribed or complained keeps that status (they
    left by their own act) and may now sign up again. Raises `SubscriberError` when the
    address is not suppressed.
    """
    address = normalize(email)
    lifted = suppression.lift(session, address, key=suppression_key, by=by, why=why, now=now)
    if lifted is None:
        raise SubscriberError(f"{address} is not suppressed; nothing to lift")
    subscriber = by_email(session, address)
    if subscriber is not None and subscriber.status is SubscriberStatus.BOUNCED:
        _set_status(subscriber, SubscriberStatus.CONFIRMED, now)
        subscriber.bounce_count = 0
        subscriber.bounced_at = None
    if subscriber is not None:
        subscriber.resubscribing = False
    session.flush()
    return lifted, subscriber
