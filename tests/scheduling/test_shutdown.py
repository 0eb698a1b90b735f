"""SIGTERM to `digest schedule` while it sends: the messages in flight finish and are
recorded, the process exits 0, no delivery is left 'sending', and the next tick finishes
the issue with nobody served twice.

The scheduler runs on the real clock in its own process, so its weekly slot is put ten
minutes before now: at start, its catch-up tick sends that slot's issue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zoneinfo
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.compose import slots
from digest.pipeline import scheduling
from digest.store.models import DeliveryState, IssueStatus
from tests.scheduling.conftest import SLOW_MACHINE, add_readers, issues_of, ledger
from tests.smtpserver import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")
READERS = [(f"reader{n:02}@example.net", "en", ()) for n in range(40)]


def test_sigterm_during_a_send_stops_gracefully(
    publication: Any,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    local = (now - timedelta(minutes=10)).astimezone(BRUSSELS)
    schedule = f"{slots.DAYS[local.weekday()]} {local:%H:%M}"
    settings = publication(
        local.date(),
        issue={"schedule": schedule},
        server=smtp_server,
        delivery={"rate_per_second": 8.0},
    )
    add_readers(settings, factory, READERS, since=now - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=now - timedelta(minutes=20))

    env = {
        **os.environ,
        **SLOW_MACHINE,
        "PYTHONPATH": str(ROOT),
        "DIGEST_CONFIG": str(settings.path),
    }
    log = tmp_path / "schedule.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "schedule"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 120
        while len(smtp_server.messages) < 5:
            assert process.poll() is None, log.read_text("utf-8")
            assert time.monotonic() < deadline, "the send never started: " + log.read_text()
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, log.read_text("utf-8")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output_text = log.read_text("utf-8")
    assert "event=scheduler.stopping signal=SIGTERM" in output_text
    assert "event=issue.stopped" in output_text and "event=scheduler.stopped" in output_text

    states = ledger(factory)
    assert states[DeliveryState.SENDING] == 0, "nothing left in flight"
    assert 5 <= states[DeliveryState.SENT] < len(READERS), "stopped mid-send"
    assert states[DeliveryState.SENT] == len(smtp_server.messages), "every accepted one recorded"
    (issue,) = issues_of(factory)
    assert issue.status is IssueStatus.SENDING and issue.paused_reason is None

    # The next start (here: the tick it would run) sends the rest, to nobody twice.
    said = scheduling.issue_tick(settings, factory, "weekly", now=datetime.now(UTC)).message
    assert f"issue #{issue.number} sent" in said
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter({address: 1 for address, _, _ in READERS})
