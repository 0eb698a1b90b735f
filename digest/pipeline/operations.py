"""Operating a publication: create it (`init`), upgrade its schema, back it up, restore
it, move it from SQLite to PostgreSQL, and the guard that keeps `publish` from emptying
the public feeds. The command line is `digest/cli/operations.py`; the choices are written
down in docs/operations.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from lxml import etree

from digest import config, layout
from digest.config import Settings
from digest.errors import DatabaseError, DigestError, SchemaError
from digest.store import db, schema

ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


# --- init ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answers:
    """What only the operator knows, asked by `digest init` or given as options."""

    title: str
    sender: str
    base_url: str
    languages: list[str]
    timezone: str
    database: str


@dataclass
class InitReport:
    """What `digest init` wrote, kept and backed up."""

    config_path: Path
    secrets_path: Path
    database: str
    database_created: bool
    admin_password: str
    backups: list[Path] = field(default_factory=list)
    schema_status: schema.Status = schema.Status.CURRENT


def new_secrets() -> dict[str, dict[str, str]]:
    """Fresh random secrets: 64-character keys, a 32-character desk password."""
    return {
        "web": {
            "secret_key": secrets.token_urlsafe(48),
            "admin_password": secrets.token_urlsafe(24),
        },
        "subscribers": {"suppression_key": secrets.token_urlsafe(48)},
    }


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _keep_backup(path: Path, stamp: str) -> Path | None:
    if not path.exists():
        return None
    kept = path.with_name(f"{path.name}.{stamp}.bak")
    path.rename(kept)
    return kept


def split_database_url(url: str) -> tuple[str, str | None]:
    """(what digest.toml shows, what the secrets file holds: the URL when it has a password).

    `postgresql://` gets the psycopg driver digest installs with `digest[postgres]`."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DigestError(
            f"--database {url!r} is not a database URL; use sqlite:///digest.db or "
            "postgresql+psycopg://user@host/db"
        ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    full = parsed.render_as_string(hide_password=False)
    if parsed.password:
        return parsed.render_as_string(hide_password=True), full
    return full, None


