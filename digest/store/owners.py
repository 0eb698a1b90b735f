"""Who holds a lock or a lease: "host:pid:nonce", and whether that process is gone.
Plain functions, no SQLAlchemy: `digest status` asks them too."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path


def process_owner() -> str:
    """Name a holder: host, pid and a nonce (two threads of one process differ too)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """Whether `owner` names a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def zombie(owner: str) -> bool:
    """Whether `owner` is a process of this host that died and awaits its reaping (a
    worker killed with its parent is reparented; in a container, nobody may reap it)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
