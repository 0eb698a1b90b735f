"""Run the example publication end to end, offline.

    python examples/run.py [--dir examples/run] [--today 2026-11-23] [--fresh]
                           [--database postgresql+psycopg://user@host/db]

1. copies `examples/publication/` into the run folder, filling in the date placeholders
   relative to today (so the news is recent and the events upcoming whenever you run it;
   the syntax is in examples/publication/README.md);
2. runs the real command line on it, as an operator would: `digest init` (the database,
   SQLite in the run folder or the empty database given with `--database`), `digest collect --all`,
   `digest draft`, `digest preview` (HTML and text, every language), `digest subscribers
   import` (six fictional readers, first run only), `digest approve`, `digest send` (to
   the outbox folder: one .eml per subscriber) and `digest publish` (Atom feeds,
   archive, events.ics);
3. prints what was collected and where the preview, the mail, the feeds and the archive are.

Re-running keeps the database: the second run shows everything "unchanged" and updates the
same draft; `--fresh` starts over.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "publication"
BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")
LANGUAGES = ("en", "nl", "fr")
PLACEHOLDER = re.compile(r"\{\{(days_ago|iso_days_ago|date|local|utc):([+-]?\d+)(?::(\d{4}))?\}\}")


def fill(text: str, today: date) -> str:
    """Replace every date placeholder in `text` with a date relative to `today`."""

    def morning(days: int) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(9, 0), BRUSSELS)

    formats: dict[str, Callable[[int, str | None], str]] = {
        "days_ago": lambda n, _: format_datetime(morning(-n)),
        "iso_days_ago": lambda n, _: morning(-n).isoformat(),
        "date": lambda n, _: (today + timedelta(days=n)).strftime("%Y%m%d"),
        "local": lambda n, hhmm: (today + timedelta(days=n)).strftime("%Y%m%d") + f"T{hhmm}00",
        "utc": lambda n, _: (morning(n).astimezone(zoneinfo.ZoneInfo("UTC"))).strftime(
            "%Y%m%dT%H%M%SZ"
        ),
    }
    return PLACEHOLDER.sub(lambda m: formats[m[1]](int(m[2]), m[3]), text)


def materialize(target: Path, today: date) -> None:
    """Copy the publication into `target` with its placeholders filled in."""
    for path in sorted(SOURCE.rglob("*")):
        if path.is_dir() or path.name == "README.md":
            continue
        relative = path.relative_to(SOURCE)
        if relative.suffix == ".template":
            relative = relative.with_suffix("")
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        destination.write_bytes(fill(data.decode("utf-8"), today).encode("utf-8"))


def show(config_path: Path, today: date) -> None:
    """Print the recent news per language and the upcoming events from the database."""
    import sqlalchemy as sa

    from digest import config, pipeline
    from digest.store.models import Entry, Event, Source

    settings = config.load(config_path, env=DATABASE_ENV)
    factory = pipeline.open_database(settings)
    with factory() as session:
        print("\nNews collected (not history), newest first:")
        news = session.scalars(
            sa.select(Entry).where(Entry.backlog.is_(False)).order_by(Entry.published_at.desc())
        ).all()
        for entry in news:
            names = ", ".join(link.source.name for link in entry.sources)
            day = entry.published_at.astimezone(BRUSSELS).strftime("%d %b")
            print(f"  [{entry.language}] {day}  {entry.title}  ({names})")
        backlog = session.scalar(
            sa.select(sa.func.count()).select_from(Entry).where(Entry.backlog.is_(True))
        )
        print(f"  … and {backlog} older items kept as history (never announced as news)")
        print("\nUpcoming events:")
        start = datetime.combine(today, time(0), BRUSSELS)
        events = session.scalars(
            sa.select(Event)
            .join(Source)
            .where(
                sa.or_(
                    sa.and_(Event.all_day.is_(False), Event.starts_at >= start),
                    sa.and_(Event.all_day.is_(True), Event.start_date >= today),
                )
            )
        ).all()

        def key(event: Event) -> datetime:
            if event.all_day and event.start_date is not None:
                return datetime.combine(event.start_date, time(0), BRUSSELS)
            assert event.starts_at is not None
            return event.starts_at

        for event in sorted(events, key=key):
            if event.all_day and event.start_date and event.end_date:
                last = event.end_date - timedelta(days=1)
                when = f"{event.start_date:%a %d %b}" + (
                    f" – {last:%a %d %b}" if last != event.start_date else ""
                )
            else:
                assert event.starts_at is not None
                when = f"{event.starts_at.astimezone(BRUSSELS):%a %d %b %H:%M}"
            flag = "  [CANCELLED]" if event.status.value == "CANCELLED" else ""
            print(f"  {when:<24} {event.summary} — {event.location}{flag}")


# Example-only secrets, so that the demo runs as it is: a real publication sets its own in
# the environment (or *_FILE), never in digest.toml.
EXAMPLE_SECRETS = {
    "DIGEST_WEB__SECRET_KEY": "example-only-secret-key-do-not-use-in-production",
    "DIGEST_SUBSCRIBERS__SUPPRESSION_KEY": "example-only-suppression-key-do-not-use",
}


def show_stories(config_path: Path, number: int) -> None:
    """Print the English issue as a reader meets it: each story once, in their language
    when there is a version in it, with the other languages it is told in."""
    from digest import config, pipeline
    from digest.store import issues

    factory = pipeline.open_database(config.load(config_path, env=DATABASE_ENV))
    with factory() as session:
        plan = issues.plan_of(issues.by_number(session, number))
    variant = plan.variant("en")
    print(f"\nThe English issue #{number}, each story once:")
    for section in variant.sections:
        print(f"  {section.name} ({len(section.items)} shown, {section.more} in the archive)")
        for item in section.items:
            told = f"  [also in {', '.join(lang for lang, _ in item.also)}]" if item.also else ""
            kind = "dates" if item.kind == "event" else "versions"
            versions = f"  ({len(item.members)} {kind})" if len(item.members) > 1 else ""
            marker = f"[{item.language}] " if item.foreign else ""
            print(f"    {marker}{item.title[:70]}{told}{versions}")


def sent_issues(config_path: Path) -> list[int]:
    """The numbers of the issues the example sent on earlier runs."""
    import sqlalchemy as sa

    from digest import config, pipeline
    from digest.store.models import Issue, IssueStatus

    factory = pipeline.open_database(config.load(config_path, env=DATABASE_ENV))
    with factory() as session:
        query = sa.select(Issue.number).where(Issue.status == IssueStatus.SENT)
        return list(session.scalars(query.order_by(Issue.number)))


def has_subscribers(config_path: Path) -> bool:
    """Whether the example's database has subscribers already (a re-run)."""
    import sqlalchemy as sa

    from digest import config, pipeline
    from subscribers.model import Subscriber

    factory = pipeline.open_database(config.load(config_path, env=DATABASE_ENV))
    with factory() as session:
        return bool(session.scalar(sa.select(sa.func.count()).select_from(Subscriber)))


