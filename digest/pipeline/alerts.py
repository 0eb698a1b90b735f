"""Short operational notices to the editors ([web] editors): an issue paused, an issue
resumed by itself, a pause that waits for a person.

They leave through the publication's own transport, like the approval notice
(`editorial.notify_editors`): when the relay is down they cannot go either, so the caller
keeps trying and records a notice as given only once a server accepted it. The log line,
`digest status` and `/metrics` say the same at once, without the relay.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from datetime import datetime

from digest.config import Settings
from digest.deliver import Sender
from digest.deliver.message import verp_address
from digest.deliver.notice import build_notice, sender_domain
from digest.errors import ConfigError, DigestError
from digest.pipeline.transport import dkim_signer, open_sender
from digest.render import RenderedEmail
from subscribers.addresses import normalize
from subscribers.errors import InvalidAddress


@dataclass(frozen=True)
class Alerted:
    """Who got the notice, and what the transport said for those who did not."""

    told: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def delivered(self) -> bool:
        """Whether at least one editor's server accepted it."""
        return bool(self.told)


def alert_editors(
    settings: Settings,
    *,
    subject: str,
    text: str,
    kind: str,
    now: datetime,
    sender: Sender | None = None,
) -> Alerted:
    """Mail `text` to every address in [web] editors; failures are returned, not raised.

    `kind` ("paused", "resumed") goes into the Message-ID. Nobody configured: nothing is
    sent and nothing failed (the caller logs that editors is empty).
    """
    editors = [e.strip() for e in settings.web.editors if e.strip()]
    if not editors:
        return Alerted(())
    rendered = RenderedEmail(
        language=settings.default_language,
        subject=f"[{settings.publication.title}] {subject}",
        preheader="",
        html=f"<html><body><pre>{html.escape(text)}</pre></body></html>",
        text=text.rstrip("\n") + "\n",
    )
    try:
        return mail_editors(settings, rendered, editors, kind=kind, now=now, sender=sender)
    except (OSError, DigestError) as exc:
        if isinstance(exc, ConfigError):
            raise
        return Alerted((), tuple((e, str(exc)) for e in editors))


def mail_editors(
    settings: Settings,
    rendered: RenderedEmail,
    editors: list[str],
    *,
    kind: str,
    now: datetime,
    sender: Sender | None = None,
) -> Alerted:
    """Send `rendered` to each of `editors` through the publication's transport (`sender`,
    else a fresh one, closed after); who got it and what refused the others. `kind` starts
    the Message-ID. Raises ConfigError for a sender address that names no domain, and what
    opening the transport raises."""
    try:
        domain = sender_domain(settings.publication.sender)
    except ValueError as exc:
        raise ConfigError(f"[publication] sender: {exc}") from exc
    signer = dkim_signer(settings)
    told: list[str] = []
    failed: list[tuple[str, str]] = []
    transport = sender or open_sender(settings)
    try:
        for editor in editors:
            try:
                address = normalize(editor)
                envelope = verp_address(settings.delivery.bounce_local_part, domain, address)
                data = build_notice(
                    rendered,
                    sender=settings.publication.sender,
                    to_address=address,
                    to_name="",
                    message_id=f"{kind}.{now:%Y%m%d%H%M%S}.{secrets.token_hex(4)}",
                    date=now,
                    envelope_from=envelope,
                    dkim=signer,
                )
            except (InvalidAddress, ValueError) as exc:
                failed.append((editor, f"cannot be mailed: {exc}"))
                continue
            try:
                result = transport.send(envelope, address, data)
            except (OSError, DigestError) as exc:
                failed.append((editor, str(exc)))
                continue
            if result.ok:
                told.append(address)
            else:
                failed.append((editor, result.reply))
    finally:
        if sender is None:
            close = getattr(transport, "close", None)
            if callable(close):
                close()
    return Alerted(tuple(told), tuple(failed))
