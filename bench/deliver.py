"""Send one issue to N synthetic subscribers through the real ledger and SMTP transport.

The SMTP server is a minimal socket sink in a process of its own (bench/sink.py), so the
figures measure digest, not the server. Each measured send runs in a fresh child process
(its peak RSS is its own) on a fresh SQLite file: subscribers inserted, an approved issue
of `--items` items stored, then `sending.send` timed, ledger included. The raw ceiling is
the same dialogue with pre-built bytes over the same number of connections.

    .venv/bin/python bench/deliver.py                    # 20,000 subscribers: journal, commit, DKIM
    .venv/bin/python bench/deliver.py --subscribers 100000
    .venv/bin/python bench/deliver.py --memory           # peak RSS at 10,000 vs 100,000
    .venv/bin/python bench/deliver.py --workers 1,2,4 --variants 3,24
    .venv/bin/python bench/deliver.py --workers 1,2,4 --variants 3,24 \
        --database sqlite,postgresql+psycopg://postgres@127.0.0.1:5432/postgres

With --workers, each count is measured without and with DKIM (`digest send --workers N`,
`pipeline/workers.py`) against the raw ceiling over the same total number of connections
(N × --connections), for each --variants and each --database ("sqlite": a new file; a
PostgreSQL URL: a new database is created on that server for each measured send and
dropped after it, so the URL's own database is never touched).

Each --workers row is followed by the CPU budget of its sends: CPU per message of the
sending side and of the sink while messages arrived, how busy the machine was, and the
sink's CPU per message under the ceiling (`CpuWatch`; docs/delivery.md explains why it
bounds the ratios on two cores).

Targets on a 2-core machine: ≥ 0.8 of the raw ceiling without DKIM, ≥ 0.5 with DKIM
RSA-2048 (3 or 24 variants), memory flat in N (100k at most 1.5 × the peak RSS of 10k).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere, and import tests.render.plans

from bench import procs  # noqa: E402 (needs ROOT on the path)


def child(options: argparse.Namespace) -> dict[str, Any]:
    """Set up a publication with N subscribers and time one send (runs in its own process)."""
    from dataclasses import replace

    import sqlalchemy as sa
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from digest import config
    from digest.pipeline import open_database, operations, sending, workers
    from digest.store.models import Issue, IssueStatus
    from subscribers.model import Cadence, ConsentSource, Subscriber, SubscriberStatus
    from tests.render.plans import large_plan

    folder = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    url = options.database
    if url in (None, "sqlite"):
        url = "sqlite:///" + str(folder / "bench.db")
    lines = [
        "[publication]",
        'base_url = "https://digest.example.org"',
        'sender = "Cities & Migration Digest <digest@example.org>"',
        "[database]",
        f'url = "{url}"',
        "[delivery]",
        'transport = "smtp"',
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {options.port}",
        f"connections = {options.connections}",
        f'record = "{options.record}"',
        "[web]",
        'secret_key = "bench-secret-key-0123456789abcdef"',
        "[subscribers]",
        'suppression_key = "bench-suppression-key-0123456789"',
    ]
    if options.dkim:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (folder / "dkim.pem").write_bytes(pem)
        lines[lines.index("[web]") : lines.index("[web]")] = [
            'dkim_selector = "bench"',
            'dkim_key_file = "dkim.pem"',
        ]
    (folder / "digest.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = config.load(folder / "digest.toml", env={})
    operations.create_missing_database(settings)
    factory = open_database(settings)
    now = datetime.now(UTC)
    languages = ("en", "nl", "fr")
    # 3 variants: one per language; 24: each language × 8 topic choices.
    choices: list[list[str]] = [[]]
    if options.variants == 24:
        choices = [[], ["a"], ["b"], ["c"], ["a", "b"], ["a", "c"], ["b", "c"], ["a", "b", "c"]]
    with factory() as session, session.begin():
        for start in range(0, options.subscribers, 5000):
            session.execute(
                sa.insert(Subscriber),
                [
                    {
                        "public_id": f"bench{n:017d}",
                        "email": f"reader{n}@example.net",
                        "name": f"Reader {n}",
                        "language": languages[n % 3],
                        "topics": choices[(n // 3) % len(choices)],
                        "cadence": Cadence.WEEKLY,
                        "status": SubscriberStatus.CONFIRMED,
                        "paused": False,
                        "created_at": now,
                        "status_changed_at": now,
                        "confirmed_at": now,
                        "consent_at": now,
                        "consent_source": ConsentSource.IMPORT,
                        "consent_version": "v1",
                        "bounce_count": 0,
                    }
                    for n in range(start, min(start + 5000, options.subscribers))
                ],
            )
        plan = replace(large_plan(options.items), number=1, slot=now - timedelta(minutes=1))
        session.add(
            Issue(
                number=1,
                cadence="weekly",
                slot=plan.slot,
                status=IssueStatus.APPROVED,
                plan=plan.to_json(),
                curation="{}",
                composed_at=now,
                created_at=now,
                updated_at=now,
                approved_at=now,
            )
        )
    count = int(options.workers or 0)
    if count:
        report = workers.send(settings, factory, workers=count, number=1)
    else:
        report = sending.send(settings, factory, number=1)
    sizes = _message_size(settings, factory)
    return {
        "sent": report.counts[sending.DeliveryState.SENT],
        "seconds": report.seconds,
        "ledger_seconds": report.ledger_seconds,
        "render_seconds": report.render_wall_seconds or sum(report.render_seconds.values()),
        "variants": len(report.render_seconds),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "message_bytes": sizes,
    }


def _message_size(settings: Any, factory: Any) -> int:
    """The size of one recipient's message as sent (the dry-run sample)."""
    from digest.pipeline import sending

    plan = sending.dry_run(settings, factory, number=1)
    sample = next(iter(plan.samples.values()))
    return Path(sample).stat().st_size


