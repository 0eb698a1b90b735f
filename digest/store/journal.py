"""The send journal: an append-only file that records each accepted message before the next
one leaves its connection, so a `kill -9` loses no answer the server gave.

Committing every answer to the database costs a transaction per message; appending a line
to a file costs one `write` (the data is in the kernel as soon as it returns, which is all a
killed process needs; a power cut is another matter). The send still writes its answers to
the database in batches; the journal is read back only when a run starts and finds rows a
crashed run left in flight:

    start 41        a connection took delivery 41 (its message may be on the wire)
    sent 41         the server accepted it
    unknown 41      the payload went out and no reply came

After a crash, rows with "sent" are recorded as sent, "unknown" as unknown outcomes, and
only rows with a "start" and nothing after it can have reached the server without us
knowing: at most one per connection. The file lives on the sending machine
(`[delivery] journal_dir`, one file per issue); it is deleted once its answers are in the
database.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Journal", "Replay", "journal_path", "replay"]


def journal_path(folder: Path, issue_id: int) -> Path:
    """Return the journal file of one issue."""
    return folder / f"issue-{issue_id}.journal"


class Journal:
    """Appends lines to one issue's journal; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # O_APPEND: each small write lands whole at the end, whatever thread makes it.
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()

    def note(self, what: str, delivery_id: int) -> None:
        """Append "what id" ("start", "sent" or "unknown")."""
        fd = self._fd
        if fd is None:
            raise ValueError(f"the journal {self.path} is closed")
        os.write(fd, f"{what} {delivery_id}\n".encode("ascii"))

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def remove(self) -> None:
        """Close and delete the file: its answers are in the database."""
        self.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Replay:
    """What a journal says about the deliveries a crashed run had under way."""

    sent: set[int] = field(default_factory=set)
    unknown: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    """Started with no answer: their messages may have reached the server."""


def replay(path: Path) -> Replay:
    """Read a journal (a torn last line from a kill is skipped)."""
    found = Replay()
    if not path.exists():
        return found
    for line in path.read_bytes().split(b"\n"):
        what, _, number = line.decode("ascii", "replace").partition(" ")
        if not number.isdigit():
            continue
        delivery_id = int(number)
        if what == "start":
            found.open.add(delivery_id)
        elif what in ("sent", "unknown"):
            found.open.discard(delivery_id)
            (found.sent if what == "sent" else found.unknown).add(delivery_id)
    return found