DATABASE_ENV: dict[str, str] = {}
"""DIGEST_DATABASE__URL when --database is given: every command, and this script, use it."""


def main() -> int:
    """Materialize the example and run it through the real CLI, stage by stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=HERE / "run", help="run folder")
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    parser.add_argument("--fresh", action="store_true", help="delete the run folder first")
    parser.add_argument(
        "--database", default=None, help="database URL (default: SQLite in the run folder)"
    )
    args = parser.parse_args()
    if args.database:
        DATABASE_ENV["DIGEST_DATABASE__URL"] = args.database
    today = args.today or datetime.now(BRUSSELS).date()
    target: Path = args.dir.resolve()
    if args.fresh and target.exists():
        shutil.rmtree(target)
    materialize(target, today)
    config_path = target / "digest.toml"
    print(f"example publication in {target} (dates relative to {today})\n")
    as_of = ["--as-of", f"{today}T12:00"] if args.today else []

    def digest(*command: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
        line = [sys.executable, "-m", "digest", "--config", str(config_path), *command]
        print(f"\n$ digest {' '.join(command)}", flush=True)
        environment = {**os.environ, **EXAMPLE_SECRETS, **DATABASE_ENV}
        done = subprocess.run(line, check=False, text=True, capture_output=capture, env=environment)
        if capture and done.returncode == 0:
            print(done.stdout, end="")
        if capture and done.returncode != 0:
            print(done.stdout + done.stderr, end="")
        return done

    # Only `digest init` creates a database: on the first run it makes the one the config
    # (or --database) names; on a re-run it finds it there and says so.
    initialized = digest("init", str(target), capture=True)
    if initialized.returncode != 0 and "exists already" not in initialized.stderr:
        return initialized.returncode
    collected = digest("collect", "--all", *as_of)
    show(config_path, today)
    drafted = digest("draft", *as_of, capture=True)
    number = re.search(r"issue #(\d+)", drafted.stdout)
    if drafted.returncode != 0 or number is None:
        return drafted.returncode or 1
    show_stories(config_path, int(number[1]))
    previews = target / "preview"
    previews.mkdir(exist_ok=True)
    shown: list[Path] = []
    for language in LANGUAGES:
        for fmt, suffix in (("html", "html"), ("text", "txt")):
            output = previews / f"issue-{number[1]}.{language}.{suffix}"
            made = digest(
                "preview", number[1], "--language", language, "--format", fmt, "-o", str(output)
            )
            if made.returncode != 0:
                return made.returncode
            shown.append(output)
    if not has_subscribers(config_path):
        # Fictional readers who gave consent elsewhere (see the CSV): no opt-in mail.
        digest("subscribers", "import", str(SOURCE / "subscribers.csv"), "--confirmed")
    sent_before = sent_issues(config_path)
    if sent_before:
        # A re-run: the draft is next slot's issue; sending it is the editor's call.
        print(
            f"\nissue(s) {', '.join(f'#{n}' for n in sent_before)} went out on an earlier run; "
            f"#{number[1]} stays a draft (send it: digest approve {number[1]} && digest send)"
        )
    else:
        approved = digest("approve", number[1])
        sent = digest("send", number[1], *as_of) if approved.returncode == 0 else approved
        if sent.returncode != 0:
            return sent.returncode
    published = digest("publish", *as_of)
    if published.returncode != 0:
        return published.returncode
    public = target / "public"
    print("\nWhat a subscriber gets (sample personal links), per language:")
    for path in shown:
        print(f"  {path}")
    print("Atom feeds, one per language:")
    for language in LANGUAGES:
        print(f"  {public / 'feeds' / f'{language}.atom'}")
    print(f"Archive: {public / 'index.html'}  (issue pages in {public / 'archive'})")
    print(f"Events:  {public / 'events.ics'}  (one .ics per event in {public / 'events'})")
    print(f"Sent mail, one .eml per subscriber: {target / 'outbox'}")
    print(f"\nOpen the preview: xdg-open {shown[0]}")
    print(f"Source health:    digest --config {config_path} sources list")
    return collected.returncode


if __name__ == "__main__":
    sys.exit(main())
