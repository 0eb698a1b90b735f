"""Variants: each language × topics rendering of an issue, built once and reused for every
recipient (their tokens joined into its bytes, signed when DKIM is on)."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime
from email.utils import format_datetime
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digest import layout
from digest.compose import IssuePlan
from digest.compose.plan import for_topics
from digest.config import Settings
from digest.deliver.dkim import DkimSigner
from digest.deliver.message import MessageTemplate, Personal, marker_links
from digest.deliver.references import delivery_message_id, sign
from digest.deliver.smtp import Job
from digest.store.deliveries import Claimed, parse_variant, variant_key
from subscribers.tokens import Tokens

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)

SAMPLE_PUBLIC_ID = "sample-subscriber-0000"  # 22 characters, like a real public_id


# --- variants --------------------------------------------------------------------------------


class Variants:
    """Each variant's message template, built on first use and then reused for everyone."""

    def __init__(
        self,
        settings: Settings,
        plan: IssuePlan,
        env: jinja2.Environment,
        token_length: int,
        subject_prefix: str = "",
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.env = env
        self.token_length = token_length
        self.subject_prefix = subject_prefix
        self._templates: dict[str, MessageTemplate] = {}
        self.rendered_at: dict[str, float] = {}
        """Seconds each variant took to render and serialize (for the summary)."""

    def key_for(self, language: str, topics: Sequence[str]) -> str | None:
        """Name the variant a subscriber gets, or None when it would be empty for them."""
        if language not in self.settings.publication.languages:
            return None
        if for_topics(self.plan, topics).variant(language).item_count == 0:
            return None
        return variant_key(language, topics)

    def template(self, key: str) -> MessageTemplate:
        """Return the template of variant `key`, rendering it the first time."""
        found = self._templates.get(key)
        if found is None:
            started = time.perf_counter()
            found = self._templates[key] = self._build(key)
            self.rendered_at[key] = time.perf_counter() - started
        return found

    def render_all(self, keys: Sequence[str], processes: int) -> None:
        """Render the variants `keys` now, up to `processes` at a time in a process pool
        (a variant's render is CPU work: Jinja, MJML, premailer, fitting)."""
        todo = [key for key in keys if key not in self._templates]
        if processes <= 1 or len(todo) <= 1:
            for key in todo:
                self.template(key)
            return
        context = multiprocessing.get_context(
            "fork"
            if sys.platform.startswith("linux") and threading.active_count() == 1
            else "spawn"
        )
        job = partial(_render_one, self.settings, self.plan, self.token_length, self.subject_prefix)
        with ProcessPoolExecutor(min(processes, len(todo)), mp_context=context) as pool:
            for key, template, seconds in pool.map(job, todo):
                self._templates[key] = template
                self.rendered_at[key] = seconds

    def _build(self, key: str) -> MessageTemplate:
        language, topics = parse_variant(key)
        pub = self.settings.publication
        delivery = self.settings.delivery
        base = pub.base_url.rstrip("/")
        archive = layout.url(base, layout.issue_page(self.plan.number, language))
        links = marker_links(base, language, archive, self.token_length)
        from digest.render.email import render_for_inbox  # (premailer: not for `digest status`)

        rendered = render_for_inbox(for_topics(self.plan, topics), language, links, self.env)
        if self.subject_prefix:
            rendered = replace(rendered, subject=f"{self.subject_prefix}{rendered.subject}")
        host = urlsplit(base).hostname or "digest.invalid"
        return MessageTemplate.build(
            rendered,
            sender=pub.sender_in(language),
            list_id=f"{language}.{host}",
            base_url=base,
            unsubscribe_mailto=delivery.unsubscribe_mailto or None,
            language=language,
            token_length=self.token_length,
            bounce_local=delivery.bounce_local_part,
        )


def _render_one(
    settings: Settings, plan: IssuePlan, token_length: int, subject_prefix: str, key: str
) -> tuple[str, MessageTemplate, float]:
    """Render one variant in a pool's process (its own Jinja environment)."""
    from digest.pipeline import environment

    variants = Variants(settings, plan, environment(settings), token_length, subject_prefix)
    template = variants.template(key)
    return key, template, variants.rendered_at[key]


def message_id(key: bytes, number: int, delivery_id: int) -> str:
    """The Message-ID's left part: stable per delivery, so a re-send after a crash carries
    the same id (receivers may fold the two), and signed, so a bounce or complaint naming
    it can be trusted to be about our message ("digest.3.d41.<tag>")."""
    return delivery_message_id(key, number, delivery_id)


def build_message(
    template: MessageTemplate,
    personal: Personal,
    signer: DkimSigner | None,
    now: datetime,
) -> bytes:
    """Return the SMTP DATA payload of one recipient's message, DKIM-signed when on."""
    headers = signer.sign(template.render(personal), now) if signer else b""
    return template.render_stuffed(personal, headers)


def personal_for(
    template: MessageTemplate,
    keys: Tokens,
    *,
    email: str,
    name: str,
    public_id: str,
    message_left: str,
    now: datetime,
    reference: str = "",
) -> Personal:
    """What one recipient's copy holds of them; `reference` is the signed reference the
    VERP envelope sender carries (see `deliver/references.py`)."""
    return Personal(
        to_address=email,
        to_name=name,
        unsubscribe_token=keys.unsubscribe_token(public_id),
        preferences_token=keys.preferences_token(public_id),
        message_id=message_left,
        date=format_datetime(now),
        envelope_from=template.envelope_from(email, reference),
    )


# --- the send ------------------------------------------------------------------------------


def variant_jobs(
    claimed: Sequence[Claimed],
    number: int,
    variants: Variants,
    keys: Tokens,
    signer: DkimSigner | None,
    now: datetime,
    unbuilt: list[tuple[Claimed, str]],
    refkey: bytes,
) -> Iterator[Job]:
    """The claimed rows as transport jobs, built lazily (the pool pulls as it sends). A row
    whose message cannot be built goes to `unbuilt` with the reason, and the rest go on."""
    for row in claimed:
        # A variant that cannot render is everyone's problem: that error stops the send.
        template = variants.template(row.variant)
        try:
            personal = personal_for(
                template,
                keys,
                email=row.email,
                name=row.name,
                public_id=row.public_id,
                message_left=message_id(refkey, number, row.id),
                now=now,
                reference=sign(refkey, "d", row.id),
            )
            data = build_message(template, personal, signer, now)
        except (ValueError, UnicodeError) as exc:
            unbuilt.append((row, f"554 5.6.0 not sent: the message could not be built ({exc})"))
            continue
        yield Job(key=row.id, envelope_from=personal.envelope_from, recipient=row.email, data=data)
