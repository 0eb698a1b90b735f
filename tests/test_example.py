"""The example publication runs end to end on the test database (PostgreSQL in CI), as
`python examples/run.py --database URL` does for an operator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from digest.store import db, schema

ROOT = Path(__file__).resolve().parent.parent


def test_the_example_runs_on_the_given_database(tmp_path: Path, database_url: str) -> None:
    engine = db.connect(database_url)
    with engine.begin() as connection:  # an empty database, as `createdb` gives
        schema.metadata().drop_all(connection)
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {schema.VERSION_TABLE}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "run.py"),
            "--dir",
            str(tmp_path / "run"),
            "--today",
            "2026-11-23",
            "--database",
            database_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "created the database" in done.stdout
    assert not (tmp_path / "run" / "digest.db").exists() or database_url.startswith("sqlite")
    with engine.connect() as connection:
        assert schema.state(connection).status is schema.Status.CURRENT
        sent = connection.scalar(sa.text("SELECT COUNT(*) FROM deliveries WHERE state = 'SENT'"))
        assert sent == 6  # the six fictional readers of examples/publication/subscribers.csv
    assert len(list((tmp_path / "run" / "outbox").glob("*.eml"))) == 6
    assert (tmp_path / "run" / "public" / "feeds" / "en.atom").is_file()
    engine.dispose()
