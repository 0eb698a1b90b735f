"""Requests per second of the public GET pages against a bare Starlette app serving the same
bytes, measured in the same run.

The example publication is collected, drafted and published into a temporary folder; then
two uvicorn servers run on 127.0.0.1 (free ports), one process each: `digest serve`'s app
and a bare Starlette app whose routes answer the very bytes the digest app answered (and a
304 to the same ETag). A small keep-alive HTTP/1.1 client (asyncio, 8 connections, 8
requests pipelined on each, no library in the way) sends a bounded number of requests per
case to each, in alternated rounds (the best round of each counts: the machine is
shared), and prints the ratio digest / bare (targets: ≥ 0.5 for archive, feeds and 304s;
≥ 0.3 for the sign-up page). Both servers are stopped at the end, whatever happens.

    .venv/bin/python bench/web.py [--requests 3000] [--connections 8]
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
PIPELINE = 8
"""Requests written at once on a connection."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _prepare(folder: Path) -> Path:
    """The example publication, published into `folder`; return its config file."""
    from digest import config, pipeline
    from digest.store import db
    from examples.run import materialize

    materialize(folder, MONDAY.date())
    text = (folder / "digest.toml").read_text(encoding="utf-8")
    path = folder / "bench.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{folder}/digest.db"\n'
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

    app = create_app(config.load(Path(config_path), env={}))
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

    app = Starlette(routes=[route(path, answer) for path, answer in answers.items()])
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


def _request(path: str, etag: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: */*"]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per case and server")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per case")
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
            config_path = _prepare(folder)
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
            answers_path = folder / "answers.json"
            answers_path.write_text(json.dumps(answers), encoding="utf-8")
            servers.append(_start("bare", str(answers_path), bare_port))
            print(
                f"{args.requests} requests per case and round, {args.connections} connections, "
                f"best of {args.rounds} alternated rounds"
            )
            print(f"{'case':15} {'digest req/s':>13} {'bare req/s':>11} {'ratio':>6} target")
            for case, path, conditional in CASES:
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
