"""Run one issue tick in a process of its own, at a given moment, when told to start.

    python -m tests.scheduling.tick CONFIG MODE ISO_MOMENT READY_FILE GO_FILE

MODE "job" runs it as the scheduler does (`scheduler.execute`: leases, run record);
"bare" calls `scheduling.issue_tick` directly, so only the database's own guards (the
unique slot, the send lock) stand between two such processes. The process touches
READY_FILE once imported and connected, then waits for GO_FILE, so that two of them start
their tick at the same moment.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from digest import config, pipeline
from digest.pipeline import scheduler, scheduling


def main(argv: list[str]) -> int:
    config_path, mode, moment, ready, go = argv
    settings = config.load(config_path, env={})
    factory = pipeline.open_database(settings)
    now = datetime.fromisoformat(moment)
    Path(ready).touch()
    deadline = time.monotonic() + 300
    while not Path(go).exists():
        if time.monotonic() > deadline:
            print("never told to start", file=sys.stderr)
            return 2
        time.sleep(0.002)
    if mode == "job":
        print(scheduler.execute(scheduler.Runtime(settings, factory), "issue-weekly", now=now))
    else:
        print(scheduling.issue_tick(settings, factory, "weekly", now=now).message)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
