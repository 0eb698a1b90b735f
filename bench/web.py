"""Requests per second of the public GET pages against a bare Starlette app serving the same
bytes, measured in the same run.

The example publication is collected, drafted and published into a temporary folder; then
two uvicorn servers run on 127.0.0.1 (free ports), one process each: `digest serve`'s app
and a bare Starlette app whose routes answer the very bytes the digest app answered (and a
304 to the same ETag). A small keep-alive HTTP/1.1 client (asyncio, 8 connections, 8
requests pipelined on each, no library in the way) sends a bounded number of requests per
case to each, in alternated rounds (the best round of each counts: the machine is
shared), and prints the ratio digest / bare (targets: ≥ 0.5 for archive, feeds and 304s;
≥ 0.3 for the sign-up page).

Then the sign-up POST: `--posts` requests per round, each a new address, over
`--post-connections` (16) keep-alive connections, one request at a time on each (no
pipelining, so each answer's latency is measured), against the digest app (which validates,
stores the subscriber with its confirmation queued, answers, and wakes its mailroom child
process, which sends the mails to the outbox folder while the requests go on: as
`digest serve` runs) and a bare Starlette app that parses the same form and answers the
same bytes. It prints req/s, the ratio (target ≥ 0.2) and the digest app's p99 latency
(target ≤ 50 ms), the mails/s the child sent during the digest rounds and the drain's
mails/s until the queue was empty, then checks that every address was stored and counts
the mails sent. Bench-only setting: `[web] subscribe_per_ip_per_hour` is raised
so the per-address limit (all requests come from 127.0.0.1) does not answer 429s; the
product's limit is a setting, not disabled.

Both servers are stopped at the end, whatever happens.

    .venv/bin/python bench/web.py [--requests 3000] [--connections 8] [--posts 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
WEB = """
[web]
secret_key = "bench-web-secret-key-0123456789abcdef"
secure_cookies = false
# Bench only: every request comes from 127.0.0.1, one address for the per-client limit.
subscribe_per_ip_per_hour = 100000000
[subscribers]
suppression_key = "bench-web-suppression-key-0123456789"
"""
CASES = [
    ("archive index", "/archive/en/", False),
    ("issue page", "/archive/en/1.html", False),
    ("feed", "/feeds/en.atom", False),
    ("feed 304", "/feeds/en.atom", True),
    ("sign-up page", "/en/", False),
]
TARGETS = {"sign-up page": 0.3}
POST_TARGET = 0.2
P99_TARGET_MS = 50.0
PIPELINE = 8
"""Requests written at once on a connection."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _prepare(folder: Path, database: str = "") -> Path:
    """The example publication, published into `folder`; return its config file."""
    from digest import config, pipeline
    from digest.store import db
    from examples.run import materialize

    materialize(folder, MONDAY.date())
    text = (folder / "digest.toml").read_text(encoding="utf-8")
    path = folder / "bench.toml"
    path.write_text(
        f'[database]\nurl = "{database or f"sqlite:///{folder}/digest.db"}"\n'
        f'[publish]\noutput_dir = "{folder / "public"}"\n'
        '[publication]\nbase_url = "http://127.0.0.1"\n' + WEB + text[text.index("[[sources]]") :],
        encoding="utf-8",
    )
    settings = config.load(path, env={})
    engine = db.connect(settings.database.url, create=True)
    factory = db.session_factory(engine)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    number = pipeline.draft(settings, factory, now=MONDAY).number
    pipeline.mark_published(settings, factory, number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    engine.dispose()
    return path


def _serve_digest(config_path: str, port: int) -> None:
    import uvicorn

    from digest import config
    from digest.web import create_app

    # As `digest serve` runs it: the confirmation mails leave from the mailroom child.
    app = create_app(config.load(Path(config_path), env={}), mailroom=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _serve_bare(answers_path: str, port: int) -> None:
    """A bare Starlette app answering the recorded bytes, and 304 to the recorded ETag."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    answers = json.loads(Path(answers_path).read_text(encoding="utf-8"))

    def route(path: str, answer: dict[str, str | None]) -> Route:
        body = bytes.fromhex(answer["body"] or "")
        media_type, etag = answer["type"], answer["etag"]

        headers = {"etag": etag} if etag else {}

        async def handler(request: Request) -> Response:
            if etag and request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers=headers)
            return Response(body, media_type=media_type, headers=headers)

        return Route(path, handler, methods=["GET"])

    signed_up = answers.pop("POST /en/subscribe")
    posted_body = bytes.fromhex(signed_up["body"] or "")

    async def subscribe(request: Request) -> Response:
        form = await request.form()  # parse the same form the digest app parses
        if not form.get("email"):
            return Response(b"", status_code=400)
        return Response(posted_body, media_type=signed_up["type"])

    app = Starlette(
        routes=[
            *(route(path, answer) for path, answer in answers.items()),
            Route("/en/subscribe", subscribe, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _start(kind: str, argument: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--serve", kind, argument, str(port)]
    server = subprocess.Popen(command, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the {kind} server stopped at start (exit {server.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the {kind} server did not listen on 127.0.0.1:{port} within 120 s")


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    return await _read_answer(reader)


async def _load(port: int, request: bytes, total: int, connections: int) -> float:
    """Send `total` requests over `connections` keep-alive connections; return req/s."""
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    for reader, writer in opened:  # warm up every connection
        await _one(reader, writer, request)
    left = total
    statuses: set[int] = set()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # HTTP/1.1 pipelining (uvicorn answers in order): the client's cost per request
        # stays small next to the servers', so the ratio measures the servers.
        nonlocal left
        while left > 0:
            batch = min(PIPELINE, left)
            left -= batch
            writer.write(request * batch)
            for _ in range(batch):
                statuses.add(await _read_answer(reader))

    started = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in opened))
    elapsed = time.perf_counter() - started
    for _, writer in opened:
        writer.close()
    if not statuses <= {200, 304}:
        raise SystemExit(f"unexpected statuses {sorted(statuses)}")
    return total / elapsed


def _post(number: int, tag: str) -> bytes:
    body = (f"email=reader-{tag}-{number}%40example.org&name=&language=en&cadence=weekly").encode(
        "ascii"
    )
    head = (
        "POST /en/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _load_posts(port: int, total: int, connections: int, tag: str) -> tuple[float, float]:
    """POST `total` sign-ups (each a new address) over `connections` connections, one at
    a time on each; return (req/s, p99 latency in ms)."""
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    numbers = iter(range(total))
    latencies: list[float] = []
    statuses: set[int] = set()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for number in numbers:
            started = time.perf_counter()
            writer.write(_post(number, tag))
            statuses.add(await _read_answer(reader))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in opened))
    elapsed = time.perf_counter() - started
    for _, writer in opened:
        writer.close()
    if statuses != {200}:
        raise SystemExit(f"unexpected statuses {sorted(statuses)} to the sign-up POST")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return total / elapsed, p99 * 1000


def _stored(config_path: Path) -> tuple[int, int, int]:
    """(pending subscribers, confirmations sent, confirmations still queued)."""
    import sqlalchemy as sa

    from digest import config
    from digest.store import db
    from digest.store.confirmations import ConfirmationState, QueuedConfirmation
    from subscribers.model import Subscriber, SubscriberStatus

    settings = config.load(config_path, env={})
    engine = db.connect(settings.database.url)
    try:
        with engine.connect() as connection:
            pending = connection.scalar(
                sa.select(sa.func.count())
                .select_from(Subscriber)
                .where(Subscriber.status == SubscriberStatus.PENDING)
            )
            counts = dict(
                connection.execute(
                    sa.select(QueuedConfirmation.state, sa.func.count()).group_by(
                        QueuedConfirmation.state
                    )
                ).all()
            )
    finally:
        engine.dispose()
    waiting = counts.get(ConfirmationState.QUEUED, 0) + counts.get(ConfirmationState.SENDING, 0)
    return int(pending or 0), int(counts.get(ConfirmationState.SENT, 0)), int(waiting)


def _request(path: str, etag: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: */*"]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _bench_posts(
    args: argparse.Namespace, config_path: Path, digest_port: int, bare_port: int
) -> None:
    """The sign-up POST against the bare app, in alternated rounds; then what was stored."""
    print(
        f"\nsign-up POST: {args.posts} requests per round (each a new address), "
        f"{args.post_connections} connections, one request at a time on each, "
        f"best of {args.rounds} alternated rounds"
    )
    ours = bare = 0.0
    p99s: list[float] = []
    during: list[float] = []
    first_sent = _stored(config_path)[1]
    drain_started = time.monotonic()
    for round_number in range(args.rounds):
        tag = f"r{round_number}"
        sent_before = _stored(config_path)[1]
        started = time.monotonic()
        rate, p99 = asyncio.run(_load_posts(digest_port, args.posts, args.post_connections, tag))
        during.append((_stored(config_path)[1] - sent_before) / (time.monotonic() - started))
        ours = max(ours, rate)
        p99s.append(p99)
        rate, _ = asyncio.run(_load_posts(bare_port, args.posts, args.post_connections, tag))
        bare = max(bare, rate)
    p99 = min(p99s)
    verdict = "ok" if ours / bare >= POST_TARGET else "MISSED"
    print(f"{'case':15} {'digest req/s':>13} {'bare req/s':>11} {'ratio':>6} target")
    ratio = ours / bare
    print(f"{'sign-up POST':15} {ours:13.0f} {bare:11.0f} {ratio:6.2f} ≥ {POST_TARGET} {verdict}")
    print(
        f"sign-up POST p99 at {args.post_connections} connections: {p99:.1f} ms "
        f"(rounds: {', '.join(f'{value:.1f}' for value in p99s)}) "
        f"≤ {P99_TARGET_MS:.0f} ms {'ok' if p99 <= P99_TARGET_MS else 'MISSED'}"
    )
    deadline = time.monotonic() + 120
    while True:  # the mails leave after the answers: wait for the queue to empty
        pending, sent, waiting = _stored(config_path)
        if waiting == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    drain_rate = (sent - first_sent) / (time.monotonic() - drain_started)
    print(
        f"mailroom child: {max(during):.0f} mails/s sent during the digest POST rounds "
        f"(rounds: {', '.join(f'{value:.0f}' for value in during)}); {sent - first_sent} "
        f"mails sent in {time.monotonic() - drain_started:.1f} s from the first round to an "
        f"empty queue: {drain_rate:.0f} mails/s overall (the bare rounds included)"
    )
    expected = args.posts * args.rounds + 1
    print(
        f"stored {pending} pending subscribers (posted {expected}); confirmation mails sent "
        f"{sent}, still queued {waiting}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per case and server")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per case")
    parser.add_argument("--posts", type=int, default=2000, help="sign-up POSTs per round")
    parser.add_argument("--post-connections", type=int, default=16)
    parser.add_argument("--post-only", action="store_true", help="skip the GET cases")
    parser.add_argument(
        "--database", default="", help="an empty database URL (default: SQLite in the folder)"
    )
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, argument, port = args.serve
        (_serve_digest if kind == "digest" else _serve_bare)(argument, int(port))
        return 0
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="digest-bench-web-") as name:
        folder = Path(name)
        try:
            config_path = _prepare(folder, args.database)
            digest_port, bare_port = _free_port(), _free_port()
            servers.append(_start("digest", str(config_path), digest_port))
            answers: dict[str, dict[str, str | None]] = {}
            etags: dict[str, str | None] = {}
            for _, path, _ in CASES:
                with urllib.request.urlopen(f"http://127.0.0.1:{digest_port}{path}") as got:
                    body = got.read()
                    etags[path] = got.headers["etag"]
                    answers[path] = {
                        "body": body.hex(),
                        "type": got.headers["content-type"],
                        "etag": etags[path],
                    }
            checked = urllib.request.Request(
                f"http://127.0.0.1:{digest_port}/en/subscribe",
                data=b"email=first%40example.org&language=en&cadence=weekly",
                method="POST",
            )
            with urllib.request.urlopen(checked) as got:  # noqa: S310 - http://127.0.0.1
                answers["POST /en/subscribe"] = {
                    "body": got.read().hex(),
                    "type": got.headers["content-type"],
                    "etag": None,
                }
            answers_path = folder / "answers.json"
            answers_path.write_text(json.dumps(answers), encoding="utf-8")
            servers.append(_start("bare", str(answers_path), bare_port))
            print(
                f"{args.requests} requests per case and round, {args.connections} connections, "
                f"best of {args.rounds} alternated rounds"
            )
            print(f"{'case':15} {'digest req/s':>13} {'bare req/s':>11} {'ratio':>6} target")
            for case, path, conditional in [] if args.post_only else CASES:
                request = _request(path, etags[path] if conditional else None)
                ours = bare = 0.0
                for _ in range(args.rounds):  # alternated; the best of each, against noise
                    load = _load(digest_port, request, args.requests, args.connections)
                    ours = max(ours, asyncio.run(load))
                    load = _load(bare_port, request, args.requests, args.connections)
                    bare = max(bare, asyncio.run(load))
                target = TARGETS.get(case, 0.5)
                verdict = "ok" if ours / bare >= target else "MISSED"
                print(
                    f"{case:15} {ours:13.0f} {bare:11.0f} {ours / bare:6.2f} ≥ {target} {verdict}",
                    flush=True,
                )
            _bench_posts(args, config_path, digest_port, bare_port)
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
