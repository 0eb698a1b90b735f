"""Which SMTP replies bounce a subscriber and which pause the issue (`deliver/replies.py`)."""

from __future__ import annotations

import pytest

from digest.deliver import Outcome, SendResult
from digest.deliver.replies import Stage, Verdict, classify, signature
from digest.pipeline.sending import ErrorBudget
from digest.store.models import PauseKind

ABOUT_US = [
    "530 5.7.0 Authentication required",
    "535 5.7.8 Authentication credentials invalid",
    "550 5.7.1 Sender address rejected: not allowed to send as digest@example.org",
    "554 5.7.1 <ana@example.net>: Relay access denied",
    "550 5.7.1 Message rejected as spam by Content Filtering",
    "554 5.7.9 Message refused: policy violation",
    "552 5.3.4 Message size exceeds fixed limit",
    "552 5.2.3 Message length exceeds administrative limit",
    "554 5.3.0 Local system error",
    "550 5.4.4 Unable to route",
    "550 5.1.7 Invalid sender mailbox syntax",
    "550 Relaying denied",
    "554 Transaction failed",
    "550 Service unavailable; client host blocked using Spamhaus",
]
ABOUT_THE_RECIPIENT = [
    "550 5.1.1 <ana@example.net>: Recipient address rejected: User unknown",
    "550 5.1.1 The email account that you tried to reach does not exist",
    "550 5.2.1 Mailbox disabled, not accepting messages",
    "552 5.2.2 Mailbox full",
    "550 No such user here",
    "550 Requested action not taken: mailbox unavailable",
]


@pytest.mark.parametrize("reply", ABOUT_US)
@pytest.mark.parametrize("stage", [Stage.RCPT, Stage.DOT, Stage.MAIL, Stage.DATA])
def test_replies_about_us_pause_at_every_stage(reply: str, stage: Stage) -> None:
    assert classify(int(reply[:3]), reply, stage) is Verdict.PAUSE


@pytest.mark.parametrize("reply", ABOUT_THE_RECIPIENT)
def test_replies_about_the_recipient_bounce_only_at_rcpt(reply: str) -> None:
    code = int(reply[:3])
    assert classify(code, reply, Stage.RCPT) is Verdict.BOUNCE
    # After the payload, for one copy: this delivery fails; the subscriber stays.
    assert classify(code, reply, Stage.DOT) is Verdict.REFUSED
    # At MAIL or the DATA command it cannot be about them.
    assert classify(code, reply, Stage.MAIL) is Verdict.PAUSE


def test_temporary_sent_and_local_refusals() -> None:
    assert classify(451, "451 4.7.1 greylisted", Stage.RCPT) is Verdict.RETRY
    assert classify(250, "250 2.0.0 OK", Stage.DOT) is Verdict.SENT
    local = "553 5.6.7 no SMTPUTF8"
    assert classify(553, local, Stage.LOCAL) is Verdict.REFUSED


def test_signature_ignores_addresses_and_ids() -> None:
    one = signature("550 5.1.1 <ana@example.net>: user unknown (queue 4F2A9C)")
    two = signature("550 5.1.1 <bram@example.be>: user unknown (queue 77B01E)")
    assert one == two
    assert one != signature("550 5.7.1 <ana@example.net>: relay access denied")


def result(reply: str, stage: Stage = Stage.RCPT) -> SendResult:
    return SendResult.from_reply(int(reply[:3]), reply, stage)


OK = result("250 2.0.0 OK", Stage.DOT)


def test_budget_trips_on_a_failure_rate_with_successes_in_between() -> None:
    budget = ErrorBudget(50, window=20, max_rate=0.5)
    for n in range(19):
        budget.add(result("451 4.3.0 try later") if n % 2 else OK)
        assert not budget.exhausted
    budget.add(result("451 4.3.0 try later"))
    assert budget.exhausted and budget.kind is PauseKind.RELAY
    assert "50% of the last 20 messages failed" in budget.reason(7)


def test_budget_rate_below_the_limit_does_not_trip() -> None:
    budget = ErrorBudget(50, window=20, max_rate=0.5)
    for n in range(200):
        budget.add(result("451 4.3.0 try later") if n % 3 == 0 else OK)
    assert not budget.exhausted


def test_budget_streak_still_trips() -> None:
    budget = ErrorBudget(4, window=200, max_rate=0.9)
    for _ in range(4):
        budget.add(OK if budget.exhausted else result("451 4.3.0 try later"))
    assert budget.exhausted and budget.kind is PauseKind.RELAY


def test_circuit_breaker_wants_the_same_reply() -> None:
    budget = ErrorBudget(50, breaker=3)
    budget.add(result("550 5.1.1 <a@example.net>: user unknown"))
    budget.add(result("550 5.2.1 <b@example.net>: mailbox disabled"))
    budget.add(result("550 5.1.1 <c@example.net>: user unknown"))
    assert not budget.exhausted
    budget.add(result("550 5.1.1 <d@example.net>: user unknown"))
    budget.add(result("550 5.1.1 <e@example.net>: user unknown"))
    assert budget.exhausted and budget.kind is PauseKind.OPERATOR
    assert "circuit breaker" in budget.reason(3)


def test_a_reply_about_us_pauses_at_once_for_a_person() -> None:
    budget = ErrorBudget(50)
    budget.add(result("554 5.7.1 relay access denied"))
    assert budget.exhausted and budget.kind is PauseKind.OPERATOR
    assert "554 5.7.1 relay access denied" in budget.reason(2)


def test_unknown_outcomes_count_as_failures() -> None:
    budget = ErrorBudget(3)
    unknown = SendResult(Outcome.UNKNOWN, 0, "no reply to the final dot", Stage.DOT)
    for _ in range(3):
        budget.add(unknown)
    assert budget.exhausted and budget.kind is PauseKind.RELAY
