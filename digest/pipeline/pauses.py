"""What a paused send waits for, and when the scheduler tries it again.

A pause of kind `PauseKind.RELAY` (connection refused, timeouts, 4xx for everyone) is the
relay's trouble and passes by itself: the scheduler (`resuming.resume_tick`, also run by
`digest run`) tries the send again after 1, 2, 5, 10, 30 and then every 60 minutes, until
the next slot of the issue's cadence comes; from then on the pause waits for a person,
like a pause of kind `PauseKind.OPERATOR` (authentication, policy refusals, message too
big), which only a person can fix (then `digest send N`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from digest.store.states import PauseKind


class Paused(Protocol):
    """What these rules read of an issue (an `Issue`, or the row `digest status` reads)."""

    @property
    def number(self) -> int: ...
    @property
    def paused_reason(self) -> str | None: ...
    @property
    def paused_kind(self) -> str | None: ...
    @property
    def paused_at(self) -> datetime | None: ...
    @property
    def resume_at(self) -> datetime | None: ...
    @property
    def resume_attempts(self) -> int: ...


STEPS = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 30, 60))
"""The waits before automatic resume attempts 1, 2, 3…; the last one repeats."""


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt, after `attempts` attempts already made."""
    return STEPS[min(attempts, len(STEPS) - 1)]


def kind_of(issue: Paused) -> PauseKind | None:
    """The kind of `issue`'s pause; None when it is not paused. A pause recorded without
    a kind (an older version) waits for a person: nobody decided it was the relay's."""
    if issue.paused_reason is None:
        return None
    try:
        return PauseKind(issue.paused_kind) if issue.paused_kind else PauseKind.OPERATOR
    except ValueError:
        return PauseKind.OPERATOR


def next_attempt(issue: Paused) -> datetime | None:
    """When the scheduler tries a relay pause again; None for any other pause."""
    if kind_of(issue) is not PauseKind.RELAY:
        return None
    if issue.resume_at is not None:
        return issue.resume_at
    if issue.paused_at is None:
        return None
    return issue.paused_at + backoff(issue.resume_attempts or 0)


def advice(issue: Paused) -> str:
    """What happens next with `issue`'s pause, in words, for logs and `digest status`."""
    kind = kind_of(issue)
    if kind is None:
        return ""
    if kind is PauseKind.RELAY:
        when = next_attempt(issue)
        at = f" at {when:%Y-%m-%d %H:%M} UTC" if when else ""
        return (
            f"the relay's trouble: the scheduler tries again by itself{at} "
            f"(after 1, 2, 5, 10, 30, then every 60 minutes, until the next slot); "
            f"`digest send {issue.number}` tries now"
        )
    return (
        f"waits for a person: fix the cause, then `digest send {issue.number}`; "
        "the scheduler does not retry it"
    )
