"""Reading the database with plain SQL, on its driver alone (sqlite3, psycopg) or on a
SQLAlchemy connection: what must start fast and only reads uses it (`digest status`
answers in about a tenth of a second, where loading SQLAlchemy's ORM alone takes 0.3 s).

The SQL is written once, with `?` placeholders (turned into `%s` for psycopg), and reads
raw driver values, the same whichever way it came: `Reader.time` turns a stored time into
an aware UTC datetime (SQLite keeps the text SQLAlchemy wrote, "2026-12-07 08:00:00.000000",
in UTC), `Reader.bind` turns one into what a comparison in SQL needs, `Reader.json` reads a
JSON column. Enums are stored by name in the digest tables (see `store.states`).

`connect` opens the driver itself for the URLs it knows (SQLite files, PostgreSQL through
psycopg) and returns None for anything else: the caller then opens the database through
SQLAlchemy (`db.connect`, which also explains every way a database can be wrong) and reads
it with `on_connection`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from digest.errors import DatabaseError

if TYPE_CHECKING:
    import sqlalchemy as sa

SQLITE_BUSY_SECONDS = 10.0
"""How long a read waits for a writer's lock (`db.SQLITE_BUSY_MS` for the other paths)."""
CONNECT_SECONDS = 10
"""How long connecting to PostgreSQL may take before the read gives up."""
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy writes a time into SQLite (after `UTCDateTime` made it UTC)."""

Row = tuple[Any, ...]


class Unreachable(DatabaseError):
    """The database server could not be reached (refused, timed out, authentication):
    trying again through SQLAlchemy would only wait as long again."""


class Reader:
    """Runs read-only SQL and turns the values it gets back into Python's."""

    def __init__(self, execute: Callable[[str, tuple[Any, ...]], list[Row]], dialect: str):
        self._execute = execute
        self.dialect = dialect
        """"sqlite" or "postgresql"."""

    def rows(self, sql: str, *params: Any) -> list[Row]:
        """The rows of `sql`, its `?` placeholders bound to `params` (times as `bind`)."""
        if self.dialect != "sqlite" and params:  # psycopg parses its placeholders then only
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self._execute(sql, tuple(self.bind(value) for value in params))

    def value(self, sql: str, *params: Any) -> Any:
        """The first column of the first row of `sql`; None when there is no row."""
        found = self.rows(sql, *params)
        return found[0][0] if found else None

    def bind(self, value: Any) -> Any:
        """A parameter as the driver stores it: an aware time in UTC (text on SQLite)."""
        if isinstance(value, datetime):
            moment = value.astimezone(UTC)
            return moment.strftime(SQLITE_TIME) if self.dialect == "sqlite" else moment
        return value

    @staticmethod
    def time(value: Any) -> datetime | None:
        """A stored time as an aware UTC datetime."""
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @staticmethod
    def json(value: Any) -> Any:
        """A JSON column's value (text on SQLite; parsed or not by psycopg)."""
        return json.loads(value) if isinstance(value, str | bytes) else value

    def columns(self) -> dict[str, set[str]]:
        """Every table of the database (its current schema on PostgreSQL) → its columns."""
        if self.dialect == "sqlite":
            found = self.rows(
                "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
                "WHERE m.type = 'table'"
            )
        else:
            found = self.rows(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        tables: dict[str, set[str]] = {}
        for table, column in found:
            tables.setdefault(str(table), set()).add(str(column))
        return tables


@contextmanager
def connect(url: str) -> Iterator[Reader | None]:
    """A reader on the driver alone for a SQLite file or a `postgresql+psycopg` URL, closed
    on leaving; None for any other URL. Driver errors come out as `DatabaseError`."""
    scheme, _, rest = url.partition("://")
    if scheme in ("sqlite", "sqlite+pysqlite") and rest.startswith("/") and "?" not in rest:
        path = rest[1:]
        if path in ("", ":memory:") or path.startswith("file:"):
            yield None
            return
        with _sqlite(path) as reader:
            yield reader
    elif scheme == "postgresql+psycopg":
        with _postgresql(f"postgresql://{rest}") as reader:
            yield reader
    else:
        yield None


def on_connection(connection: sa.Connection) -> Reader:
    """A reader on an open SQLAlchemy connection (inside its transaction, if any)."""

    def execute(sql: str, params: tuple[Any, ...]) -> list[Row]:
        found = (
            connection.exec_driver_sql(sql, params) if params else connection.exec_driver_sql(sql)
        )
        return [tuple(row) for row in found]

    return Reader(execute, connection.dialect.name)


@contextmanager
def _sqlite(path: str) -> Iterator[Reader]:
    # mode=rw: an existing file only (connecting must never create one).
    target = f"file:{quote(path)}?mode=rw"
    try:
        connection = sqlite3.connect(target, uri=True, timeout=SQLITE_BUSY_SECONDS)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open the database {path}: {exc}") from exc
    try:

        def execute(sql: str, params: tuple[Any, ...]) -> list[Row]:
            try:
                return connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise DatabaseError(f"the database {path} cannot be read: {exc}") from exc

        yield Reader(execute, "sqlite")
    finally:
        connection.close()


@contextmanager
def _postgresql(conninfo: str) -> Iterator[Reader]:
    import psycopg

    try:
        connection = psycopg.connect(conninfo, connect_timeout=CONNECT_SECONDS, autocommit=True)
    except psycopg.Error as exc:
        raise Unreachable(f"cannot reach the database: {str(exc).strip()}") from exc
    try:

        def execute(sql: str, params: tuple[Any, ...]) -> list[Row]:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params or None)
                    return cursor.fetchall()
            except psycopg.Error as exc:
                raise DatabaseError(f"the database cannot be read: {str(exc).strip()}") from exc

        yield Reader(execute, "postgresql")
    finally:
        connection.close()
