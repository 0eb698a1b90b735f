"""Run the example publication end to end, offline.

    python examples/run.py [--dir examples/run] [--today 2026-11-23] [--fresh]

1. copies `examples/publication/` into the run folder, filling in the date placeholders
   relative to today (so the news is recent and the events upcoming whenever you run it;
   the syntax is in examples/publication/README.md);
2. runs `digest collect --all` on it, exactly as an operator would;
3. prints what was collected: recent news per language and the upcoming events.

Re-running keeps the database, so the second run shows everything "unchanged";
`--fresh` starts over.
"""

from __future__ import annotations

import argparse
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

    settings = config.load(config_path, env={})
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


def main() -> int:
    """Materialize the example, collect it with the real CLI, and show the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=HERE / "run", help="run folder")
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    parser.add_argument("--fresh", action="store_true", help="delete the run folder first")
    args = parser.parse_args()
    today = args.today or datetime.now(BRUSSELS).date()
    target: Path = args.dir.resolve()
    if args.fresh and target.exists():
        shutil.rmtree(target)
    materialize(target, today)
    config_path = target / "digest.toml"
    print(f"example publication in {target} (dates relative to {today})\n")
    digest = [sys.executable, "-m", "digest", "--config", str(config_path)]
    as_of = ["--as-of", f"{today}T12:00"] if args.today else []
    collected = subprocess.run([*digest, "collect", "--all", *as_of], check=False)
    show(config_path, today)
    print(f"\nsources: {' '.join(digest[1:])} sources list")
    return collected.returncode


if __name__ == "__main__":
    sys.exit(main())
