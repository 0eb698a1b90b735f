"""ParserPool: long-lived workers with run_bounded's bounds; an overrunning worker is killed
and replaced, the others keep their processes.

The functions the workers run are defined at the top of this module, so a worker can
import them by name (they are pickled by reference).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from digest.collect.bounded import ParserPool
from digest.errors import ParseError, ParseTimeout
from tests.collect.test_bounded import WHAT, add, eat_memory, exit_hard, raise_parse_error


def loop_forever(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        pass


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_workers_live_on_across_documents() -> None:
    with ParserPool(1) as pool:
        first = pool.run(os.getpid, timeout=120, what=WHAT)
        assert first != os.getpid()
        assert [pool.run(os.getpid, timeout=120, what=WHAT) for _ in range(5)] == [first] * 5
        assert pool.run(add, 2, 3, timeout=120, what=WHAT) == 5
    assert gone(first), "closing the pool stops its workers"


def test_an_overrunning_worker_is_killed_and_replaced(tmp_path: Path) -> None:
    with ParserPool(2) as pool:
        # Both workers busy at once, so both exist; then one of them hangs.
        with ThreadPoolExecutor(2) as threads:
            pids = set(threads.map(lambda _: pool.run(os.getpid, timeout=120, what=WHAT), (1, 2)))
        pid_file = tmp_path / "pid"
        with pytest.raises(ParseTimeout) as error:
            pool.run(loop_forever, str(pid_file), timeout=5, what=WHAT)
        assert str(error.value).startswith(f"{WHAT}: parsing took longer than 5s and was stopped")
        hung = int(pid_file.read_text())
        assert hung in pids
        assert gone(hung), "the worker that overran is killed and reaped"
        # The next documents are parsed: by the survivor and by a fresh worker.
        with ThreadPoolExecutor(2) as threads:
            after = set(threads.map(lambda _: pool.run(os.getpid, timeout=120, what=WHAT), (1, 2)))
        assert (pids - {hung}) <= after
        assert hung not in after


def test_errors_come_back_and_the_worker_stays() -> None:
    with ParserPool(1) as pool:
        before = pool.run(os.getpid, timeout=120, what=WHAT)
        with pytest.raises(ParseError, match="this is an HTML page"):
            pool.run(raise_parse_error, timeout=120, what=WHAT)
        assert pool.run(os.getpid, timeout=120, what=WHAT) == before


def test_a_worker_over_the_memory_cap_is_retired() -> None:
    with ParserPool(1, max_memory=512 << 20) as pool:
        before = pool.run(os.getpid, timeout=120, what=WHAT)
        with pytest.raises(ParseError, match=r"needed more than 0\.5 GiB of memory"):
            pool.run(eat_memory, timeout=120, what=WHAT)
        after = pool.run(os.getpid, timeout=120, what=WHAT)
        assert after != before and gone(before)


def test_a_worker_that_dies_is_replaced() -> None:
    with ParserPool(1) as pool:
        with pytest.raises(ParseError, match=r"the parser process died \(exit code 3\)"):
            pool.run(exit_hard, timeout=120, what=WHAT)
        assert pool.run(add, 1, 1, timeout=120, what=WHAT) == 2


def test_workers_are_recycled_after_max_tasks() -> None:
    with ParserPool(1, max_tasks=3) as pool:
        pids = [pool.run(os.getpid, timeout=120, what=WHAT) for _ in range(6)]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5]
