"""Survive the database: a PostgreSQL cluster this test starts itself is restarted in the
middle of a send; the send waits for it, goes on, and finishes with no traceback and no
more duplicates than messages on the wire. A SQLite lock held longer than SQLite's own
patience is waited for the same way."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.pipeline import scheduling
from digest.pipeline.logfmt import FIELDS
from digest.store import db
from digest.store.models import DeliveryState, IssueStatus
from tests.scheduling.conftest import add_readers, issues_of, ledger
from tests.services import unavailable
from tests.smtpserver import SmtpServer

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
READERS = [(f"reader{n:03d}@example.net", "en", ()) for n in range(300)]


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class Cluster:
    """A PostgreSQL cluster of the test's own, on a free port."""

    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, *args]
        subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=120)

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again, waiting for both."""
        self.ctl("-m", "fast", "-w", "-l", str(self.data / "log"), "restart")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    binaries = _binaries()
    if binaries is None:
        unavailable("PostgreSQL's initdb is not installed (Debian: postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    subprocess.run(
        _as_postgres(
            [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "--no-sync"]
        ),
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    cluster = Cluster(binaries, data, _free_port())
    cluster.ctl("-w", "-l", str(data / "log"), "start")
    try:
        yield cluster
    finally:
        try:
            cluster.ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """The tests of this module that want PostgreSQL get the cluster; the others SQLite."""
    if "cluster" in request.fixturenames:
        own: Cluster = request.getfixturevalue("cluster")
        return own.url
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return f"sqlite:///{tmp_path}/digest.db"


def test_a_postgresql_restart_during_a_send_is_waited_for(
    cluster: Cluster,
    publication: Any,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A rate limit stretches the send over a few seconds, so the restart falls inside it.
    settings = publication(MONDAY.date(), server=smtp_server, delivery={"rate_per_second": 60.0})
    add_readers(settings, factory, READERS, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(hours=1))
    caplog.set_level(logging.WARNING)

    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["said"] = scheduling.issue_tick(settings, factory, "weekly", now=MONDAY)
        except BaseException as exc:
            outcome["raised"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 300
    while len(smtp_server.messages) < 40:
        assert sender.is_alive(), outcome
        assert time.monotonic() < deadline, "the send did not start"
        time.sleep(0.05)
    cluster.restart()
    sender.join(timeout=600)
    assert not sender.is_alive()

    assert "raised" not in outcome, outcome
    report = outcome["said"]
    assert not report.failed, report.message
    assert "issue #1 sent: 300 sent" in report.message, report.message
    retries = [r for r in caplog.records if getattr(r, FIELDS, {}).get("event") == "database.retry"]
    assert retries, "the restart fell inside the send and was waited for"
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert set(received) == {address for address, _, _ in READERS}
    duplicates = sum(received.values()) - len(received)
    assert duplicates <= settings.delivery.connections, duplicates
    assert ledger(factory) == {DeliveryState.SENT: len(READERS)}
    assert issues_of(factory)[0].status is IssueStatus.SENT


def test_a_sqlite_lock_longer_than_its_busy_timeout_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_MS", 100)
    path = tmp_path / "locked.db"
    engine = db.connect(f"sqlite:///{path}", create=True)
    factory = db.session_factory(engine)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(1.5, holder.execute, args=("COMMIT",))
    released.start()
    try:
        started = time.monotonic()
        answer = db.retrying(
            factory,
            lambda session: session.execute(sa.text("UPDATE sources SET active = active")).rowcount,
            what="testing",
        )
        assert answer == 0
        assert time.monotonic() - started >= 1.0, "it waited for the lock"
    finally:
        released.join()
        holder.close()
        engine.dispose()


def test_patience_runs_out_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    engine = db.connect("postgresql+psycopg://postgres@127.0.0.1:9/x?connect_timeout=1",
                        create=False)  # fmt: skip
    factory = db.session_factory(engine)
    with pytest.raises(db.DatabaseUnavailable, match="did not answer while testing for"):
        db.retrying(factory, lambda session: session.execute(sa.text("SELECT 1")),
                    what="testing", patience=2.0)  # fmt: skip


def test_a_sqlite_lock_during_a_send_is_waited_for(
    publication: Any,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    """Another process holds the SQLite database locked for longer than SQLite's own busy
    timeout (made 0.1 s here, 30 s in use) in the middle of a send."""
    monkeypatch.setattr(db, "SQLITE_BUSY_MS", 100)
    factory.kw["bind"].dispose()  # new connections get the short busy timeout
    settings = publication(MONDAY.date(), server=smtp_server, delivery={"rate_per_second": 30.0})
    readers = READERS[:120]
    add_readers(settings, factory, readers, since=MONDAY - timedelta(days=30))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(hours=1))
    caplog.set_level(logging.WARNING)
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["said"] = scheduling.issue_tick(settings, factory, "weekly", now=MONDAY)
        except BaseException as exc:  # the test reports whatever escaped
            outcome["raised"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 300
    while len(smtp_server.messages) < 20:
        assert sender.is_alive(), outcome
        assert time.monotonic() < deadline, "the send did not start"
        time.sleep(0.05)
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    time.sleep(2)  # the lock is held: the send must wait, however fast or slow it is
    holder.execute("COMMIT")
    holder.close()
    sender.join(timeout=600)
    assert not sender.is_alive()

    assert "raised" not in outcome, outcome
    assert "issue #1 sent: 120 sent" in outcome["said"].message, outcome["said"].message
    assert any(getattr(r, FIELDS, {}).get("event") == "database.retry" for r in caplog.records), (
        "the lock fell inside the send and was waited for"
    )
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert sum(received.values()) - len(received) <= settings.delivery.connections
    assert set(received) == {address for address, _, _ in readers}
