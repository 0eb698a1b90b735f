"""Two processes at the same slot at the same moment, against the same database (SQLite
file or PostgreSQL): one issue for the slot, and every subscriber gets it exactly once
(counted at a real SMTP server, so a duplicate would show)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.store.models import Delivery, DeliveryState, Issue, IssueStatus
from tests.scheduling.conftest import SLOW_MACHINE, add_readers
from tests.smtpserver import SmtpServer

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
READERS = [(f"reader{n:02}@example.net", ("en", "nl", "fr")[n % 3], ()) for n in range(30)]


def spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **SLOW_MACHINE, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)


def tick_command(settings: Any, mode: str, tmp_path: Path, name: str) -> list[str]:
    return [
        sys.executable, "-m", "tests.scheduling.tick", str(settings.path), mode,
        MONDAY.isoformat(), str(tmp_path / f"{name}.ready"), str(tmp_path / "go"),
    ]  # fmt: skip


def wait_ready(tmp_path: Path, names: list[str], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 300  # importing digest in two processes on a busy machine
    while not all((tmp_path / f"{n}.ready").exists() for n in names):
        assert time.monotonic() < deadline, "the processes never got ready"
        assert all(p.poll() is None for p in processes), "a process died before the start"
        time.sleep(0.01)


@pytest.mark.parametrize("mode", ["job", "bare", "manual-run"])
def test_two_processes_on_one_slot_send_one_issue_once_to_everyone(
    publication: Any,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    tmp_path: Path,
    mode: str,
) -> None:
    """job: two schedulers' issue jobs; bare: two issue ticks without leases (the database
    alone keeps them apart); manual-run: a scheduler's tick and `digest run` by hand."""
    # A rate limit stretches the send over a few seconds, so that the two overlap.
    settings = publication(MONDAY.date(), server=smtp_server, delivery={"rate_per_second": 15.0})
    add_readers(settings, factory, READERS, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(hours=1))

    names = ["first", "second"] if mode != "manual-run" else ["first"]
    tick_mode = "bare" if mode == "bare" else "job"
    processes = [
        spawn(tick_command(settings, tick_mode, tmp_path, name), tmp_path / f"{name}.log")
        for name in names
    ]
    wait_ready(tmp_path, names, processes)
    (tmp_path / "go").touch()
    if mode == "manual-run":
        command = [sys.executable, "-m", "digest", "--config", str(settings.path), "run"]
        command += ["--as-of", MONDAY.isoformat()]
        processes.append(spawn(command, tmp_path / "manual.log"))
        names.append("manual")
    for process in processes:
        process.wait(timeout=240)
    logs = {n: (tmp_path / f"{n}.log").read_text("utf-8") for n in names}
    for name, process in zip(names, processes, strict=True):
        # `digest run` exits 1 when its send is refused (another process sends the issue).
        accepted = (0, 1) if name == "manual" else (0,)
        assert process.returncode in accepted and "Traceback" not in logs[name], logs

    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter({address: 1 for address, _, _ in READERS}), logs
    with factory() as session:
        slot_issues = session.scalars(
            sa.select(Issue).where(Issue.cadence == "weekly", Issue.slot == MONDAY)
        ).all()
        assert len(slot_issues) == 1
        assert slot_issues[0].status is IssueStatus.SENT
        states = Counter(session.scalars(sa.select(Delivery.state)))
        assert states == Counter({DeliveryState.SENT: len(READERS)})
