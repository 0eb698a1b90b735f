"""Start-up time of CLI commands that need no renderer, against the interpreter's own.

Each command runs R times in a fresh process (wall time, best and median); beside it the
floors measured in the same run: `python -c pass` and `python -c "import sqlalchemy.orm"`
(what any command that reads the database must load). `digest status` runs on a fresh
SQLite publication in a temporary folder.

    .venv/bin/python bench/startup.py
    .venv/bin/python bench/startup.py --runs 20

Target: `digest --version` and `digest status` ≤ 0.3 s. `python -X importtime -m digest
--version` shows where the time goes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(command: list[str], runs: int) -> tuple[float, float]:
    """Best and median wall seconds of `runs` runs of `command`."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds)


def publication() -> Path:
    """A fresh SQLite publication; return its digest.toml."""
    from digest import config
    from digest.pipeline import operations

    folder = Path(tempfile.mkdtemp(prefix="digest-startup-"))
    path = folder / "digest.toml"
    path.write_text(
        '[publication]\nbase_url = "https://digest.example.org"\n'
        '[web]\nsecret_key = "bench-secret-key-0123456789abcdef"\n'
        '[subscribers]\nsuppression_key = "bench-suppression-key-0123456789"\n',
        encoding="utf-8",
    )
    operations.create_missing_database(config.load(path, env={}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    python = sys.executable
    config = publication()
    rows = [
        ("python -c pass", [python, "-c", "pass"]),
        ("python -c 'import sqlalchemy.orm'", [python, "-c", "import sqlalchemy.orm"]),
        ("digest --version", [python, "-m", "digest", "--version"]),
        ("digest status", [python, "-m", "digest", "--config", str(config), "status"]),
    ]
    floor = None
    for label, command in rows:
        best, median = timed(command, options.runs)
        floor = floor or best
        print(f"{label:<36} best {best:.3f} s  median {median:.3f} s  ({best / floor:.1f} × bare)")


if __name__ == "__main__":
    main()
