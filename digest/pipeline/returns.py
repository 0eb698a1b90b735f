"""What comes back after sending: bounce reports and spam complaints, applied to the ledger
and the subscribers (`digest bounces process FILE|MAILDIR …`).

A report is matched to its delivery by the signed reference in the Message-ID of our
message (stable per delivery, `sending.message_id`), else by the one in our VERP address
(`deliver/references.py`); a report whose Message-ID and VERP address do not verify is
reported and ignored, whatever address it names. A
bounce marks the delivery bounced and counts toward the subscriber's suppression (a
permanent one at once, temporary ones after `[subscribers] bounce_threshold`); a complaint
ends the subscription for good. Processing the same files again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver.bounces import Kind, Report, read
from digest.deliver.references import Reference, verify
from digest.deliver.replies import report_about_recipient
from digest.errors import BounceError
from digest.pipeline.transport import reference_key, suppression_key
from digest.store import db, deliveries
from digest.store.models import Delivery, DeliveryState
from subscribers import registry
from subscribers.model import Subscriber


@dataclass
class ReturnsReport:
    """The tally of one `bounces process` run, and a line per message worth reading."""

    messages: int = 0
    bounces: int = 0
    delays: int = 0
    complaints: int = 0
    unmatched: int = 0
    about_us: int = 0
    """Permanent failures about our message or setup (policy, spam, size): not bounces."""
    unverified: int = 0
    """Reports whose Message-ID or VERP address we did not sign: ignored."""
    errors: int = 0
    lines: list[str] = field(default_factory=list)


def process(
    settings: Settings,
    factory: sessionmaker[Session],
    paths: Iterable[Path],
    *,
    now: datetime | None = None,
) -> ReturnsReport:
    """Apply every report found in `paths` (message files and Maildirs)."""
    now = now or datetime.now(UTC)
    key = suppression_key(settings)
    report = ReturnsReport()
    for source, outcome in read(paths):
        report.messages += 1
        if isinstance(outcome, BounceError):
            report.errors += 1
            report.lines.append(f"✗ {outcome}")
            continue
        if not outcome:
            report.lines.append(f"· {source}: not a bounce or complaint (e.g. an autoreply)")
            continue
        for found in outcome:
            with db.transaction(factory) as session:
                report.lines.append(_apply(settings, session, found, key, now, report))
    return report


def _apply(
    settings: Settings,
    session: Session,
    found: Report,
    key: bytes,
    now: datetime,
    report: ReturnsReport,
) -> str:
    reference = _verified(settings, found)
    if reference is None:
        # Anyone can write a report naming an address or a guessed Message-ID: only ours,
        # signed, change anything.
        report.unverified += 1
        named = "a Message-ID" if found.message_id else "no Message-ID"
        return (
            f"? {found.source}: {found.kind.value} with {named} and no VERP address we "
            "signed: not one of our messages (forged, or sent before references were "
            "signed); ignored"
        )
    delivery = (
        session.get(Delivery, reference.delivery_id) if reference.delivery_id is not None else None
    )
    subscriber = _subscriber(session, delivery, reference.subscriber_id)
    who = subscriber.email if subscriber else found.recipient or "an unknown address"
    what = f"{found.status} {found.diagnostic}".strip()
    if subscriber is None and delivery is None:
        report.unmatched += 1
        return f"? {found.source}: the message it is about is gone (erased or purged)"
    if found.kind is Kind.DELAY:
        report.delays += 1
        return f"· {found.source}: {who} delayed ({what}); the remote server keeps trying"
    if found.kind is Kind.COMPLAINT:
        report.complaints += 1
        if subscriber is not None:
            registry.record_complaint(session, subscriber, now=now, suppression_key=key)
        return f"! {found.source}: {who} marked the issue as spam; they get nothing more"
    if found.permanent and not report_about_recipient(found.status, found.diagnostic):
        # A refusal of our message for policy, reputation, size or the remote system's
        # trouble: the operator's matter, not a dead mailbox; nobody is marked.
        report.about_us += 1
        return (
            f"! {found.source}: {who}: the receiving server refused our message for a reason "
            f"that is not about their mailbox ({what}); not counted as a bounce, check "
            "the sending setup"
        )
    report.bounces += 1
    if delivery is not None:
        if delivery.state is DeliveryState.BOUNCED:
            return f"· {found.source}: {who} bounce already recorded"
        deliveries.mark_bounced(session, delivery, reply=what, now=now)
    elif not found.permanent:
        # No delivery to hang it on: a temporary failure cannot be counted only once.
        return f"· {found.source}: {who} temporary failure of a confirmation mail; not counted"
    if subscriber is not None:
        ended = registry.record_bounce(
            session,
            subscriber,
            permanent=found.permanent,
            now=now,
            suppression_key=key,
            threshold=settings.subscribers.bounce_threshold,
        )
        if ended:
            return f"✗ {found.source}: {who} bounced ({what}); subscription ended"
    kind = "permanent" if found.permanent else "temporary"
    return f"✗ {found.source}: {who} {kind} bounce ({what})"


def _verified(settings: Settings, found: Report) -> Reference | None:
    """Return what the report is about when our Message-ID or VERP reference verifies."""
    refkey = reference_key(settings)
    return verify(refkey, found.message_id) or verify(refkey, found.reference)


def _subscriber(
    session: Session, delivery: Delivery | None, subscriber_id: int | None
) -> Subscriber | None:
    if delivery is not None and delivery.subscriber_id is not None:
        return session.get(Subscriber, delivery.subscriber_id)
    if subscriber_id is not None:
        return session.get(Subscriber, subscriber_id)
    return None
