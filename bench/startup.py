"""Start-up time of CLI commands that need no renderer, against the interpreter's own.

Each command runs R times in a fresh process (its best CPU time, user + system, which a
loaded machine's waits do not inflate; and wall time, best and median); beside it the
floors measured in the same run: `python -c pass` and `python -c "import sqlalchemy.orm"`
(what a command that reads the database through the ORM must load). `digest status` runs
on a fresh SQLite publication in a temporary folder, and with `--database URL` on that
PostgreSQL database too (it must be empty: its schema is made; psycopg's import is
part of the figure).

    .venv/bin/python bench/startup.py
    .venv/bin/python bench/startup.py --runs 20
    .venv/bin/python bench/startup.py --database postgresql+psycopg://postgres@127.0.0.1/bench

Target: `digest --version` and `digest status` ≤ 0.3 s. `python -X importtime -m digest
--version` shows where the time goes.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(command: list[str], runs: int) -> tuple[float, float, float]:
    """Best and median wall seconds of `runs` runs of `command`, and its best CPU seconds
    (user + system: a loaded machine's waits for a core left out)."""
    seconds = []
    cpu = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        seconds.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(seconds), statistics.median(seconds), min(cpu)


def publication(database: str = "") -> Path:
    """A fresh publication (SQLite unless `database` is a URL); return its digest.toml."""
    from digest import config
    from digest.pipeline import operations

    folder = Path(tempfile.mkdtemp(prefix="digest-startup-"))
    path = folder / "digest.toml"
    path.write_text(
        '[publication]\nbase_url = "https://digest.example.org"\n'
        '[web]\nsecret_key = "bench-secret-key-0123456789abcdef"\n'
        '[subscribers]\nsuppression_key = "bench-suppression-key-0123456789"\n'
        + (f'[database]\nurl = "{database}"\n' if database else ""),
        encoding="utf-8",
    )
    operations.create_missing_database(config.load(path, env={}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database", default="", help="also time status on this database")
    options = parser.parse_args()
    python = sys.executable
    config = publication()
    rows = [
        ("python -c pass", [python, "-c", "pass"]),
        ("python -c 'import sqlalchemy.orm'", [python, "-c", "import sqlalchemy.orm"]),
        ("digest --version", [python, "-m", "digest", "--version"]),
        ("digest status", [python, "-m", "digest", "--config", str(config), "status"]),
    ]
    if options.database:
        other = publication(options.database)
        rows.append(
            (
                "digest status (--database)",
                [python, "-m", "digest", "--config", str(other), "status"],
            )
        )
    floors: dict[str, float] = {}
    for label, command in rows:
        best, median, cpu = timed(command, options.runs)
        floors.setdefault("bare", cpu)
        if "sqlalchemy" in label:
            floors["sqlalchemy"] = cpu
        versus = f"{cpu / floors['bare']:.1f} × bare"
        if label.startswith("digest status"):
            versus += f", {cpu / floors['sqlalchemy']:.2f} × the SQLAlchemy floor"
        print(
            f"{label:<36} CPU {cpu:.3f} s  wall best {best:.3f} s  median {median:.3f} s"
            f"  ({versus})"
        )


if __name__ == "__main__":
    main()
