"""People on the list: add (with the double opt-in mail), import, export, list and remove.

What the CLI and the web app call. Each function opens its own transactions through
`db.transaction(factory)`; `subscribers/` does the list keeping and is handed what it needs
from here (the suppression key, the tokens, a `send` callable).

The confirmation mail is queued in the transaction that stores the subscriber
(`store.confirmations`) and leaves through the same path as issues
(`pipeline.confirmations`): the CLI's add sends it at once, the web form leaves it to a
drain. A refused mail leaves them pending, its mail queued for a retry, and adding the
address again tries it at once (at most one mail a day per address).
"""

from __future__ import annotations

import contextlib
import csv
import enum
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Sender
from digest.errors import ConfigError, DigestError, NotFoundError
from digest.pipeline import confirmations, transport, utcnow
from digest.pipeline.confirmations import Confirmation
from digest.store import confirmations as confirmations_store
from digest.store import db, deliveries
from subscribers import csvio, registry, suppression
from subscribers.addresses import normalize
from subscribers.csvio import ImportReport
from subscribers.errors import CsvFormatError, Duplicate, SubscriberError
from subscribers.model import ConsentSource, Subscriber, SubscriberStatus

__all__ = [
    "Added",
    "Confirmation",
    "ExportFormat",
    "ImportReport",
    "Removal",
    "Removed",
    "SubscriberRow",
    "add_subscriber",
    "export_file",
    "export_subscribers",
    "import_subscribers",
    "list_subscribers",
    "remove_subscriber",
]

ExportFormat = Literal["csv", "json"]


