"""The schema's version: Alembic owns it, and every command checks it before anything else.

`create` builds a new database (the migrations from nothing to head), `upgrade` brings an
old one to head, `check` stops a command on a database that is behind (run `digest
upgrade`) or ahead (made by a newer digest). A database made by release 5b55311, before
migrations existed, has no `alembic_version` table: it is recognized by its tables and
stamped with the revision its columns match before upgrading. `differences` compares the
models with a migrated database (`alembic check`); a test keeps them in agreement.
"""

from __future__ import annotations

import enum
import functools
import importlib
import importlib.resources
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from digest.errors import SchemaError

VERSION_TABLE = "alembic_version"
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
"""Tables other libraries own in our database (APScheduler's job store creates its own)."""
BASE_REVISION = "0001"
"""The schema of release 5b55311."""


def metadata() -> sa.MetaData:
    """The metadata of every table digest owns: every module of `digest.store` is imported
    (so a table declared in a new one is not forgotten) and the subscriber tables."""
    import digest.store
    import subscribers.model  # noqa: F401  (the subscriber tables share the metadata)
    from digest.store.models import Base

    for module in pkgutil.iter_modules(digest.store.__path__):
        if module.name not in ("migrations", "schema"):
            importlib.import_module(f"digest.store.{module.name}")
    return Base.metadata


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Leave the tables of other libraries and Alembic's own out of comparisons."""
    return not (type_ == "table" and (name in FOREIGN_TABLES or name == VERSION_TABLE))


def location() -> str:
    """The migration environment's folder inside the installed package."""
    return str(importlib.resources.files("digest.store") / "migrations")


@functools.cache
def scripts() -> ScriptDirectory:
    """The revisions shipped with this digest."""
    return ScriptDirectory(location())


def head() -> str:
    """The newest revision this digest knows."""
    revision = scripts().get_current_head()
    assert revision is not None, "no migration in digest/store/migrations/versions"
    return revision


class Status(enum.StrEnum):
    """How a database's schema compares with this digest's."""

    EMPTY = "empty"
    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"


@dataclass(frozen=True)
class State:
    """A database's revision (None: no schema, or one from before migrations) and status."""

    revision: str | None
    status: Status
    unversioned: bool = False
    """True for a database from before migrations (release 5b55311), recognized by its tables."""


def _tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


LEGACY_MARKS: tuple[tuple[str, str, str | None], ...] = (("0002", "issues", "paused_kind"),)
"""How to date a database made before migrations (by `create_all`, no alembic_version):
(revision, table, column) newest first: a database with that table (and column, unless
None) is at that revision; one with none of them is at `BASE_REVISION` (5b55311). A
revision written for models that some release already created with `create_all` adds its
mark here (docs/operations.md, "Adding a migration")."""


def _legacy_revision(connection: sa.Connection) -> str:
    """The revision an unversioned database's tables and columns match."""
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    for revision, table, column in LEGACY_MARKS:
        if table not in tables:
            continue
        if column is None or column in {c["name"] for c in inspector.get_columns(table)}:
            return revision
    return BASE_REVISION


def state(connection: sa.Connection) -> State:
    """Where the database connected to stands."""
    tables = _tables(connection)
    if VERSION_TABLE not in tables:
        if "issues" in tables and "sources" in tables:
            revision = _legacy_revision(connection)
            status = Status.CURRENT if revision == head() else Status.BEHIND
            return State(revision, status, unversioned=True)
        return State(None, Status.EMPTY)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return State(None, Status.EMPTY)
    if current == head():
        return State(current, Status.CURRENT)
    try:
        known = {script.revision for script in scripts().walk_revisions()}
    except Exception:  # pragma: no cover - a broken script directory is a packaging bug
        known = set()
    return State(current, Status.BEHIND if current in known else Status.AHEAD)


def check(engine: sa.Engine, *, where: str) -> None:
    """Stop with what to run when the database is not at this digest's revision."""
    with engine.connect() as connection:
        found = state(connection)
    if found.status is Status.CURRENT:
        return
    if found.status is Status.EMPTY:
        raise SchemaError(
            f"the database {where} has no digest tables; run `digest init` to create a "
            "publication, or `digest restore BACKUP` to put a backup back"
        )
    if found.status is Status.BEHIND:
        raise SchemaError(
            f"the database {where} is at schema revision {found.revision}, this digest needs "
            f"{head()}; run `digest upgrade` (it takes a backup first)"
        )
    raise SchemaError(
        f"the database {where} is at schema revision {found.revision}, newer than this digest "
        f"knows (up to {head()}); install the digest release that upgraded it, or restore a "
        "backup taken before that upgrade"
    )


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", location())
    config.attributes["connection"] = connection
    return config


@contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for migrations: on SQLite, foreign keys are off while batch mode copies
    tables (a dropped table must not cascade into its children) and checked afterwards."""
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            yield connection
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
            if broken:  # pragma: no cover - a migration bug
                raise SchemaError(f"the migration left broken foreign keys: {broken[:5]}")


def create(engine: sa.Engine) -> None:
    """Build the whole schema in an empty database by running every migration."""
    with _migrating(engine) as connection:
        command.upgrade(_config(connection), "head")


def create_from_models(engine: sa.Engine) -> None:
    """Build the schema straight from the models and stamp it as head: what the test suite
    uses for speed. `differences` proves both ways give the same schema."""
    with engine.begin() as connection:
        metadata().create_all(connection)
        command.stamp(_config(connection), "head")


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Bring the database to head; return (revision before, revision after)."""
    with _migrating(engine) as connection:
        found = state(connection)
        if found.status is Status.AHEAD:
            raise SchemaError(
                f"the database is at revision {found.revision}, newer than this digest "
                f"(up to {head()}); install the newer digest instead of upgrading"
            )
        config = _config(connection)
        if found.unversioned and found.revision is not None:
            command.stamp(config, found.revision)
        command.upgrade(config, "head")
    return found.revision, head()


def new_revision(message: str, *, where: str | None = None) -> str:
    """Write the next revision (for developers: `python -m digest.store.schema "what
    changed"`): the difference between the models and a scratch SQLite database migrated
    to head, numbered after head. Returns the new file's path; read it before committing
    (docs/operations.md, "Adding a migration")."""
    import tempfile

    number = f"{int(head()) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{scratch}/head.db")
        try:
            with engine.begin() as connection:
                config = _config(connection)
                if where is not None:
                    config.set_main_option("script_location", where)
                command.upgrade(config, "head")
                written = command.revision(
                    config, message=message, autogenerate=True, rev_id=number
                )
        finally:
            engine.dispose()
    scripts.cache_clear()
    script = written[0] if isinstance(written, list) else written
    assert script is not None
    return str(script.path)


def differences(engine: sa.Engine) -> list[Any]:
    """What the models hold that the database's schema does not, or the reverse."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, metadata()))


if __name__ == "__main__":  # pragma: no cover - a developer's command
    import sys

    print(new_revision(" ".join(sys.argv[1:]) or "describe the change"))
