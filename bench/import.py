"""Time `digest subscribers import` on N and 2N synthetic rows, against a ceiling measured in
the same run.

Each run imports a fresh CSV of N confirmed subscribers (with a name, a language, topics
and an opt-in time, plus a few bad rows) into a fresh database through
`people.import_subscribers`, the function behind the command. The ceiling is what no
import can beat: the same rows, already validated, inserted with one bare executemany
(SQLAlchemy Core, as the import does) into another fresh database. Printed beside it:
reading the CSV and validating each address alone (email-validator, no database).

    .venv/bin/python bench/import.py                       # 20,000 and 40,000 rows, SQLite
    .venv/bin/python bench/import.py --rows 50000
    .venv/bin/python bench/import.py --database postgresql+psycopg://postgres@127.0.0.1/test

SQLite runs are timed in CPU seconds of this process (a loaded machine's waits left out),
PostgreSQL ones in wall seconds (the import's wall time is printed too). Target: ≥ 10,000
rows/s, linear in N (2N rows take about twice as long); the ratio to the ceiling is what
holds on a loaded machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
CLOCK = time.process_time
"""This process's CPU time: on SQLite all the work is ours, and a shared machine's load
(waiting for a core) stays out of it. With --database the server works too: wall time."""
sys.path.insert(0, str(ROOT))


def write_csv(path: Path, rows: int) -> None:
    """N rows in the import format, one in 500 of them bad (an address, a language)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,language,topics,cadence,consent_at,consent_ip\n")
        for number in range(rows):
            email = f"reader{number}@example{number % 50}.org"
            language = ("en", "nl", "fr")[number % 3]
            if number % 500 == 499:
                email = f"reader {number} at example.org"
            elif number % 500 == 250:
                language = "xx"
            out.write(
                f"{email},Reader {number},{language},housing;labour,weekly,"
                f"2024-03-01 09:30:00,192.0.2.{number % 250}\n"
            )


def reading(path: Path) -> float:
    """Seconds to read the CSV and validate each address, no database."""
    from subscribers.addresses import normalize
    from subscribers.errors import InvalidAddress

    started = CLOCK()
    with path.open(encoding="utf-8", newline="") as stream:
        for cells in csv.reader(io.StringIO(stream.read())):
            with contextlib.suppress(InvalidAddress):
                normalize(cells[0])
    return CLOCK() - started


def fresh(database: str | None, folder: Path) -> Any:
    """Settings for a fresh, empty database (SQLite in `folder`, or the PostgreSQL one)."""
    import sqlalchemy as sa

    from digest import config
    from digest.pipeline import operations

    url = database or f"sqlite:///{folder / 'bench.db'}"
    if database:
        engine = sa.create_engine(database)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    (folder / "digest.toml").write_text(
        "[publication]\n"
        'base_url = "https://digest.example.org"\n'
        'languages = ["en", "nl", "fr"]\n'
        f'[database]\nurl = "{url}"\n'
        '[web]\nsecret_key = "bench-secret-key-0123456789abcdef"\n'
        '[subscribers]\nsuppression_key = "bench-suppression-key-0123456789"\n',
        encoding="utf-8",
    )
    settings = config.load(folder / "digest.toml", env={})
    operations.create_missing_database(settings)
    return settings


def bare_insert(path: Path, database: str | None) -> float:
    """Seconds to insert the file's good rows, validated beforehand, with one executemany."""
    import sqlalchemy as sa

    from digest.pipeline import open_database
    from subscribers.csvio import import_csv
    from subscribers.model import Subscriber

    settings = fresh(database, Path(tempfile.mkdtemp(prefix="digest-import-bare-")))
    factory = open_database(settings)
    rows: list[dict[str, Any]] = []
    with factory() as session:  # validate through the import's own code, then roll back
        connection = session.connection()
        original = connection.execute

        def keep(statement: Any, parameters: Any = None, **kw: Any) -> Any:
            if isinstance(statement, sa.Insert) and statement.table.name == "subscribers":
                rows.extend(parameters)
                return None
            return original(statement, parameters, **kw)

        connection.execute = keep  # type: ignore[method-assign]
        with path.open(encoding="utf-8", newline="") as stream:
            import_csv(
                session,
                stream,
                now=datetime.now(UTC),
                languages=settings.publication.languages,
                suppression_key=b"bench-suppression-key-0123456789",
                consent_version="bench",
            )
        session.rollback()
    table = cast(sa.Table, Subscriber.__table__)
    started = CLOCK()
    with factory.kw["bind"].begin() as connection:
        connection.execute(sa.insert(table), rows)
    seconds = CLOCK() - started
    factory.kw["bind"].dispose()
    return seconds


def run(rows: int, database: str | None) -> tuple[float, float, float, int, float]:
    """Import `rows` into a fresh database; return (seconds, ceiling seconds, reading and
    validating seconds, imported, wall seconds of the import)."""
    from digest.pipeline import open_database, people

    folder = Path(tempfile.mkdtemp(prefix="digest-import-"))
    settings = fresh(database, folder)
    factory = open_database(settings)
    path = folder / "list.csv"
    write_csv(path, rows)
    validated = reading(path)
    started, wall = CLOCK(), time.perf_counter()
    report = people.import_subscribers(settings, factory, path, confirmed=True)
    seconds, wall = CLOCK() - started, time.perf_counter() - wall
    factory.kw["bind"].dispose()
    bare = bare_insert(path, database)
    return seconds, bare, validated, report.imported, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="N (2N is run too)")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many, each size")
    parser.add_argument("--database", help="a PostgreSQL URL (its schema is dropped!)")
    options = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if options.database else time.process_time
    print("seconds of", "wall time" if options.database else "CPU time (this process)")
    results = []
    for rows in (options.rows, 2 * options.rows):
        # Best of R rounds, the import and its ceiling in turn: a shared machine's load
        # then weighs on both alike.
        rounds = [run(rows, options.database) for _ in range(options.rounds)]
        seconds = min(r[0] for r in rounds)
        bare = min(r[1] for r in rounds)
        validated = min(r[2] for r in rounds)
        imported = rounds[0][3]
        wall = min(r[4] for r in rounds)
        results.append(seconds)
        print(
            f"{rows:>7} rows: {imported} imported in {seconds:.2f} s = {rows / seconds:,.0f} "
            f"rows/s; ceiling (bare executemany of the validated rows) {bare:.2f} s = "
            f"{imported / bare:,.0f} rows/s; import/ceiling {seconds / bare:.2f}×; reading + "
            f"validating alone {validated:.2f} s; the import in wall time {wall:.2f} s "
            f"(best of {options.rounds})"
        )
    print(f"2N / N time: {results[1] / results[0]:.2f} (2.0 is linear)")


if __name__ == "__main__":
    main()
