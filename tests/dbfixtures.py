"""Database fixtures: a real SQLite file per test, or PostgreSQL when
DIGEST_TEST_DATABASE_URL is set (`.ci/run` sets it), with a fresh schema each time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.store import db, schema


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """DIGEST_TEST_DATABASE_URL with a schema of this test run's own, so that two runs on
    one database (a developer's and CI's, or parallel workers) never drop each other's
    tables; subprocesses reach the same schema through the URL's search_path."""
    base = os.environ.get("DIGEST_TEST_DATABASE_URL")
    if not base:
        yield None
        return
    schema = f"digest_test_{os.getpid()}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path, postgres_url: str | None) -> str:
    return postgres_url or f"sqlite:///{tmp_path}/digest.db"


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = db.connect(database_url)
    with engine.begin() as connection:
        schema.metadata().drop_all(connection)
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {schema.VERSION_TABLE}"))
    schema.create_from_models(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: sa.Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


def write_config(directory: Path, database_url: str, extra: str = "") -> Path:
    """Write a digest.toml for a test and return its path. Sources get 60 s each: parsing
    in a child process is slow on a loaded machine, and no test but those of the timeout
    itself (which set their own) may fail a source for want of time."""
    path = directory / "digest.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[collect]\nallow_networks = ["127.0.0.0/8"]\n'
        f"timeout_seconds = 60\nper_host_interval_seconds = 0\n{extra}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str, engine: sa.Engine) -> Any:
    """Return a function building Settings from extra TOML, on the test database."""

    def make(extra: str = "") -> config.Settings:
        return config.load(write_config(tmp_path, database_url, extra), env={})

    return make