@dataclass(frozen=True)
class SubscriberRow:
    """A subscriber as shown to the operator: a plain value, detached from any session."""

    email: str
    public_id: str
    name: str
    language: str
    topics: tuple[str, ...]
    cadence: str
    status: str
    paused: bool
    created_at: datetime
    confirmed_at: datetime | None
    consent_source: str

    @classmethod
    def of(cls, subscriber: Subscriber) -> SubscriberRow:
        """Return the row of a subscriber loaded from the database."""
        return cls(
            email=subscriber.email,
            public_id=subscriber.public_id,
            name=subscriber.name,
            language=subscriber.language,
            topics=tuple(subscriber.topics),
            cadence=subscriber.cadence.value,
            status=subscriber.status.value,
            paused=subscriber.paused,
            created_at=subscriber.created_at,
            confirmed_at=subscriber.confirmed_at,
            consent_source=subscriber.consent_source.value,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the row JSON-ready (times in ISO 8601)."""
        return {
            "email": self.email,
            "name": self.name,
            "language": self.language,
            "topics": list(self.topics),
            "cadence": self.cadence,
            "status": self.status,
            "paused": self.paused,
            "created_at": self.created_at.isoformat(),
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "consent_source": self.consent_source,
        }


@dataclass(frozen=True)
class Added:
    """What `add_subscriber` did."""

    subscriber: SubscriberRow
    created: bool
    """False when the address was already on the list, pending, and its mail went again."""
    confirmation: Confirmation | None
    """The confirmation mail sent, or None when added `confirmed` or not sent now."""
    queued: bool = False
    """Whether a confirmation mail was queued (a drain sends it; `send_now` did)."""


class Removal(enum.StrEnum):
    """How a subscriber leaves the list."""

    DELETE = "delete"
    """Delete the record, address not suppressed: for typos and test addresses."""
    UNSUBSCRIBE = "unsubscribe"
    """Keep the record as unsubscribed and suppress the address: they asked to leave."""
    ERASE = "erase"
    """Delete everything but a keyed hash that blocks re-adding: they asked to be forgotten."""


@dataclass(frozen=True)
class Removed:
    """What `remove_subscriber` did."""

    email: str
    how: Removal
    changed: bool
    """False when an unsubscribe found them already gone (unsubscribed, bounced, ...)."""

    @property
    def suppressed(self) -> bool:
        """Whether the address can never be added again."""
        return self.how is not Removal.DELETE


# --- add, with the confirmation mail ------------------------------------------------------


def add_subscriber(
    settings: Settings,
    factory: sessionmaker[Session],
    email: str,
    *,
    name: str = "",
    language: str | None = None,
    topics: Iterable[str] = (),
    cadence: str = "weekly",
    confirmed: bool = False,
    source: ConsentSource = ConsentSource.CLI,
    consent_ip: str | None = None,
    now: datetime | None = None,
    sender: Sender | None = None,
    send_now: bool = True,
) -> Added:
    """Add one subscriber; unless `confirmed`, queue the mail whose link confirms (double
    opt-in) in the same transaction, and with `send_now` send it at once through `sender`
    (or the configured transport). Without `send_now` (the web form, the API) the caller
    answers and a drain sends it (`confirmations.drain`).

    An address already on the list and still pending is queued its confirmation mail again
    (at most once a day; with `send_now`, one that failed is tried again at once). Raises
    `DigestError` naming the address when it is invalid, suppressed, already on the list
    with nothing to do, or when the transport refused the mail (the subscriber then stays
    pending, the mail queued); `ConfigError` when a secret is missing.
    """
    now = now or utcnow()
    key = transport.suppression_key(settings)
    # Everything the mail needs is checked before the address is stored, so a missing
    # secret or DKIM key never leaves a pending subscriber who was never mailed.
    mailer = confirmations.Mailer(settings, sender) if send_now and not confirmed else None
    # Through the form, a person who left may come back: pending, still suppressed until
    # their own click on the new confirmation mail (`registry.resubscribe`).
    adding = (
        registry.resubscribe
        if source is ConsentSource.FORM and not confirmed
        else _confirmed_adder(confirmed)
    )
    fields: dict[str, Any] = {
        "name": name,
        "language": language,
        "topics": topics,
        "cadence": cadence,
        "source": source,
        "consent_version": settings.subscribers.consent_version,
        "consent_ip": consent_ip,
        "now": now,
        "languages": settings.publication.languages,
        "suppression_key": key,
    }
    try:
        for attempt in (1, 2):
            try:
                with db.transaction(factory) as session:
                    row, created, queued, subscriber_id = store(
                        session, email, adding, fields, confirmed=confirmed, retry=send_now
                    )
                break
            except sa.exc.IntegrityError:
                # The same address added by someone else since our check: look again.
                if attempt == 2:
                    raise DigestError(
                        f"{email} changed while being added (another process); try again"
                    ) from None
    except SubscriberError as exc:
        if mailer is not None:
            mailer.close()
        raise DigestError(str(exc)) from exc
    if mailer is None:
        return Added(row, created=created, confirmation=None, queued=queued)
    return Added(
        row,
        created=created,
        confirmation=_send_now(settings, factory, row, subscriber_id, mailer, created, queued),
        queued=queued,
    )


def store(
    session: Session,
    email: str,
    adding: Any,
    fields: dict[str, Any],
    *,
    confirmed: bool,
    retry: bool = False,
) -> tuple[SubscriberRow, bool, bool, int]:
    """Add the subscriber and queue their confirmation in the caller's transaction; return
    the row, whether it was created, whether a mail is queued, and the subscriber's id.
    Every check comes before a write: a refusal leaves the transaction as it was."""
    created = True
    try:
        subscriber = adding(session, email, **fields)
    except Duplicate:
        created = False
        subscriber = _already_listed(session, email, confirmed=confirmed)
    queued = False
    if not confirmed:
        queued = confirmations_store.queue(session, subscriber, now=fields["now"], retry_now=retry)
    return SubscriberRow.of(subscriber), created, queued, subscriber.id


def _confirmed_adder(confirmed: bool) -> Any:
    """`registry.add` with `confirmed` bound (the same call shape as `resubscribe`)."""

    def adding(session: Session, email: str, **fields: Any) -> Subscriber:
        return registry.add(session, email, confirmed=confirmed, **fields)

    return adding


def _already_listed(session: Session, email: str, *, confirmed: bool) -> Subscriber:
    """Return the pending subscriber with this address (locked, on PostgreSQL, so two adds
    at once queue one mail); raise when there is nothing to do."""
    address = normalize(email)
    existing = session.scalars(
        sa.select(Subscriber).where(Subscriber.email == address).with_for_update()
    ).one_or_none()
    if existing is None:
        raise DigestError(f"{email} changed while being added (another process); try again")
    if existing.status is not SubscriberStatus.PENDING:
        raise DigestError(
            f"{existing.email} is already on the list ({existing.status}); nothing changed"
        )
    if confirmed:
        raise DigestError(
            f"{existing.email} is already on the list (pending); nothing changed: it becomes "
            "confirmed when they use the link of their confirmation mail"
        )
    return existing


def _send_now(
    settings: Settings,
    factory: sessionmaker[Session],
    row: SubscriberRow,
    subscriber_id: int,
    mailer: confirmations.Mailer,
    created: bool,
    queued: bool,
) -> Confirmation:
    """Drain `row`'s confirmation at once (the CLI's add) and say what became of it."""
    try:
        drained = confirmations.drain(settings, factory, mailer=mailer, only=subscriber_id)
    finally:
        mailer.close()
    if drained.sent:
        return drained.sent[0]
    problems = drained.retrying + drained.failed
    if problems:
        added = "was added but " if created else ""
        raise DigestError(
            f"{row.email} {added}stays pending: its confirmation mail was not sent "
            f"({problems[0]}); once that is fixed, run `digest subscribers add {row.email}` "
            "again to send it"
        )
    with factory() as session:
        found = session.get(Subscriber, subscriber_id)
        last = found.last_confirmation_sent_at if found is not None else None
        status = found.status.value if found is not None else row.status
    when = f" at {last:%Y-%m-%d %H:%M} UTC" if last else ""
    raise DigestError(
        f"{row.email} is already on the list ({status}) and was sent its confirmation "
        f"mail{when}; at most one goes out a day, so none was sent now"
    )


# --- import and export --------------------------------------------------------------------


def import_subscribers(
    settings: Settings,
    factory: sessionmaker[Session],
    path: Path,
    *,
    confirmed: bool,
    now: datetime | None = None,
) -> ImportReport:
    """Import subscribers from the CSV file `path`; bad rows are reported by line.

    Only with `confirmed`: the operator vouches that consent was given elsewhere, and rows
    are confirmed at once (consent source "import", keeping the file's opt-in time, IP and
    source). Without it the file is refused: people who never asked for the digest must
    not receive it, and a pending record nobody mails is a list nobody can trust. Raises
    `DigestError` naming the file when it cannot be read as a subscriber CSV at all; then
    nothing is imported.
    """
    if not confirmed:
        raise DigestError(
            f"{path}: refused, nothing was imported. An import adds people who never used "
            "our sign-up form, so it needs --confirmed: you vouch that they agreed to receive "
            "this digest (their opt-in time, IP and source are kept when the file has them). "
            "For people who did not agree, send each a confirmation mail with "
            "`digest subscribers add EMAIL`, or link them to the sign-up form"
        )
    now = now or utcnow()
    key = transport.suppression_key(settings)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DigestError(f"{path}: no such file") from None
    except OSError as exc:
        raise DigestError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text, _encoding = csvio.decode(data)
    except UnicodeDecodeError as exc:
        raise DigestError(
            f"{path} is not UTF-8 text nor Windows-1252 (byte {exc.start}); save it as "
            "UTF-8 CSV. Nothing was imported"
        ) from exc
    try:
        with db.transaction(factory) as session:
            report = csvio.import_csv(
                session,
                io.StringIO(text, newline=""),
                now=now,
                languages=settings.publication.languages,
                suppression_key=key,
                consent_version=settings.subscribers.consent_version,
                confirmed=confirmed,
            )
    except (csv.Error, CsvFormatError) as exc:
        raise DigestError(f"{path}: {exc}. Nothing was imported") from exc
    return report


def export_subscribers(
    settings: Settings, factory: sessionmaker[Session], out: TextIO, *, fmt: ExportFormat
) -> int:
    """Write every subscriber to `out` and return how many, streaming (never the whole
    list in memory): CSV in the import format plus status, or JSON with everything held
    about each, consent record included."""
    with factory() as session:
        if fmt == "csv":
            return csvio.export_csv(session, out)
        if fmt == "json":
            return csvio.export_json(session, out)
    raise ValueError(f"export format {fmt!r} is not csv or json")


def export_file(
    settings: Settings, factory: sessionmaker[Session], path: Path, *, fmt: ExportFormat
) -> int:
    """Export to the file `path` as `export_subscribers` does; return how many.

    Written to a temporary file beside it and renamed into place, so `path` is never left
    half written (an earlier export there stays whole until the new one is complete).
    """
    folder = path.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DigestError(f"cannot write into {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = export_subscribers(settings, factory, out, fmt=fmt)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return count


# --- list and remove ----------------------------------------------------------------------


def list_subscribers(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    status: SubscriberStatus | str | None = None,
) -> Iterator[SubscriberRow]:
    """Yield every subscriber (or those with `status`) in the order they were added,
    reading the list in batches rather than all at once."""
    wanted = SubscriberStatus(status) if status is not None else None
    with factory() as session:
        for subscriber in registry.iter_subscribers(session, status=wanted):
            yield SubscriberRow.of(subscriber)


def remove_subscriber(
    settings: Settings,
    factory: sessionmaker[Session],
    email: str,
    *,
    how: Removal = Removal.DELETE,
    now: datetime | None = None,
) -> Removed:
    """Take `email` off the list: `registry.remove` by default (the address may come
    back), or unsubscribe or erase it, which suppress the address for good.

    Raises `NotFoundError` naming the address when it is not on the list.
    """
    now = now or utcnow()
    key = transport.suppression_key(settings) if how is not Removal.DELETE else None
    try:
        address = normalize(email)
    except SubscriberError as exc:
        raise DigestError(str(exc)) from exc
    with db.transaction(factory) as session:
        subscriber = registry.by_email(session, address)
        if subscriber is None:
            raise NotFoundError(_not_listed(settings, session, address))
        changed = True
        if how is Removal.DELETE:
            registry.remove(session, subscriber)
        elif how is Removal.UNSUBSCRIBE:
            assert key is not None
            changed = registry.unsubscribe(session, subscriber, now=now, suppression_key=key)
        else:
            assert key is not None
            erase(session, subscriber, now=now, suppression_key=key)
    return Removed(address, how, changed)


def erase(
    session: Session, subscriber: Subscriber, *, now: datetime, suppression_key: bytes
) -> None:
    """Erase a subscriber: the record goes, and their address leaves every text we kept
    (server replies on deliveries, pause reasons); only the suppression hash remains."""
    deliveries.scrub_address(session, subscriber.email, subscriber.id)
    registry.erase(session, subscriber, now=now, suppression_key=suppression_key)


@dataclass(frozen=True)
class Unsuppressed:
    """What `unsuppress` did."""

    email: str
    reason: str
    """Why the address had been suppressed."""
    suppressed_at: datetime
    status: str | None
    """The subscriber's status afterwards; None when no record was kept (erased)."""


