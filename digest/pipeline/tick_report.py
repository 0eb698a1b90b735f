"""What one scheduled tick did (`TickReport`), and durations said the way people say them
(`span`): shared by every tick, in `scheduling`, `retries`, `upkeep` and `resuming`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from digest.pipeline.logfmt import fields

log = logging.getLogger("digest.pipeline.scheduling")
"""The ticks' lines keep the logger name they always had, which operators filter on."""


@dataclass
class TickReport:
    """What one tick did, a line per thing, and whether something went wrong."""

    job: str
    lines: list[str] = field(default_factory=list)
    failed: bool = False
    noteworthy: bool = False
    """Whether something was said at INFO or above (else the job's own line is DEBUG)."""

    def say(self, text: str, *, event: str, level: int = logging.INFO, **values: object) -> None:
        """Log `text` with its event and fields, and keep it for the run's message."""
        self.lines.append(text)
        log.log(level, text, extra=fields(event=event, job=self.job, **values))
        self.noteworthy = self.noteworthy or level >= logging.INFO
        self.failed = self.failed or level >= logging.ERROR

    def detail(self, text: str, *, event: str, **values: object) -> None:
        """Keep `text` for the run's message; log it at DEBUG only."""
        self.say(text, event=event, level=logging.DEBUG, **values)

    @property
    def message(self) -> str:
        """The lines in one, or "nothing to do"."""
        return "; ".join(self.lines) or "nothing to do"


def span(delta: timedelta) -> str:
    """A duration the way people say it: "7h05m", "2d3h", "45m"."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
