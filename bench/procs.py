"""Reading processes from /proc for the benchmarks: a process tree, its stat fields, CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def tree(pid: int) -> Iterator[int]:
    """`pid` and all its descendants (Linux: /proc/<pid>/task/*/children)."""
    yield pid
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:
            continue
        for child in children:
            yield from tree(int(child))


def stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (0: state, 1: ppid, 11: utime)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process, None when it is gone."""
    try:
        fields = stat(pid)
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
