"""Fixtures for the subscriber tests: the subscriber tables on the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from subscribers import model


@pytest.fixture
def db(engine: sa.Engine, factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on a fresh copy of the subscriber tables (SQLite file or PostgreSQL)."""
    # The subscriber tables live on their own metadata, which `engine` does not know (yet).
    model.Base.metadata.drop_all(engine)
    model.Base.metadata.create_all(engine)
    with factory() as session:
        yield session
