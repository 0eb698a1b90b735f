"""/healthz answers while the process lives; /readyz says whether the database, the
templates and the scheduler are fine; /metrics speaks Prometheus."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from digest import config
from digest.store import db, runs
from digest.store.runs import RunOutcome
from digest.web import create_app
from tests.test_draft import MONDAY
from tests.web.conftest import WEB, Clock, TestClient


def app_on(tmp_path: Path, clock: Clock) -> tuple[Any, Any, Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    path = tmp_path / "digest.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{folder}/digest.db"\n{WEB}', encoding="utf-8")
    settings = config.load(path, env={})
    factory = db.session_factory(db.connect(f"sqlite:///{folder}/digest.db", create=True))
    return create_app(settings, factory=factory, clock=clock), factory, folder


def test_healthz_is_the_process_readyz_the_database(tmp_path: Path) -> None:
    clock = Clock(MONDAY)
    app, factory, folder = app_on(tmp_path, clock)
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/readyz").text == "ready\n"
        factory.kw["bind"].dispose()
        shutil.rmtree(folder)  # the database is gone
        assert client.get("/healthz").text == "ok\n"
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.text.startswith("database: unable to open database file")


def test_readyz_fails_when_the_scheduler_is_not_seen(tmp_path: Path) -> None:
    clock = Clock(MONDAY)
    app, factory, _ = app_on(tmp_path, clock)
    engine = factory.kw["bind"]
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE apscheduler_jobs (id VARCHAR(191))"))
    with factory() as session, session.begin():
        runs.record_run(session, "collect", RunOutcome.OK, "", owner="x", now=MONDAY)
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/readyz").status_code == 200
        clock.advance(minutes=16)
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.text == "scheduler: no job finished since 2026-11-23 07:00 UTC\n"


def test_metrics_in_the_prometheus_text_format(tmp_path: Path) -> None:
    clock = Clock(MONDAY)
    app, factory, _ = app_on(tmp_path, clock)
    with factory() as session, session.begin():
        runs.record_run(
            session, "collect", RunOutcome.OK, "", owner="x", now=MONDAY - timedelta(seconds=90)
        )
    with TestClient(app, base_url="https://testserver") as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    lines = answer.text.splitlines()
    assert 'digest_issues{state="sent"} 0.0' in lines
    assert 'digest_deliveries{state="pending"} 0.0' in lines
    assert 'digest_issues_paused{kind="relay"} 0.0' in lines
    assert "digest_send_rate 0.0" in lines
    assert "digest_scheduler_lag_seconds 90.0" in lines
    assert "digest_last_collect_success_timestamp_seconds 0.0" in lines
