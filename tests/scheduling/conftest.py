"""Scheduler tests: the example publication, a controllable clock, readers, and a clean
APScheduler job store on the test database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import scheduler
from digest.store.models import Delivery, DeliveryState, Issue
from subscribers import registry
from subscribers.model import ConsentSource

SECRETS = {
    "secret_key": "test-secret-key-for-links-0123456789",
    "suppression_key": "test-suppression-key-0123456789",
}
SLOW_MACHINE = {"DIGEST_COLLECT__TIMEOUT_SECONDS": "60"}
"""Environment for `digest` processes the tests start: the same patience as in-process."""
PEOPLE = [
    ("ana@example.net", "en", ()),
    ("bram@example.be", "nl", ()),
    ("chloe@example.fr", "fr", ()),
    ("dirk@example.be", "nl", ("labour",)),
]


@dataclass
class Clock:
    """The time the test says it is; ticks are called with `clock.now`, nothing sleeps."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        """Move forward by timedelta(**delta) and return the new now."""
        self.now += timedelta(**delta)
        return self.now

    def at(self, moment: datetime) -> datetime:
        """Jump to `moment` and return it."""
        self.now = moment
        return moment


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value) + '"'


@pytest.fixture
def publication(make_settings: Any, tmp_path: Path) -> Any:
    """Return a function building the example publication's settings, dated around `today`,
    with secrets and extra keys per section: publication(issue={"approval": "editor"})."""

    def make(
        today: date,
        *,
        issue: dict[str, Any] | None = None,
        delivery: dict[str, Any] | None = None,
        web: dict[str, Any] | None = None,
        server: Any = None,
    ) -> config.Settings:
        from examples.run import materialize

        materialize(tmp_path, today)
        text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
        sections: dict[str, dict[str, Any]] = {
            "issue": dict(issue or {}),
            "delivery": {"retry_seconds": 0.05, "connections": 2, **(delivery or {})},
            "web": {"secret_key": SECRETS["secret_key"], **(web or {})},
            "subscribers": {"suppression_key": SECRETS["suppression_key"]},
        }
        if server is not None:
            sections["delivery"].update(
                transport="smtp", smtp_host="127.0.0.1", smtp_port=server.port
            )
        lines = []
        for name, values in sections.items():
            lines.append(f"[{name}]")
            lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
        settings: config.Settings = make_settings(
            "\n".join(lines) + "\n" + text[text.index("[[sources]]") :]
        )
        return patient(settings)

    return make


def patient(settings: config.Settings) -> config.Settings:
    """Parsing in a child process is slow on a loaded machine: no source should fail for
    want of time in these tests (processes they start get SLOW_MACHINE)."""
    collect = dataclasses.replace(settings.collect, timeout_seconds=60.0)
    return dataclasses.replace(settings, collect=collect)


def add_readers(
    settings: config.Settings,
    factory: sessionmaker[Session],
    people: Sequence[tuple[str, str, Sequence[str]]] = PEOPLE,
    *,
    cadence: str = "weekly",
    confirmed: bool = True,
    since: datetime,
) -> None:
    """Put confirmed (or pending) subscribers on the list, signed up at `since`."""
    key = settings.subscribers.suppression_key.reveal().encode()
    with factory() as session, session.begin():
        for address, language, topics in people:
            registry.add(
                session,
                address,
                language=language,
                topics=topics,
                cadence=cadence,
                source=ConsentSource.CLI,
                consent_version="v1",
                confirmed=confirmed,
                now=since,
                languages=settings.publication.languages,
                suppression_key=key,
            )


def ledger(factory: sessionmaker[Session]) -> Counter[DeliveryState]:
    """The delivery rows per state, over every issue."""
    with factory() as session:
        return Counter(session.scalars(sa.select(Delivery.state)))


def issues_of(factory: sessionmaker[Session]) -> list[Issue]:
    """Every issue, by number."""
    with factory() as session:
        return list(session.scalars(sa.select(Issue).order_by(Issue.number)))


def outbox(settings: config.Settings) -> list[Path]:
    """The messages the outbox transport wrote."""
    return sorted(settings.delivery.outbox_dir.glob("*.eml"))


@pytest.fixture(autouse=True)
def fresh_job_store(engine: sa.Engine) -> None:
    """APScheduler's table is not in our metadata: start without it (PostgreSQL keeps it)."""
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {scheduler.JOBS_TABLE}"))
