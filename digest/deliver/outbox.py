"""The outbox transport: one `.eml` file per message, for previews, local runs and tests.

It takes exactly what an SMTP server would (the DATA payload, dot-stuffed) and stores what
a mailbox would: the message with `Return-Path` (the VERP envelope sender) and
`Delivered-To` in front, as a local delivery agent writes them. Each file is named after
the Message-ID and written atomically (temp file, fsync, `os.replace`), so a reader never
sees half a message. Re-running a send is idempotent: an existing file is never replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

from digest.deliver import Outcome, Sender, SendResult, Stage
from digest.deliver.message import unstuff

__all__ = ["OutboxSender", "SendResult", "Sender", "file_name", "message_id"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


def message_id(message: bytes) -> str | None:
    """Return the Message-ID of an RFC 5322 message (without <>), or None if it has none."""
    head = message.split(b"\r\n\r\n", 1)[0]
    match = re.search(rb"(?im)^message-id:[ \t]*((?:[^\r\n]|\r\n[ \t])*)", head)
    if match is None:
        return None
    value = re.sub(rb"\r\n", b"", match.group(1)).strip().strip(b"<>")
    return value.decode("ascii", "replace") or None


def file_name(identifier: str) -> str:
    """Return the file name for a Message-ID: readable, safe on any filesystem, and
    distinct per id even where names are case-insensitive (a hash of the id ends it)."""
    readable = _UNSAFE.sub("_", identifier)[:100].lstrip(".") or "message"
    return f"{readable}.{hashlib.sha256(identifier.encode()).hexdigest()[:12]}.eml"


class OutboxSender:
    """A `Sender` that writes each message to `folder` as an `.eml` file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, envelope_from: str, recipient: str, data: bytes) -> SendResult:
        """Store one message; a second send of the same Message-ID keeps the first file."""
        try:
            message = unstuff(data)
        except ValueError as exc:
            return SendResult(Outcome.PERMANENT, 554, f"554 5.6.0 {exc}")
        identifier = message_id(message)
        if identifier is None:
            return SendResult(
                Outcome.PERMANENT, 554, "554 5.6.0 no Message-ID; the outbox names files after it"
            )
        if any(c in address for address in (envelope_from, recipient) for c in "\r\n<>"):
            return SendResult(
                Outcome.PERMANENT, 501, "501 5.1.7 malformed envelope address", Stage.LOCAL
            )
        trace = f"Return-Path: <{envelope_from}>\r\nDelivered-To: {recipient}\r\n"
        content = trace.encode("utf-8") + message
        path = self.folder / file_name(identifier)
        if path.exists():
            return self._existing(path, content, recipient)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # mail is private
            _write_atomically(path, content)
        except OSError as exc:
            # Disk full or permissions: worth another try once the operator has looked.
            return SendResult(Outcome.TEMPORARY, 451, f"451 4.3.0 cannot write {path}: {exc}")
        return SendResult(Outcome.SENT, 250, f"250 2.0.0 written to {path}")

    def _existing(self, path: Path, content: bytes, recipient: str) -> SendResult:
        """Answer for a Message-ID already in the outbox (a re-run, or a reused id)."""
        old = path.read_bytes()
        if old == content:
            return SendResult(Outcome.SENT, 250, f"250 2.0.0 already in the outbox: {path}")
        delivered_to = re.search(rb"(?im)^delivered-to: *(.*)\r$", old.split(b"\r\n\r\n")[0])
        if delivered_to is None or delivered_to.group(1).decode(errors="replace") != recipient:
            return SendResult(
                Outcome.PERMANENT,
                554,
                f"554 5.6.0 {path} holds this Message-ID for another recipient; "
                "Message-IDs must be unique per recipient",
            )
        return SendResult(
            Outcome.SENT, 250, f"250 2.0.0 kept the copy sent earlier (not overwritten): {path}"
        )


def _write_atomically(path: Path, content: bytes) -> None:
    """Write `content` to a temporary file beside `path`, flush it to disk, then rename it
    into place, so that `path` is either absent or complete, even after a crash."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX only)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
