"""The subscriber list as the editor's desk reads it: search, one person's record (consent,
deliveries, bounces) and changing what their preferences page would change.

Adding, importing, exporting, removing and unsuppressing are `digest.pipeline.people`'s
functions, the ones `digest subscribers …` calls; only what the CLI has no verb for is here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import DigestError, NotFoundError
from digest.pipeline.people import SubscriberRow
from digest.store import db
from digest.store.models import Delivery, Issue
from subscribers import preferences, registry
from subscribers.errors import InvalidField
from subscribers.model import Subscriber

SEARCH_LIMIT = 50
DELIVERIES_SHOWN = 20


@dataclass(frozen=True)
class DeliveryRow:
    """One issue sent (or being sent) to a subscriber."""

    number: int
    variant: str
    state: str
    attempts: int
    last_code: int | None
    last_reply: str | None
    created_at: datetime


@dataclass(frozen=True)
class Record:
    """Everything the desk shows about one subscriber."""

    row: SubscriberRow
    held: dict[str, Any]
    """`registry.export`: what their own data export holds (consent record included)."""
    deliveries: tuple[DeliveryRow, ...]
    bounces: int


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def search(
    factory: sessionmaker[Session], query: str, *, limit: int = SEARCH_LIMIT
) -> tuple[SubscriberRow, ...]:
    """Subscribers whose address or name contains `query` (any case), newest first; the
    newest `limit` when `query` is empty."""
    statement = sa.select(Subscriber).order_by(Subscriber.created_at.desc(), Subscriber.id.desc())
    if query.strip():
        pattern = _like(query.strip())
        statement = statement.where(
            sa.or_(
                sa.func.lower(Subscriber.email).like(pattern, escape="\\"),
                sa.func.lower(Subscriber.name).like(pattern, escape="\\"),
            )
        )
    with factory() as session:
        return tuple(SubscriberRow.of(s) for s in session.scalars(statement.limit(limit)))


def _found(session: Session, public_id: str) -> Subscriber:
    subscriber = registry.by_public_id(session, public_id)
    if subscriber is None:
        raise NotFoundError(f"no subscriber {public_id!r}; search the list for them")
    return subscriber


def record(factory: sessionmaker[Session], public_id: str) -> Record:
    """The subscriber `public_id`: their row, consent, latest deliveries and bounces."""
    with factory() as session:
        subscriber = _found(session, public_id)
        rows = session.execute(
            sa.select(Delivery, Issue.number)
            .join(Issue, Issue.id == Delivery.issue_id)
            .where(Delivery.subscriber_id == subscriber.id)
            .order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .limit(DELIVERIES_SHOWN)
        ).all()
        return Record(
            row=SubscriberRow.of(subscriber),
            held=registry.export(subscriber),
            deliveries=tuple(
                DeliveryRow(
                    number=number,
                    variant=delivery.variant,
                    state=delivery.state.value,
                    attempts=delivery.attempts,
                    last_code=delivery.last_code,
                    last_reply=delivery.last_reply,
                    created_at=delivery.created_at,
                )
                for delivery, number in rows
            ),
            bounces=subscriber.bounce_count,
        )


def change(
    settings: Settings,
    factory: sessionmaker[Session],
    public_id: str,
    *,
    name: str,
    language: str,
    topics: Iterable[str],
    cadence: str,
    paused: bool,
) -> None:
    """Change a subscriber's name, language, topics, cadence and pause, as their own
    preferences page does. Raises `DigestError` naming the field that is refused."""
    with db.transaction(factory) as session:
        subscriber = _found(session, public_id)
        try:
            preferences.change(
                session,
                subscriber,
                languages=settings.publication.languages,
                name=name,
                language=language,
                topics=list(topics),
                cadence=cadence,
                paused=paused,
            )
        except InvalidField as exc:
            raise DigestError(f"{exc.field}: {exc}") from exc
