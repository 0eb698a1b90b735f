"""Operating a publication: `digest init` gives a working one, secrets and files are
private, publish never empties the feeds, backups taken during a send restore, and
`digest migrate-to` copies every table."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest import config, pipeline
from digest.cli import cli
from digest.errors import DigestError, SchemaError
from digest.pipeline import operations, sending
from digest.store import db, schema
from digest.store.models import Delivery, DeliveryState
from subscribers.model import Subscriber
from tests.dbfixtures import write_config
from tests.test_draft import MONDAY
from tests.test_send import add_people, approved_issue, settings_for
from tests.web.conftest import client_for, csrf_of

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = [
    "--title",
    "Town Digest",
    "--sender",
    "Town Digest <digest@example.org>",
    "--base-url",
    "http://127.0.0.1:8000",
    "--languages",
    "en,fr",
    "--timezone",
    "Europe/Brussels",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DIGEST_* variable: what `digest init` wrote must be enough."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def init(directory: Path, *extra: str) -> Any:
    result = CliRunner().invoke(cli, ["init", str(directory), *ANSWERS, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_init_writes_a_private_working_publication(tmp_path: Path, clean_env: None) -> None:
    result = init(tmp_path / "pub")
    folder = tmp_path / "pub"
    text = (folder / "digest.toml").read_text(encoding="utf-8")
    assert 'title = "Town Digest"' in text and 'languages = ["en", "fr"]' in text
    assert 'approval = "editor"' in text and 'timezone = "Europe/Brussels"' in text
    assert "secure_cookies = false" in text  # http://127.0.0.1: cookies must work there
    secrets_file = folder / "digest.secrets.toml"
    stored = tomllib.loads(secrets_file.read_text(encoding="utf-8"))
    for value in (*stored["web"].values(), *stored["subscribers"].values()):
        assert value not in text and len(value) >= 32
    assert stored["web"]["admin_password"] in result.output  # shown once
    assert mode(secrets_file) == 0o600
    assert mode(folder / "digest.db") == 0o600
    assert mode(folder / "outbox") == 0o700
    settings = config.load(folder / "digest.toml")
    assert settings.web.secret_key.reveal() == stored["web"]["secret_key"]
    assert settings.subscribers.suppression_key

    runner = CliRunner()
    added = runner.invoke(
        cli, ["--config", str(folder / "digest.toml"), "subscribers", "add", "ana@example.net"]
    )
    assert added.exit_code == 0, added.output
    assert len(list((folder / "outbox").iterdir())) == 1  # the confirmation mail
    from digest.web import create_app

    factory = pipeline.open_database(settings)
    with client_for(create_app(settings, factory=factory)) as client:
        assert client.get("/en/").status_code == 200
        page = client.get("/en/admin/login")
        answer = client.post(
            "/en/admin/login",
            data={"csrf": csrf_of(page.text), "password": stored["web"]["admin_password"]},
        )
        assert answer.status_code == 303, answer.text
    factory.kw["bind"].dispose()


def test_schedule_starts_on_a_fresh_init(tmp_path: Path, clean_env: None) -> None:
    init(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_CONFIG": str(tmp_path / "digest.toml")}
    log = tmp_path / "schedule.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "schedule"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 120
        while "event=scheduler.start" not in log.read_text("utf-8"):
            assert process.poll() is None, log.read_text("utf-8")
            assert time.monotonic() < deadline, log.read_text("utf-8")
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, log.read_text("utf-8")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_init_asks_for_what_only_the_operator_knows(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "needs --title, --sender" in result.output
    assert not (tmp_path / "digest.toml").exists()
    wrong = CliRunner().invoke(cli, ["init", str(tmp_path), *ANSWERS, "--timezone", "Mars/Base"])
    assert wrong.exit_code == 1 and "is not an IANA time zone" in wrong.output
    no_language = [*ANSWERS[:6], "--languages", ","]
    empty = CliRunner().invoke(cli, ["init", str(tmp_path), *no_language])
    assert empty.exit_code == 1 and "languages" in empty.output
    assert not (tmp_path / "digest.toml").exists()


def test_init_asks_on_a_terminal(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.cli import operations as commands

    monkeypatch.setattr(commands, "_interactive", lambda: True)
    answers = "Dorpskrant\nDorpskrant <krant@example.be>\nhttps://krant.example.be/\nnl,fr\n\n\n"
    result = CliRunner().invoke(cli, ["init", str(tmp_path)], input=answers)
    assert result.exit_code == 0, result.output
    settings = config.load(tmp_path / "digest.toml")
    assert settings.publication.title == "Dorpskrant"
    assert settings.publication.base_url == "https://krant.example.be"
    assert settings.publication.languages == ["nl", "fr"]
    assert settings.publication.timezone == "UTC"  # the default, taken with Enter
    assert settings.web.secure_cookies is True
    assert (tmp_path / "digest.db").is_file()  # the default database, taken with Enter


def test_init_force_keeps_a_backup_and_never_replaces_the_database(
    tmp_path: Path, clean_env: None
) -> None:
    init(tmp_path)
    old_secrets = (tmp_path / "digest.secrets.toml").read_text(encoding="utf-8")
    refused = CliRunner().invoke(cli, ["init", str(tmp_path), *ANSWERS])
    assert refused.exit_code == 1 and "exists already" in refused.output
    settings = config.load(tmp_path / "digest.toml")
    factory = pipeline.open_database(settings)
    with factory() as session, session.begin():
        session.execute(
            sa.text(
                "INSERT INTO job_marks (key, created_at, note) "
                "VALUES ('k', CURRENT_TIMESTAMP, 'kept')"
            )
        )
    factory.kw["bind"].dispose()

    result = init(tmp_path, "--force")

    kept = sorted(p.name for p in tmp_path.glob("*.bak"))
    assert len(kept) == 2 and "kept the old file as" in result.output
    secrets_backup = next(tmp_path.glob("digest.secrets.toml.*.bak"))
    assert secrets_backup.read_text(encoding="utf-8") == old_secrets
    assert "kept the existing database" in result.output
    factory = pipeline.open_database(config.load(tmp_path / "digest.toml"))
    with factory() as session:
        assert session.execute(sa.text("SELECT note FROM job_marks")).scalar() == "kept"
    factory.kw["bind"].dispose()


def test_init_honours_digest_database_url(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "data" / "pub.db"
    monkeypatch.setenv("DIGEST_DATABASE__URL", f"sqlite:///{elsewhere}")
    init(tmp_path / "pub")
    assert elsewhere.is_file() and not (tmp_path / "pub" / "digest.db").exists()
    assert mode(elsewhere.parent) == 0o700


def test_a_database_password_goes_to_the_secrets_file() -> None:
    assert operations.split_database_url("postgresql://digest:s3cret@db.internal/news") == (
        "postgresql+psycopg://digest:***@db.internal/news",
        "postgresql+psycopg://digest:s3cret@db.internal/news",
    )
    assert operations.split_database_url("sqlite:///digest.db") == ("sqlite:///digest.db", None)
    with pytest.raises(DigestError, match="is not a database URL"):
        operations.split_database_url("digest.db")


def test_init_on_postgresql(tmp_path: Path, database_url: str, clean_env: None) -> None:
    """`digest init --database URL` creates the schema in an empty database (PostgreSQL when
    the suite runs with DIGEST_TEST_DATABASE_URL)."""
    engine = db.connect(database_url)
    with engine.begin() as connection:
        schema.metadata().drop_all(connection)
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {schema.VERSION_TABLE}"))
    init(tmp_path, "--database", database_url)
    with engine.connect() as connection:
        assert schema.state(connection).status is schema.Status.CURRENT
    assert schema.differences(engine) == []
    engine.dispose()


# --- publish never empties the feeds ---------------------------------------------------------


def test_publish_refuses_to_replace_feeds_with_fewer_issues(
    make_settings: Any, tmp_path: Path, factory: Any
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    number = approved_issue(settings, factory)
    pipeline.mark_published(settings, factory, number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    feed = settings.publish.output_dir / "feeds" / "en.atom"
    assert operations.entries_in_feed(feed.read_bytes()) == 1
    with factory() as session, session.begin():
        session.execute(sa.text("UPDATE issues SET published_at = NULL, sent_at = NULL"))
    before = feed.read_bytes()

    with pytest.raises(DigestError, match=r"holds 1 issues but the database gives only 0"):
        pipeline.publish(settings, factory, now=MONDAY)
    assert feed.read_bytes() == before

    pipeline.publish(settings, factory, now=MONDAY, force=True)
    assert operations.entries_in_feed(feed.read_bytes()) == 0


# --- backup and restore ------------------------------------------------------------------------

READERS = [(f"reader{n:03}@example.net", ("en", "nl", "fr")[n % 3], ()) for n in range(510)]


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Any:
    """A publication on SQLite whatever DIGEST_TEST_DATABASE_URL says: the online backup
    API is SQLite's (PostgreSQL is backed up with pg_dump, see the next tests)."""
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    db.connect(url, create=True).dispose()

    def make(extra: str = "") -> config.Settings:
        return config.load(write_config(tmp_path, url, extra), env={})

    return make


