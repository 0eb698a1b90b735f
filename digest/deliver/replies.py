"""What an SMTP reply means for the list: one place that decides whether a refusal is about
the recipient (a bounce), about us or the session (pause the issue), or neither.

A subscriber's list is worth more than any one send, so the rule leans one way: only a
reply that is clearly about the recipient's mailbox, given at RCPT (where a server speaks
about one address), counts toward bouncing them. Everything else that is permanent (our
login, our sender address, relaying, policy and spam blocks, message size, the server's
own system and routing trouble, anything unclear) pauses the issue for a person to look at,
and marks nobody.

    classify(550, "550 5.1.1 no such user", Stage.RCPT)        -> Verdict.BOUNCE
    classify(554, "554 5.7.1 relay access denied", Stage.RCPT) -> Verdict.PAUSE
    classify(552, "552 5.3.4 message too big", Stage.DOT)      -> Verdict.PAUSE
    classify(451, "451 4.7.1 greylisted", Stage.RCPT)          -> Verdict.RETRY

Enhanced status codes (RFC 3463) decide when present: 5.1.x are addressing, 5.2.x the
mailbox, 5.3.x the destination system, 5.4.x routing, 5.5.x protocol, 5.6.x content,
5.7.x security and policy. Without one, the wording of a RCPT refusal decides, and a
reply that names neither a missing mailbox nor anything else pauses (when in doubt, ask).
"""

from __future__ import annotations

import enum
import re

__all__ = ["Stage", "Verdict", "classify", "enhanced_status", "report_about_recipient", "signature"]


class Stage(enum.StrEnum):
    """Where in the SMTP dialogue the reply came."""

    CONNECT = "connect"
    """The greeting, EHLO, STARTTLS."""
    AUTH = "auth"
    MAIL = "mail"
    """MAIL FROM: about our envelope sender."""
    RCPT = "rcpt"
    """RCPT TO: the only stage where a server speaks about one recipient."""
    DATA = "data"
    """The DATA command, before the payload."""
    DOT = "dot"
    """The reply to the final dot, after the payload."""
    LOCAL = "local"
    """Refused by us before the server saw it (an address the server cannot take)."""


class Verdict(enum.StrEnum):
    """What to do with the delivery (and the issue) after a reply."""

    SENT = "sent"
    RETRY = "retry"
    """Temporary (4xx, connection trouble): try this recipient again later."""
    BOUNCE = "bounce"
    """Permanent and about the recipient: the delivery bounced; counts toward suppression."""
    PAUSE = "pause"
    """Permanent and about us, the session or policy: pause the issue, mark nobody."""
    REFUSED = "refused"
    """This one message cannot go (refused locally, or a recipient-like reply after the
    payload): the delivery fails for this issue only; the subscriber is not touched."""
    UNKNOWN = "unknown"
    """No reply to the final dot: the message may have been accepted. Not resent in this
    run; retried once later with the same Message-ID."""


_ENHANCED = re.compile(r"^\s*(?:\d{3}[ -])?\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Subjects of 5.1.x that are about our side, not the recipient (RFC 3463): 5.1.7 bad
# sender mailbox syntax, 5.1.8 bad sender's system address.
_SENDER_SIDE = {(1, 7), (1, 8)}
# 5.2.3: message length exceeds an administrative limit (about the message, not them).
_MESSAGE_SIDE = {(2, 3)}
_SESSION_CODES = {530, 534, 535, 538, 552}
"""Basic codes about us whatever follows: authentication required/failed, too big."""

_RECIPIENT_WORDS = re.compile(
    r"no such (user|mailbox|recipient|address)|user unknown|unknown (user|recipient|mailbox)"
    r"|mailbox (unavailable|not found|disabled|does not exist|inactive)"
    r"|(recipient|address|user|account|mailbox) (does not exist|not found|is disabled|disabled)"
    r"|invalid (recipient|mailbox)|account (has been )?(disabled|closed|suspended)"
    r"|undeliverable address|doesn't exist|does not exist",
    re.IGNORECASE,
)
_POLICY_WORDS = re.compile(
    r"relay|spam|block|policy|denied|not allowed|not permitted|authenticat|reputation"
    r"|blacklist|blocklist|spamhaus|dmarc|spf|dkim|rate|quota exceeded for sender|sender",
    re.IGNORECASE,
)


def enhanced_status(reply: str) -> tuple[int, int, int] | None:
    """Return the RFC 3463 status at the start of `reply` ("550 5.1.1 …" → (5, 1, 1))."""
    found = _ENHANCED.match(reply)
    if found is None:
        return None
    klass, subject, detail = (int(group) for group in found.groups())
    return klass, subject, detail


def classify(code: int, reply: str, stage: Stage) -> Verdict:
    """Decide what a reply means for the delivery; see the module doc."""
    if 200 <= code < 300:
        return Verdict.SENT
    if 400 <= code < 500:
        return Verdict.RETRY
    if stage is Stage.LOCAL:
        return Verdict.REFUSED
    if stage is not Stage.RCPT and stage is not Stage.DOT:
        return Verdict.PAUSE  # greeting, login, MAIL FROM, the DATA command: about us
    if code in _SESSION_CODES and not _mailbox_full(reply):
        return Verdict.PAUSE
    about_recipient = _about_recipient(reply)
    if about_recipient and stage is Stage.RCPT:
        return Verdict.BOUNCE
    if about_recipient:
        # After the payload a server speaks about the message as a whole; one reply for
        # one recipient that says "no such user" fails this copy, but proves too little to
        # end a subscription (a later DSN can).
        return Verdict.REFUSED
    return Verdict.PAUSE


def report_about_recipient(status: str, diagnostic: str) -> bool:
    """Whether a permanent failure in a bounce report (DSN) is about the recipient's
    mailbox, by its status ("5.1.1") or else its diagnostic, as at RCPT: only those count
    toward bouncing a subscriber; a DSN saying "5.7.1 rejected as spam" is about us."""
    text = f"{status} {diagnostic}".strip() if status else diagnostic
    return _about_recipient(text)


def _mailbox_full(reply: str) -> bool:
    status = enhanced_status(reply)
    return status is not None and status[1:] == (2, 2)


def _about_recipient(reply: str) -> bool:
    """Whether a permanent refusal speaks about the recipient's mailbox (and nothing else)."""
    status = enhanced_status(reply)
    if status is not None and status[0] == 5:
        subject = status[1:]
        if subject in _SENDER_SIDE or subject in _MESSAGE_SIDE:
            return False
        return status[1] in (1, 2)
    text = reply[3:] if reply[:3].isdigit() else reply
    return bool(_RECIPIENT_WORDS.search(text)) and not _POLICY_WORDS.search(text)


_ADDRESS_LIKE = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")
_QUEUE_IDS = re.compile(r"\b[0-9A-Za-z]*\d[0-9A-Za-z]*\b")


def signature(reply: str) -> str:
    """Return `reply` with what varies per recipient taken out (addresses, ids, numbers), so
    that refusals of different people for one reason compare equal."""
    text = _ADDRESS_LIKE.sub("<address>", " ".join(reply.lower().split()))
    words = text.split(" ")
    keep = 2 if enhanced_status(text) else 1
    return " ".join([*words[:keep], *(_QUEUE_IDS.sub("#", w) for w in words[keep:])])
