"""Hostile form posts against the web app while a monitor polls /healthz.

Starts `uvicorn --factory digest.web:app_from_env` on 127.0.0.1 (one process, as `digest
serve` runs) with a fresh SQLite publication, then sends a few thousand hostile requests
from many concurrent clients: oversized bodies (declared and chunked), forms with thousands
of fields, sign-up floods, forged tokens, desk posts without a session. Meanwhile /healthz
is polled every 20 ms; its latencies are printed with the attack's figures.

    .venv/bin/python bench/flood.py                       # 3,000 requests, 32 at a time
    .venv/bin/python bench/flood.py --requests 6000 --concurrency 64

Target: /healthz answers within 100 ms (p99) while the attack runs. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MS = 100.0


@dataclass
class Figures:
    """What one flood did and how /healthz fared meanwhile."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    seconds: float = 0.0
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.health_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def report(self) -> str:
        sent = sum(self.statuses.values()) + self.errors
        by_status = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        lines = [
            f"hostile requests: {sent} in {self.seconds:.1f} s ({sent / self.seconds:.0f}/s); "
            f"{by_status}; connection errors {self.errors}",
            f"/healthz: {len(self.health_ms)} answers, {self.health_failures} failures; "
            f"p50 {statistics.median(self.health_ms):.1f} ms, p95 {self.percentile(0.95):.1f} ms, "
            f"p99 {self.percentile(0.99):.1f} ms, max {max(self.health_ms):.1f} ms",
        ]
        return "\n".join(lines)


def _attacks(base: str) -> list[Callable[[httpx.AsyncClient, int], object]]:
    """One coroutine factory per kind of hostile request."""
    fields = "&".join(f"f{n}=x" for n in range(5000)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"x" * 1024

    return [
        lambda c, n: c.post(f"{base}/en/subscribe", data={"email": f"a{n}@example.net"}),
        lambda c, n: c.post(f"{base}/en/subscribe", content=b"x" * 1_000_000),
        lambda c, n: c.post(f"{base}/en/subscribe", content=chunks()),
        lambda c, n: c.post(
            f"{base}/en/subscribe",
            content=fields,
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        lambda c, n: c.post(f"{base}/en/preferences/{'A' * 54}", data={"csrf": "x"}),
        lambda c, n: c.post(f"{base}/en/admin/login", data={"password": "guess", "csrf": "x"}),
        lambda c, n: c.post(f"{base}/en/links", data={"email": f"b{n}@example.net"}),
        lambda c, n: c.post(
            f"{base}/en/unsubscribe/{'B' * 54}", content=b"List-Unsubscribe=One-Click"
        ),
    ]


async def baseline(base: str, seconds: float = 3.0) -> list[float]:
    """/healthz latencies with no attack, to compare (the machine may be busy)."""
    found = []
    async with httpx.AsyncClient(timeout=30) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await client.get(f"{base}/healthz")
            found.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
    return found


async def flood(base: str, requests: int, concurrency: int) -> Figures:
    """Send `requests` hostile requests, `concurrency` at a time, polling /healthz."""
    figures = Figures()
    attacks = _attacks(base)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def attacker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                answer = await attacks[n % len(attacks)](client, n)  # type: ignore[misc]
                figures.statuses[answer.status_code] += 1
            except httpx.HTTPError:
                figures.errors += 1

    # The monitor is a process of its own: its figures are the server's, not the wait of
    # an attacker's busy event loop.
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    stop = context.Event()
    receiving, sending = context.Pipe(duplex=False)
    watcher = context.Process(target=monitor, args=(base, stop, sending), daemon=True)
    watcher.start()
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(attacker(client) for _ in range(concurrency)))
    figures.seconds = time.perf_counter() - started
    stop.set()
    figures.health_ms, figures.health_failures = receiving.recv()
    watcher.join(timeout=60)
    return figures


def monitor(base: str, stop: Any, results: Any) -> None:
    """Poll /healthz every 20 ms until `stop` is set; send (latencies ms, failures)."""
    latencies: list[float] = []
    failures = 0
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
            time.sleep(0.02)
    results.send((latencies, failures))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_publication(folder: Path) -> Path:
    path = folder / "digest.toml"
    path.write_text(
        '[publication]\nbase_url = "http://127.0.0.1"\n'
        f'[database]\nurl = "sqlite:///{folder / "bench.db"}"\n'
        f'[delivery]\noutbox_dir = "{folder / "outbox"}"\n'
        "[web]\nsecure_cookies = false\nsubscribe_per_ip_per_hour = 10\n",
        encoding="utf-8",
    )
    # Only `digest init` creates a database; a benchmark makes its own, as init does.
    from digest.store import db

    db.connect(f"sqlite:///{folder / 'bench.db'}", create=True).dispose()
    return path


def serve(config: Path, port: int, http: str = "auto") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(config),
        "DIGEST_WEB__SECRET_KEY": "bench-web-secret-key-0123456789abcdefghij",
        "DIGEST_SUBSCRIBERS__SUPPRESSION_KEY": "bench-web-suppression-key-0123456789",
    }
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "digest.web:app_from_env",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
            "--http", http,
        ],
        env=env,
        cwd=ROOT,
    )  # fmt: skip


def wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--http", default="auto", help="uvicorn's HTTP parser: auto, h11 or httptools"
    )
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-web-"))
    port = free_port()
    server = serve(write_publication(folder), port, options.http)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz")
        quiet = sorted(asyncio.run(baseline(base)))
        figures = asyncio.run(flood(base, options.requests, options.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores, load average {load:.1f}; /healthz without attack: "
        f"p50 {statistics.median(quiet):.1f} ms, p99 {quiet[int(0.99 * (len(quiet) - 1))]:.1f} ms"
    )
    print(figures.report())
    verdict = figures.percentile(0.99) < LIMIT_MS and figures.health_failures == 0
    print(f"target /healthz p99 < {LIMIT_MS:.0f} ms: {'met' if verdict else 'NOT met'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
