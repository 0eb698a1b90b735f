"""Write published files atomically, and remove the ones nothing publishes any more.

Readers (a web server, a feed reader polling `feeds/en.atom`) must never see half a file,
so every write goes to a temporary file in the same folder, is flushed to disk and then
renamed over the old one (`os.replace` is atomic on POSIX and Windows). A file whose bytes
would not change is not touched at all: its mtime, and so the Last-Modified and ETag the
server derives from it, stay the same, and clients keep getting 304s.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path

_NEW_FILE_MODE = 0o644
"""Published files are public: readable by the web server's user, writable by us."""


def write_atomic(path: Path, data: bytes) -> bool:
    """Replace `path` with `data` atomically; return False (touching nothing) if unchanged.

    Creates missing parent folders. On any error the old file is left as it was and the
    temporary file is removed.
    """
    mode = _NEW_FILE_MODE
    try:
        current = path.stat()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        if current.st_size == len(data) and path.read_bytes() == data:
            return False
        mode = stat.S_IMODE(current.st_mode)  # keep permissions the operator chose
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp creates 0600, which a web server running as another user cannot read.
        temporary.chmod(mode)
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _sync_folder(path.parent)
    return True


def remove_stale(folder: Path, keep: set[Path], pattern: str) -> list[Path]:
    """Delete the files in `folder` matching `pattern` that are not in `keep`; return them.

    `pattern` is a glob for file names directly in `folder` (like "*.ics"); `keep` may
    hold relative or absolute paths. A missing folder has nothing stale.
    """
    if "/" in pattern or os.sep in pattern or "**" in pattern:
        raise ValueError(f"pattern {pattern!r} must match names in {folder}, not paths")
    if not folder.is_dir():
        return []
    kept = {path.resolve() for path in keep}
    removed: list[Path] = []
    for path in sorted(folder.glob(pattern)):
        # A symlink was put there by the operator, not written by us.
        if path.is_file() and not path.is_symlink() and path.resolve() not in kept:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry of a rename to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; NTFS journals the rename itself
    try:
        with suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
