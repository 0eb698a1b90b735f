"""Deliver: turn each `RenderedEmail` variant into personal, signed messages and hand them
to a transport. Rendering happens once per variant; per recipient only bytes are joined.

    RenderedEmail ──MessageTemplate.build──▶ MessageTemplate        (message.py, once)
    MessageTemplate + Personal ──render──▶ bytes ──DkimSigner.sign──▶ DKIM-Signature
    render_stuffed(personal, signature) ──Sender.send──▶ SendResult (outbox.py, smtp)

Output type: `SendResult`, one per recipient, saying whether the message was accepted,
refused for now (retry later) or refused for good (counts toward suppression), with the
server's reply. Transports implement the `Sender` protocol; `OutboxSender` is the one that
writes `.eml` files, for previews and tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from digest.deliver.replies import Stage, Verdict, classify

__all__ = ["Outcome", "SendResult", "Sender", "Stage", "Verdict"]


class Outcome(enum.StrEnum):
    """What became of one message at the transport."""

    SENT = "sent"
    """Accepted (SMTP 2xx, or written to the outbox)."""
    TEMPORARY = "temporary"
    """Refused for now (SMTP 4xx, connection trouble): retry with backoff."""
    PERMANENT = "permanent"
    """Refused for good (SMTP 5xx): do not retry; `SendResult.verdict` says whether it is
    about the recipient (a bounce) or about us (pause the issue)."""
    UNKNOWN = "unknown"
    """The payload was written but the reply to the final dot never came (a timeout or a
    dropped connection): the server may have accepted it. Not resent at once."""


@dataclass(frozen=True)
class SendResult:
    """The transport's answer for one recipient."""

    outcome: Outcome
    code: int
    """The SMTP reply code (the outbox answers as a server would: 250 or 554)."""
    reply: str
    """The server's reply text, kept for the delivery record."""
    stage: Stage = Stage.DOT
    """Where in the dialogue the answer came (RCPT refusals are about the recipient)."""

    @classmethod
    def from_reply(cls, code: int, reply: str, stage: Stage = Stage.DOT) -> SendResult:
        """Classify an SMTP reply: 2xx sent, 4xx temporary, anything else permanent."""
        if 200 <= code < 300:
            return cls(Outcome.SENT, code, reply, stage)
        if 400 <= code < 500:
            return cls(Outcome.TEMPORARY, code, reply, stage)
        return cls(Outcome.PERMANENT, code, reply, stage)

    @property
    def verdict(self) -> Verdict:
        """What the answer means for the delivery and the issue (`replies.classify`)."""
        if self.outcome is Outcome.UNKNOWN:
            return Verdict.UNKNOWN
        if self.outcome is Outcome.TEMPORARY:
            return Verdict.RETRY
        if self.outcome is Outcome.SENT:
            return Verdict.SENT
        return classify(self.code, self.reply, self.stage)

    @property
    def ok(self) -> bool:
        """Whether the message was accepted."""
        return self.outcome is Outcome.SENT

    @property
    def temporary(self) -> bool:
        """Whether to try this recipient again later."""
        return self.outcome is Outcome.TEMPORARY

    @property
    def permanent(self) -> bool:
        """Whether the recipient refused for good."""
        return self.outcome is Outcome.PERMANENT


class Sender(Protocol):
    """A transport: pushes one message to one recipient and says what happened."""

    def send(self, envelope_from: str, recipient: str, data: bytes) -> SendResult:
        """Send `data`, the SMTP DATA payload (CRLF, dot-stuffed, ending in CRLF "." CRLF,
        as `MessageTemplate.render_stuffed` returns it), from the VERP `envelope_from`.

        Per-recipient failures come back as a `SendResult`, never as an exception.
        """
        ...
