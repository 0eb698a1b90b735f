"""Collecting N feeds at the network's pace: `digest collect` against httpx + feedparser.

A local HTTP server (its own process, 127.0.0.1) serves N RSS feeds of 20 realistic items
(paragraphs from /work/shared/seeds when present, else generated), with ETag and
Last-Modified so a second, conditional run gets 304s. In the same run, each in a process
of its own:

- **project**: `pipeline.collect_sources` on a fresh database (SQLite in a temporary
  folder, or `--database URL`; made beforehand in a process of its own, so the measured
  process holds what `digest collect` holds), every protection on: SSRF guard
  (127.0.0.0/8 allowed, as the tests do), size cap, time-bounded parsing, per-host
  politeness. All feeds are on one host, so politeness is set to
  `per_host_connections = concurrency = 8` and `per_host_interval_seconds = 0` (the ceiling
  has none; the gate is still in the path);
- **ceiling**: httpx.AsyncClient + feedparser.parse, 8 at a time, nothing stored.

Each does a first run and a nothing-new run (conditional GET, all 304). Printed per run:
wall seconds, CPU seconds of the process tree (parent, fork server and parser workers),
peak memory of the tree (sum of RSS, and of PSS, which counts pages shared between the
parser processes once), and project / ceiling ratios; the project's PSS at its peak by
process (collecting process, fork server, parser workers, resource tracker); then the
growth from N to 2N.

`--big` instead serves one feed of 53,000 items (about 40 MB) and times storing it
(fetch, parse, store) against feedparser alone parsing the same bytes.

    .venv/bin/python bench/collect.py                 # N = 100 and 200: a few minutes
    .venv/bin/python bench/collect.py --feeds 500     # 500 and 1,000 (the issue's figures)
    .venv/bin/python bench/collect.py --big
    .venv/bin/python bench/collect.py --database postgresql+psycopg://postgres@127.0.0.1/b

Targets (issue 16): project wall ≤ 2 × ceiling for both runs, peak memory ≤ 2 × ceiling;
the big feed stored in ≤ 3 × feedparser's parse time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import procs  # noqa: E402 (needs ROOT on the path)

SEEDS = Path("/work/shared/seeds")
CONCURRENCY = 8
LAST_MODIFIED = "Sun, 22 Nov 2026 09:00:00 GMT"
WORDS = [
    "city",
    "migration",
    "council",
    "programme",
    "integration",
    "housing",
    "newcomers",
    "network",
    "report",
    "policy",
    "conference",
    "mayor",
    "residents",
    "funding",
    "project",
    "language",
    "school",
    "employment",
    "support",
    "local",
    "regional",
    "european",
    "partners",
    "research",
    "community",
    "dialogue",
    "welcome",
    "services",
    "evaluation",
]


# --- the feeds ----------------------------------------------------------------------------


def paragraphs() -> list[str]:
    """Paragraphs to build items from: the hub's seed pages, else generated sentences."""
    found = [
        p.strip()
        for path in sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir()
        for p in path.read_text(encoding="utf-8", errors="replace").split("\n\n")
        if len(p.strip()) > 80
    ]  # fmt: skip
    if len(found) >= 10:
        return found
    rnd = random.Random(1)  # noqa: S311 - made-up text, not secrets
    return [
        " ".join(
            " ".join(rnd.choices(WORDS, k=rnd.randint(8, 20))).capitalize() + "." for _ in range(4)
        )
        for _ in range(200)
    ]


