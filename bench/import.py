"""Time `digest subscribers import` on N synthetic rows, against the cost of reading them.

Each run imports a fresh CSV of N confirmed subscribers (with a name, a language, topics
and an opt-in time, plus a few bad rows) into a fresh database through
`people.import_subscribers`, the function behind the command. The ceiling printed beside
it is what no import can beat: reading the CSV and validating each address
(email-validator) without a database.

    .venv/bin/python bench/import.py                       # 20,000 and 40,000 rows, SQLite
    .venv/bin/python bench/import.py --rows 50000
    .venv/bin/python bench/import.py --database postgresql+psycopg://postgres@127.0.0.1/test

Target: ≥ 10,000 rows/s, linear in N (2N rows take at most about twice as long).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def ceiling(path: Path) -> float:
    """Seconds to read the CSV and validate each address, no database."""
    from subscribers.addresses import normalize
    from subscribers.errors import InvalidAddress

    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as stream:
        for cells in csv.reader(io.StringIO(stream.read())):
            with contextlib.suppress(InvalidAddress):
                normalize(cells[0])
    return time.perf_counter() - started


def run(rows: int, database: str | None) -> tuple[float, float, int]:
    """Import `rows` into a fresh database; return (seconds, ceiling seconds, imported)."""
    import sqlalchemy as sa

    from digest import config
    from digest.pipeline import open_database, operations, people

    folder = Path(tempfile.mkdtemp(prefix="digest-import-"))
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
    factory = open_database(settings)
    path = folder / "list.csv"
    write_csv(path, rows)
    bare = ceiling(path)
    started = time.perf_counter()
    report = people.import_subscribers(settings, factory, path, confirmed=True)
    seconds = time.perf_counter() - started
    factory.kw["bind"].dispose()
    return seconds, bare, report.imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="N (2N is run too)")
    parser.add_argument("--database", help="a PostgreSQL URL (its schema is dropped!)")
    options = parser.parse_args()
    results = []
    for rows in (options.rows, 2 * options.rows):
        seconds, bare, imported = run(rows, options.database)
        results.append(seconds)
        print(
            f"{rows:>7} rows: {imported} imported in {seconds:.2f} s = {rows / seconds:,.0f} "
            f"rows/s; reading + validating alone {bare:.2f} s ({bare / seconds:.2f} of the "
            "import time)"
        )
    print(f"2N / N time: {results[1] / results[0]:.2f} (2.0 is linear)")


if __name__ == "__main__":
    main()
