"""The `digest` command line: the verbs an operator and an editor already say.

Exit status: 0 when everything went fine, 1 when something failed (a source that could
not be collected, a bad config key, a missing file); the message says what to do.
"""

from __future__ import annotations

import json
import sys
import tempfile
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import __version__, config, layout
from digest.cli.context import (
    Context,
    DigestGroup,
    as_of_option,
    lazy_module,
    parse_as_of,
    pass_context,
)
from digest.config import SOURCE_KINDS, SourceSettings
from digest.errors import DigestError
from digest.render import CHANNELS
from digest.terminal import echo, secho

if TYPE_CHECKING:
    from digest import pipeline
    from digest.pipeline import audit
    from digest.store import db, sources
else:  # imported when a command uses them: `digest --version` needs neither
    pipeline = lazy_module("digest.pipeline")
    audit = lazy_module("digest.pipeline.audit")
    db = lazy_module("digest.store.db")
    sources = lazy_module("digest.store.sources")


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="DIGEST_CONFIG",
    metavar="PATH",
    help="Configuration file (default: ./digest.toml, or $DIGEST_CONFIG).",
)
@click.option(
    "--by",
    envvar="DIGEST_BY",
    metavar="NAME",
    help="Who the audit log names for this command (default: the OS user; $DIGEST_BY).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, by: str | None) -> None:
    """Collect news and events into a multilingual digest: email, Atom feed, calendar."""
    ctx.obj = Context(config_path, by)
    ctx.call_on_close(ctx.obj.close)


@cli.group(name="sources")
def sources_group() -> None:
    """List, add, remove and check the feeds, calendars and pages collected."""


@sources_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def sources_list(ctx: Context, as_json: bool) -> None:
    """List sources with their health: last fetch, status, failures, next fetch."""
    with db.transaction(ctx.factory) as session:
        sources.sync_config(
            session,
            ctx.settings.sources,
            default_language=ctx.settings.default_language,
            now=pipeline.utcnow(),
        )
        rows = [pipeline.describe_source(s) for s in sources.all_sources(session)]
    if as_json:
        echo(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        echo("no sources yet; add one with `digest sources add NAME URL`")
        return
    for row in rows:
        state = "active" if row["active"] else "inactive"
        fetched = _when(row["last_fetched_at"])
        health = f"failing x{row['consecutive_failures']}" if row["consecutive_failures"] else "ok"
        echo(
            f"{row['name']:<24} {row['kind']:<8} {row['language']:<3} {state:<8} "
            f"last {fetched:<16} {health:<12} next {_when(row['next_fetch_at'])}"
        )
        echo(f"    {row['url']}")
        if row["last_error"]:
            echo(f"    last error: {row['last_error']}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"


@sources_group.command(name="add")
@click.argument("name")
@click.argument("url")
@click.option("--kind", type=click.Choice(SOURCE_KINDS), default="feed", show_default=True)
@click.option("--language", default="", help="Language of its items (default: the first).")
@click.option("--topics", default="", help="Comma-separated topics, e.g. governance,housing.")
@click.option("--section", default="news", show_default=True, help="Section of the issue.")
@click.option(
    "--backfill",
    type=click.IntRange(min=0),
    default=None,
    metavar="DAYS",
    help="Announce its items of the last DAYS days in the next issue "
    "(default: items older than the last issue sent are history).",
)
@pass_context
def sources_add(
    ctx: Context,
    name: str,
    url: str,
    kind: str,
    language: str,
    topics: str,
    section: str,
    backfill: int | None,
) -> None:
    """Add the source NAME fetched from URL (http(s) or a local file)."""
    location = config.source_location(ctx.settings, url)
    if not location.startswith(("http://", "https://")):
        if "://" in location:
            raise DigestError(f"{url}: only http, https and local files are collected")
        if not Path(location).is_file():
            raise DigestError(f"{url}: no such file ({location}); give a URL or an existing file")
    item = SourceSettings(
        name=name,
        url=url,
        kind=kind,
        language=language,
        topics=[t.strip() for t in topics.split(",") if t.strip()],
        section=section,
    )
    with db.transaction(ctx.factory) as session:
        sources.add(
            session,
            item,
            default_language=ctx.settings.default_language,
            now=pipeline.utcnow(),
            backfill_days=backfill,
        )
    echo(f"added {kind} {name!r}; run `digest sources check {name}` to try it")


@sources_group.command(name="remove")
@click.argument("name")
@pass_context
def sources_remove(ctx: Context, name: str) -> None:
    """Remove the source NAME (added with `sources add`)."""
    with db.transaction(ctx.factory) as session:
        sources.remove(session, name)
    echo(f"removed {name!r}")


@sources_group.command(name="check")
@click.argument("names", nargs=-1)
@pass_context
def sources_check(ctx: Context, names: tuple[str, ...]) -> None:
    """Fetch and parse sources (all, or NAMES) and report their health; stores nothing."""
    report = pipeline.check_sources(ctx.settings, ctx.factory, names=names)
    for item in report.sources:
        if item.failed:
            secho(f"✗ {item.name}: {item.error}", fg="red")
            continue
        title = f" “{item.title}”" if item.title else ""
        secho(f"✓ {item.name}{title}: {item.found} items", fg="green")
        for warning in item.warnings:
            echo(f"    warning: {warning}")
    if report.failed:
        sys.exit(1)


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Fetch every source, due or not.")
@as_of_option
@pass_context
def collect(ctx: Context, names: tuple[str, ...], everything: bool, as_of: str | None) -> None:
    """Fetch due sources (or NAMES), store new and changed items, print a summary.

    Exits 0 when every source was collected, 1 when at least one failed (the others are
    stored all the same; `digest sources list` shows each one's last error).
    """
    now = parse_as_of(ctx.settings, as_of)
    bar: Any = None

    def start(total: int) -> None:
        nonlocal bar
        if sys.stderr.isatty() and total:
            bar = click.progressbar(length=total, label="collecting", file=sys.stderr)
            bar.__enter__()

    def done(item: pipeline.SourceReport) -> None:
        if bar is not None:
            bar.update(1)

    try:
        report = pipeline.collect_sources(
            ctx.settings,
            ctx.factory,
            now=now,
            names=names,
            force=everything,
            on_start=start,
            on_done=done,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    print_collect_report(report)
    if report.failed:
        sys.exit(1)


@cli.command()
@click.option("--daily", is_flag=True, help="Draft the daily issue instead of the weekly one.")
@as_of_option
@pass_context
def draft(ctx: Context, daily: bool, as_of: str | None) -> None:
    """Compose the next issue from what is stored and save it as its slot's draft.

    Running it again for the same slot updates that draft; it never makes a second issue.
    """
    now = parse_as_of(ctx.settings, as_of)
    made = pipeline.draft(
        ctx.settings, ctx.factory, now=now, cadence="daily" if daily else "weekly"
    )
    zone = zoneinfo.ZoneInfo(ctx.settings.publication.timezone)
    verb = "drafted" if made.created else "updated the draft of"
    audit.record(ctx.factory, ctx.actor, "drafted", f"issue {made.number}", verb)
    echo(f"{verb} issue #{made.number} for {made.slot.astimezone(zone):%a %d %b %Y %H:%M}")
    for variant in made.plan.variants:
        counts = ", ".join(f"{len(s.items)} {s.name}" for s in variant.sections) or "nothing"
        echo(f"  [{variant.language}] {counts}")
    if made.plan.is_empty:
        echo("  (empty: nothing new since the last issue; it will not be sent)")
    echo(
        f"preview it: digest preview {made.number} --language "
        f"{ctx.settings.default_language} --output issue.html"
    )


@cli.command()
@click.argument("issue", type=int, required=False)
@click.option("--language", "-l", default=None, help="Variant to show (default: the first).")
@click.option(
    "--channel",
    "-c",
    type=click.Choice(CHANNELS),
    default=None,
    help="What to show: the email's HTML, its text part, the archive page, or the Atom "
    "entry as a feed reader shows it (default: email).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text"]),
    default=None,
    help="Old spelling: html is --channel email, text is --channel text.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--open", "open_", is_flag=True, help="Open the HTML in a browser.")
@pass_context
def preview(
    ctx: Context,
    issue: int | None,
    language: str | None,
    channel: str | None,
    fmt: str | None,
    output: Path | None,
    open_: bool,
) -> None:
    """Render ISSUE (default: the latest draft) as a channel's readers get it: the email a
    subscriber gets, its text part, its archive page, or its Atom entry.

    Standard output gets the rendering and nothing else; notes go to standard error.
    """
    if channel is None:
        channel = "text" if fmt == "text" else "email"
    elif fmt is not None and (fmt == "text") != (channel == "text"):
        raise click.UsageError(f"--format {fmt} contradicts --channel {channel}; use --channel")
    shown = pipeline.preview_channel(
        ctx.settings, ctx.factory, channel, number=issue, language=language
    )
    for omitted in shown.omitted:
        echo(f"left out (does not render): {omitted.title!r}: {omitted.reason}", err=True)
    body = shown.body
    if open_ and output is None:
        suffix = ".txt" if channel == "text" else ".html"
        with tempfile.NamedTemporaryFile(
            "w", suffix=suffix, delete=False, encoding="utf-8"
        ) as handle:
            output = Path(handle.name)
    if output is None:
        echo(body, nl=False)
        return
    output.write_text(body, encoding="utf-8")
    echo(
        f"wrote {output} ({len(body.encode('utf-8')) // 1024} KB, {channel}, "
        f"subject: {shown.subject})",
        err=True,
    )
    if open_:
        click.launch(output.resolve().as_uri())


@cli.command()
@click.argument("issue", type=int, required=False)
@click.option(
    "--force", is_flag=True, help="Replace published feeds even by ones with fewer issues."
)
@as_of_option
@pass_context
def publish(ctx: Context, issue: int | None, force: bool, as_of: str | None) -> None:
    """Write the Atom feeds, archive pages and events.ics into [publish] output_dir.

    With ISSUE, that issue is published first (issues also become public when sent).
    Published feeds are never replaced by ones with fewer issues unless --force.
    """
    now = parse_as_of(ctx.settings, as_of)
    if issue is not None:
        pipeline.mark_published(ctx.settings, ctx.factory, issue, now=now)
    report = pipeline.publish(ctx.settings, ctx.factory, now=now, force=force)
    echo(
        f"published into {report.output_dir}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed"
    )
    base = ctx.settings.publication.base_url.rstrip("/")
    for language in ctx.settings.publication.languages:
        echo(
            f"  feed [{language}]: {report.output_dir / layout.feed(language)}"
            f"  ({base}/{layout.feed(language)})"
        )
    echo(f"  archive: {report.output_dir / 'index.html'}")
    echo(f"  events:  {report.output_dir / layout.calendar()}")


@cli.command()
@as_of_option
@pass_context
def run(ctx: Context, as_of: str | None) -> None:
    """The main job, for cron: everything whose time has come, for the weekly and the daily
    issue alike. Collect; per cadence (the daily one when someone reads it daily) draft,
    approve (when [issue] approval = "auto") and send once the issue's time has come;
    retry deliveries that are due; try again issues the relay paused (after 1, 2, 5, 10,
    30, then every 60 minutes); publish. Safe to re-run at any time: a sent issue is not
    sent again, a cut-off send resumes.

    Exits 1 when a source failed or a send paused (the rest of the run still happens).
    """
    from digest.cli.delivery import Progress, print_send_report
    from digest.pipeline import resuming, retries, scheduling, send_times, sending

    settings, factory = ctx.settings, ctx.factory
    now = parse_as_of(settings, as_of)
    report = pipeline.collect_sources(settings, factory, now=now)
    print_collect_report(report)
    failed = bool(report.failed)
    ready, late = send_times.due(settings, factory, now=now or pipeline.utcnow())
    for number in ready:
        echo(f"issue #{number}: its chosen time has come")
        progress = Progress()
        sent = sending.send(settings, factory, number=number, now=now, progress=progress)
        progress.end()
        print_send_report(sent)
        failed = failed or bool(sent.paused)
    for number in late:
        echo(f"issue #{number} was to go out more than [issue] grace_hours ago; `digest send`")
    for cadence in scheduling.CADENCES:
        if cadence == "daily" and not scheduling.has_readers(factory, cadence):
            echo("daily: nobody reads the daily issue; none drafted")
            continue
        made = pipeline.draft(settings, factory, now=now, cadence=cadence)
        echo(f"issue #{made.number}: {'drafted' if made.created else 'draft updated'}")
        due = made.slot <= (now or pipeline.utcnow())
        if made.plan.is_empty:
            echo(f"issue #{made.number} is empty: nothing new since the last one; not sent")
        elif not due:
            echo(f"issue #{made.number} goes out at its slot, {made.slot:%Y-%m-%d %H:%M} UTC")
        elif settings.issue.approval == "auto" or pipeline.is_approved(factory, made.number):
            sending.approve(settings, factory, made.number, now=now)
            progress = Progress()
            sent = sending.send(settings, factory, number=made.number, now=now, progress=progress)
            progress.end()
            print_send_report(sent)
            failed = failed or bool(sent.paused)
        else:
            echo(
                f"issue #{made.number} waits for an editor's approval "
                f'(`digest approve {made.number}`); [issue] approval = "editor"'
            )
    moment = now or pipeline.utcnow()
    for tick in (
        retries.retry_tick(settings, factory, now=moment),
        resuming.resume_tick(settings, factory, now=moment),
    ):
        for line in tick.lines:
            echo(line)
        failed = failed or tick.failed
    published = pipeline.publish(settings, factory, now=now)
    echo(f"published: {len(published.written)} files written into {published.output_dir}")
    if failed:
        sys.exit(1)


def print_collect_report(report: pipeline.CollectReport) -> None:
    """Print one line per source and a total."""
    if not report.sources:
        echo("no source is due; `digest collect --all` fetches them anyway")
        return
    for item in report.sources:
        if item.failed:
            secho(f"✗ {item.name:<24} failed: {item.error}", fg="red")
        elif item.outcome == "not modified":
            echo(f"· {item.name:<24} not modified")
        else:
            secho(f"✓ {item.name:<24} {item.counts}", fg="green")
        for warning in item.warnings:
            echo(f"    warning: {warning}")
    failed = len(report.failed)
    echo(f"{len(report.sources)} sources, {failed} failed")


def main() -> None:
    """Run the command line."""
    cli(prog_name="digest")


# Commands with modules of their own, imported only when run (`DigestGroup.lazy`).
cli.lazy.update(
    {
        "init": "digest.cli.operations:init",
        "upgrade": "digest.cli.operations:upgrade",
        "backup": "digest.cli.operations:backup",
        "restore": "digest.cli.operations:restore",
        "migrate-to": "digest.cli.operations:migrate_to",
        "subscribers": "digest.cli.subscribers:subscribers_group",
        "approve": "digest.cli.delivery:approve",
        "send": "digest.cli.delivery:send",
        "bounces": "digest.cli.delivery:bounces_group",
        "serve": "digest.cli.web:serve",
        "schedule": "digest.cli.schedule:schedule",
        "status": "digest.cli.schedule:status",
        "preflight": "digest.cli.upkeep:preflight",
        "purge": "digest.cli.upkeep:purge",
        "editors": "digest.cli.editors:editors_group",
        "api-keys": "digest.cli.editors:api_keys_group",
        "audit": "digest.cli.editors:audit_command",
    }
)