def unsuppress(
    settings: Settings,
    factory: sessionmaker[Session],
    email: str,
    *,
    why: str,
    by: str,
    now: datetime | None = None,
) -> Unsuppressed:
    """Lift the suppression of `email`, keeping who (`by`), when and `why`; a subscriber
    marked bounced is confirmed again. Raises `DigestError` when it was not suppressed."""
    now = now or utcnow()
    if not why.strip():
        raise DigestError("say why the suppression is lifted (--reason TEXT): it is kept")
    key = transport.suppression_key(settings)
    try:
        with db.transaction(factory) as session:
            lifted, subscriber = registry.unsuppress(
                session, email, suppression_key=key, by=by, why=why, now=now
            )
            return Unsuppressed(
                email=normalize(email),
                reason=lifted.reason.value,
                suppressed_at=lifted.suppressed_at,
                status=subscriber.status.value if subscriber is not None else None,
            )
    except SubscriberError as exc:
        raise DigestError(str(exc)) from exc


def _not_listed(settings: Settings, session: Session, address: str) -> str:
    """Say that `address` is not on the list, and whether it left it for good."""
    message = f"{address} is not on the list; `digest subscribers list` shows who is"
    try:
        key = transport.suppression_key(settings)
    except ConfigError:
        return message
    found = suppression.find(session, address, key=key)
    if found is None:
        return message
    return (
        f"{address} is not on the list: it was {found.reason.value} on "
        f"{found.created_at:%Y-%m-%d} and is suppressed (never re-added)"
    )
