"""Hostile posts from many clients do not stall the app: /healthz keeps answering, and no
hostile request gets a 5xx. (Timing is measured by bench/flood.py, not asserted here.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench import flood as bench


@pytest.mark.network
def test_healthz_answers_while_hostile_posts_run(tmp_path: Path) -> None:
    port = bench.free_port()
    server = bench.serve(bench.write_publication(tmp_path), port)
    try:
        base = f"http://127.0.0.1:{port}"
        bench.wait_for(f"{base}/healthz", seconds=120)
        figures = asyncio.run(bench.flood(base, requests=240, concurrency=8))
    finally:
        server.terminate()
        server.wait(timeout=60)
    # A client still sending a refused megabyte may see the connection close under it.
    assert sum(figures.statuses.values()) + figures.errors == 240
    assert figures.errors <= 240 // 8, "only the oversized uploads may be cut off"
    assert not [code for code in figures.statuses if code >= 500], figures.statuses
    assert {413, 429} <= set(figures.statuses), "bodies and floods were refused"
    assert figures.health_ms and figures.health_failures == 0
