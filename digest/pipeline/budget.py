"""The error budget: when the answers say to stop sending and pause the issue."""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

from digest.deliver import SendResult, Verdict
from digest.deliver.replies import signature
from digest.store.models import PauseKind

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def pause_text(number: int, problem: str) -> str:
    return (
        f"paused issue #{number}: {problem}; fix it, then run `digest send {number}` to "
        "resume (nothing is lost, nobody was marked bounced)"
    )


class ErrorBudget:
    """When to stop sending and pause the issue, from the answers as they come.

    - a reply about us or the session (`Verdict.PAUSE`): at once, for a person;
    - the circuit breaker: `breaker` recipients in a row refused for good with the same
      reply (addresses and ids aside): a misconfigured relay, not dead mailboxes; for a
      person;
    - `limit` failures in a row (no success in between): the server is down or refusing;
    - a failure rate: at least `max_rate` of the last `window` answers failed, even with
      successes in between (a relay failing every other message).
    The last two are the relay's trouble and resume by themselves (`PauseKind.RELAY`).
    """

    def __init__(
        self, limit: int, *, window: int = 200, max_rate: float = 1.0, breaker: int = 0
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_rate = max_rate
        self.breaker = breaker
        self.streak: list[SendResult] = []
        self.recent: collections.deque[bool] = collections.deque(maxlen=window)
        self.successes = 0
        self._tripped: tuple[str, PauseKind] | None = None

    def add(self, result: SendResult, verdict: Verdict | None = None) -> None:
        """Count one answer."""
        verdict = verdict or result.verdict
        failed = verdict is not Verdict.SENT
        self.recent.append(failed)
        if not failed:
            self.successes += 1
            self.streak.clear()
            return
        self.streak.append(result)
        if self._tripped is not None:
            return
        reply = " ".join(result.reply.split())
        if verdict is Verdict.PAUSE:
            self._tripped = (
                f"the server refused the message because of us: {reply}",
                PauseKind.OPERATOR,
            )
        elif self.breaker and self._same_refusals():
            self._tripped = (
                f"the circuit breaker tripped: {self.breaker} recipients in a row were refused "
                f"for good with the same reply ({reply}), which looks like the server, not "
                "the list; nobody was marked bounced. If the addresses really are dead, run "
                f"`digest send --accept-bounces` to count them",
                PauseKind.OPERATOR,
            )
        elif len(self.streak) >= self.limit:
            self._tripped = (
                f"{len(self.streak)} messages in a row failed (last reply: {reply}); "
                "check the SMTP server and [delivery] settings",
                PauseKind.RELAY,
            )
        elif len(self.recent) >= self.window and self._rate() >= self.max_rate:
            self._tripped = (
                f"{self._rate():.0%} of the last {len(self.recent)} messages failed "
                f"(max_failure_rate {self.max_rate:.0%}; last reply: {reply}); check the "
                "SMTP server",
                PauseKind.RELAY,
            )

    def _rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def _same_refusals(self) -> bool:
        tail = self.streak[-self.breaker :]
        if len(tail) < self.breaker:
            return False
        if any(r.verdict is not Verdict.BOUNCE for r in tail):
            return False
        return len({signature(r.reply) for r in tail}) == 1

    @property
    def exhausted(self) -> bool:
        """Whether to pause."""
        return self._tripped is not None

    @property
    def kind(self) -> PauseKind:
        """Who can end the pause."""
        return self._tripped[1] if self._tripped else PauseKind.RELAY

    def reason(self, number: int) -> str:
        """The pause message."""
        problem = self._tripped[0] if self._tripped else "no reply"
        return pause_text(number, problem)
