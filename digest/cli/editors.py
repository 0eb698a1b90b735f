"""`digest editors …`, `digest api-keys …` and `digest audit`: who may use the desk and the
API, and what they did."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime

import click

from digest.cli.context import Context, pass_context
from digest.pipeline import accounts, api_keys, audit
from digest.store.models import ApiScope, Role

ROLES = [role.value for role in Role]
SCOPES = [scope.value for scope in ApiScope]


@click.group(name="editors")
def editors_group() -> None:
    """Add, list and remove the named accounts of the editor's desk.

    With no account, the desk takes the shared [web] admin_password (one person, an admin).
    Once one exists, it asks for an address and a password (or mails a sign-in link).
    """


@editors_group.command(name="add")
@click.argument("name")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=Role.EDITOR.value,
    show_default=True,
    help="editor: curate, test, approve; admin: also sources, subscribers, accounts, audit.",
)
@click.option(
    "--password",
    envvar="DIGEST_EDITOR_PASSWORD",
    default=None,
    help="The password (prompted for when not given; $DIGEST_EDITOR_PASSWORD).",
)
@click.option(
    "--link-only",
    is_flag=True,
    help="No password: this person signs in by the link the desk mails them.",
)
@pass_context
def editors_add(
    ctx: Context, name: str, email: str, role: str, password: str | None, link_only: bool
) -> None:
    """Add the account NAME for EMAIL; its password is hashed with argon2id."""
    if link_only and password:
        raise click.UsageError("--link-only and --password contradict each other; pick one")
    if not link_only and password is None:
        password = click.prompt(
            f"Password for {name} (at least {accounts.MIN_PASSWORD} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    added = accounts.add_account(
        ctx.factory,
        name,
        email,
        role=Role(role),
        password=None if link_only else password,
        by=ctx.actor,
    )
    how = "by emailed link" if link_only else "with a password (or by emailed link)"
    click.echo(f"added {added.role} {added.name} <{added.email}>; signs in {how}")


@editors_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def editors_list(ctx: Context, as_json: bool) -> None:
    """List the accounts: name, address, role, last sign-in."""
    rows = accounts.list_accounts(ctx.factory)
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], default=str, indent=2))
        return
    if not rows:
        click.echo(
            "no accounts: the desk takes the shared [web] admin_password; "
            "add one with `digest editors add NAME EMAIL --role admin`"
        )
        return
    zone = zoneinfo.ZoneInfo(ctx.settings.publication.timezone)
    for row in rows:
        password = "password" if row.has_password else "link only"
        click.echo(
            f"{row.name:<20} {row.email:<32} {row.role:<7} {password:<10} "
            f"last sign-in {_when(row.last_login_at, zone)}"
        )


@editors_group.command(name="remove")
@click.argument("name_or_email")
@pass_context
def editors_remove(ctx: Context, name_or_email: str) -> None:
    """Remove the account NAME_OR_EMAIL; its sessions end at their next request."""
    removed = accounts.remove_account(ctx.factory, name_or_email, by=ctx.actor)
    click.echo(f"removed {removed.role} {removed.name} <{removed.email}>")


@click.group(name="api-keys")
def api_keys_group() -> None:
    """Add, list and revoke the keys of the JSON API (/api/v1/).

    Scopes nest: subscribe (sign-up only: safe in a public web page), read (also issues,
    their stats and a subscriber's status), admin (also trigger collect and draft).
    """


@api_keys_group.command(name="add")
@click.argument("name")
@click.option("--scope", type=click.Choice(SCOPES), required=True, help="What the key may do.")
@pass_context
def api_keys_add(ctx: Context, name: str, scope: str) -> None:
    """Make the key NAME and print its token, once: only its hash is kept."""
    added = api_keys.add_key(ctx.factory, name, ApiScope(scope), by=ctx.actor)
    click.echo(f"added API key {added.name} ({added.scope}); its token, shown only now:")
    click.echo(added.token)


@api_keys_group.command(name="list")
@pass_context
def api_keys_list(ctx: Context) -> None:
    """List the keys: name, scope, first characters, last use, revoked or not."""
    rows = api_keys.list_keys(ctx.factory)
    if not rows:
        click.echo("no API keys; add one with `digest api-keys add NAME --scope read`")
        return
    zone = zoneinfo.ZoneInfo(ctx.settings.publication.timezone)
    for row in rows:
        state = f"revoked {_when(row.revoked_at, zone)}" if row.revoked_at else "live"
        click.echo(
            f"{row.name:<20} {row.scope:<9} {row.prefix}…  last used "
            f"{_when(row.last_used_at, zone):<16} {state}"
        )


@api_keys_group.command(name="revoke")
@click.argument("name")
@pass_context
def api_keys_revoke(ctx: Context, name: str) -> None:
    """Revoke the key NAME: its token is refused from now on."""
    revoked = api_keys.revoke_key(ctx.factory, name, by=ctx.actor)
    click.echo(f"revoked API key {revoked.name}")


@click.command(name="audit")
@click.option("--limit", "-n", default=50, show_default=True, help="How many entries.")
@click.option("--action", type=click.Choice(audit.ACTIONS), default=None, help="Only these.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def audit_command(ctx: Context, limit: int, action: str | None, as_json: bool) -> None:
    """Show the audit log, newest first: who drafted, edited, approved, sent, imported,
    erased, and who added accounts and API keys."""
    rows = audit.entries(ctx.factory, limit=limit, action=action)
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], default=str, indent=2))
        return
    if not rows:
        click.echo("the audit log is empty")
        return
    zone = zoneinfo.ZoneInfo(ctx.settings.publication.timezone)
    for row in rows:
        detail = f"  ({row.detail})" if row.detail else ""
        click.echo(f"{_when(row.at, zone)}  {row.actor:<24} {row.action:<16} {row.subject}{detail}")


def _when(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "never"