def run_child(
    options: argparse.Namespace,
    port: int,
    subscribers: int,
    dkim: bool,
    record: str = "journal",
    workers: int = 0,
    sink: Any = None,
) -> Any:
    """Run one measured send in a fresh process and return its figures; with `sink`, also
    its CPU budget while messages arrived (`CpuWatch`)."""
    command = [
        sys.executable,
        __file__,
        "--child",
        "--port",
        str(port),
        "--subscribers",
        str(subscribers),
        "--connections",
        str(options.connections),
        "--items",
        str(options.items),
        "--record",
        record,
        "--variants",
        str(options.variants),
        "--workers",
        str(workers),
    ]
    if dkim:
        command.append("--dkim")
    with fresh_database(options.database) as url:
        if url:
            command += ["--database", url]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with CpuWatch(sink, child.pid) if sink is not None else contextlib.nullcontext() as watch:
            out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the measured send failed:\n{out}{err}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if watch is not None:
        figures["cpu"] = watch.figures()
    return figures


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuWatch:
    """The CPU budget of a send while messages arrive at the sink: CPU per message of the
    sink's process and of the sending side (the measured child and its workers), and how
    busy the whole machine was. Samples /proc every 0.1 s; only the intervals in which the
    sink's count rose are counted, so setting up and rendering are left out."""

    def __init__(self, sink: Any, pid: int) -> None:
        self.sink, self.pid = sink, pid
        self.sink_cpu = self.our_cpu = 0.0
        self.messages = 0
        self.busy = [0, 0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> tuple[int, float | None, dict[int, float], tuple[int, int]]:
        ours = {pid: cpu for pid in procs.tree(self.pid) if (cpu := procs.cpu_seconds(pid))}
        return self.sink.count(), procs.cpu_seconds(self.sink._process.pid), ours, _machine_busy()

    def _run(self) -> None:
        before = self._sample()
        while not self._stop.wait(0.1):
            after = self._sample()
            if after[0] > before[0] and before[1] is not None and after[1] is not None:
                self.messages += after[0] - before[0]
                self.sink_cpu += after[1] - before[1]
                self.our_cpu += sum(cpu - before[2][pid] for pid, cpu in after[2].items()
                                    if pid in before[2])  # fmt: skip
                self.busy[0] += after[3][0] - before[3][0]
                self.busy[1] += after[3][1] - before[3][1]
            before = after

    def figures(self) -> dict[str, float]:
        count = max(1, self.messages)
        return {
            "sink_ms": self.sink_cpu / count * 1000,
            "ours_ms": self.our_cpu / count * 1000,
            "busy": self.busy[0] / max(1, self.busy[1]),
        }


_made = itertools.count()


@contextlib.contextmanager
def fresh_database(server: str | None) -> Iterator[str | None]:
    """A new, empty PostgreSQL database on the server of `server` (a URL) for one measured
    send, dropped after it; None (SQLite: the child makes a new file) when not PostgreSQL."""
    if not server or server == "sqlite":
        yield None
        return
    import sqlalchemy as sa

    url = sa.make_url(server)
    name = f"digest_bench_{os.getpid()}_{next(_made)}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def line(name: str, figures: dict[str, Any], ceiling: float) -> str:
    """One row of the results table."""
    sending_seconds = figures["seconds"] - figures["ledger_seconds"]
    rate = figures["sent"] / sending_seconds
    overall = figures["sent"] / figures["seconds"]
    return (
        f"{name:<14}{figures['sent']:>9,}{rate:>10,.0f}{overall:>10,.0f}"
        f"{rate / ceiling:>9.2f}{figures['ledger_seconds']:>9.1f}"
        f"{figures['render_seconds'] * 1000:>9.0f}{figures['peak_rss_mb']:>9.0f}"
    )


def main() -> None:
    """Start the sink, measure the raw ceiling and the sends, print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--items", type=int, default=60, help="items in the issue")
    parser.add_argument(
        "--database",
        default="sqlite",
        help='"sqlite" (a new file per send, the default) or a PostgreSQL server URL; '
        "with --workers, a comma-separated list to compare",
    )
    parser.add_argument("--memory", action="store_true", help="peak RSS at 10k vs 100k")
    parser.add_argument(
        "--variants", default="3", help="3 or 24 (with --workers: a list, e.g. 3,24)"
    )
    parser.add_argument(
        "--workers", default="", help="comma-separated worker counts to compare, e.g. 1,2,4"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dkim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record", default="journal", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        options.variants = int(options.variants)
        print(json.dumps(child(options)))
        return

    from bench.sink import payload, raw_ceiling, start_sink

    if options.workers:
        for database in options.database.split(","):
            for variants in options.variants.split(","):
                run = argparse.Namespace(**{**vars(options)})
                run.database, run.variants = database, int(variants)
                compare_workers(run, [int(n) for n in options.workers.split(",")])
        return
    options.workers = 0
    options.variants = int(options.variants)
    with start_sink() as sink:
        if options.memory:
            small = run_child(options, sink.port, 10_000, dkim=False)
            large = run_child(options, sink.port, 100_000, dkim=False)
            print(
                f"peak RSS: 10,000 → {small['peak_rss_mb']:.0f} MB; "
                f"100,000 → {large['peak_rss_mb']:.0f} MB; "
                f"ratio {large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (target ≤ 1.5)"
            )
            return
        plain = run_child(options, sink.port, options.subscribers, dkim=False)
        committed = run_child(options, sink.port, options.subscribers, dkim=False, record="commit")
        signed = run_child(options, sink.port, options.subscribers, dkim=True)
        size = plain["message_bytes"]
        messages = min(options.subscribers, 20_000)
        ceiling = raw_ceiling(sink.host, sink.port, options.connections, payload(size), messages)
    print(
        f"\none issue ({options.items} items, {plain['variants']} language variants, "
        f"{size / 1024:.0f} KB per message) to {options.subscribers:,} subscribers, "
        f"{options.connections} SMTP connections, "
        f"{'SQLite' if options.database == 'sqlite' else 'PostgreSQL'} ledger"
    )
    print(f"raw ceiling (pre-built bytes, same sink and connections): {ceiling:,.0f} msg/s\n")
    print(
        f"{'':<14}{'sent':>9}{'msg/s':>10}{'overall':>10}{'ceiling':>9}{'ledger s':>9}"
        f"{'render ms':>9}{'RSS MB':>9}"
    )
    print(line("journal", plain, ceiling))
    print(line("commit", committed, ceiling))
    print(line("journal+DKIM", signed, ceiling))
    print(
        "\njournal / commit: how each accepted message is recorded before its connection sends"
        "\nagain ([delivery] record): an append to the send journal, or a database commit."
        "\nmsg/s: sending only; overall: with making the ledger; ceiling: msg/s ÷ raw ceiling;"
        "\nrender ms: all variants, rendered once each. Targets: ≥ 1,000 msg/s without DKIM,"
        "\n≥ 600 with DKIM, ≥ 0.5 of the ceiling; see --memory for memory against N."
    )


def compare_workers(options: argparse.Namespace, counts: list[int]) -> None:
    """Send with each worker count, without and with DKIM; print rates against the raw
    ceiling over as many connections."""
    from bench.sink import payload, raw_ceiling, start_sink

    where = "SQLite" if options.database == "sqlite" else "PostgreSQL"
    print(
        f"\none issue ({options.items} items, {options.variants} variants) to "
        f"{options.subscribers:,} subscribers, {options.connections} connections per worker, "
        f"{where} ledger"
    )
    print(
        f"{'workers':>8}{'ceiling':>9}{'plain':>8}{'ratio':>7}{'DKIM':>8}{'ratio':>7}"
        f"{'render ms':>10}{'RSS MB':>8}"
    )
    with start_sink() as sink:
        for count in counts:
            plain, signed = (
                run_child(options, sink.port, options.subscribers, dkim, workers=count, sink=sink)
                for dkim in (False, True)
            )
            size = plain["message_bytes"]
            messages = min(options.subscribers, 20_000)
            connections = options.connections * count
            before = procs.cpu_seconds(sink._process.pid) or 0.0
            ceiling = raw_ceiling(sink.host, sink.port, connections, payload(size), messages)
            sink_ms = ((procs.cpu_seconds(sink._process.pid) or 0.0) - before) / messages * 1000
            rates = [
                f["sent"] / (f["seconds"] - f["ledger_seconds"] - f["render_seconds"])
                for f in (plain, signed)
            ]
            print(
                f"{count:>8}{ceiling:>9,.0f}{rates[0]:>8,.0f}{rates[0] / ceiling:>7.2f}"
                f"{rates[1]:>8,.0f}{rates[1] / ceiling:>7.2f}"
                f"{plain['render_seconds'] * 1000:>10.0f}{plain['peak_rss_mb']:>8.0f}"
            )
            budget = "; ".join(
                f"{name}: ours {f['cpu']['ours_ms']:.2f}, sink {f['cpu']['sink_ms']:.2f},"
                f" machine {f['cpu']['busy']:.0%} busy"
                for name, f in (("plain", plain), ("DKIM", signed))
            )
            print(f"{'':>8} CPU ms/msg {budget}; ceiling: sink {sink_ms:.2f}")
    print(
        "\nmsg/s counts sending only (not making the ledger nor rendering the variants, "
        "shown apart);\nceiling: pre-built bytes "
        "over\nworkers × connections; RSS: the parent process (each worker has its own).\n"
        "CPU ms/msg: while messages arrived, CPU per message of the sending side (the parent "
        "and\nits workers) and of the sink's process, and how busy the whole machine was."
    )


if __name__ == "__main__":
    main()
