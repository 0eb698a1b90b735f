"""SQLAlchemy 2.x models: subscribers with their consent record, and suppressed address hashes.

The tables live on this module's `metadata`, which digest's own `Base` shares so that its
tables (deliveries) can hold foreign keys to `subscribers.id`. Times are aware UTC on every
backend; enums are stored as their lowercase values so plain SQL reads them too.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from subscribers.errors import InvalidField

metadata = sa.MetaData()
"""The metadata of the subscriber tables; digest's `Base` uses it too."""

PUBLIC_ID_LENGTH = 22
"""`secrets.token_urlsafe(16)`: 128 random bits in 22 URL-safe characters."""


def new_public_id() -> str:
    """Return a fresh random opaque id: what links carry instead of the address."""
    return secrets.token_urlsafe(16)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite drops the offset; we put it back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the database; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the subscriber tables."""

    metadata = metadata
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy's documented spelling
        datetime: UTCDateTime,
        list[str]: sa.JSON,
    }


def _values(enum_class: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


def _enum(enum_class: type[enum.StrEnum]) -> sa.Enum:
    """Store an enum as its value ("confirmed"), not its Python name, in a VARCHAR."""
    return sa.Enum(enum_class, native_enum=False, length=20, values_callable=_values)


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber is: only `confirmed` ones receive issues."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Cadence(enum.StrEnum):
    """How often a subscriber gets the digest."""

    WEEKLY = "weekly"
    DAILY = "daily"

    @classmethod
    def parse(cls, value: str) -> Cadence:
        """Return the cadence `value` names (any case); raise `InvalidField` naming the choices."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(member.value for member in cls)
            raise InvalidField("cadence", f"cadence {value!r} is not one of {choices}") from None


class ConsentSource(enum.StrEnum):
    """Where consent was given: the operator's CLI, the signup form, or an imported list."""

    CLI = "cli"
    FORM = "form"
    IMPORT = "import"


class SuppressionReason(enum.StrEnum):
    """Why an address must never be re-added."""

    UNSUBSCRIBED = "unsubscribed"
    ERASED = "erased"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(Base):
    """A person on the list: address, preferences, status history and consent record."""

    __tablename__ = "subscribers"
    __table_args__ = (
        # iter_recipients filters on these and walks id order.
        sa.Index("ix_subscribers_recipients", "status", "cadence", "language", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(
        sa.String(PUBLIC_ID_LENGTH), unique=True, default=new_public_id
    )
    """Random and opaque: what tokens carry, never the address."""
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    """Normalized by `addresses.normalize`."""
    name: Mapped[str] = mapped_column(sa.Text, default="")
    language: Mapped[str] = mapped_column(sa.String(20))
    topics: Mapped[list[str]] = mapped_column(default=list)
    """Lowercase; empty means every topic."""
    cadence: Mapped[Cadence] = mapped_column(_enum(Cadence), default=Cadence.WEEKLY)
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.PENDING
    )
    paused: Mapped[bool] = mapped_column(default=False)
    """Chosen on the preferences page: stays subscribed, receives nothing for now."""
    resubscribing: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    """Signed up again after leaving: pending, still suppressed until their own
    confirmation click lifts it (`registry.resubscribe`)."""

    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    complained_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime]
    last_confirmation_sent_at: Mapped[datetime | None]
    links_valid_from: Mapped[datetime | None]
    """Preference links made before this no longer work (set when the subscriber asks
    for new links or changes address); None: every unexpired link works."""
    links_sent_at: Mapped[datetime | None]
    """When new links were last mailed on request (at most a few a day)."""
    bounce_count: Mapped[int] = mapped_column(default=0)
    """Bounces recorded so far; a permanent one, or `threshold` of them, end the subscription."""

    consent_at: Mapped[datetime]
    """When they agreed to `consent_version` (signup, CLI add or import)."""
    consent_source: Mapped[ConsentSource] = mapped_column(_enum(ConsentSource))
    consent_version: Mapped[str] = mapped_column(sa.Text)
    """Which consent text they were shown, as the operator names its versions."""
    consent_ip: Mapped[str | None] = mapped_column(sa.String(45))
    """Only when the operator turns IP recording on (or an imported list had it)."""
    consent_origin: Mapped[str | None] = mapped_column(sa.String(200))
    """Where an imported list says they signed up (its "source" column), as given."""

    def __repr__(self) -> str:
        # No address: reprs end up in logs.
        return f"<Subscriber {self.id} {self.public_id} {self.status}>"


class Suppression(Base):
    """A keyed hash of an address that must never be re-added, and why."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    """HMAC-SHA256 hex of the normalized address (see `suppression.address_hash`)."""
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    created_at: Mapped[datetime]


class SuppressionLift(Base):
    """A suppression that was lifted: who, when and why, kept after the suppression row is
    gone (the undo of an unsubscribe, a bounce or an erasure leaves a trace)."""

    __tablename__ = "suppression_lifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    """The same keyed hash as the suppression had: the address itself is not kept here."""
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    """Why the address had been suppressed."""
    suppressed_at: Mapped[datetime]
    lifted_at: Mapped[datetime]
    lifted_by: Mapped[str] = mapped_column(sa.String(200))
    """The operator's name, or "subscriber" when their own confirmation click lifted it."""
    why: Mapped[str] = mapped_column(sa.Text)
