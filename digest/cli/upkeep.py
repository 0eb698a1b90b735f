"""`digest preflight` and `digest purge`: the upkeep an operator (or systemd) runs around
the scheduler and the web app."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click
import sqlalchemy as sa

from digest import config
from digest.cli.context import Context, as_of_option, parse_as_of, pass_context
from digest.errors import ConfigError, DigestError

EX_CONFIG = 78
"""sysexits.h: a configuration error (a secret missing, a bad key): a person must fix it."""
EX_TEMPFAIL = 75
"""sysexits.h: a temporary failure (the database does not answer yet): try again later."""


def _writable(folder: Path) -> str | None:
    """Why `folder` cannot be written, or None when it can (it is created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".preflight-"):
            pass
    except OSError as exc:
        return f"{folder} is not writable: {exc.strerror or exc}"
    return None


@click.command()
@click.option("--web", "for_web", is_flag=True, help="Check what `digest serve` needs too.")
@pass_context
def preflight(ctx: Context, for_web: bool) -> None:
    """Check, before the scheduler or the web app starts, that the configuration loads,
    the secrets are set, the folders can be written and the database answers with the
    schema this version needs. One line per check; nothing is changed.

    Exit status (for systemd's ExecStartPre): 0 ready; 78 a configuration or secret
    problem (a person must fix it); 75 the database does not answer or is behind (retried
    by the unit's restart with backoff).
    """
    from digest.pipeline import health, transport
    from digest.store import plainsql
    from digest.store.columns import COLUMNS

    problems: list[str] = []
    try:
        settings = ctx.settings
    except ConfigError as exc:
        click.echo(f"✗ configuration: {exc}")
        sys.exit(EX_CONFIG)
    click.echo(f"✓ configuration: {settings.path or 'defaults'}")
    checks: list[tuple[str, Callable[[], object]]] = [
        ("[web] secret_key", lambda: transport.tokens(settings)),
        ("[subscribers] suppression_key", lambda: transport.suppression_key(settings)),
        ("DKIM key", lambda: transport.dkim_signer(settings)),
    ]
    for name, check in checks:
        try:
            check()
        except (ConfigError, DigestError, OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
    delivery = settings.delivery
    if (
        delivery.transport == "smtp"
        and delivery.smtp_username
        and not (delivery.smtp_password.reveal())
    ):
        problems.append(
            "[delivery] smtp_password is empty while smtp_username is set; set "
            "DIGEST_DELIVERY__SMTP_PASSWORD (or _FILE)"
        )
    if for_web and not settings.web.admin_password.reveal():
        problems.append("[web] admin_password is not set: nobody can log in to the desk")
    folders = [settings.publish.output_dir]
    if delivery.transport == "outbox":
        folders.append(delivery.outbox_dir)
    for folder in folders:
        why = _writable(folder)
        if why:
            problems.append(why)
    for problem in problems:
        click.echo(f"✗ {problem}")
    if problems:
        sys.exit(EX_CONFIG)
    click.echo("✓ secrets and folders")
    url = config.database_url(settings)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            missing = health.schema_missing(plainsql.on_connection(connection).columns())
        engine.dispose()
    except (sa.exc.SQLAlchemyError, ModuleNotFoundError) as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        click.echo(f"✗ database {shown}: {first[0] if first else type(exc).__name__}")
        sys.exit(EX_TEMPFAIL)
    if missing and len(missing) < len(COLUMNS):
        click.echo(
            f"✗ database {shown} is behind this version (missing: {', '.join(missing[:8])}); "
            "run `digest upgrade`"
        )
        sys.exit(EX_TEMPFAIL)
    empty = " (empty: its tables are made at start)" if missing else ""
    click.echo(f"✓ database {shown}{empty}")
    click.echo(f"ready (pid {os.getpid()})")


@click.command()
@as_of_option
@pass_context
def purge(ctx: Context, as_of: str | None) -> None:
    """Apply [retention] now (the scheduler does it daily at 03:30): delivery rows of issues
    sent more than deliveries_days ago become per-issue counts; entries and events no
    source carried for items_days are deleted (the archive keeps what it showed); outbox
    files older than outbox_days go; unsubscribed, bounced and complained people are
    erased after unsubscribed_grace_days (the suppression hash stays). Unconfirmed
    sign-ups older than [subscribers] purge_pending_days are deleted too.
    """
    from datetime import timedelta

    from digest import pipeline
    from digest.pipeline import retention
    from digest.store import db
    from subscribers import registry

    settings, factory = ctx.settings, ctx.factory
    now = parse_as_of(settings, as_of) or pipeline.utcnow()
    days = settings.subscribers.purge_pending_days
    with db.transaction(factory) as session:
        pending = registry.purge_pending(session, older_than=timedelta(days=days), now=now)
    done = retention.purge(settings, factory, now=now)
    click.echo(f"{pending} unconfirmed sign-ups older than {days} days deleted")
    click.echo(done.message)
