"""Operating a publication: `digest init`, `upgrade`, `backup`, `restore`, `migrate-to`.

The logic is in `digest.pipeline.operations`; the choices in docs/operations.md.
"""

from __future__ import annotations

import os
import sys
import zoneinfo
from pathlib import Path

import click

from digest import config
from digest.cli.context import Context, pass_context
from digest.errors import DigestError
from digest.pipeline import operations
from digest.store import schema

QUESTIONS = (
    ("title", "Name of the publication (shown in emails, feeds and pages)", None),
    ("sender", "From: address of every email, e.g. Town Digest <digest@example.org>", None),
    ("base_url", "Public address of the web app and archive", "http://127.0.0.1:8000"),
    ("languages", "Languages, comma-separated, the default first", "en"),
    ("timezone", "IANA time zone of the schedules", "UTC"),
)


def _interactive() -> bool:
    """Whether `digest init` may ask (a person at a terminal, not a script)."""
    return sys.stdin.isatty()


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", help="Name of the publication.")
@click.option("--sender", help='From: address, e.g. "Town Digest <digest@example.org>".')
@click.option("--base-url", "base_url", help="Where the web app and archive are served.")
@click.option("--languages", help="Comma-separated, the default first (e.g. en,nl,fr).")
@click.option("--timezone", help="IANA time zone, e.g. Europe/Brussels.")
@click.option(
    "--database",
    help="Database URL (default: $DIGEST_DATABASE__URL, else sqlite:///digest.db beside it).",
)
@click.option("--force", is_flag=True, help="Write new files; the old ones are kept as .bak.")
def init(directory: Path, force: bool, **given: str | None) -> None:
    """Create a publication in DIRECTORY (default: here): digest.toml, its secrets file
    (mode 0600) and the database. Asks what is not given, on a terminal."""
    target = directory / config.DEFAULT_FILE
    if target.exists() and not force:
        _print_init(operations.init_existing(target))
        return
    answers: dict[str, str] = {}
    interactive = _interactive()
    missing = []
    for key, question, default in QUESTIONS:
        value = given.get(key)
        if not value and interactive:
            value = click.prompt(question, default=default)
        if not value:
            if default is None:
                missing.append("--" + key.replace("_", "-"))
                continue
            value = default
        answers[key] = value.strip()
    if missing:
        raise DigestError(
            f"digest init needs {', '.join(missing)} (or run it in a terminal to be asked)"
        )
    try:
        zoneinfo.ZoneInfo(answers["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DigestError(
            f"--timezone {answers['timezone']!r} is not an IANA time zone like Europe/Brussels"
        ) from exc
    database = given.get("database")
    if not database:
        database = os.environ.get("DIGEST_DATABASE__URL") or "sqlite:///digest.db"
        if interactive:
            database = click.prompt("Database URL (SQLite file or PostgreSQL)", default=database)
    report = operations.init_publication(
        directory,
        operations.Answers(
            title=answers["title"],
            sender=answers["sender"],
            base_url=answers["base_url"],
            languages=[part.strip() for part in answers["languages"].split(",") if part.strip()],
            timezone=answers["timezone"],
            database=database,
        ),
        force=force,
    )
    _print_init(report)


def _print_init(report: operations.InitReport) -> None:
    for kept in report.backups:
        click.echo(f"kept the old file as {kept}")
    if not report.admin_password:
        click.echo(f"{report.config_path} exists already: created its missing database")
    else:
        click.echo(f"wrote {report.config_path} (every key, its default and help; no secret)")
        click.echo(f"wrote {report.secrets_path} (mode 0600: the keys and the desk password)")
    if report.database_created:
        click.echo(f"created the database {report.database} (schema {schema.head()})")
    elif report.schema_status is schema.Status.BEHIND:
        click.echo(f"kept the existing database {report.database}; run `digest upgrade`")
    else:
        click.echo(f"kept the existing database {report.database}")
    if report.admin_password:
        click.echo(f"editor's desk password (shown once): {report.admin_password}")
    click.echo(
        "next: `digest sources add NAME URL`, `digest collect`, `digest serve`; "
        'issues wait for an editor ([issue] approval = "editor")'
    )


@click.command()
@click.option("--no-backup", is_flag=True, help="Skip the backup (only with a backup of your own).")
@pass_context
def upgrade(ctx: Context, no_backup: bool) -> None:
    """Back the database up into [database] backup_dir, then migrate it to this release."""
    report = operations.upgrade(ctx.settings, take_backup=not no_backup)
    if report.backup is None and report.before == report.after:
        click.echo(f"the database is already at schema {report.after}; nothing to do")
        return
    if report.backup is not None:
        click.echo(f"backed up to {report.backup.path} ({report.backup.size // 1024} KB)")
    click.echo(f"upgraded the database from schema {report.before} to {report.after}")


@click.command()
@click.argument("path", type=click.Path())
@pass_context
def backup(ctx: Context, path: str) -> None:
    """Copy the database to PATH (a new file, or a folder, existing or ending in /, for a
    dated file), consistently, while everything runs. PostgreSQL: through pg_dump."""
    target = Path(path)
    if path.endswith(("/", os.sep)):
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
    report = operations.backup(ctx.settings, target)
    click.echo(
        f"backed up schema {report.revision} to {report.path} ({report.size // 1024} KB); "
        f"restore it with `digest restore {report.path}`"
    )


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.confirmation_option(prompt="Replace the database with this backup?")
@pass_context
def restore(ctx: Context, path: Path) -> None:
    """Put the backup PATH back in place of the database, after checking its schema version
    (stop `digest schedule` and `digest serve` first). The database it replaces is backed
    up first. PostgreSQL: a pg_dump file, put back with pg_restore."""
    report = operations.restore(ctx.settings, path)
    if report.previous is not None:
        click.echo(f"kept the replaced database as {report.previous.path}")
    click.echo(f"restored {report.path} (schema {report.revision})")
    if report.status is schema.Status.BEHIND:
        click.echo("its schema is older than this digest's: run `digest upgrade`")


@click.command(name="migrate-to")
@click.argument("url")
@pass_context
def migrate_to(ctx: Context, url: str) -> None:
    """Copy every table into the empty database at URL (e.g. moving SQLite to PostgreSQL);
    the current database is left as it is."""

    def progress(table: str, rows: int) -> None:
        click.echo(f"  {table:<20} {rows} rows")

    report = operations.migrate_to(ctx.settings, url, on_table=progress)
    total = sum(report.rows.values())
    click.echo(f"copied {len(report.rows)} tables, {total} rows, into {report.url}")
    click.echo(
        f"next: stop digest, set [database] url (in {config.DEFAULT_FILE}, or in its "
        "secrets file when the URL holds a password), start it again"
    )
