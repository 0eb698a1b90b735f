"""The pieces under every job: leases and once-only marks in the database, the run record
`digest status` reads, and the structured log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.pipeline import logfmt, scheduler
from digest.store import db, runs
from digest.store.runs import JobRun, RunOutcome

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


def test_a_lease_has_one_holder_until_released_or_expired(factory: sessionmaker[Session]) -> None:
    me, other = runs.process_owner(), runs.process_owner()
    assert runs.acquire(factory, "collect", me, now=NOW, ttl=TTL) is None
    assert runs.acquire(factory, "collect", other, now=NOW, ttl=TTL) == me
    assert runs.acquire(factory, "issue-weekly", other, now=NOW, ttl=TTL) is None, "per name"
    assert runs.renew(factory, "collect", me, now=NOW + timedelta(minutes=5), ttl=TTL)
    assert runs.acquire(factory, "collect", other, now=NOW + timedelta(minutes=14), ttl=TTL) == me
    # Not renewed for its whole time: the holder froze or died elsewhere; it is taken over.
    assert runs.acquire(factory, "collect", other, now=NOW + timedelta(minutes=16), ttl=TTL) is None
    assert not runs.renew(factory, "collect", me, now=NOW, ttl=TTL)
    runs.release(factory, "collect", me)  # no longer mine: changes nothing
    assert runs.acquire(factory, "collect", me, now=NOW, ttl=TTL) == other
    runs.release(factory, "collect", other)
    assert runs.acquire(factory, "collect", me, now=NOW, ttl=TTL) is None


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(
    factory: sessionmaker[Session],
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:00000000"
    assert runs.owner_is_dead(dead) and not runs.owner_is_dead(
        f"{socket.gethostname()}:{os.getpid()}:x"
    )
    assert runs.acquire(factory, "publish", dead, now=NOW, ttl=timedelta(days=1)) is None
    assert runs.acquire(factory, "publish", runs.process_owner(), now=NOW, ttl=TTL) is None


def test_a_mark_is_made_once(factory: sessionmaker[Session]) -> None:
    with db.transaction(factory) as session:
        assert runs.mark_once(session, "editors-told:3", now=NOW)
        assert not runs.mark_once(session, "editors-told:3", now=NOW)
        runs.unmark(session, "editors-told:3")
        assert not runs.is_marked(session, "editors-told:3")
        assert runs.mark_once(session, "editors-told:3", now=NOW)


def test_execute_records_the_run_and_skips_work_another_process_holds(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    settings = make_settings()
    runtime = scheduler.Runtime(settings, factory)
    assert scheduler.execute(runtime, "purge-pending", now=NOW).startswith("0 unconfirmed")
    elsewhere = f"elsewhere.example:4242:{'f' * 8}"
    assert runs.acquire(factory, "purge-pending", elsewhere, now=datetime.now(UTC), ttl=TTL) is None
    said = scheduler.execute(runtime, "purge-pending", now=NOW + timedelta(days=1))
    assert said == f"purge-pending is being done by another run ({elsewhere})"
    runtime.stop.set()
    assert scheduler.execute(runtime, "collect", now=NOW + timedelta(days=2)) == "shutting down"
    with factory() as session:
        rows = session.execute(
            sa.select(JobRun.job, JobRun.outcome, JobRun.finished_at).order_by(JobRun.id)
        ).all()
    assert [(job, outcome) for job, outcome, _ in rows] == [
        ("purge-pending", RunOutcome.OK),
        ("purge-pending", RunOutcome.SKIPPED),
        ("collect", RunOutcome.SKIPPED),
    ]
    assert all(finished is not None for _, _, finished in rows)
    with pytest.raises(ValueError, match="unknown job"):
        scheduler.execute(runtime, "nonsense")


def test_a_failing_tick_is_recorded_and_logged_not_raised(
    make_settings: Any, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    runtime = scheduler.Runtime(settings, factory)
    engine = factory.kw["bind"]
    with engine.begin() as connection:  # the table purge needs is gone: a real failure
        connection.execute(sa.text("DROP TABLE job_marks"))
    with caplog.at_level(logging.ERROR, logger="digest"):
        said = scheduler.execute(runtime, "purge-pending", now=NOW)
    assert said.startswith("purge-pending failed:")
    (line,) = caplog.records
    assert line.exc_info is not None
    with factory() as session:
        assert session.scalars(sa.select(JobRun.outcome)).one() is RunOutcome.FAILED


def record(message: str, **values: Any) -> logging.LogRecord:
    logger = logging.getLogger("digest.test")
    made = logger.makeRecord("digest.test", logging.INFO, __file__, 1, message, (), None)
    made.__dict__.update(logfmt.fields(**values))
    made.created = NOW.timestamp()
    return made


def test_log_lines_are_key_value_pairs_on_one_line() -> None:
    line = logfmt.KeyValueFormatter().format(
        record(
            'issue #1 sent: "4" sent\nok',
            event="issue.sent",
            issue=1,
            slot=NOW,
            late=timedelta(hours=7),
            empty="",
        )
    )
    assert line == (
        "time=2026-11-23T07:00:00.000Z level=info logger=digest.test event=issue.sent issue=1 "
        'slot=2026-11-23T07:00:00Z late=25200s empty="" msg="issue #1 sent: \\"4\\" sent\\nok"'
    )


def test_log_lines_as_json() -> None:
    line = logfmt.JsonFormatter().format(record("collect ok", event="job.done", job="collect"))
    assert json.loads(line) == {
        "time": "2026-11-23T07:00:00.000Z",
        "level": "info",
        "logger": "digest.test",
        "event": "job.done",
        "job": "collect",
        "msg": "collect ok",
    }


def test_configure_sends_lines_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    monkeypatch.setattr(
        logging.getLogger("apscheduler"), "level", logging.getLogger("apscheduler").level
    )
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        logfmt.configure("text", "info")
        logging.getLogger("digest.test").info("hello", extra=logfmt.fields(event="t.test"))
        logging.getLogger("apscheduler.scheduler").info("Added job")  # quieted
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("level=info logger=digest.test event=t.test msg=hello")
