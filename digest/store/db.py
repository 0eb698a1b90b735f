"""The database: one engine per URL, sessions, and creating the schema.

SQLite is the default and needs nothing installed; its foreign keys and WAL journal are
switched on per connection. PostgreSQL works through `postgresql+psycopg://…`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError
from digest.store.models import Base


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def connect(url: str, *, create: bool = True) -> sa.Engine:
    """Return an engine for `url`, creating missing tables when `create` is true."""
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigError(
            f"[database] url {url!r} is not a database URL SQLAlchemy knows ({exc}); "
            'use "sqlite:///digest.db" or "postgresql+psycopg://user@host/db"'
        ) from exc
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"[database] url {url!r} needs the driver {exc.name!r}; "
            "install it with `pip install 'digest[postgres]'`"
        ) from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        try:
            Base.metadata.create_all(engine)
        except sa.exc.OperationalError as exc:
            raise ConfigError(
                f"cannot open the database {engine.url.render_as_string(hide_password=True)}: "
                f"{exc.orig}; check [database] url"
            ) from exc
    return engine


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
