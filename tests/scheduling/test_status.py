"""`digest status`: next runs of each job, last results, source and delivery problems."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.cli import cli
from digest.pipeline import health, scheduler
from digest.store import plainsql
from digest.store.models import Issue
from tests.scheduling.conftest import add_readers, patient
from tests.smtpserver import SmtpServer

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def status(settings: Any, *extra: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(settings.path), "status", *extra])
    assert result.exit_code == code, result.output
    return result.output


def test_status_before_the_scheduler_ever_ran(make_settings: Any) -> None:
    output = status(make_settings())
    assert "the scheduler never ran with this database" in output
    for job in scheduler.JOB_IDS:
        assert f"  {job} " in output
    assert "delivery: no problem" in output
    assert output.splitlines()[-1] == "OK: all is well"


def test_status_shows_next_runs_last_results_and_problems(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer, tmp_path: Any
) -> None:
    settings = publication(MONDAY.date(), server=smtp_server)
    # A source that cannot be read: its failure shows with the error.
    with settings.path.open("a", encoding="utf-8") as config_file:
        config_file.write(
            '\n[[sources]]\nname = "broken-agenda"\nurl = "calendar/missing.ics"\n'
            'kind = "calendar"\n'
        )
    settings = patient(config.load(settings.path, env={}))
    add_readers(settings, factory, since=MONDAY - timedelta(days=30))
    smtp_server.reply_for("bram@example.be", "451 4.7.1 greylisted, try again", times=3)
    smtp_server.reply_for("chloe@example.fr", "550 5.1.1 no such user")
    runtime = scheduler.Runtime(settings, factory)
    built = scheduler.build_scheduler(
        settings, runtime=runtime, scheduler_class=scheduler.GracefulBackgroundScheduler
    )
    built.start(paused=True)  # stores the jobs and their next runs
    built.shutdown(wait=False)
    scheduler.execute(runtime, "collect", now=MONDAY - timedelta(hours=1))
    scheduler.execute(runtime, "issue-weekly", now=MONDAY)
    with factory() as session, session.begin():
        session.scalars(sa.select(Issue)).one().paused_reason = "paused issue #1: the relay said no"

    output = status(settings, code=2)
    assert "jobs (times in Europe/Brussels)" in output
    weekly = next(line for line in output.splitlines() if line.startswith("  issue-weekly"))
    assert "mon 08:00" in weekly and "next Mon " in weekly and " 08:00" in weekly
    assert "last Mon 23 Nov 2026 08:00 ok: issue #1: 2 sent, 0 failed, 1 bounced" in weekly
    collect = next(line for line in output.splitlines() if line.startswith("  collect"))
    assert "every 30m" in collect and "7 sources: " in collect and "broken-agenda: " in collect
    assert "sources: 7, 1 with problems" in output
    assert "broken-agenda" in output and "failing x1" in output and "missing.ics" in output
    assert "#1    weekly  Mon 23 Nov 2026 08:00  sending" in output
    assert "paused: paused issue #1: the relay said no" in output
    assert "1 waiting for a retry (next at 2026-11-23 07:00 UTC)" in output
    assert "1 bounced" in output
    assert "delivery: 1 issue to look at" in output

    assert "CRITICAL: " in output.splitlines()[-1]
    data = json.loads(status(settings, "--json", code=2))
    assert [job["id"] for job in data["jobs"]] == list(scheduler.JOB_IDS)
    assert all(job["stored"] for job in data["jobs"])
    (issue,) = data["issues"]
    assert issue["counts"] == {"sent": 2, "pending": 1, "bounced": 1}
    assert issue["problems"][0].startswith("paused: paused issue #1: the relay said no")
    assert data["level"] == 2
    assert data["source_problems"][0]["name"] == "broken-agenda"

    # The same report whichever way the database is read: on its driver alone (what
    # `digest status` does) or through SQLAlchemy (its fallback, and the desk's way).
    now = datetime.now(UTC)
    with plainsql.connect(config.database_url(settings)) as reader:
        assert reader is not None
        quick = health.gather(settings, reader, now=now)
    assert quick.issues and quick.source_problems and quick.jobs
    assert dataclasses.asdict(quick) == dataclasses.asdict(
        health.gather(settings, factory, now=now)
    )
