"""An approved issue goes out at the time an editor chose (`digest send N --at`, the desk's
"Schedule"), not at its slot; the scheduler and `digest run` honour it. The clock is the
test's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.pipeline import audit, send_times, sending
from digest.pipeline.curation import DeskError
from digest.store.models import DeliveryState, IssueStatus
from tests.scheduling.conftest import issues_of, ledger, outbox
from tests.scheduling.test_approval import MONDAY, Editors, editorial, tick


def drafted_ahead(publication: Any, factory: sessionmaker[Session]) -> Any:
    settings = editorial(publication, factory)
    tick(settings, factory, MONDAY - timedelta(hours=20), Editors())
    (draft,) = issues_of(factory)
    assert draft.status is IssueStatus.DRAFT
    return settings


def test_a_chosen_time_after_the_slot_holds_the_send_until_then(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = drafted_ahead(publication, factory)
    editors = Editors()
    sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    # 11:30 in Brussels (UTC+1 in November) is 10:30 UTC, three and a half hours after the slot.
    chosen = send_times.schedule_send(
        settings, factory, 1, "2026-11-23 11:30", now=MONDAY - timedelta(hours=9)
    )
    assert chosen.at == MONDAY + timedelta(hours=3, minutes=30)

    said = tick(settings, factory, MONDAY, editors)
    assert not outbox(settings), said
    tick(settings, factory, MONDAY + timedelta(hours=3, minutes=25), editors)
    assert not outbox(settings)
    said = tick(settings, factory, MONDAY + timedelta(hours=3, minutes=30), editors)
    assert "issue #1 sent: 4 sent" in said
    assert ledger(factory) == {DeliveryState.SENT: 4}


def test_a_chosen_time_before_the_slot_sends_early_and_once(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = drafted_ahead(publication, factory)
    editors = Editors()
    sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    send_times.schedule_send(
        settings, factory, 1, MONDAY - timedelta(hours=2), now=MONDAY - timedelta(hours=9)
    )
    tick(settings, factory, MONDAY - timedelta(hours=2, minutes=5), editors)
    assert not outbox(settings)
    assert "issue #1 sent: 4 sent" in tick(settings, factory, MONDAY - timedelta(hours=2), editors)
    tick(settings, factory, MONDAY, editors)
    assert len(outbox(settings)) == 4


def test_cancelled_it_goes_at_its_slot_again(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = drafted_ahead(publication, factory)
    editors = Editors()
    sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    send_times.schedule_send(
        settings, factory, 1, MONDAY + timedelta(hours=5), now=MONDAY - timedelta(hours=9)
    )
    assert send_times.cancel_send(factory, 1).at is None
    assert "issue #1 sent: 4 sent" in tick(settings, factory, MONDAY, editors)


@pytest.mark.parametrize(
    ("when", "approve", "kind"),
    [
        ("2026-11-22 09:00", True, "time_past"),
        ("next tuesday", True, "time_invalid"),
        ("2026-11-24 09:00", False, "not_approved"),
    ],
)
def test_refusals_name_their_reason(
    publication: Any, factory: sessionmaker[Session], when: str, approve: bool, kind: str
) -> None:
    settings = drafted_ahead(publication, factory)
    if approve:
        sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    with pytest.raises(DeskError) as refused:
        send_times.schedule_send(settings, factory, 1, when, now=MONDAY - timedelta(hours=9))
    assert refused.value.kind == kind
    assert send_times.send_time(factory, 1).at is None


def test_the_cli_verb_schedules_audits_and_digest_run_sends_at_that_time(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    settings = drafted_ahead(publication, factory)
    sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    runner = CliRunner()
    base = ["--config", str(settings.path), "--by", "ana"]

    past = runner.invoke(cli, [*base, "send", "1", "--at", "2026-11-20 09:00"])
    assert past.exit_code != 0 and "has passed" in past.output

    done = runner.invoke(
        cli,
        [*base, "send", "1", "--at", "2026-11-25 09:00", "--as-of", "2026-11-23T06:00+00:00"],
    )
    assert done.exit_code == 0, done.output
    assert "issue #1 goes out at 2026-11-25 09:00 CET" in done.output
    (row,) = audit.entries(factory, action="scheduled")
    assert (row.actor, row.subject, row.detail) == ("cli:ana", "issue 1", "2026-11-25 09:00 CET")

    early = runner.invoke(cli, [*base, "run", "--as-of", "2026-11-25T07:59+00:00"])
    assert not outbox(settings), early.output
    late = runner.invoke(cli, [*base, "run", "--as-of", "2026-11-25T08:00+00:00"])
    assert "its chosen time has come" in late.output, late.output
    assert len(outbox(settings)) == 4

    again = runner.invoke(cli, [*base, "send", "1", "--unschedule"])
    assert again.exit_code == 0 and "goes out at its slot" in again.output
    assert [r.action for r in audit.entries(factory, action="unscheduled")] == ["unscheduled"]


def test_digest_status_calls_it_late_only_after_the_chosen_time(
    publication: Any, factory: sessionmaker[Session]
) -> None:
    from digest.pipeline import health

    settings = drafted_ahead(publication, factory)
    sending.approve(settings, factory, 1, now=MONDAY - timedelta(hours=10))
    send_times.schedule_send(
        settings, factory, 1, MONDAY + timedelta(hours=3), now=MONDAY - timedelta(hours=9)
    )

    def late(now: Any) -> list[str]:
        with factory() as session:
            return [f.text for f in health.issue_findings(session, now) if "late" in f.text]

    assert late(MONDAY + timedelta(hours=2)) == []
    (said,) = late(MONDAY + timedelta(hours=4))
    assert "its time came at 2026-11-23 10:00 UTC" in said
