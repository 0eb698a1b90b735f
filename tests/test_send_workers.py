"""`digest send --workers N`: N processes share one ledger; each subscriber gets the issue
once, a worker killed mid-send has its rows settled and sent by the others, and the
duplicates are only the messages it had on the wire."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.pipeline import workers
from digest.store.models import DeliveryState
from tests.smtpserver import SmtpServer
from tests.test_draft import MONDAY
from tests.test_send import add_people, approved_issue, ledger, settings_for

PEOPLE = [(f"reader{n}@example.net", ("en", "nl", "fr")[n % 3], ()) for n in range(60)]
DEADLINE = 120.0


def until(condition: Any, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after a generous deadline."""
    give_up = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_workers_deliver_each_subscriber_exactly_once(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE)
    number = approved_issue(settings, factory)
    report = workers.send(settings, factory, workers=2, now=MONDAY, batch=10)
    assert report.workers == 2
    assert report.finished and report.counts[DeliveryState.SENT] == 60
    assert report.attempted == 60
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter(address for address, _, _ in PEOPLE)
    assert not list(settings.delivery.journal_dir.glob("*.journal"))
    # Each worker keeps its connections for all its batches (six of ten between them).
    assert smtp_server.connections <= 2 * settings.delivery.connections
    again = workers.send(settings, factory, workers=2, number=number, now=MONDAY, batch=10)
    assert again.finished and again.attempted == 0
    assert len(smtp_server.messages) == 60


def test_one_batch_is_sent_by_one_process(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE[:5])
    approved_issue(settings, factory)
    report = workers.send(settings, factory, workers=4, now=MONDAY, batch=10)
    assert report.workers == 1 and report.finished and len(smtp_server.messages) == 5


def test_a_killed_worker_rows_are_reclaimed_with_only_its_in_flight_duplicated(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE)
    approved_issue(settings, factory)
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["report"] = workers.send(settings, factory, workers=2, now=MONDAY, batch=10)
        except BaseException as exc:  # handed to the test's thread below
            done["error"] = exc

    sender = threading.Thread(target=run)
    sender.start()
    until(lambda: len(smtp_server.messages) >= 10, "the first messages")
    smtp_server.hold_dot_replies()  # every connection now waits with a message on the wire
    until(lambda: len(multiprocessing.active_children()) == 2, "two workers")
    victim = multiprocessing.active_children()[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    until(lambda: not victim.is_alive(), "the killed worker to end")
    smtp_server.release_dot_replies()
    sender.join(DEADLINE)
    assert not sender.is_alive() and "error" not in done, done.get("error")
    report = done["report"]
    assert report.finished and ledger(factory) == Counter({DeliveryState.SENT: 60})
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert set(received) == {address for address, _, _ in PEOPLE}
    duplicates = sum(received.values()) - 60
    # Only what the killed worker had on the wire (≤ its connections) can arrive twice,
    # and the report says how many may have.
    assert duplicates <= report.may_arrive_twice <= settings.delivery.connections
    assert report.resent_after_crash >= report.may_arrive_twice


def test_digest_send_workers_from_the_command_line(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    """The command forks its workers (one thread): every row once, into the outbox."""
    settings = settings_for(make_settings, tmp_path, None)
    people = [(f"reader{n}@example.net", ("en", "nl", "fr")[n % 3], ()) for n in range(620)]
    add_people(settings, factory, people)
    approved_issue(settings, factory)
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(settings.path), "send", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "620 sent" in done.stdout and "2 worker processes" in done.stdout
    assert ledger(factory) == Counter({DeliveryState.SENT: 620})
    files = list(settings.delivery.outbox_dir.glob("*.eml"))
    assert len(files) == 620  # one file per Message-ID: a duplicate would be the same file
    recipients = Counter(
        line.split(b":", 1)[1].strip()
        for path in files
        for line in path.read_bytes().split(b"\r\n")
        if line.startswith(b"To:")
    )
    assert len(recipients) == 620 and set(recipients.values()) == {1}