def init_publication(directory: Path, answers: Answers, *, force: bool = False) -> InitReport:
    """Write digest.toml (no secret in it), digest.secrets.toml (0600) and the database.

    An existing config and secrets file are refused, or with `force` renamed to
    `*.<time>.bak`; an existing database is never replaced (it is kept as it is).
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / config.DEFAULT_FILE
    secrets_file = config.secrets_path(target)
    existing = [p for p in (target, secrets_file) if p.exists()]
    if target.exists() and not force:
        return init_existing(target)
    if existing and not force:
        raise DigestError(f"{existing[0]} exists already; move it away or pass --force")
    safe_url, secret_url = split_database_url(answers.database)
    secret_values = new_secrets()
    if secret_url is not None:
        # The password goes to the secrets file; digest.toml shows where it is.
        secret_values["database"] = {"url": secret_url}
    chosen: dict[str, dict[str, Any]] = {
        "publication": {
            "title": answers.title,
            "sender": answers.sender,
            "base_url": answers.base_url.rstrip("/"),
            "languages": answers.languages,
            "timezone": answers.timezone,
        },
        "database": {"url": safe_url},
        "issue": {"approval": "editor"},
        "web": {"secure_cookies": answers.base_url.startswith("https://")},
    }
    text = config.example_toml(chosen=chosen)
    # Check the answers as every later command will, before anything is written.
    config.from_mapping(tomllib.loads(text), env={}, path=target)
    stamp = _stamp()
    backups = [kept for p in existing if (kept := _keep_backup(p, stamp)) is not None]
    target.write_text(text, encoding="utf-8")
    lines = [
        "# digest's secrets, written by `digest init`: keep this file 0600 and out of",
        "# version control. DIGEST_<SECTION>__<KEY> environment variables override it.",
        "# Never change suppression_key once in use; rotate secret_key as docs/web.md says.",
    ]
    for section, table in secret_values.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{key} = {_toml_string(value)}" for key, value in table.items())
    _write_private(secrets_file, "\n".join(lines) + "\n")
    settings = config.load(target, env=_database_env())
    return _create_database(settings, secret_values["web"]["admin_password"], backups)


def init_existing(target: Path) -> InitReport:
    """`digest init` where digest.toml exists: create its missing database, or refuse."""
    created = create_missing_database(config.load(target))
    if created is None:
        raise DigestError(
            f"{target} exists already, and its database too; edit it, or pass --force "
            "to write a new one (the old one is kept as a .bak file)"
        )
    return created


def create_missing_database(settings: Settings) -> InitReport | None:
    """`digest init` in a folder whose digest.toml exists: create its database if it has
    none (None when it has one); the config and its secrets are left as they are."""
    engine = _engine(settings)
    try:
        path = db.sqlite_path(engine)
        if path is None or path.exists():  # (connecting would create a missing file)
            with engine.connect() as connection:
                if schema.state(connection).status is not schema.Status.EMPTY:
                    return None
    except sa.exc.DBAPIError as exc:
        raise db.explain(exc, engine) from exc
    finally:
        engine.dispose()
    return _create_database(settings, "", [])


def _create_database(settings: Settings, admin_password: str, backups: list[Path]) -> InitReport:
    """Create the outbox (0700) and, unless one exists, the database (0600)."""
    assert settings.path is not None
    _private_dir(settings.delivery.outbox_dir)
    url = config.database_url(settings)
    engine = db.connect(url, pool=_pool(settings))
    try:
        path = db.sqlite_path(engine)
        status = schema.Status.EMPTY
        if path is None or path.exists():
            with engine.connect() as connection:
                status = schema.state(connection).status
        created = status is schema.Status.EMPTY
        if created:
            engine.dispose()
            engine = db.connect(url, create=True)
            status = schema.Status.CURRENT
    except sa.exc.DBAPIError as exc:
        raise db.explain(exc, engine) from exc
    finally:
        engine.dispose()
    return InitReport(
        config_path=settings.path,
        secrets_path=config.secrets_path(settings.path),
        database=db.describe(engine),
        database_created=created,
        admin_password=admin_password,
        backups=backups,
        schema_status=status,
    )


def _database_env() -> dict[str, str]:
    """The DIGEST_DATABASE__* variables: what init wrote is read back with them only."""
    return {k: v for k, v in os.environ.items() if k.startswith("DIGEST_DATABASE__")}


def _pool(settings: Settings) -> db.Pool:
    from digest.pipeline import database_pool

    return database_pool(settings)


# --- backup and restore -------------------------------------------------------------------


def _engine(settings: Settings) -> sa.Engine:
    return db.connect(config.database_url(settings), pool=_pool(settings))


def backup_name(engine: sa.Engine, revision: str | None, label: str = "") -> str:
    """digest-<revision>-<UTC time>[-label].db (SQLite) or .dump (pg_dump's format)."""
    suffix = f"-{label}" if label else ""
    kind = "db" if db.sqlite_path(engine) is not None else "dump"
    return f"digest-{revision or 'new'}-{_stamp()}{suffix}.{kind}"


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a live SQLite database consistently (the online backup API: a snapshot even
    while the scheduler writes, WAL included) into a single new file, mode 0600."""
    _private_dir(target.parent)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                verdict = dst.execute("PRAGMA quick_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
        if verdict is None or verdict[0] != "ok":
            raise DatabaseError(f"the copy of {source} fails SQLite's check ({verdict}); retry")
        partial.replace(target)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"cannot copy {source} ({exc}); check that it is a readable SQLite database"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def _pg_url(engine: sa.Engine) -> str:
    """The URL pg_dump understands (libpq: no +driver, options kept)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class BackupReport:
    path: Path
    revision: str | None
    size: int


def backup(settings: Settings, target: Path, *, label: str = "") -> BackupReport:
    """Copy the database to `target` (a file, or a folder to put a dated file in)."""
    engine = _engine(settings)
    try:
        db.open_existing_file(engine)
        with engine.connect() as connection:
            found = schema.state(connection)
        if target.is_dir():
            target = target / backup_name(engine, found.revision, label)
        if target.exists():
            raise DigestError(f"{target} exists already; give a new file name or a folder")
        path = db.sqlite_path(engine)
        try:
            if path is not None:
                _sqlite_copy(path, target)
            else:
                _pg_dump(engine, target)
        except OSError as exc:
            raise DigestError(
                f"cannot write the backup {target} ({exc.strerror or exc}); choose a folder "
                "this user can write"
            ) from exc
    finally:
        engine.dispose()
    return BackupReport(target, found.revision, target.stat().st_size)


def _pg_dump(engine: sa.Engine, target: Path) -> None:
    tool = shutil.which("pg_dump")
    if tool is None:
        raise DatabaseError(
            "PostgreSQL is backed up with pg_dump, which is not installed here; install the "
            "PostgreSQL client (apt install postgresql-client) or run `pg_dump --format=custom "
            f"--file {target} DBNAME` on the database server (docs/operations.md)"
        )
    _private_dir(target.parent)
    command = [tool, "--format=custom", "--no-owner", f"--file={target}"]
    with engine.connect() as connection:
        # A publication kept in its own schema (search_path in the URL) is dumped alone.
        own = connection.scalar(sa.text("SELECT current_schema()"))
    if own and own != "public":
        command.append(f"--schema={own}")
    done = subprocess.run(
        [*command, f"--dbname={_pg_url(engine)}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise DatabaseError(f"pg_dump failed: {done.stderr.strip()}; the database is unchanged")
    target.chmod(0o600)


@dataclass(frozen=True)
class RestoreReport:
    path: Path
    revision: str | None
    status: schema.Status
    previous: BackupReport | None


def restore(settings: Settings, source: Path) -> RestoreReport:
    """Put a backup back in place of the configured database, after checking its schema
    revision; the database it replaces is backed up first. SQLite: a `digest backup` file,
    copied in with the online backup API. PostgreSQL: a pg_dump custom-format file, put
    back with `pg_restore --clean` in one transaction."""
    if not source.is_file():
        raise DigestError(f"{source}: no such backup file")
    engine = _engine(settings)
    try:
        live = db.sqlite_path(engine)
        if live is None:
            found = _dump_state(source)
            replaced = backup(settings, _backup_dir(settings), label="before-restore")
            _pg_restore(engine, source)
            return RestoreReport(source, found.revision, found.status, replaced)
        found = _backup_state(source)
        previous: BackupReport | None = None
        if live.exists() and live.stat().st_size > 0:
            previous = backup(settings, _backup_dir(settings), label="before-restore")
        else:
            db.prepare_file(engine)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(live, timeout=30)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    finally:
        engine.dispose()
    return RestoreReport(source, found.revision, found.status, previous)


def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise DatabaseError(
            f"{name} is not installed here; install the PostgreSQL client "
            "(apt install postgresql-client), see docs/operations.md"
        )
    return tool


def _dump_state(source: Path) -> schema.State:
    """The schema revision a pg_dump custom-format file holds (its alembic_version row)."""
    done = subprocess.run(
        [_pg_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DatabaseError(
            f"{source} is not a pg_dump backup ({done.stderr.strip()}); give the file "
            "`digest backup` wrote"
        )
    lines = done.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("COPY ")]
    if not starts or starts[0] + 1 >= len(lines) or lines[starts[0] + 1] == "\\.":
        raise SchemaError(f"{source} holds no digest schema revision; give a `digest backup` file")
    revision = lines[starts[0] + 1].strip()
    known = {script.revision for script in schema.scripts().walk_revisions()}
    if revision not in known:
        raise SchemaError(
            f"{source} is at schema revision {revision}, newer than this digest (up to "
            f"{schema.head()}); restore it with the digest release that made it"
        )
    status = schema.Status.CURRENT if revision == schema.head() else schema.Status.BEHIND
    return schema.State(revision, status)


def _pg_restore(engine: sa.Engine, source: Path) -> None:
    done = subprocess.run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_pg_url(engine)}",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DatabaseError(
            f"pg_restore failed, nothing was changed (one transaction): {done.stderr.strip()}"
        )


def _backup_state(source: Path) -> schema.State:
    probe = sa.create_engine(f"sqlite:///file:{source}?mode=ro&uri=true")
    try:
        with probe.connect() as connection:
            found = schema.state(connection)
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(
            f"{source} is not a digest backup (SQLite says: {exc.orig}); give the file "
            "`digest backup` wrote"
        ) from exc
    finally:
        probe.dispose()
    if found.status is schema.Status.EMPTY:
        raise SchemaError(f"{source} holds no digest tables; give the file `digest backup` wrote")
    if found.status is schema.Status.AHEAD:
        raise SchemaError(
            f"{source} is at schema revision {found.revision}, newer than this digest (up to "
            f"{schema.head()}); restore it with the digest release that made it"
        )
    return found


def _backup_dir(settings: Settings) -> Path:
    try:
        _private_dir(settings.database.backup_dir)
    except OSError as exc:
        raise DatabaseError(
            f"cannot create [database] backup_dir {settings.database.backup_dir} "
            f"({exc.strerror or exc}); point it at a folder this user can write"
        ) from exc
    return settings.database.backup_dir


# --- upgrade ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeReport:
    before: str | None
    after: str
    backup: BackupReport | None


def upgrade(settings: Settings, *, take_backup: bool = True) -> UpgradeReport:
    """Back the database up into [database] backup_dir, then migrate it to head."""
    engine = _engine(settings)
    try:
        db.open_existing_file(engine)
        with engine.connect() as connection:
            found = schema.state(connection)
        if found.status is schema.Status.EMPTY:
            raise SchemaError(
                f"the database {db.describe(engine)} has no digest tables; run `digest init`"
            )
        if found.status is schema.Status.CURRENT:
            if found.unversioned:  # made by 3c7ee30 (main before migrations): stamp it
                schema.upgrade(engine)
            return UpgradeReport(found.revision, schema.head(), None)
        kept = None
        if take_backup:
            try:
                kept = backup(settings, _backup_dir(settings), label="before-upgrade")
            except DatabaseError as exc:
                raise DatabaseError(
                    f"{exc}; the database was not upgraded (with a backup of your own, run "
                    "`digest upgrade --no-backup`)"
                ) from exc
        try:
            before, after = schema.upgrade(engine)
        except sa.exc.DBAPIError as exc:
            raise db.explain(exc, engine) from exc
    finally:
        engine.dispose()
    return UpgradeReport(before, after, kept)


# --- SQLite → PostgreSQL ------------------------------------------------------------------


@dataclass(frozen=True)
class CopyReport:
    url: str
    rows: dict[str, int]


def migrate_to(
    settings: Settings, url: str, *, on_table: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy every table of the configured database into the empty database at `url`
    (created at this digest's schema), then check the row counts match."""
    source = _engine(settings)
    target = db.connect(url, pool=_pool(settings))
    try:
        db.open_existing(source)
        with target.connect() as connection:
            found = schema.state(connection)
        if found.status is not schema.Status.EMPTY:
            raise DatabaseError(
                f"{db.describe(target)} already holds digest tables; give an empty database "
                "(migrate-to never overwrites)"
            )
        try:
            db.prepare_file(target)
            schema.create(target)
            rows = _copy_tables(source, target, on_table)
        except sa.exc.DBAPIError as exc:
            raise db.explain(exc, target) from exc
    finally:
        source.dispose()
        target.dispose()
    return CopyReport(db.describe(target), rows)


BATCH = 1000


def _copy_tables(
    source: sa.Engine, target: sa.Engine, on_table: Callable[[str, int], None] | None
) -> dict[str, int]:
    counts: dict[str, int] = {}
    tables = schema.metadata().sorted_tables
    with source.connect() as reading, target.begin() as writing:
        if target.dialect.name == "sqlite":
            writing.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        for table in tables:
            copied = 0
            result = reading.execution_options(yield_per=BATCH).execute(sa.select(table))
            for chunk in result.partitions(BATCH):
                writing.execute(table.insert(), [dict(row._mapping) for row in chunk])
                copied += len(chunk)
            counts[table.name] = copied
            if on_table is not None:
                on_table(table.name, copied)
        if target.dialect.name == "postgresql":
            _reset_sequences(writing, tables)
    with target.connect() as checking:
        for table in tables:
            found = checking.scalar(sa.select(sa.func.count()).select_from(table))
            if found != counts[table.name]:  # pragma: no cover - a copy bug
                raise DatabaseError(
                    f"{table.name}: copied {counts[table.name]} rows but the target holds "
                    f"{found}; drop the target database's tables and retry"
                )
    return counts


def _reset_sequences(connection: sa.Connection, tables: list[sa.Table]) -> None:
    """Move each serial id's sequence past the copied ids, so new rows get fresh ones."""
    for table in tables:
        column = table.columns.get("id")
        if column is None or not column.autoincrement or not isinstance(column.type, sa.Integer):
            continue
        highest = connection.scalar(sa.select(sa.func.max(column))) or 0
        connection.execute(
            sa.text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :next, false)"),
            {"table": table.name, "next": highest + 1},
        )


# --- publish guard ------------------------------------------------------------------------


def entries_in_feed(data: bytes) -> int:
    """How many entries an Atom document holds (0 for an unreadable one)."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return 0
    return len(root.findall(ATOM_ENTRY))


def check_feeds_not_shrinking(
    settings: Settings, files: Mapping[str, bytes], output_dir: Path
) -> None:
    """Refuse to replace a published feed by one with fewer entries: a wrong or re-created
    database would otherwise empty what readers follow."""
    for language in settings.publication.languages:
        name = layout.feed(language)
        current = output_dir / name
        if name not in files or not current.is_file():
            continue
        before = entries_in_feed(current.read_bytes())
        after = entries_in_feed(files[name])
        if after < before:
            raise DigestError(
                f"{current} holds {before} issues but the database gives only {after}; is "
                "[database] url the publication's database? Restore it (`digest restore`), "
                "or pass --force to publish the shorter feeds anyway"
            )
