"""The database: one engine per URL, sessions, and creating the schema.

SQLite is the default and needs nothing installed; its foreign keys and WAL journal are
switched on per connection. PostgreSQL works through `postgresql+psycopg://…`.

A database that goes away for a moment (PostgreSQL restarted, SQLite locked by another
process for longer than its busy timeout) is waited for: `retrying` runs a unit of work
in a transaction and, on such a transient error, runs it again with a growing pause
(0.5 s doubling to 30 s) for up to ten minutes; pooled
PostgreSQL connections are checked before use (`pool_pre_ping`), so the first transaction
after a restart does not fail on a dead connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import ConfigError, DigestError
from digest.store.models import Base

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_MS = 30_000
"""How long SQLite itself waits for another process's lock before saying "locked"."""
PATIENCE_SECONDS = 600.0
"""How long `retrying` waits for the database by default before giving up."""
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 30.0


class DatabaseUnavailable(DigestError):
    """The database did not come back within the patience of `retrying`."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def connect(url: str, *, create: bool = True) -> sa.Engine:
    """Return an engine for `url`, creating missing tables when `create` is true."""
    try:
        options: dict[str, Any] = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
        engine = sa.create_engine(url, future=True, **options)
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
