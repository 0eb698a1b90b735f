"""Alembic owns the schema: migrations agree with the models, a database made by release
5b55311 upgrades with everything intact (SQLite and PostgreSQL), and every command stops
with what to run on a database that is behind, ahead, missing or corrupt."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from digest.cli import cli
from digest.errors import DatabaseError, SchemaError
from digest.store import db, schema
from tests.dbfixtures import write_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "digest-5b55311.db"
COUNTS = {
    "subscribers": 7,
    "suppressions": 1,
    "sources": 7,
    "entries": 17,
    "entry_sources": 18,
    "events": 11,
    "issues": 1,
    "issue_events": 6,
    "deliveries": 6,
}
"""What the fixture holds (tests/fixtures/README.md says how it was made)."""


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.scalar(sa.text(f"SELECT COUNT(*) FROM {name}")) or 0 for name in COUNTS
        }


@pytest.fixture
def empty(database_url: str) -> Iterator[sa.Engine]:
    """The test database with no table at all."""
    engine = db.connect(database_url)
    with engine.begin() as connection:
        schema.metadata().drop_all(connection)
        for name in (schema.VERSION_TABLE, *schema.FOREIGN_TABLES):
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    yield engine
    engine.dispose()


def test_migrations_from_nothing_give_exactly_the_models(empty: sa.Engine) -> None:
    schema.create(empty)
    assert schema.differences(empty) == []
    with empty.connect() as connection:
        assert schema.state(connection) == schema.State(schema.head(), schema.Status.CURRENT)


def test_a_model_change_without_a_migration_is_caught(empty: sa.Engine) -> None:
    schema.create(empty)
    with empty.begin() as connection:
        connection.execute(sa.text("ALTER TABLE issues DROP COLUMN paused_at"))
    found = schema.differences(empty)
    assert [(d[0], d[3].name) for d in found] == [("add_column", "paused_at")]


def test_the_fixture_is_unversioned_5b55311() -> None:
    engine = sa.create_engine(f"sqlite:///file:{FIXTURE}?mode=ro&uri=true")
    with engine.connect() as connection:
        assert schema.state(connection) == schema.State("0001", schema.Status.BEHIND, True)
    assert counts(engine) == COUNTS
    engine.dispose()


def test_a_5b55311_database_upgrades_on_sqlite_with_everything_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, path)
    engine = db.connect(f"sqlite:///{path}")

    assert schema.upgrade(engine) == ("0001", schema.head())

    assert counts(engine) == COUNTS
    assert schema.differences(engine) == []
    with engine.connect() as connection:
        assert schema.state(connection).status is schema.Status.CURRENT
        emails = set(connection.scalars(sa.text("SELECT email FROM subscribers")))
        assert {"luca.rossi@example.net", "new.reader@example.net"} <= emails
        sent = connection.execute(sa.text("SELECT state, paused_kind FROM deliveries, issues"))
        assert {tuple(row) for row in sent} == {("SENT", None)}
    engine.dispose()


def test_a_5b55311_database_upgrades_on_postgresql_with_everything_intact(
    empty: sa.Engine,
) -> None:
    """The fixture's rows are loaded into the 5b55311 schema (revision 0001, unversioned as
    that release left it) of the test database, then upgraded. On SQLite the same runs on
    a second file, so this test proves the path on either backend."""
    with empty.connect() as connection:
        command.upgrade(_config(connection), schema.BASE_REVISION)
        connection.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
        connection.commit()
    old = sa.create_engine(f"sqlite:///file:{FIXTURE}?mode=ro&uri=true")
    _load(old, empty)
    with empty.connect() as connection:
        assert schema.state(connection) == schema.State("0001", schema.Status.BEHIND, True)

    assert schema.upgrade(empty) == ("0001", schema.head())

    assert counts(empty) == COUNTS
    assert schema.differences(empty) == []
    with empty.connect() as connection:
        issue = connection.execute(sa.text("SELECT number, status, sent_at FROM issues")).one()
        assert issue.number == 1 and issue.status == "SENT" and issue.sent_at is not None
    old.dispose()


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", schema.location())
    config.attributes["connection"] = connection
    return config


def _load(source: sa.Engine, target: sa.Engine) -> None:
    """Copy the fixture's rows, columns that exist in both, through the models' types."""
    with source.connect() as reading, target.begin() as writing:
        inspector = sa.inspect(writing)
        for table in schema.metadata().sorted_tables:
            if table.name not in COUNTS:
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            columns = [c for c in table.columns if c.name in present]
            rows = [dict(r._mapping) for r in reading.execute(sa.select(*columns))]
            # Only the columns that exist then: the models' Python-side defaults of columns
            # added by later migrations must not enter the insert.
            then = sa.Table(
                table.name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in columns)
            )
            if rows:
                writing.execute(then.insert(), rows)
        if target.dialect.name == "postgresql":
            for name in COUNTS:
                if "id" in {c["name"] for c in inspector.get_columns(name)}:
                    writing.execute(
                        sa.text(
                            "SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                            "(SELECT COALESCE(MAX(id), 0) + 1 FROM " + name + "), false)"
                        ),
                        {"t": name},
                    )


# --- what commands say ----------------------------------------------------------------------


@pytest.fixture
def old_publication(tmp_path: Path) -> Path:
    shutil.copyfile(FIXTURE, tmp_path / "digest.db")
    return write_config(tmp_path, "sqlite:///digest.db")


@pytest.mark.parametrize(
    "args", [["status"], ["collect"], ["subscribers", "list"], ["schedule"], ["publish"]]
)
def test_every_command_on_an_old_database_says_run_upgrade(
    old_publication: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(cli, ["--config", str(old_publication), *args])
    # `digest status` says it with its "problem" exit code (2, for monitoring); others fail.
    assert result.exit_code == (2 if args == ["status"] else 1)
    assert "schema revision 0001, this digest needs" in result.output
    assert "run `digest upgrade`" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, KeyError)


def test_upgrade_backs_up_then_migrates_and_commands_work_again(old_publication: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(old_publication), "upgrade"])
    assert result.exit_code == 0, result.output
    assert "upgraded the database from schema 0001 to" in result.output
    (kept,) = (old_publication.parent / "backups").iterdir()
    assert kept.name.startswith("digest-0001-") and kept.stat().st_mode & 0o777 == 0o600
    backup = sa.create_engine(f"sqlite:///{kept}")
    assert counts(backup) == COUNTS
    backup.dispose()
    listed = runner.invoke(cli, ["--config", str(old_publication), "subscribers", "list"])
    assert listed.exit_code == 0 and "7 subscribers" in listed.output
    again = runner.invoke(cli, ["--config", str(old_publication), "upgrade"])
    assert "already at schema" in again.output


def test_a_database_made_by_3c7ee30_upgrades(
    empty: sa.Engine, tmp_path: Path, database_url: str
) -> None:
    """Main before migrations (3c7ee30) made revision 0002's tables with create_all and
    wrote no alembic_version."""
    with empty.connect() as connection:
        command.upgrade(_config(connection), "0002")
        connection.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
        connection.commit()
    with empty.connect() as connection:
        found = schema.state(connection)
    assert (found.revision, found.unversioned) == ("0002", True)
    config = write_config(tmp_path, database_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "upgrade"])
    assert result.exit_code == 0, result.output
    with empty.connect() as connection:
        assert schema.state(connection) == schema.State(schema.head(), schema.Status.CURRENT)
    assert schema.differences(empty) == []
    assert runner.invoke(cli, ["--config", str(config), "status"]).exit_code == 0


def test_a_database_from_a_newer_digest_is_refused(old_publication: Path) -> None:
    path = old_publication.parent / "digest.db"
    engine = db.connect(f"sqlite:///{path}")
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    runner = CliRunner()
    for args in (["status"], ["upgrade"]):
        result = runner.invoke(cli, ["--config", str(old_publication), *args])
        assert result.exit_code == (2 if args == ["status"] else 1)  # status: a problem
        assert "newer than this digest" in result.output


def test_a_missing_database_is_never_created(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite:///digest.db")
    for args in (["status"], ["publish"], ["sources", "list"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == (2 if args == ["status"] else 1)  # status: a problem
        assert f"no database at {tmp_path / 'digest.db'}; run `digest init`" in result.output
    assert not (tmp_path / "digest.db").exists()


def test_a_corrupt_database_gives_one_sentence(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite:///digest.db")
    (tmp_path / "digest.db").write_bytes(b"this is not a database, it was overwritten\n" * 200)
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 2  # for monitoring, a database that cannot be read is a problem
    assert "is corrupt" in result.output and "digest restore" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_read_only_database_says_what_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    db.connect(f"sqlite:///{path}", create=True).dispose()
    # Opened read-only by SQLite itself, since the tests may run as root (who may write
    # any file, whatever its mode).
    engine = db.connect(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(sa.exc.OperationalError) as caught, engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM sources"))
    explained = db.explain(caught.value, engine)
    assert isinstance(explained, DatabaseError)
    assert "is read-only" in str(explained) and "write access" in str(explained)
    engine.dispose()


def test_check_raises_schema_error_for_an_empty_database(empty: sa.Engine) -> None:
    with pytest.raises(SchemaError, match="has no digest tables; run `digest init`"):
        schema.check(empty, where="the test database")
