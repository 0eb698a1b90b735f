"""`digest approve`, `digest send` and `digest bounces`: delivering an issue and reading what
came back."""

from __future__ import annotations

import signal
import sys
import threading
import time
import zoneinfo
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from digest.cli.context import Context, as_of_option, parse_as_of, pass_context
from digest.pipeline import audit, returns, send_times, sending
from digest.pipeline import workers as parallel
from digest.pipeline.curation import DeskError
from digest.store.models import DeliveryState


@click.command()
@click.argument("issue", type=int)
@pass_context
def approve(ctx: Context, issue: int) -> None:
    """Approve draft ISSUE so that `digest send` (or the scheduler) sends it."""
    approved = sending.approve(ctx.settings, ctx.factory, issue)
    audit.record(ctx.factory, ctx.actor, "approved", f"issue {approved.number}")
    click.echo(f"issue #{approved.number} is {approved.status.value}")


class Progress:
    """Count, rate and ETA on one terminal line; nothing when output is not a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.2 and done < total):
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-6)
        eta = (total - done) / rate if rate else 0
        click.echo(
            f"\r  {done:,}/{total:,} messages  {rate:,.0f}/s  ETA {eta:,.0f} s   ",
            nl=False,
            err=True,
        )

    def end(self) -> None:
        """Leave the progress line."""
        if self.enabled and self.shown:
            click.echo("", err=True)


@click.command()
@click.argument("issue", type=int, required=False)
@click.option("--dry-run", is_flag=True, help="Count recipients per variant; one sample each.")
@click.option("--test-to", metavar="ADDRESS", help="Send one copy marked [TEST]; no ledger.")
@click.option("--language", "-l", default=None, help="Language of the --test-to copy.")
@click.option(
    "--accept-bounces",
    is_flag=True,
    help="The refusals that tripped the circuit breaker are real: count them as bounces.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes sending at once, each with its own connections (default: the number "
    "of cores; one when the issue fits in one batch).",
)
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="Do not send now: the scheduler (or `digest run`) sends approved ISSUE at TIME, "
    '"2026-12-08 09:00" in the publication\'s time zone, instead of at its slot.',
)
@click.option("--unschedule", is_flag=True, help="Forget the time --at chose: back to its slot.")
@click.option(
    "--join",
    is_flag=True,
    help="Add this machine's workers to an issue being sent (PostgreSQL).",
)
@as_of_option
@pass_context
def send(
    ctx: Context,
    issue: int | None,
    dry_run: bool,
    test_to: str | None,
    language: str | None,
    accept_bounces: bool,
    workers: int | None,
    at: str | None,
    unschedule: bool,
    join: bool,
    as_of: str | None,
) -> None:
    """Deliver an approved ISSUE (default: the one being sent, else the latest approved).

    Resumable: run it again after a crash, a pause or Ctrl-C, and it goes on from the
    ledger; nobody gets the issue twice (except messages in flight at a crash). SIGTERM
    and Ctrl-C stop it gracefully. Exit status 1 when the send paused or some
    deliveries are still waiting for a retry.
    """
    settings, factory = ctx.settings, ctx.factory
    now = parse_as_of(settings, as_of)
    if at is not None or unschedule:
        schedule_send(ctx, issue, at, now)
        return
    if dry_run:
        plan = sending.dry_run(settings, factory, number=issue, now=now)
        click.echo(f"issue #{plan.number} would go to {sum(plan.variants.values())} subscribers")
        for name, count in sorted(plan.variants.items()):
            click.echo(f"  {name:<24} {count:>8}  sample: {plan.samples[name]}")
        if not plan.variants:
            click.echo("  (no confirmed subscriber matches this issue)")
        return
    if test_to:
        result = sending.send_test(
            settings, factory, test_to, number=issue, language=language, now=now
        )
        audit.record(factory, ctx.actor, "test_sent", f"issue {issue or 'latest'}", test_to)
        if not result.ok:
            raise click.ClickException(f"the test message to {test_to} was refused: {result.reply}")
        click.echo(f"test message sent to {test_to}: {result.reply}")
        return
    stop = threading.Event()
    previous = _on_signals(stop)
    progress = Progress()
    try:
        if join:
            report = parallel.join(
                settings,
                factory,
                workers=workers or parallel.default_workers(),
                number=issue,
                now=now,
                progress=progress,
                stop=stop,
            )
        else:
            report = parallel.send(
                settings,
                factory,
                workers=workers or parallel.default_workers(),
                number=issue,
                now=now,
                progress=progress,
                stop=stop,
                breaker=not accept_bounces,
            )
    finally:
        progress.end()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print_send_report(report)
    audit.record(factory, ctx.actor, "sent", f"issue {report.number}", _sent_detail(report))
    if report.paused or not report.finished:
        sys.exit(1)


def schedule_send(ctx: Context, issue: int | None, at: str | None, now: datetime | None) -> None:
    """`digest send N --at TIME` and `--unschedule`: `pipeline.send_times`, audited."""
    if issue is None:
        raise click.UsageError("name the issue: digest send N --at TIME")
    zone = zoneinfo.ZoneInfo(ctx.settings.publication.timezone)
    if at is None:
        chosen = send_times.cancel_send(ctx.factory, issue)
        audit.record(ctx.factory, ctx.actor, "unscheduled", f"issue {issue}")
        click.echo(
            f"issue #{issue} goes out at its slot, {chosen.slot.astimezone(zone):%Y-%m-%d %H:%M %Z}"
        )
        return
    try:
        chosen = send_times.schedule_send(ctx.settings, ctx.factory, issue, at, now=now)
    except DeskError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from exc
    when = f"{chosen.goes_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
    audit.record(ctx.factory, ctx.actor, "scheduled", f"issue {issue}", when)
    click.echo(f"issue #{issue} goes out at {when} (`digest schedule` or `digest run` sends it)")


def _sent_detail(report: sending.SendReport) -> str:
    """The audit log's words for a send: how many were tried, and how it ended."""
    ending = (
        f"paused: {report.paused}"
        if report.paused
        else ("finished" if report.finished else "unfinished")
    )
    return f"{report.attempted} attempted; {ending}"


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    """Turn SIGTERM and SIGINT into a graceful stop; return the handlers to restore."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        click.echo(
            f"\nstopping after the messages in flight ({signal.Signals(signum).name})", err=True
        )

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handle)
    return previous


def print_send_report(report: sending.SendReport) -> None:
    """Print the summary of a send."""
    counts = report.counts
    state = "sent" if report.finished else "paused" if report.paused else "in progress"
    click.echo(
        f"issue #{report.number} {state}: {counts.get(DeliveryState.SENT, 0)} sent, "
        f"{counts.get(DeliveryState.PENDING, 0)} waiting to retry, "
        f"{counts.get(DeliveryState.FAILED, 0)} failed, "
        f"{counts.get(DeliveryState.BOUNCED, 0)} bounced"
    )
    if report.attempted:
        click.echo(
            f"  this run: {report.attempted} messages in {report.seconds:.1f} s "
            f"({report.rate:,.0f}/s); {len(report.render_seconds)} variants rendered once each"
            + (f"; {report.workers} worker processes" if report.workers > 1 else "")
        )
    if report.recovered:
        click.echo(
            f"  {report.recovered} answers an earlier run got before it stopped were read "
            "back from its journal: not sent again"
        )
    if report.resent_after_crash:
        click.echo(
            f"  {report.resent_after_crash} messages were claimed but unrecorded when an "
            f"earlier run stopped: sent now; at most {report.may_arrive_twice} of them may "
            "arrive twice (those that were on the wire, one per connection)"
        )
    if report.unknown_total:
        click.echo(
            f"  {report.unknown_total} messages got no reply to their final dot (outcome "
            f"unknown; {report.unknown} in this run): each is tried once more later with the "
            "same Message-ID, never again in the same run"
        )
    unknown = counts.get(DeliveryState.UNKNOWN, 0)
    if unknown:
        click.echo(f"  {unknown} still unknown after their one retry: not tried again")
    for name, count in sorted(report.variants.items()):
        click.echo(f"  {name:<24} {count:>8}")
    if report.paused:
        click.secho(f"  {report.paused}", fg="red", err=True)
    elif not report.finished and report.next_retry_at:
        click.echo(
            f"  some servers asked to retry later; run `digest send {report.number}` again "
            f"after {report.next_retry_at:%H:%M} UTC (the scheduler does it by itself)"
        )


@click.group(name="bounces")
def bounces_group() -> None:
    """Read bounce reports and complaints."""


@bounces_group.command(name="process")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_context
def bounces_process(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Read DSN bounce reports and complaints from FILES and Maildir folders, and update the
    delivery ledger and the subscribers. Safe to run on the same files again."""
    report = returns.process(ctx.settings, ctx.factory, paths)
    for line in report.lines:
        click.echo(line)
    click.echo(
        f"{report.messages} messages: {report.bounces} bounces, {report.delays} delays, "
        f"{report.complaints} complaints, {report.about_us} refusals about us (not bounces), "
        f"{report.unmatched} gone, "
        f"{report.unverified} not signed by us (ignored), {report.errors} unreadable"
    )
    if report.errors:
        sys.exit(1)
