"""Time `digest publish` with 50, 100, 200 and 500 issues in the archive (growth N → 2N).

For each size the example publication is collected and drafted once (offline, from
`examples/publication/`), its issue is copied into N published issues (each with its own
story keys and titles, so feeds and search see N issues' worth of stories), and then:

- **first**: the first publish into an empty output folder (everything is rendered);
- **one new**: one more issue is published and `digest publish` runs again;
- **nothing new**: `digest publish` runs once more with nothing changed.

The ceiling, measured in the same interpreter: **alone**, the first publish of an archive
of one issue (one issue's pages, the index, the feeds and the calendars from nothing).
"one new" should cost about that at every size: its ratio to "alone" is printed.

Each size runs in its own interpreter (after a warm-up publish of 2 issues), as each
`digest publish` does. CPU seconds of that process (`time.process_time`) and wall seconds
(an fsync per written file included) are printed, and the growth of each step from one
size to the next, also per doubling (×1.0 = the same cost at every size; ×2.0 per
doubling = linear in the archive). SQLite file in a temporary folder; no network.

    .venv/bin/python bench/publish.py [--sizes 50,100,200,500]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import sqlalchemy as sa

from digest import config, pipeline
from digest.store import db
from digest.store.models import Issue
from examples.run import materialize

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def _renumbered(plan: str, number: int) -> str:
    """The stored plan `plan` as issue `number`, its stories made distinct from the others'."""
    raw = json.loads(plan)
    raw["number"] = number

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "key" in node and "title" in node and isinstance(node.get("key"), str):
                node["key"] = f"{node['key']}#{number}"
                if isinstance(node.get("title"), str):
                    node["title"] = f"{node['title']} ({number})"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(raw)
    return json.dumps(raw, sort_keys=True)


def _add_issue(factory: Any, template: Issue, number: int, published_at: datetime) -> None:
    with factory.begin() as session:
        session.add(
            Issue(
                number=number,
                cadence=template.cadence,
                slot=MONDAY - timedelta(days=7 * (10_000 - number)),
                status=template.status,
                plan=_renumbered(template.plan, number),
                curation=template.curation,
                composed_at=template.composed_at,
                created_at=template.created_at,
                updated_at=published_at,
                published_at=published_at,
            )
        )


def _timed(step: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    step()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(size: int, folder: Path) -> dict[str, tuple[float, float]]:
    """Publish an archive of `size` issues three ways; return step → (CPU s, wall s)."""
    folder.mkdir(parents=True)
    materialize(folder, MONDAY.date())
    text = (folder / "digest.toml").read_text(encoding="utf-8")
    url = f"sqlite:///{folder}/digest.db"
    path = folder / "bench.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n[publish]\noutput_dir = "{folder / "public"}"\n'
        + text[text.index("[[sources]]") :],
        encoding="utf-8",
    )
    settings = config.load(path, env={})
    engine = db.connect(url, create=True)
    factory = db.session_factory(engine)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    drafted = pipeline.draft(settings, factory, now=MONDAY)
    with factory() as session:
        template = session.scalars(sa.select(Issue).where(Issue.number == drafted.number)).one()
        session.delete(template)
        session.commit()
    for number in range(1, size + 1):
        _add_issue(factory, template, number, MONDAY - timedelta(days=7 * (size - number)))
    figures = {"first": _timed(lambda: pipeline.publish(settings, factory, now=MONDAY))}
    _add_issue(factory, template, size + 1, MONDAY + timedelta(hours=1))
    figures["one new"] = _timed(lambda: pipeline.publish(settings, factory, now=MONDAY))
    figures["nothing new"] = _timed(lambda: pipeline.publish(settings, factory, now=MONDAY))
    engine.dispose()
    return figures


def _measure_apart(size: int) -> dict[str, tuple[float, float]]:
    """`measure(size)` in a fresh interpreter, as `digest publish` runs (one process each):
    what one size leaves in memory must not slow the next one down."""
    command = [sys.executable, __file__, "--one", str(size)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return {step: (cpu, wall) for step, (cpu, wall) in figures.items()}


def _ratio(after: float, before: float) -> str:
    return f"{after / max(before, 1e-9):.2f}"


def _per_doubling(after: float, before: float, doublings: float) -> str:
    return f"{(after / max(before, 1e-9)) ** (1 / max(doublings, 1e-9)):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200,500", help="archive sizes, comma-separated")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        with tempfile.TemporaryDirectory(prefix="digest-bench-publish-") as folder:
            measure(2, Path(folder) / "warm-up")  # imports, templates, catalogues
            figures = measure(args.one, Path(folder) / "measured")
            figures["alone"] = measure(1, Path(folder) / "alone")["first"]
            print(json.dumps(figures))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[int, dict[str, tuple[float, float]]] = {}
    for size in sizes:
        results[size] = _measure_apart(size)
        row = "  ".join(
            f"{step} {cpu:6.2f} s CPU {wall:6.2f} s" for step, (cpu, wall) in results[size].items()
        )
        print(f"{size:5d} issues: {row}", flush=True)
    print()
    for size in sizes:
        cpu, alone = results[size]["one new"][0], results[size]["alone"][0]
        print(
            f"{size:5d} issues: one new {cpu:.3f} s CPU = ×{_ratio(cpu, alone)} the ceiling "
            f"(one issue published alone: {alone:.3f} s CPU)"
        )
    print()
    for unit, index in (("CPU", 0), ("wall", 1)):
        for before, after in itertools.pairwise(sizes):
            doublings = math.log2(after / before)
            growth = "  ".join(
                f"{step} ×{_ratio(now[index], then[index])}"
                f" (×{_per_doubling(now[index], then[index], doublings)} per doubling)"
                for step, then, now in (
                    (step, results[before][step], results[after][step])
                    for step in results[before]
                    if step != "alone"
                )
            )
            print(f"{unit} growth {before} → {after} issues: {growth}")
    print("(×1.0 = the same cost at every size; ×2.0 per doubling = linear in the archive)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
