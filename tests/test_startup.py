"""A command that renders nothing imports no renderer: `digest --version` loads neither the
database layer nor premailer, `digest status` no SQLAlchemy (it reads the database on its
driver, with plain SQL), renderer, feed parser, HTTP client nor scheduler (it lists the
jobs from their data), and a database at the newest revision is recognized without
Alembic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from digest.store import revision, schema
from tests.test_cli import INIT

PROBE = """
import json, sys
from digest.cli import main
sys.argv = ["digest", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
heavy = ["premailer", "digest.render.email", "mjml", "jinja2", "feedparser", "trafilatura",
         "httpx", "alembic", "apscheduler", "sqlalchemy", "digest.pipeline"]
drivers = ["sqlite3", "psycopg"]
print(json.dumps(sorted(name for name in heavy + drivers if name in sys.modules)), file=sys.stderr)
"""


def loaded(*args: str) -> list[str]:
    """The heavy modules and database drivers a fresh `digest ARGS` imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return found


def test_version_imports_no_database_nor_renderer() -> None:
    assert loaded("--version") == []


def test_status_reads_the_database_on_its_driver_alone(
    tmp_path: Path, database_url: str, engine: object
) -> None:
    """On SQLite and on PostgreSQL (DIGEST_TEST_DATABASE_URL): the driver, our pipeline
    package, and nothing heavy (SQLAlchemy's ORM alone takes 0.3 s to import)."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path), *INIT, "--database", database_url])
    assert result.exit_code == 0, result.output
    found = loaded("--config", str(tmp_path / "digest.toml"), "status")
    driver = "psycopg" if database_url.startswith("postgresql") else "sqlite3"
    assert driver in found  # it did read the database
    assert set(found) - {"sqlite3", "psycopg"} == {"digest.pipeline"}


def test_the_newest_revision_is_read_as_alembic_reads_it() -> None:
    assert revision.newest() == schema.head()