def test_a_backup_taken_during_a_send_is_consistent_and_restores(
    sqlite_settings: Any, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_settings, tmp_path, None)
    factory = pipeline.open_database(settings)
    add_people(settings, factory, READERS)
    number = approved_issue(settings, factory)
    copy = tmp_path / "backups" / "during-send.db"
    taken = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        if done == total // 2 and not taken.is_set():
            seen.append(done)
            operations.backup(settings, copy)
            taken.set()

    report = sending.send(settings, factory, number=number, now=MONDAY, progress=progress)
    assert report.finished and taken.is_set()
    assert mode(copy) == 0o600
    outbox = settings.delivery.outbox_dir  # created by the transport: private as well
    assert mode(outbox) == 0o700
    assert {mode(mail) for mail in outbox.iterdir()} == {0o600}

    snapshot = sa.create_engine(f"sqlite:///{copy}")
    with snapshot.connect() as connection:
        assert schema.state(connection).status is schema.Status.CURRENT
        assert connection.scalar(sa.text("PRAGMA integrity_check")) == "ok"
        assert connection.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 510
        states = dict(
            connection.execute(
                sa.select(Delivery.state, sa.func.count()).group_by(Delivery.state)
            ).all()
        )
    snapshot.dispose()
    assert sum(states.values()) == 510  # the whole ledger, built before the send began
    assert 0 < states.get(DeliveryState.SENT, 0) < 510  # a moment during the send

    result = CliRunner().invoke(
        cli, ["--config", str(settings.path), "restore", str(copy), "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "kept the replaced database as" in result.output
    with factory() as session:
        restored = session.scalar(
            sa.select(sa.func.count()).where(Delivery.state == DeliveryState.SENT)
        )
        assert restored == states[DeliveryState.SENT]
        assert session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 510
    # The restored ledger resumes (the sender that held the issue in the snapshot is this
    # very process, so its lock is taken over once stale): the rest of the issue goes out.
    later = MONDAY + sending_lock_stale() + timedelta(minutes=1)
    again = sending.send(settings, factory, number=number, now=later)
    assert again.finished
    with factory() as session:
        states_now = set(session.scalars(sa.select(Delivery.state)))
        assert states_now == {DeliveryState.SENT}
    factory.kw["bind"].dispose()


def sending_lock_stale() -> timedelta:
    from digest.store.deliveries import STALE_LOCK

    return STALE_LOCK


def test_restore_checks_the_backups_schema(sqlite_settings: Any, tmp_path: Path) -> None:
    settings = sqlite_settings()
    old = ROOT / "tests" / "fixtures" / "digest-5b55311.db"
    report = operations.restore(settings, old)
    assert report.status is schema.Status.BEHIND
    with pytest.raises(SchemaError, match="schema revision 0001"):
        pipeline.open_database(settings)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a backup" * 100)
    with pytest.raises(DigestError, match="is not a digest backup"):
        operations.restore(settings, junk)


def test_backup_into_a_new_folder(sqlite_settings: Any, tmp_path: Path) -> None:
    settings = sqlite_settings()
    target = tmp_path / "nightly"
    result = CliRunner().invoke(cli, ["--config", str(settings.path), "backup", f"{target}/"])
    assert result.exit_code == 0, result.output
    (made,) = target.iterdir()
    assert mode(target) == 0o700 and mode(made) == 0o600
    assert made.name.startswith(f"digest-{schema.head()}-") and made.suffix == ".db"
    assert f"digest restore {made}" in result.output


def test_upgrade_stops_when_it_cannot_back_up(tmp_path: Path) -> None:
    old = tmp_path / "digest.db"
    old.write_bytes((ROOT / "tests" / "fixtures" / "digest-5b55311.db").read_bytes())
    (tmp_path / "taken").write_text("a file where the backup folder should be")
    config_path = tmp_path / "digest.toml"
    config_path.write_text('[database]\nurl = "sqlite:///digest.db"\nbackup_dir = "taken"\n')
    result = CliRunner().invoke(cli, ["--config", str(config_path), "upgrade"])
    assert result.exit_code == 1
    assert "cannot create [database] backup_dir" in result.output
    assert "digest upgrade --no-backup" in result.output
    engine = db.connect(f"sqlite:///{old}")
    with engine.connect() as connection:
        assert schema.state(connection).revision == "0001"  # untouched
    engine.dispose()


def test_backup_and_restore_on_the_test_database(
    make_settings: Any, database_url: str, tmp_path: Path, factory: Any
) -> None:
    """The same commands on either backend: SQLite's online backup API, or pg_dump and
    pg_restore on PostgreSQL (when the suite runs with DIGEST_TEST_DATABASE_URL)."""
    settings = make_settings()
    mark = sa.text("INSERT INTO job_marks (key, created_at, note) VALUES (:k, :t, '')")
    with factory() as session, session.begin():
        session.execute(mark, {"k": "before", "t": MONDAY})
    target = tmp_path / ("pg.dump" if database_url.startswith("postgresql") else "copy.db")
    made = operations.backup(settings, target)
    assert mode(made.path) == 0o600 and made.revision == schema.head()
    if database_url.startswith("postgresql"):
        assert made.path.read_bytes()[:5] == b"PGDMP"
    with factory() as session, session.begin():
        session.execute(mark, {"k": "after", "t": MONDAY})

    result = CliRunner().invoke(
        cli, ["--config", str(settings.path), "restore", str(made.path), "--yes"]
    )

    assert result.exit_code == 0, result.output
    with factory() as session:
        assert list(session.scalars(sa.text("SELECT key FROM job_marks"))) == ["before"]
    (previous,) = (tmp_path / "backups").iterdir()  # what the restore replaced
    assert "before-restore" in previous.name


# --- SQLite → PostgreSQL ------------------------------------------------------------------------


def test_migrate_to_copies_every_table(
    sqlite_settings: Any, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(sqlite_settings, tmp_path, None)
    factory = pipeline.open_database(settings)
    add_people(settings, factory, READERS[:20])
    number = approved_issue(settings, factory)
    sending.send(settings, factory, number=number, now=MONDAY)
    factory.kw["bind"].dispose()
    target_url = (
        database_url if database_url.startswith("postgresql") else f"sqlite:///{tmp_path}/new.db"
    )
    target = db.connect(target_url)
    with target.begin() as connection:
        schema.metadata().drop_all(connection)
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {schema.VERSION_TABLE}"))

    result = CliRunner().invoke(cli, ["--config", str(settings.path), "migrate-to", target_url])

    assert result.exit_code == 0, result.output
    source = db.connect(config.database_url(settings))
    for table in schema.metadata().sorted_tables:
        with source.connect() as a, target.connect() as b:
            query = sa.select(table).order_by(*table.primary_key.columns)
            assert a.execute(query).all() == b.execute(query).all(), table.name
    # New rows get fresh ids after the copy (sequences moved past the copied ones).
    with target.begin() as connection:
        highest = connection.scalar(sa.select(sa.func.max(Subscriber.id)))
        connection.execute(
            sa.text(
                "INSERT INTO suppressions (address_hash, reason, created_at) "
                "VALUES ('x', 'erased', CURRENT_TIMESTAMP)"
            )
        )
        added = connection.scalar(sa.text("SELECT MAX(id) FROM suppressions"))
    assert highest is not None and added is not None
    again = CliRunner().invoke(cli, ["--config", str(settings.path), "migrate-to", target_url])
    assert again.exit_code == 1 and "already holds digest tables" in again.output
    source.dispose()
    target.dispose()
