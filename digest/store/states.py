"""The states the tables hold (an issue's, a delivery's, a job run's) and the leases read
with them, in plain Python: the models store these enums, and `digest status` reads them
without loading SQLAlchemy.

The digest tables store an enum by its name ("SENDING"), the subscriber tables by its
value ("confirmed"): SQL that names a state writes `IssueStatus.SENDING.name`.
"""

from __future__ import annotations

import enum
from datetime import timedelta

STALE_LOCK = timedelta(minutes=5)
"""A sender that has not written for this long is presumed dead (on another host)."""
LEASE = timedelta(seconds=60)
"""A worker silent for this long is presumed dead and its claimed rows are sent by others."""


class IssueStatus(enum.StrEnum):
    """Where an issue is in its life: drafted, approved to go, sent to subscribers."""

    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    """Its ledger exists and deliveries are under way (or paused, see `paused_reason`)."""
    SENT = "sent"


class PauseKind(enum.StrEnum):
    """Who can end a pause: time (the relay was down or busy) or a person (auth, policy)."""

    RELAY = "relay"
    """Connection refused, timeouts, 4xx for everyone: retried later by the scheduler."""
    OPERATOR = "operator"
    """Authentication failed, policy refusals, message too big: a person must fix it."""


class DeliveryState(enum.StrEnum):
    """Where one subscriber's copy of an issue is."""

    PENDING = "pending"
    """To send (again, after `next_attempt_at` when an earlier attempt got a 4xx)."""
    SENDING = "sending"
    """Claimed by a sender; after a crash these are the messages that were in flight."""
    SENT = "sent"
    FAILED = "failed"
    """Temporary refusals until `[delivery] max_attempts` ran out."""
    BOUNCED = "bounced"
    """Refused for good (5xx at send time, or a bounce report later)."""
    UNKNOWN = "unknown"
    """Twice no reply to the final dot: it may or may not have arrived; not tried again."""


class RunOutcome(enum.StrEnum):
    """How a job run ended."""

    RUNNING = "running"
    OK = "ok"
    SKIPPED = "skipped"
    """Nothing was done on purpose: another process had the work, or shutdown began."""
    MISSED = "missed"
    """The scheduler was not running at the run time and the grace had passed."""
    FAILED = "failed"
