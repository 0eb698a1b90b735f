"""Opening the publication's database, and the one clock the pipeline reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from digest.config import Settings, database_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from digest.store import db


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Return a session factory on the configured database, after checking it exists and
    is at this digest's schema revision (only `digest init` creates one)."""
    from digest.store import db  # SQLAlchemy: loaded by the commands that open the database

    engine = db.connect(database_url(settings), pool=database_pool(settings))
    try:
        db.open_existing(engine)
    except BaseException:
        engine.dispose()
        raise
    return db.session_factory(engine)


def database_pool(settings: Settings) -> db.Pool:
    """The [database] pool settings."""
    from digest.store import db

    found = settings.database
    return db.Pool(
        size=found.pool_size,
        max_overflow=found.max_overflow,
        timeout_seconds=found.pool_timeout_seconds,
        recycle_seconds=found.pool_recycle_seconds,
        pre_ping=found.pool_pre_ping,
    )


def utcnow() -> datetime:
    """The current time, aware UTC (the only clock the pipeline reads)."""
    return datetime.now(UTC)
