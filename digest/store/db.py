"""The database: one engine per URL, sessions, and the checks before any command uses it.

SQLite is the default and needs nothing installed; its foreign keys and WAL journal are
switched on per connection. PostgreSQL works through `postgresql+psycopg://…`, with the
pool settings of `[database]`. Only `digest init` creates a database (`create`); every other
command opens an existing one (`open_existing`), which stops with one sentence and the next
step when the database is missing, unreadable, read-only, corrupt, or at another schema
revision.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError, DatabaseError, DigestError

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_MS = 30_000
"""How long SQLite itself waits for another process's lock before saying "locked"."""
PATIENCE_SECONDS = 600.0
"""How long `retrying` waits for the database by default before giving up."""
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 30.0


class DatabaseUnavailable(DigestError):
    """The database did not come back within the patience of `retrying`."""


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
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
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


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is the database being away or busy for a moment (connection refused
    or lost, server shutting down, SQLite locked), not a mistake in what we asked."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    text = str(exc.orig or exc).lower()
    signs = (
        "database is locked",
        "connection refused",
        "connection failed",
        "server closed the connection",
        "terminating connection",
        "the database system is",  # … starting up / shutting down / in recovery mode
        "connection is closed",
        "connection timeout",
        "could not connect",
        "consuming input failed",
        "connection reset",
        "no connection to the server",
        "ssl syscall error",
    )
    return any(sign in text for sign in signs)


def retrying(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    what: str,
    patience: float = PATIENCE_SECONDS,
    stop: threading.Event | None = None,
) -> T:
    """Run `work(session)` in a transaction and return its result; when the database is
    away or locked (`is_transient`), log it and run `work` again in a new transaction
    after 0.5, 1, 2 … 30 s, for up to `patience` seconds (a set `stop` ends the wait
    early). `work` must be safe to run again: a failed transaction was rolled back.

    Raises DatabaseUnavailable, naming `what` and the last error, when patience ran out.
    """
    started = time.monotonic()
    pause = FIRST_PAUSE
    attempt = 0
    while True:
        attempt += 1
        try:
            with transaction(factory) as session:
                return work(session)
        except sa.exc.SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
            waited = time.monotonic() - started
            first = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc)
            reason = first.strip().splitlines()[0] if first.strip() else type(exc).__name__
            if waited + pause > patience or (stop is not None and stop.is_set()):
                raise DatabaseUnavailable(
                    f"the database did not answer while {what} for {waited:.0f} s "
                    f"({reason}); nothing was lost: run the command again once it is back"
                ) from exc
            log.warning(
                f"the database is unavailable while {what} ({reason}); trying again in "
                f"{pause:g} s (attempt {attempt})",
                extra={"digest_fields": {"event": "database.retry", "attempt": attempt}},
            )
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
