"""Send the queued double opt-in mails: claim, send, mark (`store.confirmations`).

A sign-up only queues its confirmation (`people.add_subscriber(..., send_now=False)`, in
the transaction that stores the subscriber). `drain` sends what is due through the
configured transport, the way issues leave (VERP envelope sender, DKIM when configured),
each mail from a `NoticeTemplate` rendered once per language and personalized in bytes.
Who drains: `digest serve`'s mailroom child (`pipeline.mailroom`), an app made without it
after each sign-up (a `Waker`: one drain at a time, in the background), the scheduler's
retry job, `digest subscribers confirmations`, and the CLI's
own `add` (for the one it queued, at once).

A refused or failed mail is tried again after `RETRY_DELAYS`; a refusal for good (5xx)
leaves it `failed` until the address signs up again.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Outcome, Sender, SendResult
from digest.deliver.message import verp_address
from digest.deliver.notice import NoticeTemplate, confirm_marker, sender_domain
from digest.deliver.references import sign
from digest.errors import ConfigError, DigestError
from digest.pipeline import environment, transport, utcnow
from digest.render.notices import confirm_url, render_confirmation
from digest.store import confirmations, db
from subscribers.model import ConsentSource, Subscriber, SubscriberStatus

log = logging.getLogger("digest.confirmations")

BATCH = 200
"""Rows looked up at once by a drain (then claimed `per_transaction` at a time)."""


@dataclass(frozen=True)
class Confirmation:
    """The confirmation mail that went out: to whom, how, and what the transport said."""

    recipient: str
    message_id: str
    """The full Message-ID, without the angle brackets."""
    via: str
    """The transport in words: "the outbox folder /srv/digest/outbox", "SMTP host:587"."""
    reply: str


@dataclass
class Drained:
    """What a drain did."""

    sent: list[Confirmation] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    """Why each mail that will be tried again was not sent now."""
    failed: list[str] = field(default_factory=list)
    """Why each mail given up was not sent."""
    dropped: int = 0
    """Rows whose subscriber confirmed, left or was removed meanwhile: no mail due."""


def check_settings(settings: Settings, *, given_sender: bool = False) -> str:
    """Check what a confirmation mail needs; return the sender's domain. Raises
    `ConfigError` naming the setting (before an address is stored, by the CLI)."""
    transport.tokens(settings)
    if not given_sender:
        transport.check_transport(settings)  # AUTH without TLS: refuse before storing
    try:
        domain = sender_domain(settings.publication.sender)
    except ValueError as exc:
        raise ConfigError(f"[publication] sender: {exc}") from exc
    try:
        verp_address(settings.delivery.bounce_local_part, domain, "check@example.org")
    except ValueError as exc:
        raise ConfigError(f"[delivery] bounce_local_part: {exc}") from exc
    if not settings.publication.base_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"[publication] base_url {settings.publication.base_url!r} must be an http(s) "
            "URL: the confirmation link points there"
        )
    return domain


class Mailer:
    """Builds and sends confirmation mails; keeps one template per language (and token
    length) for as long as it lives, and the transport it opened until `close`."""

    def __init__(self, settings: Settings, sender: Sender | None = None) -> None:
        self.settings = settings
        self.domain = check_settings(settings, given_sender=sender is not None)
        self.tokens = transport.tokens(settings)
        self.reference_key = transport.reference_key(settings)
        self.dkim = transport.dkim_signer(settings)
        self.env = environment(settings)
        self._given = sender
        self._opened: Sender | None = None
        self._templates: dict[tuple[str, int], NoticeTemplate] = {}
        self._lock = threading.Lock()

    @property
    def via(self) -> str:
        """The transport in words, for the operator."""
        delivery = self.settings.delivery
        if self._given is not None:
            return f"the given {type(self._given).__name__}"
        if delivery.transport == "outbox":
            return f"the outbox folder {delivery.outbox_dir}"
        return f"SMTP {delivery.smtp_host}:{delivery.smtp_port}"

    def template(self, language: str, token_length: int) -> NoticeTemplate:
        """The mail of `language` for tokens of `token_length`, rendered on first use."""
        key = (language, token_length)
        with self._lock:
            found = self._templates.get(key)
            if found is None:
                settings = self.settings
                stand_in = confirm_marker(token_length)
                rendered = render_confirmation(
                    title=settings.publication.title_in(language),
                    language=language,
                    confirm_url=confirm_url(settings.publication.base_url, language, stand_in),
                    env=self.env,
                    valid_days=settings.subscribers.confirm_days,
                )
                found = NoticeTemplate.build(
                    rendered,
                    sender=settings.publication.sender_in(language),
                    token_length=token_length,
                )
                self._templates[key] = found
            return found

    def _transport(self) -> Sender:
        if self._given is not None:
            return self._given
        if self._opened is None:
            self._opened = transport.open_sender(self.settings)
        return self._opened

    def send(self, subscriber: Subscriber, now: datetime) -> tuple[SendResult, str]:
        """Build and hand over `subscriber`'s mail; return the transport's answer and the
        Message-ID. Raises ValueError when it cannot be built, OSError or DigestError
        when the transport could not be used."""
        token = self.tokens.confirm_token(subscriber.public_id, now=now)
        template = self.template(subscriber.language, len(token))
        # Signed: a bounce of this mail may end the pending subscription; a forged one not.
        reference = sign(self.reference_key, "c", subscriber.id)
        message_id = f"confirm.{now:%Y%m%d%H%M%S}.{secrets.token_hex(4)}.{reference}"
        envelope = verp_address(
            self.settings.delivery.bounce_local_part, self.domain, subscriber.email, reference
        )
        values = template.values(
            to_address=subscriber.email,
            # Never a name typed into the sign-up form: whoever signs an address up types
            # it, and it would put their words into our mail to a stranger.
            to_name="" if subscriber.consent_source is ConsentSource.FORM else subscriber.name,
            message_id=message_id,
            date=now,
            token=token,
        )
        data = template.render(values, self.dkim, now)
        result = self._transport().send(envelope, subscriber.email, data)
        return result, f"{message_id}@{self.domain}"

    def close(self) -> None:
        """Close the transport if this mailer opened it (an SMTP connection)."""
        if self._opened is not None:
            close = getattr(self._opened, "close", None)
            if callable(close):
                close()
            self._opened = None


Job = Callable[[Session], Any]
Write = Callable[[Job], Any]
"""Runs a job in a committed write transaction and returns what it returned."""


def transactions(
    factory: sessionmaker[Session], lock: AbstractContextManager[object] | None = None
) -> Write:
    """Each job in its own transaction (holding `lock`, when given)."""

    def write(job: Callable[[Session], Any]) -> Any:
        with lock or contextlib.nullcontext(), db.transaction(factory) as session:
            return job(session)

    return write


def drain(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    mailer: Mailer | None = None,
    sender: Sender | None = None,
    only: int | None = None,
    now: Callable[[], datetime] = utcnow,
    stop: threading.Event | None = None,
    write: Write | None = None,
    per_transaction: int = 1,
) -> Drained:
    """Send every due confirmation (or only subscriber `only`'s), `per_transaction` mails
    claimed in one transaction (and marked in the next: the mailroom child claims many,
    since a commit each would contend with the sign-ups' for the database).

    `mailer` is kept by long-lived callers (its templates stay rendered); otherwise one
    is made over `sender` (or the configured transport) and closed at the end. `write`
    runs the claims and marks (default: a transaction each; the web process shares its
    sign-ups' transactions). Raises `ConfigError` when a setting the mail needs is wrong
    (nothing is claimed then).
    """
    own = mailer is None
    used = mailer or Mailer(settings, sender)
    writing = write or transactions(factory)
    done = Drained()
    # The marks of one group of mails are committed with the claims of the next: one
    # transaction per `per_transaction` mails, and never more than that many claimed and
    # unmarked (a crash resends at most those, after their lease).
    marks: list[confirmations.Mark] = []
    try:
        while stop is None or not stop.is_set():
            with factory() as session:
                ids = confirmations.due(session, now=now(), limit=BATCH, only=only)
            if not ids:
                break
            for start in range(0, len(ids), max(1, per_transaction)):
                if stop is not None and stop.is_set():
                    break
                group = ids[start : start + max(1, per_transaction)]
                marks = _group(writing, used, group, now(), done, marks)
    finally:
        try:
            if marks:
                writing(_Take([], marks[-1].at, marks))
        finally:
            if own:
                used.close()
    return done


@dataclass(frozen=True)
class _Take:
    """A write job: record `before` (the previous mails' outcomes), then claim `row_ids`
    and return each claim with a detached copy of its subscriber (None: no mail due, the
    row is dropped). A few statements whatever the number of mails, so the write lock
    (SQLite's one writer, shared with the sign-ups) is held briefly."""

    row_ids: list[int]
    now: datetime
    before: list[confirmations.Mark]

    def __call__(self, session: Session) -> list[tuple[confirmations.Claimed, Subscriber | None]]:
        confirmations.record(session, self.before)
        claimed = confirmations.claim_many(session, self.row_ids, now=self.now)
        if not claimed:
            return []
        people = {
            found.id: found
            for found in session.scalars(
                sa.select(Subscriber).where(Subscriber.id.in_([c.subscriber_id for c in claimed]))
            )
        }
        taken: list[tuple[confirmations.Claimed, Subscriber | None]] = []
        for each in claimed:
            found = people.get(each.subscriber_id)
            if found is None or found.status is not SubscriberStatus.PENDING:
                confirmations.drop(session, each)
                taken.append((each, None))
                continue
            copy = Subscriber(
                id=found.id,
                public_id=found.public_id,
                email=found.email,
                name=found.name,
                language=found.language,
                consent_source=found.consent_source,
            )
            taken.append((each, copy))
        return taken


def _group(
    write: Write,
    mailer: Mailer,
    row_ids: list[int],
    now: datetime,
    done: Drained,
    before: list[confirmations.Mark],
) -> list[confirmations.Mark]:
    """Commit `before` with the claims of rows, send their mails, and return their marks
    (for the next claims' transaction, or alone at the end of the drain)."""
    marks: list[confirmations.Mark] = []
    for claimed, subscriber in write(_Take(row_ids, now, before)):
        if subscriber is None:
            done.dropped += 1
            continue
        marks.append(_send(mailer, claimed, subscriber, now, done))
    return marks


def _send(
    mailer: Mailer,
    claimed: confirmations.Claimed,
    subscriber: Subscriber,
    now: datetime,
    done: Drained,
) -> confirmations.Mark:
    """Send one claimed mail; return its mark."""
    address = subscriber.email
    try:
        result, message_id = mailer.send(subscriber, now)
    except ValueError as exc:
        result, message_id = SendResult(Outcome.PERMANENT, 554, f"cannot be built: {exc}"), ""
    except (OSError, DigestError) as exc:
        # The protocol answers with results; a socket, or a server that cannot be used as
        # configured (DeliveryError), may still raise.
        result, message_id = SendResult(Outcome.TEMPORARY, 451, f"{mailer.via} failed: {exc}"), ""
    reply = result.reply.replace(address, "<address>")
    # UNKNOWN: it may have arrived; not sent twice.
    sent = result.ok or result.outcome is Outcome.UNKNOWN
    mark = confirmations.Mark(claimed, now, sent, reply, permanent=result.permanent)
    if sent:
        done.sent.append(Confirmation(address, message_id, mailer.via, result.reply))
        return mark
    gave_up = confirmations.gives_up(claimed, permanent=result.permanent)
    (done.failed if gave_up else done.retrying).append(result.reply)
    log.warning(
        "a confirmation mail was not sent (%s): %s",
        "given up" if gave_up else "tried again later",
        reply,
    )
    return mark


def queued_count(factory: sessionmaker[Session]) -> int:
    """Confirmation mails waiting (queued or in flight)."""
    table = confirmations.QueuedConfirmation.__table__
    with factory() as session:
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.state.in_(confirmations.UNSENT))
        )
    return int(count or 0)


class Waker:
    """Drains in the background of a long-lived process (`digest serve`): `wake` after a
    sign-up's insert; one drain runs at a time, and a wake during a drain makes it look
    again before it ends, so no queued row waits for the next sign-up."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        *,
        now: Callable[[], datetime] = utcnow,
        write: Write | None = None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.now = now
        self.write = write
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._mailer: Mailer | None = None

    def needed(self) -> bool:
        """Whether a `wake` must be scheduled: False when a drain is running (it is told to
        look again before it ends), so a busy sender costs a sign-up no thread hop."""
        with self._lock:
            if self._running:
                self._again = True
                return False
            return True

    def wake(self) -> None:
        """Drain now unless a drain is running (which then looks again); never raises."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        try:
            while True:
                with self._lock:
                    self._again = False
                self._drain()
                with self._lock:
                    if not self._again:
                        self._running = False
                        return
        except BaseException:
            with self._lock:
                self._running = False
            raise

    def _drain(self) -> None:
        try:
            if self._mailer is None:
                self._mailer = Mailer(self.settings)
            drained = drain(
                self.settings,
                self.factory,
                mailer=self._mailer,
                now=self.now,
                write=self.write,
            )
        except (ConfigError, DigestError, OSError, sa.exc.SQLAlchemyError) as exc:
            log.error("confirmation mails wait in the queue: %s", exc)
            return
        finally:
            if self._mailer is not None:
                self._mailer.close()  # the SMTP connection; the templates stay
        if drained.sent:
            log.info("sent %d confirmation mail(s)", len(drained.sent))
