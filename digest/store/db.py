"""The database: one engine per URL, sessions, and the checks before any command uses it.

SQLite is the default and needs nothing installed; its foreign keys and WAL journal are
switched on per connection. PostgreSQL works through `postgresql+psycopg://…`, with the
pool settings of `[database]`. Only `digest init` creates a database (`create`); every other
command opens an existing one (`open_existing`), which stops with one sentence and the next
step when the database is missing, unreadable, read-only, corrupt, or at another schema
revision.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError, DatabaseError


@dataclass(frozen=True)
class Pool:
    """Connection pool settings (PostgreSQL; SQLite keeps SQLAlchemy's defaults)."""

    size: int = 5
    max_overflow: int = 10
    timeout_seconds: float = 30.0
    recycle_seconds: int = 1800
    pre_ping: bool = True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def connect(url: str, *, create: bool = False, pool: Pool | None = None) -> sa.Engine:
    """Return an engine for `url`; with `create`, build the schema in an empty database."""
    options: dict[str, Any] = {}
    if pool is not None and not url.startswith("sqlite"):
        options = {
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_timeout": pool.timeout_seconds,
            "pool_recycle": pool.recycle_seconds,
            "pool_pre_ping": pool.pre_ping,
        }
    try:
        engine = sa.create_engine(url, **options)
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
        from digest.store import schema

        try:
            prepare_file(engine)
            schema.create(engine)
        except sa.exc.DBAPIError as exc:
            raise explain(exc, engine) from exc
    return engine


def describe(engine: sa.Engine) -> str:
    """The database as the operator wrote it, without its password."""
    path = sqlite_path(engine)
    return str(path) if path else engine.url.render_as_string(hide_password=True)


def sqlite_path(engine: sa.Engine) -> Path | None:
    """The file of a SQLite database (None for PostgreSQL or an in-memory one)."""
    if engine.dialect.name != "sqlite":
        return None
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def prepare_file(engine: sa.Engine) -> None:
    """Create a new SQLite file readable by its owner only (its WAL and shared-memory files
    take the same mode), in a folder created 0700 when missing."""
    path = sqlite_path(engine)
    if path is None or path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def open_existing(engine: sa.Engine) -> None:
    """Stop unless the database exists, can be read and written, and is at this digest's
    schema revision."""
    from digest.store import revision

    open_existing_file(engine)
    if revision.is_current(engine):
        return  # the common case, decided without importing Alembic
    from digest.store import schema

    try:
        schema.check(engine, where=describe(engine))
    except sa.exc.DBAPIError as exc:
        raise explain(exc, engine) from exc


def open_existing_file(engine: sa.Engine) -> None:
    """Stop unless a SQLite database's file exists and can be read and written (connecting
    would create a missing one); PostgreSQL is reached when first used."""
    path = sqlite_path(engine)
    if path is not None:
        if not path.exists():
            raise DatabaseError(
                f"no database at {path}; run `digest init` to create the publication, "
                "`digest restore BACKUP` to put a backup back, or fix [database] url"
            )
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        if not os.access(path, os.R_OK) or not writable:
            raise DatabaseError(
                f"the database {path} (or its folder) is not readable and writable by this "
                f"user (uid {os.getuid()}); run digest as the owner of the file or fix its "
                "permissions"
            )


def explain(exc: sa.exc.DBAPIError, engine: sa.Engine | None = None) -> DatabaseError:
    """Turn a driver error about the database itself into one sentence and the next step."""
    where = describe(engine) if engine is not None else "the database"
    text = str(exc.orig).strip() if exc.orig is not None else str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered:
        return DatabaseError(
            f"the database {where} is corrupt ({text}); restore the last good backup with "
            "`digest restore BACKUP` (see docs/operations.md)"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return DatabaseError(
            f"the database {where} is read-only ({text}); give this user write access to the "
            "file and its folder, or run digest as their owner"
        )
    if "unable to open" in lowered:
        return DatabaseError(
            f"cannot open the database {where} ({text}); check that its folder exists and "
            "is writable, or fix [database] url"
        )
    return DatabaseError(
        f"the database {where} failed: {text}; check that it is running and reachable "
        "([database] url), then retry"
    )


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
