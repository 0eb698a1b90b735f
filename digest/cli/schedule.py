"""`digest schedule` and `digest status`: running the publication unattended."""

from __future__ import annotations

import dataclasses
import json
import sys
import zoneinfo
from datetime import datetime
from typing import TYPE_CHECKING

import click

from digest import config, pipeline
from digest.cli.context import Context, pass_context
from digest.errors import DigestError
from digest.pipeline import logfmt
from digest.terminal import echo, secho

if TYPE_CHECKING:
    from digest.pipeline import health


@click.command()
@click.option(
    "--log-format",
    type=click.Choice(logfmt.FORMATS),
    default="text",
    show_default=True,
    help="text: one key=value line per event (logfmt); json: one JSON object per line.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@pass_context
def schedule(ctx: Context, log_format: str, log_level: str) -> None:
    """Run the scheduler in the foreground: collect, draft, send, retry, purge and publish
    on time, in the publication time zone (`python schedule.py` does the same).

    Its jobs live in the database ([database] url, table apscheduler_jobs); a run missed
    while it was down is made at start within [issue] grace_hours, and logged as skipped
    beyond. SIGTERM and Ctrl-C stop it gracefully: no new job starts, a send stops after
    the messages in flight (recorded; the next start resumes it). Logs go to standard
    error, one line per event. `digest status` shows what it did and what is next.
    """
    # Imported here: APScheduler need not load for every other command.
    from digest.pipeline.scheduler import build_scheduler, serve

    logfmt.configure(log_format, log_level)
    serve(build_scheduler(ctx.settings, factory=ctx.factory))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """Show the scheduler's jobs (next run, last result), the sources that fail, and the
    issues under way with any delivery problem (paused and why, stuck, in flight, retries
    waiting, failed, bounced).

    Exit status, for Nagios and cron: 0 all is well; 1 warning (a source failing,
    deliveries waiting for a retry or failed); 2 critical (an issue paused, late or stuck
    with no live sender, the scheduler not seen for 15 minutes, the database behind the
    code or unreachable). The last line says the level and why.
    """
    from digest.pipeline import health

    try:
        report = _read_status(ctx)
    except DigestError as exc:
        text = f"CRITICAL: the database cannot be read: {_first_line(exc)}"
        if as_json:
            click.echo(json.dumps({"level": health.CRITICAL, "findings": [text]}, indent=2))
        else:
            click.echo(text)
        sys.exit(health.CRITICAL)
    findings = report.findings
    if as_json:
        data = dataclasses.asdict(report)
        data["scheduler_quiet"] = report.scheduler_quiet
        for row, issue in zip(data["issues"], report.issues, strict=True):
            row["problems"] = issue.problems
        data["level"] = report.level
        data["findings"] = [{"level": health.LEVELS[f.level], "text": f.text} for f in findings]
        click.echo(json.dumps(data, default=str, indent=2))
        sys.exit(report.level)
    zone = zoneinfo.ZoneInfo(ctx.settings.publication.timezone)

    def at(moment: datetime | None, missing: str = "-") -> str:
        return f"{moment.astimezone(zone):%a %d %b %Y %H:%M}" if moment else missing

    click.echo(f"jobs (times in {zone.key})")
    for job in report.jobs:
        upcoming = at(job.next_run, "not scheduled" if job.stored else "-")
        last = "never ran"
        if job.last_started is not None:
            last = f"last {at(job.last_started)} {job.last_outcome}: {job.last_message}"
        click.echo(f"  {job.id:<17} {job.when:<12} next {upcoming:<22} {last}")
    if not any(job.stored for job in report.jobs):
        click.echo("  the scheduler never ran with this database: start it with `digest schedule`")
    elif report.scheduler_quiet:
        click.secho(
            f"  no job finished since {at(report.last_activity)}: is `digest schedule` running?",
            fg="red",
        )
    problems = report.source_problems
    click.echo(f"\nsources: {report.sources_total}, {len(problems)} with problems")
    for source in problems:
        word = "inactive" if not source.active else f"failing x{source.failures}"
        secho(
            f"  {source.name:<24} {word}, last success {at(source.last_success_at, 'never')}, "
            f"next try {at(source.next_fetch_at)}",
            fg="red",
        )
        if source.last_error:  # a server's text: no escape reaches the terminal
            echo(f"      {source.last_error}")
    click.echo("\nissues")
    if not report.issues:
        click.echo("  none under way or sent in the last 30 days")
    for issue in report.issues:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(issue.counts.items()))
        click.echo(
            f"  #{issue.number:<4} {issue.cadence:<7} {at(issue.slot)}  {issue.status:<9}"
            + (f" {counts}" if counts else "")
        )
        for finding in issue.findings:
            secho(f"      {finding.text}", fg="red" if finding.level else None)
    for finding in report.extra:
        secho(f"\n{finding.text}", fg="red")
    if report.schema_missing:
        secho(f"\n{next(f.text for f in findings if 'behind' in f.text)}", fg="red")
    troubled = len(report.delivery_problems)
    if troubled:
        click.echo(f"\ndelivery: {troubled} issue{'s' if troubled > 1 else ''} to look at")
    else:
        click.echo("\ndelivery: no problem")
    word = health.LEVELS[report.level].upper()
    worst = [f.text for f in findings if f.level == report.level]
    summary = f"{word}: " + "; ".join(worst[:3]) + (" …" if len(worst) > 3 else "")
    click.echo(f"\n{summary if report.level else 'OK: all is well'}")
    sys.exit(report.level)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _read_status(ctx: Context) -> health.Status:
    """Read the status on the database's driver alone when it is a SQLite file or
    PostgreSQL at this digest's revision (no SQLAlchemy to load: a quick answer for a
    monitor); anything else (a missing file, another revision, another driver) goes
    through SQLAlchemy, which says what is wrong and what to run."""
    from digest.pipeline import health
    from digest.store import plainsql, revision

    now = pipeline.utcnow()
    try:
        with plainsql.connect(config.database_url(ctx.settings)) as reader:
            if reader is not None and revision.reads_current(reader):
                return health.gather(ctx.settings, reader, now=now)
    except plainsql.Unreachable:
        raise  # a server that is down or refuses us: no second wait as long
    except DigestError:
        pass  # said again, with its cause and remedy, by the way below
    import sqlalchemy as sa

    try:
        return health.gather(ctx.settings, ctx.factory, now=now)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise DigestError(_first_line(exc)) from exc
