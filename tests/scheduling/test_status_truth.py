"""`digest status` never says "no problem" while something holds: an issue stuck in
`sending` with no live sender, rows in flight with no sender, a paused issue and why,
deliveries waiting for a retry; its exit status is 0, 1 or 2 (Nagios)."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest import config, pipeline
from digest.cli import cli
from digest.pipeline import health, scheduling
from digest.store import runs
from digest.store.models import Delivery, DeliveryState, Issue
from tests.dbfixtures import write_config
from tests.scheduling.conftest import add_readers
from tests.smtpserver import SmtpServer

NOW = datetime.now(UTC)
"""When the module was imported: past slots and retry times are set around it. What must
be fresh at the moment `digest status` runs (a sender's heartbeat) uses `datetime.now`."""
SLOT_DAY = (NOW - timedelta(days=2)).date()


def status(settings: Any, code: int) -> str:
    result = CliRunner().invoke(cli, ["--config", str(settings.path), "status"])
    assert result.exit_code == code, result.output
    return result.output


def sent_with_one_retry(
    publication: Any, factory: sessionmaker[Session], server: SmtpServer
) -> tuple[Any, datetime]:
    """The weekly issue of the last slot sent, with bram's copy waiting for a retry."""
    settings = publication(SLOT_DAY, server=server)
    add_readers(settings, factory, since=NOW - timedelta(days=60))
    server.reply_for("bram@example.be", "451 4.7.1 greylisted, try again")
    slot = scheduling.latest_slot(
        pipeline.schedule_of(settings, "weekly"), NOW, settings.publication.timezone
    )
    pipeline.collect_sources(settings, factory, now=slot - timedelta(hours=1))
    scheduling.issue_tick(settings, factory, "weekly", now=slot)
    return settings, slot


def set_rows(factory: sessionmaker[Session], **values: Any) -> None:
    with factory() as session, session.begin():
        session.execute(
            sa.update(Delivery).where(Delivery.state == DeliveryState.PENDING).values(**values)
        )


def set_issue(factory: sessionmaker[Session], **values: Any) -> None:
    with factory() as session, session.begin():
        session.execute(sa.update(Issue).values(**values))


def test_a_retry_waiting_is_a_warning(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings, _ = sent_with_one_retry(publication, factory, smtp_server)
    set_rows(factory, next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
    output = status(settings, 1)
    assert "1 waiting for a retry" in output
    assert "delivery: 1 issue to look at" in output
    assert output.splitlines()[-1].startswith("WARNING: issue #1: 1 waiting for a retry")


def test_an_issue_stuck_in_sending_with_no_live_sender_is_critical(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings, _ = sent_with_one_retry(publication, factory, smtp_server)
    # The retry is due, and the only sender is a process on another host, silent for long.
    set_rows(factory, next_attempt_at=NOW - timedelta(minutes=30))
    set_issue(
        factory,
        sender_lock="elsewhere:4242:deadbeef",
        sender_heartbeat_at=NOW - timedelta(minutes=20),
    )
    output = status(settings, 2)
    assert "stuck in sending: deliveries are due and no live process sends it" in output
    assert "no problem" not in output

    # The same with a live sender that beat a moment ago: it is being sent, a warning only.
    set_issue(factory, sender_heartbeat_at=datetime.now(UTC))
    output = status(settings, 1)
    assert "stuck" not in output


def test_rows_in_flight_with_a_dead_sender_are_critical(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings, _ = sent_with_one_retry(publication, factory, smtp_server)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    host = runs.process_owner().split(":")[0]
    set_rows(factory, state=DeliveryState.SENDING)
    set_issue(factory, sender_lock=f"{host}:{gone}:cafe", sender_heartbeat_at=datetime.now(UTC))
    output = status(settings, 2)
    assert "1 in flight with no live sender" in output, output


def test_a_paused_issue_says_why_and_what_happens_next(
    publication: Any, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings, _ = sent_with_one_retry(publication, factory, smtp_server)
    now = datetime.now(UTC)
    set_rows(factory, next_attempt_at=now + timedelta(hours=1))
    set_issue(
        factory,
        paused_reason="the relay refused every connection",
        paused_kind="relay",
        paused_at=now - timedelta(minutes=1),
        resume_at=now + timedelta(minutes=1),
    )
    output = status(settings, 2)
    assert "paused: the relay refused every connection (the relay's trouble: the scheduler " in (
        output
    )
    assert "tries again by itself at " in output
    set_issue(factory, paused_kind="operator")
    assert "waits for a person" in status(settings, 2)


def test_an_unreachable_database_is_critical_without_a_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/no/such/dir/digest.db")
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("CRITICAL: the database cannot be read"), result.output


def test_a_postgresql_server_that_refuses_is_critical_at_once(tmp_path: Path) -> None:
    """Read on its driver, a refused PostgreSQL connection is the answer: `digest status`
    does not wait for it a second time through SQLAlchemy."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_config(tmp_path, f"postgresql+psycopg://digest@127.0.0.1:{port}/digest")
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        "CRITICAL: the database cannot be read: cannot reach the database: "
    ), result.output
    assert "refused" in result.output.lower()


def test_a_database_behind_the_code_is_critical(
    make_settings: Any, engine: sa.Engine, factory: sessionmaker[Session]
) -> None:
    settings = make_settings()
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE issues DROP COLUMN resume_at"))
    report = health.gather(settings, factory, now=NOW)
    assert report.schema_missing == ["issues.resume_at"]
    assert report.level == health.CRITICAL
    output = status(config.load(settings.path, env={}), 2)
    assert "the database is behind this version of digest (missing: issues.resume_at)" in output
