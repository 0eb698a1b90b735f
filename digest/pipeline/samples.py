"""A dry run (counts per variant, one sample each in the outbox) and a test send to one address."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Sender, SendResult
from digest.deliver.outbox import OutboxSender, file_name
from digest.errors import DeliveryError
from digest.pipeline import environment, find_issue
from digest.pipeline.transport import (
    dkim_signer,
    open_sender,
    tokens,
)
from digest.pipeline.variants import SAMPLE_PUBLIC_ID, Variants, build_message, personal_for
from digest.store import issues
from digest.store.deliveries import variant_key
from subscribers import registry
from subscribers.tokens import Purpose, Tokens

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass
class DryRun:
    """What a send would do, without a ledger."""

    number: int
    variants: dict[str, int]
    samples: dict[str, str]
    """Variant → the .eml file of its sample in the outbox."""


def dry_run(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    number: int | None = None,
    now: datetime | None = None,
) -> DryRun:
    """Count the recipients per variant and write one sample per variant to the outbox."""
    now = now or datetime.now(UTC)
    keys = tokens(settings)
    with factory() as session:
        issue = find_issue(session, number)
        plan = issues.plan_of(issue)
        counts: dict[str, int] = {}
        variants = Variants(settings, plan, environment(settings), _length(keys))
        for subscriber in registry.iter_recipients(
            session, cadence=plan.cadence, languages=settings.publication.languages
        ):
            found = variants.key_for(subscriber.language, subscriber.topics)
            if found is not None:
                counts[found] = counts.get(found, 0) + 1
    outbox = OutboxSender(settings.delivery.outbox_dir / "dry-run")
    samples = {}
    for name in sorted(counts):
        template = variants.template(name)
        personal = personal_for(
            template,
            keys,
            email="sample.subscriber@example.org",
            name="Sample Subscriber",
            public_id=SAMPLE_PUBLIC_ID,
            message_left=f"digest.{plan.number}.dry-run.{name.replace(':', '.').replace(',', '.')}",
            now=now,
        )
        data = build_message(template, personal, dkim_signer(settings), now)
        result = outbox.send(personal.envelope_from, personal.to_address, data)
        if not result.ok:
            raise DeliveryError(f"cannot write the dry-run sample: {result.reply}")
        identifier = f"{personal.message_id}@{template.domain}"
        samples[name] = str(outbox.folder / file_name(identifier))
    return DryRun(number=plan.number, variants=counts, samples=samples)


def _length(keys: Tokens) -> int:
    return keys.token_length(Purpose.UNSUBSCRIBE)


def send_test(
    settings: Settings,
    factory: sessionmaker[Session],
    address: str,
    *,
    number: int | None = None,
    language: str | None = None,
    now: datetime | None = None,
    sender: Sender | None = None,
) -> SendResult:
    """Send one copy of an issue (default: the latest draft) to `address`, marked as a
    test in its subject; no ledger row, no effect on the issue."""
    now = now or datetime.now(UTC)
    keys = tokens(settings)
    language = language or settings.default_language
    with factory() as session:
        plan = issues.plan_of(find_issue(session, number))
    variants = Variants(
        settings, plan, environment(settings), _length(keys), subject_prefix="[TEST] "
    )
    template = variants.template(variant_key(language, ()))
    personal = personal_for(
        template,
        keys,
        email=address,
        name="",
        public_id=SAMPLE_PUBLIC_ID,
        message_left=f"digest.{plan.number}.test.{int(now.timestamp())}",
        now=now,
    )
    data = build_message(template, personal, dkim_signer(settings), now)
    transport = sender or open_sender(settings)
    try:
        return transport.send(personal.envelope_from, address, data)
    finally:
        close = getattr(transport, "close", None)
        if callable(close):
            close()
