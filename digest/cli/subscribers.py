"""`digest subscribers …`: add, import, export, list and remove subscribers."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click

from digest.cli.context import Context, pass_context
from digest.pipeline import audit, confirmations, people
from subscribers.csvio import COLUMNS
from subscribers.model import Cadence, SubscriberStatus

STATUSES = [status.value for status in SubscriberStatus]


@click.group(name="subscribers")
def subscribers_group() -> None:
    """Manage the subscriber list: add, import, export, list, remove, unsuppress."""


@subscribers_group.command(name="add")
@click.argument("email")
@click.option("--name", default="", help="Their name, for the To: header.")
@click.option(
    "--language", default=None, help="Language of their mail (default: the publication's first)."
)
@click.option(
    "--topics", default="", help="Comma-separated topics, e.g. governance,housing (default: all)."
)
@click.option(
    "--cadence",
    type=click.Choice([cadence.value for cadence in Cadence]),
    default=Cadence.WEEKLY.value,
    show_default=True,
    help="How often they get the digest.",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="They gave consent elsewhere: add them confirmed and send no mail.",
)
@pass_context
def subscribers_add(
    ctx: Context,
    email: str,
    name: str,
    language: str | None,
    topics: str,
    cadence: str,
    confirmed: bool,
) -> None:
    """Add EMAIL. Without --confirmed they are pending and get a mail whose link confirms
    (double opt-in); they receive issues only once they use it.

    Adding a pending address again sends its confirmation mail again, at most once a day.
    """
    added = people.add_subscriber(
        ctx.settings,
        ctx.factory,
        email,
        name=name,
        language=language,
        topics=[topic for topic in topics.split(",") if topic.strip()],
        cadence=cadence,
        confirmed=confirmed,
    )
    row = added.subscriber
    if added.created:
        click.echo(f"added {row.email} ({row.status}, {row.language}, {row.cadence})")
    else:
        click.echo(f"{row.email} is already on the list, still pending")
    sent = added.confirmation
    if sent is None:
        click.echo("no mail was sent: --confirmed records that they gave consent elsewhere")
        return
    days = ctx.settings.subscribers.confirm_days
    click.echo(f"sent the confirmation mail to {sent.recipient} via {sent.via}")
    click.echo(f"they receive issues once they use its link (valid {days} days)")


@subscribers_group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--confirmed",
    is_flag=True,
    help="Required: they gave consent elsewhere; import them confirmed (next issue).",
)
@pass_context
def subscribers_import(ctx: Context, file: Path, confirmed: bool) -> None:
    """Import subscribers from FILE, a CSV with a header row naming its columns:
    email,name,language,topics,cadence and optionally consent_at, confirmed_at, consent_ip,
    consent_source (only email is required; topics are separated by ";" or "|" inside
    their cell). Exports of Mailchimp and listmonk are read as they are, comma- or
    semicolon-separated, UTF-8 or Windows-1252.

    Needs --confirmed: you vouch that they agreed (without it the file is refused). Rows
    the file marks as unsubscribed, cleaned or blocklisted are not imported and their
    addresses are suppressed. Bad rows are reported with their line number and the rest is
    imported; the exit status is then 1.
    """
    report = people.import_subscribers(ctx.settings, ctx.factory, file, confirmed=confirmed)
    audit.record(
        ctx.factory,
        ctx.actor,
        "imported",
        file.name,
        f"{report.imported} imported, {len(report.rejected)} skipped",
    )
    click.echo(f"imported {report.imported}, skipped {len(report.rejected)}")
    for rejected in report.rejected:
        click.echo(f"  {rejected}")
    if report.ignored_columns:
        known = ",".join(COLUMNS)
        click.echo(f"ignored columns: {', '.join(report.ignored_columns)} (known: {known})")
    if report.rejected:
        sys.exit(1)


@subscribers_group.command(name="export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="csv: the import format plus status; json: everything stored, consent included.",
)
@pass_context
def subscribers_export(ctx: Context, file: Path | None, fmt: people.ExportFormat) -> None:
    """Write every subscriber to FILE (default: standard output) as CSV or JSON.

    The CSV can be imported again (`digest subscribers import`); the JSON is the data
    export a subscriber may ask for, for everyone.
    """
    if file is None:
        count = people.export_subscribers(ctx.settings, ctx.factory, sys.stdout, fmt=fmt)
        sys.stdout.flush()
        click.echo(f"exported {count} subscribers", err=True)
        return
    count = people.export_file(ctx.settings, ctx.factory, file, fmt=fmt)
    click.echo(f"exported {count} subscribers to {file}", err=True)


@subscribers_group.command(name="list")
@click.option(
    "--status", type=click.Choice(STATUSES), default=None, help="Only subscribers with it."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def subscribers_list(ctx: Context, status: str | None, as_json: bool) -> None:
    """List subscribers: address, status, language, cadence, topics, name, since when."""
    rows = people.list_subscribers(ctx.settings, ctx.factory, status=status)
    if as_json:
        # One row at a time, like the export: the list may not fit in memory.
        count = 0
        click.echo("[", nl=False)
        for row in rows:
            click.echo(("," if count else "") + "\n  " + json.dumps(row.as_dict()), nl=False)
            count += 1
        click.echo("\n]" if count else "]")
        return
    counts: dict[str, int] = {}
    for row in rows:
        if not counts:
            click.echo(
                f"{'EMAIL':<32} {'STATUS':<21} {'LANG':<4} {'CADENCE':<7} "
                f"{'SINCE':<10} {'TOPICS':<20} NAME"
            )
        counts[row.status] = counts.get(row.status, 0) + 1
        state = f"{row.status} (paused)" if row.paused else row.status
        topics = ",".join(row.topics) or "all"
        click.echo(
            f"{row.email:<32} {state:<21} {row.language:<4} {row.cadence:<7} "
            f"{row.created_at:%Y-%m-%d} {topics:<20} {row.name}".rstrip()
        )
    if not counts:
        which = f"{status} " if status else ""
        click.echo(f"no {which}subscribers; add one with `digest subscribers add EMAIL`")
        return
    total = sum(counts.values())
    detail = ", ".join(f"{n} {name}" for name, n in counts.items())
    click.echo(f"{total} subscriber{'s' if total != 1 else ''} ({detail})")


@subscribers_group.command(name="remove")
@click.argument("email")
@click.option(
    "--unsubscribe",
    "how",
    flag_value=people.Removal.UNSUBSCRIBE.value,
    help="They asked to leave: keep the record as unsubscribed, never re-add the address.",
)
@click.option(
    "--erase",
    "how",
    flag_value=people.Removal.ERASE.value,
    help="They asked to be forgotten: delete everything, never re-add the address.",
)
@pass_context
def subscribers_remove(ctx: Context, email: str, how: str | None) -> None:
    """Remove EMAIL from the list.

    Plain `remove` deletes the record and the address may be added again (typos, test
    addresses). When the person asked to leave, use --unsubscribe or --erase: a keyed
    hash of the address is kept so no add or import brings it back.
    """
    removal = people.Removal(how) if how else people.Removal.DELETE
    removed = people.remove_subscriber(ctx.settings, ctx.factory, email, how=removal)
    if removal is people.Removal.ERASE:
        # Never the address: the log must not undo the erasure.
        audit.record(ctx.factory, ctx.actor, "erased", "a subscriber")
    if removal is people.Removal.DELETE:
        click.echo(
            f"removed {removed.email}; the address is not suppressed and may be added again "
            "(use --erase when they asked to leave)"
        )
    elif removal is people.Removal.UNSUBSCRIBE:
        if removed.changed:
            click.echo(f"unsubscribed {removed.email}; the address is never re-added")
        else:
            click.echo(f"{removed.email} had already left the list; the address is suppressed")
    else:
        click.echo(
            f"erased {removed.email}; only a keyed hash of the address remains, so it is "
            "never re-added"
        )


@subscribers_group.command(name="unsuppress")
@click.argument("email")
@click.option("--reason", "why", required=True, help="Why it is lifted (kept with who and when).")
@click.option(
    "--by",
    default=None,
    help="Who lifts it (default: the user running the command).",
)
@pass_context
def subscribers_unsuppress(ctx: Context, email: str, why: str, by: str | None) -> None:
    """Lift the suppression of EMAIL: undo a wrong bounce, complaint, unsubscribe or erasure.

    Who, when and why are kept. A subscriber marked bounced is confirmed again; one who
    unsubscribed or complained keeps that status and may now sign up or be added again.
    """
    who = by or getpass.getuser()
    done = people.unsuppress(ctx.settings, ctx.factory, email, why=why, by=who)
    what = {
        "confirmed": "they are confirmed again and get the next issue",
        None: "no record was kept (erased): they may sign up or be added again",
    }.get(done.status, f"they stay {done.status} and may sign up or be added again")
    click.echo(
        f"lifted the suppression of {done.email} ({done.reason} on "
        f"{done.suppressed_at:%Y-%m-%d}); {what}. Kept: by {who}, now, because {why!r}"
    )


@subscribers_group.command(name="confirmations")
@pass_context
def subscribers_confirmations(ctx: Context) -> None:
    """Send the confirmation mails still queued: those of sign-ups a stopped `digest serve`
    left, and refused ones whose retry time came (the scheduler does this too)."""
    drained = confirmations.drain(ctx.settings, ctx.factory)
    click.echo(
        f"confirmation mails: {len(drained.sent)} sent, {len(drained.retrying)} to retry "
        f"later, {len(drained.failed)} given up"
    )
    for reply in drained.retrying + drained.failed:
        click.echo(f"  not sent: {reply}")
    if drained.failed:
        sys.exit(1)