def feed(number: int, items: int, texts: list[str], *, paragraphs_per_item: int = 3) -> bytes:
    """An RSS 2.0 feed as a Drupal site writes it: HTML teasers, guids, dates, authors."""
    rnd = random.Random(number)  # noqa: S311 - made-up text, not secrets
    site = f"https://site{number}.example.org"
    base = datetime(2026, 11, 22, 9, tzinfo=UTC)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Site {number}</title><link>{site}/</link><language>en</language>"
    ]
    for i in range(items):
        chosen = rnd.sample(texts, paragraphs_per_item)
        title = " ".join(chosen[0].split()[:9])
        body = "".join(f"<p>{html.escape(p)}</p>" for p in chosen)
        when = (base - timedelta(hours=i * 7 + number % 5)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        out.append(
            f"<item><title>{html.escape(title)}</title><link>{site}/news/{i}</link>"
            f'<guid isPermaLink="false">{i} at {site}</guid><pubDate>{when}</pubDate>'
            f"<dc:creator>Editor {i % 4}</dc:creator>"
            f"<description>{html.escape(body)}</description></item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode()


def serve(feeds: int, items: int, big: int, port_file: str) -> None:
    """Serve /feed/<n>.xml (or /big.xml) until killed; write the port to `port_file`."""
    texts = paragraphs()
    bodies = {f"/feed/{n}.xml": feed(n, items, texts) for n in range(feeds)}
    if big:
        bodies["/big.xml"] = feed(0, big, texts, paragraphs_per_item=1)
    tags = {path: '"' + hashlib.sha1(body).hexdigest() + '"' for path, body in bodies.items()}  # noqa: S324

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            tag = tags[self.path]
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", tag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    # A listen backlog of 5 (the default) drops SYNs when 8 clients connect at once, and a
    # dropped SYN costs a second before the retry: either side could pay it.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# --- measuring a process tree -------------------------------------------------------------


def tree_cpu() -> float:
    """CPU seconds of this process and its descendants, including reaped grandchildren."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in procs.tree(os.getpid()):
        try:
            fields = procs.stat(pid)
        except OSError:
            continue
        # utime, stime, cutime, cstime (fields 14-17; here 0-based after the name: 11-14)
        own = int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14])
        total += (own + (reaped if pid != os.getpid() else 0)) / tick
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + children.ru_utime + children.ru_stime


def tree_memory(roles: dict[str, list[int]] | None = None) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) of this process tree, in bytes; with `roles`, also each
    process's PSS under its role (this process, fork server, parser worker, …)."""
    rss = pss = 0
    for pid in procs.tree(os.getpid()):
        try:
            own_rss = own_pss = 0
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    own_rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    own_pss = int(line.split()[1]) * 1024
            if roles is not None:
                roles.setdefault(_role(pid), []).append(own_pss)
        except OSError:
            continue
        rss, pss = rss + own_rss, pss + own_pss
    return rss, pss


def _role(pid: int) -> str:
    """What a process of the tree is, from its command line."""
    if pid == os.getpid():
        return "this process"
    command = Path(f"/proc/{pid}/cmdline").read_bytes()
    if b"resource_tracker" in command:
        return "resource tracker"
    if b"forkserver" in command:
        parent = int(procs.stat(pid)[1])
        return "fork server" if parent == os.getpid() else "parser worker"
    return "other"


class Meter:
    """Wall, tree CPU and peak tree memory of what runs inside `with Meter() as m:`."""

    def __enter__(self) -> Meter:
        self.roles: dict[str, list[int]] = {}
        self.peak_rss, self.peak_pss = tree_memory(self.roles)
        self._stop = threading.Event()
        self.sampling = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.cpu0, self.wall0 = tree_cpu(), time.perf_counter()
        return self

    def _sample(self) -> None:
        # Reading smaps_rollup of a big process costs CPU: this thread's own is subtracted.
        while not self._stop.wait(0.1):
            roles: dict[str, list[int]] = {}
            rss, pss = tree_memory(roles)
            if pss > self.peak_pss:
                self.roles = roles  # who held what at the peak
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.sampling = time.thread_time()

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        cpu = tree_cpu() - self.cpu0
        self._stop.set()
        self._thread.join()
        self.cpu = cpu - self.sampling
        rss, pss = tree_memory()
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def figures(self) -> dict[str, Any]:
        return {
            "wall": self.wall,
            "cpu": self.cpu,
            "rss": self.peak_rss,
            "pss": self.peak_pss,
            "roles": self.roles,
        }


# --- the two contenders (each in a process of its own) ------------------------------------


def run_ceiling(urls: list[str]) -> dict[str, Any]:
    import feedparser
    import httpx

    tags: dict[str, str] = {}

    async def run(conditional: bool) -> int:
        limit = asyncio.Semaphore(CONCURRENCY)
        items = 0

        async def one(client: httpx.AsyncClient, url: str) -> None:
            nonlocal items
            async with limit:
                headers = {"If-None-Match": tags[url]} if conditional and url in tags else {}
                response = await client.get(url, headers=headers)
                if response.status_code == 304:
                    return
                tags[url] = response.headers.get("ETag", "")
                items += len(feedparser.parse(response.content).entries)

        async with httpx.AsyncClient(timeout=60) as client:
            await asyncio.gather(*(one(client, url) for url in urls))
        return items

    out: dict[str, Any] = {}
    with Meter() as first:
        out["items"] = asyncio.run(run(False))
    with Meter() as again:
        asyncio.run(run(True))
    out["first"], out["again"] = first.figures(), again.figures()
    return out


def prepare_database(database: str, folder: str) -> str:
    """Make an empty digest database (in its own process: creating it loads Alembic, which
    `digest collect` on an existing database never imports); return its URL."""
    from digest.store import db, schema

    if not database:
        database = f"sqlite:///{folder}/digest.db"
    engine = db.connect(database)
    with engine.begin() as connection:
        schema.metadata().drop_all(connection)
    schema.create_from_models(engine)
    engine.dispose()
    return database


def run_project(urls: list[str], database: str, folder: str, timeout: int) -> dict[str, Any]:
    """Collect twice as `digest collect` does, on the database `prepare_database` made."""
    from digest import config, pipeline
    from digest.store import db

    engine = db.connect(database)
    db.open_existing(engine)
    factory = db.session_factory(engine)
    path = Path(folder) / "digest.toml"
    path.write_text(
        f'[database]\nurl = "{database}"\n[collect]\nallow_networks = ["127.0.0.0/8"]\n'
        f"timeout_seconds = {timeout}\nmax_bytes = {256 << 20}\n"
        f"concurrency = {CONCURRENCY}\nper_host_connections = {CONCURRENCY}\n"
        "per_host_interval_seconds = 0\n"
        + "".join(
            f'[[sources]]\nname = "feed-{n}"\nurl = "{url}"\nkind = "feed"\n'
            for n, url in enumerate(urls)
        ),
        encoding="utf-8",
    )
    settings = config.load(path, env={})
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    out: dict[str, Any] = {}
    with Meter() as first:
        report = pipeline.collect_sources(settings, factory, now=now)
    out["items"] = sum(r.counts.new for r in report.sources)
    out["failed"] = [f"{r.name}: {r.error}" for r in report.failed][:3]
    with Meter() as again:
        report = pipeline.collect_sources(settings, factory, now=now + timedelta(hours=1))
    out["not_modified"] = sum(r.outcome == "not modified" for r in report.sources)
    out["first"], out["again"] = first.figures(), again.figures()
    engine.dispose()
    return out


def run_feedparser(url: str) -> dict[str, Any]:
    import feedparser
    import httpx

    body = httpx.get(url, timeout=600).content
    with Meter() as parse:
        items = len(feedparser.parse(body).entries)
    return {"items": items, "bytes": len(body), "first": parse.figures()}


# --- the conductor ------------------------------------------------------------------------


def child(role: str, **arguments: Any) -> Any:
    """Run `role` in a fresh interpreter and return what it printed (JSON)."""
    command = [sys.executable, __file__, "--role", role, "--arguments", json.dumps(arguments)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_server(feeds: int, items: int, big: int) -> tuple[subprocess.Popen[bytes], int]:
    port_file = Path(tempfile.mkdtemp(prefix="digest-bench-")) / "port"
    arguments = json.dumps(
        {"feeds": feeds, "items": items, "big": big, "port_file": str(port_file)}
    )
    server = subprocess.Popen(
        [sys.executable, __file__, "--role", "serve", "--arguments", arguments]
    )
    deadline = time.monotonic() + 600
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit("the feed server did not start")
        time.sleep(0.1)
    return server, int(port_file.read_text())


def mb(value: float) -> str:
    return f"{value / (1 << 20):.0f} MB"


def breakdown(roles: dict[str, list[int]]) -> str:
    """ "this process 69 MB, fork server 22 MB, parser worker 2 × 20 MB, …"."""
    parts = []
    for role, sizes in sorted(roles.items(), key=lambda item: -sum(item[1])):
        each = mb(sum(sizes) / len(sizes))
        parts.append(f"{role} {len(sizes)} × {each}" if len(sizes) > 1 else f"{role} {each}")
    return ", ".join(parts)


def compare(feeds: int, items: int, database: str) -> dict[str, Any]:
    server, port = start_server(feeds, items, 0)
    try:
        urls = [f"http://127.0.0.1:{port}/feed/{n}.xml" for n in range(feeds)]
        ceiling = child("ceiling", urls=urls)
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
            url = child("prepare", database=database, folder=folder)
            project = child("project", urls=urls, database=url, folder=folder, timeout=60)
    finally:
        server.kill()
        server.wait()
    print(f"\n{feeds} feeds × {items} items: project stored {project['items']} new entries")
    if project["failed"]:
        print("  FAILED sources, e.g.:", *project["failed"], sep="\n    ")
    print(f"  nothing-new run: {project['not_modified']} of {feeds} not modified")
    print(f"  {'run':<12}{'':>9}{'wall':>9}{'CPU':>9}{'RSS sum':>10}{'PSS sum':>10}")
    for run in ("first", "again"):
        p, c = project[run], ceiling[run]
        label = "first run" if run == "first" else "nothing new"
        print(f"  {label:<12}{'project':>9}{p['wall']:>8.1f}s{p['cpu']:>8.1f}s"
              f"{mb(p['rss']):>10}{mb(p['pss']):>10}")  # fmt: skip
        print(f"  {'':<12}{'ceiling':>9}{c['wall']:>8.1f}s{c['cpu']:>8.1f}s"
              f"{mb(c['rss']):>10}{mb(c['pss']):>10}")  # fmt: skip
        print(f"  {'':<12}{'ratio':>9}{p['wall'] / c['wall']:>8.2f}×{p['cpu'] / c['cpu']:>8.2f}×"
              f"{p['rss'] / c['rss']:>9.2f}×{p['pss'] / c['pss']:>9.2f}×")  # fmt: skip
    print(f"  project's PSS at its peak, by process: {breakdown(project['first']['roles'])}")
    return {"project": project, "ceiling": ceiling}


def big(items: int, database: str) -> None:
    server, port = start_server(0, 0, items)
    try:
        url = f"http://127.0.0.1:{port}/big.xml"
        alone = child("feedparser", url=url)
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
            made = child("prepare", database=database, folder=folder)
            project = child("project", urls=[url], database=made, folder=folder, timeout=3600)
    finally:
        server.kill()
        server.wait()
    p, c = project["first"], alone["first"]
    print(f"\none feed of {alone['items']:,} items, {mb(alone['bytes'])}:"
          f" project stored {project['items']:,} new entries")  # fmt: skip
    if project["failed"]:
        print("  FAILED:", *project["failed"])
    print(f"  project (fetch, parse, store): {p['wall']:.1f}s wall, {p['cpu']:.1f}s CPU,"
          f" peak {mb(p['rss'])} RSS / {mb(p['pss'])} PSS")  # fmt: skip
    print(f"  feedparser alone (parse):      {c['wall']:.1f}s wall, {c['cpu']:.1f}s CPU,"
          f" peak {mb(c['rss'])} RSS / {mb(c['pss'])} PSS")  # fmt: skip
    print(f"  ratio: {p['wall'] / c['wall']:.2f}× wall (target ≤ 3×),"
          f" {p['cpu'] / c['cpu']:.2f}× CPU,"
          f" {p['rss'] / c['rss']:.2f}× RSS;"
          f" {(p['cpu'] - c['cpu']) / max(1, project['items']) * 1000:.2f} ms CPU per stored item"
          " beyond feedparser")  # fmt: skip


ROLES: dict[str, Callable[..., Any]] = {
    "serve": serve,
    "ceiling": run_ceiling,
    "prepare": prepare_database,
    "project": run_project,
    "feedparser": run_feedparser,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=100, help="N: runs N and 2N feeds")
    parser.add_argument("--items", type=int, default=20, help="items per feed")
    parser.add_argument("--big", action="store_true", help="one 53,000-item feed instead")
    parser.add_argument("--big-items", type=int, default=53_000)
    parser.add_argument("--database", default="", help="a database URL (default: SQLite)")
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--arguments", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.role:
        result = ROLES[options.role](**json.loads(options.arguments))
        print(json.dumps(result))
        return
    if options.big:
        big(options.big_items, options.database)
        return
    small = compare(options.feeds, options.items, options.database)
    large = compare(2 * options.feeds, options.items, options.database)
    print(f"\ngrowth from {options.feeds} to {2 * options.feeds} feeds (2.00 is linear):")
    for who in ("project", "ceiling"):
        for run in ("first", "again"):
            a, b = small[who][run], large[who][run]
            print(f"  {who:<8} {run:<6} wall {b['wall'] / a['wall']:.2f}×"
                  f"  CPU {b['cpu'] / a['cpu']:.2f}×  PSS {b['pss'] / a['pss']:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
