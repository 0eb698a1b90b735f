"""SQLAlchemy 2.x models: sources with their fetch state, entries, events and their changes,
issues, and the delivery ledger.

Times are stored as aware UTC (`UTCDateTime`, shared with the subscriber tables, restores
the zone SQLite forgets); all-day event dates are plain dates and never pass through UTC.
The same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from digest.store.states import DeliveryState as DeliveryState
from digest.store.states import IssueStatus as IssueStatus
from digest.store.states import PauseKind as PauseKind
from subscribers.model import UTCDateTime
from subscribers.model import metadata as shared_metadata


class Base(DeclarativeBase):
    """Declarative base of every digest table.

    It shares the subscriber tables' metadata, so deliveries can point at subscribers and
    one `create_all` makes the whole schema.
    """

    metadata = shared_metadata
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy's documented spelling
        datetime: UTCDateTime,
        list[str]: sa.JSON,
    }


class SourceKind(enum.StrEnum):
    """What a source's bytes are."""

    FEED = "feed"
    CALENDAR = "calendar"
    PAGE = "page"


class SourceOrigin(enum.StrEnum):
    """Where a source was declared: the config file (synced on each run) or the CLI."""

    CONFIG = "config"
    CLI = "cli"


class Source(Base):
    """A feed, calendar or page we collect, with everything needed to fetch it politely."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    url: Mapped[str] = mapped_column(sa.Text)
    """Where it is fetched from; a 301/308 moves it."""
    declared_url: Mapped[str] = mapped_column(sa.Text, default="")
    """The url as the config file or CLI gave it (a moved source keeps following `url`)."""
    kind: Mapped[SourceKind] = mapped_column(sa.Enum(SourceKind, native_enum=False, length=20))
    language: Mapped[str] = mapped_column(sa.String(20))
    topics: Mapped[list[str]] = mapped_column(default=list)
    section: Mapped[str] = mapped_column(sa.String(100), default="news")
    origin: Mapped[SourceOrigin] = mapped_column(
        sa.Enum(SourceOrigin, native_enum=False, length=20), default=SourceOrigin.CLI
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    # fetch state
    etag: Mapped[str | None] = mapped_column(sa.Text)
    last_modified: Mapped[str | None] = mapped_column(sa.Text)
    last_fetched_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    next_fetch_at: Mapped[datetime | None]
    title: Mapped[str | None] = mapped_column(sa.Text)
    """The feed's or calendar's own title, as last seen."""
    backfill_days: Mapped[int | None] = mapped_column(default=None)
    """`digest sources add --backfill DAYS`: on its first collection, items of the last DAYS
    days are news; None: items older than the last issue sent are history."""

    entries: Mapped[list[EntrySource]] = relationship(back_populates="source")

    def __repr__(self) -> str:
        return f"<Source {self.name} {self.kind} {self.url}>"


class Entry(Base):
    """One news item or publication, once, however many sources carry it."""

    __tablename__ = "entries"
    __table_args__ = (
        sa.Index("ix_entries_first_seen", "first_seen_at"),
        sa.Index("ix_entries_link", "link"),
        sa.Index("ix_entries_fingerprint", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guid: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    link: Mapped[str | None] = mapped_column(sa.Text)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    """Hash of title + text: the identity of last resort, for items with neither guid nor link."""
    title: Mapped[str] = mapped_column(sa.Text)
    summary_html: Mapped[str] = mapped_column(sa.Text, default="")
    summary_text: Mapped[str] = mapped_column(sa.Text, default="")
    author: Mapped[str | None] = mapped_column(sa.Text)
    language: Mapped[str] = mapped_column(sa.String(20))
    image_url: Mapped[str | None] = mapped_column(sa.Text)
    categories: Mapped[list[str]] = mapped_column(default=list)
    published_at: Mapped[datetime]
    """From the feed; the first-seen time when the feed gives none."""
    dated_by_feed: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    changed_at: Mapped[datetime | None]
    """When title, link or summary last changed after first being seen."""
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    backlog: Mapped[bool] = mapped_column(default=False)
    """History found when its source was first collected: stored, never announced as news."""
    alternates: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    """Its `hreflang` alternates and canonical link: the same story in other languages."""
    single_document: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    """A feedless page tracked as one document (a call, a vacancy): announced again, once,
    each time it changes."""

    sources: Mapped[list[EntrySource]] = relationship(
        back_populates="entry", cascade="all, delete-orphan"
    )


class EntrySource(Base):
    """Which sources carried an entry (their topics and sections all apply)."""

    __tablename__ = "entry_sources"

    entry_id: Mapped[int] = mapped_column(
        sa.ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    guid: Mapped[str | None] = mapped_column(sa.Text)
    """The id this source gives the entry (may differ from the entry's own guid)."""
    first_seen_at: Mapped[datetime]

    entry: Mapped[Entry] = relationship(back_populates="sources")
    source: Mapped[Source] = relationship(back_populates="entries")


class EventStatus(enum.StrEnum):
    """RFC 5545 STATUS of an event occurrence."""

    CONFIRMED = "CONFIRMED"
    TENTATIVE = "TENTATIVE"
    CANCELLED = "CANCELLED"


class Event(Base):
    """One occurrence of a calendar event: identity is source + UID + RECURRENCE-ID."""

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("source_id", "uid", "recurrence_id", name="uq_events_identity"),
        sa.Index("ix_events_starts", "starts_at"),
        sa.Index("ix_events_start_date", "start_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(sa.String(500))
    recurrence_id: Mapped[str] = mapped_column(sa.String(64), default="")
    summary: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    location: Mapped[str] = mapped_column(sa.Text, default="")
    url: Mapped[str | None] = mapped_column(sa.Text)
    organizer: Mapped[str | None] = mapped_column(sa.Text)
    categories: Mapped[list[str]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(sa.String(20))
    all_day: Mapped[bool] = mapped_column(default=False)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    start_date: Mapped[date | None] = mapped_column(sa.Date)
    end_date: Mapped[date | None] = mapped_column(sa.Date)
    """Exclusive, as in RFC 5545."""
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[EventStatus] = mapped_column(
        sa.Enum(EventStatus, native_enum=False, length=20), default=EventStatus.CONFIRMED
    )
    sequence: Mapped[int] = mapped_column(default=0)
    last_modified: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    changed_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    """Set when the occurrence vanished from its calendar (inside the expanded window)."""
    content_hash: Mapped[str] = mapped_column(sa.String(64))

    source: Mapped[Source] = relationship()
    changes: Mapped[list[EventChange]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="EventChange.id"
    )


class EventSeries(Base):
    """A recurring event as its calendar defines it (master VEVENT and overrides), so
    `events.ics` can publish the series whole: identity is source + UID."""

    __tablename__ = "event_series"
    __table_args__ = (sa.UniqueConstraint("source_id", "uid", name="uq_event_series_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(sa.String(500))
    ics: Mapped[str] = mapped_column(sa.Text)
    """A VCALENDAR with the series' VEVENTs (see `collect.Series`)."""
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    first_seen_at: Mapped[datetime]
    changed_at: Mapped[datetime]
    """When `ics` last changed: the DTSTAMP of its published VEVENTs."""

    source: Mapped[Source] = relationship()


class ChangeKind(enum.StrEnum):
    """What about an event changed; later issues announce it."""

    RESCHEDULED = "rescheduled"
    MOVED = "moved"
    CANCELLED = "cancelled"
    REINSTATED = "reinstated"


class EventChange(Base):
    """A recorded change of an event's time, place or status."""

    __tablename__ = "event_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[ChangeKind] = mapped_column(sa.Enum(ChangeKind, native_enum=False, length=20))
    old_value: Mapped[str] = mapped_column(sa.Text, default="")
    new_value: Mapped[str] = mapped_column(sa.Text, default="")
    detected_at: Mapped[datetime]

    event: Mapped[Event] = relationship(back_populates="changes")


class Issue(Base):
    """One issue of the digest, owned by its slot: a cadence and a scheduled time."""

    __tablename__ = "issues"
    __table_args__ = (sa.UniqueConstraint("cadence", "slot", name="uq_issues_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    cadence: Mapped[str] = mapped_column(sa.String(20))
    slot: Mapped[datetime]
    status: Mapped[IssueStatus] = mapped_column(
        sa.Enum(IssueStatus, native_enum=False, length=20), default=IssueStatus.DRAFT
    )
    plan: Mapped[str] = mapped_column(sa.Text)
    """The composed `IssuePlan` as JSON: what the editor previews is what goes out."""
    plan_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    """SHA-256 of `plan`, kept by the ORM whenever `plan` is set: `digest publish` tells a
    changed issue without loading every plan (None: not known, the plan is read)."""
    curation: Mapped[str] = mapped_column(sa.Text, default="{}")
    composed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    """When it entered the public feeds and archive (at send, or `digest publish`)."""
    ledger_built_at: Mapped[datetime | None]
    """When every matching subscriber had its delivery row (the send can then resume)."""
    sender_lock: Mapped[str | None] = mapped_column(sa.String(200))
    """"host:pid:nonce" of the process sending it now; one sender per issue at a time."""
    sender_heartbeat_at: Mapped[datetime | None]
    paused_reason: Mapped[str | None] = mapped_column(sa.Text)
    """Why sending stopped before the end (the server kept failing); cleared on resume."""
    paused_kind: Mapped[str | None] = mapped_column(sa.String(20))
    """`PauseKind` of the pause: "relay" resumes by itself, "operator" waits for a person."""
    paused_at: Mapped[datetime | None]
    render_problems: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default="[]")
    """What would not render when the issue was last drafted: items left out of a
    variant ("[fr] 'Title': file:line: error") and override templates that do not parse.
    The desk and `digest status` show them; empty when all renders."""
    resume_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """Automatic resumes tried since a relay pause began (the scheduler's backoff step)."""
    resume_at: Mapped[datetime | None]
    """When the scheduler tries the paused send again; None while no pause is being retried."""
    delivery_totals: Mapped[str | None] = mapped_column(sa.Text)
    """JSON state → count of its delivery rows once retention folded them away
    (`[retention] deliveries_days`); None while the rows are kept."""
    send_at: Mapped[datetime | None]
    """When an editor scheduled the approved issue to go out (`digest send N --at`); None:
    at its slot, as the scheduler decides."""

    announced: Mapped[list[IssueEvent]] = relationship(
        back_populates="issue", cascade="all, delete-orphan"
    )


class IssueEvent(Base):
    """How an issue described an event occurrence, so a later one can say what changed."""

    __tablename__ = "issue_events"

    issue_id: Mapped[int] = mapped_column(
        sa.ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    when: Mapped[str] = mapped_column(sa.Text)
    location: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(20))

    issue: Mapped[Issue] = relationship(back_populates="announced")


class Delivery(Base):
    """The ledger: one row per (issue, subscriber), made when the send starts."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_recipient"),
        sa.Index("ix_deliveries_queue", "issue_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(sa.ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    """None once the subscriber was erased: the row stays for the counts."""
    variant: Mapped[str] = mapped_column(sa.String(200))
    """Which rendering they get: "nl", or "nl:housing,jobs" with chosen topics."""
    state: Mapped[DeliveryState] = mapped_column(
        sa.Enum(DeliveryState, native_enum=False, length=20),
        default=DeliveryState.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_code: Mapped[int | None]
    last_reply: Mapped[str | None] = mapped_column(sa.Text)
    message_id: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    unknown_outcomes: Mapped[int] = mapped_column(default=0, server_default="0")
    """Times the reply to the final dot never came (the first is retried once, later)."""
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    """The worker ("host:pid:nonce") that last claimed it; while SENDING, whose it is."""


class SendWorker(Base):
    """A process sending an issue now (`digest send --workers`, `--join`): it says it is
    alive at every batch; once it is silent for the lease, its claimed rows go back."""

    __tablename__ = "send_workers"

    owner: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    issue_id: Mapped[int] = mapped_column(
        sa.ForeignKey("issues.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class SendRate(Base):
    """The one rate limit every sender shares: the time (seconds since the epoch) from
    which the next send permit is free; reserving n permits moves it n / rate on."""

    __tablename__ = "send_rates"

    name: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    next_free: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")


class Role(enum.StrEnum):
    """What a named account may do on the desk and through the API (`pipeline.accounts.permits`)."""

    EDITOR = "editor"
    """Curates, tests and approves issues."""
    ADMIN = "admin"
    """Also manages sources, subscribers and accounts, and reads the audit log."""


class Account(Base):
    """A named person who signs in to the editor's desk."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    role: Mapped[Role] = mapped_column(sa.Enum(Role, native_enum=False, length=20))
    password_hash: Mapped[str | None] = mapped_column(sa.Text)
    """argon2id, in its own encoded form; None: sign-in by emailed link only."""
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One thing a person (or an API key, or the scheduler) did: who, what, to what, when."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(200))
    """"account:NAME", "cli:USER", "api:KEY", "desk" (the shared password)."""
    action: Mapped[str] = mapped_column(sa.String(50))
    subject: Mapped[str] = mapped_column(sa.String(200), default="")
    """What it was done to: "issue 12", a file name, an account; never a subscriber's
    address (an erasure names no one)."""
    detail: Mapped[str] = mapped_column(sa.Text, default="")


class ApiScope(enum.StrEnum):
    """What an API key may do; each scope includes the ones before it."""

    SUBSCRIBE = "subscribe"
    READ = "read"
    ADMIN = "admin"


class ApiKey(Base):
    """A token for the JSON API, stored as its SHA-256 (the token itself is shown once)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    scope: Mapped[ApiScope] = mapped_column(sa.Enum(ApiScope, native_enum=False, length=20))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(20))
    """The token's first characters, to tell keys apart in lists and logs."""
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


@sa.event.listens_for(Issue.plan, "set")
def _hash_plan(issue: Issue, value: str | None, _old: Any, _initiator: Any) -> None:
    """Keep `Issue.plan_sha256` the hash of the plan being set."""
    issue.plan_sha256 = hashlib.sha256(value.encode("utf-8")).hexdigest() if value else None
