"""Readable structured logs: one line per event, as `key=value` pairs (logfmt) or JSON.

    time=2026-11-23T07:00:02.120Z level=info logger=digest.scheduling event=issue.sent
    job=issue-weekly issue=12 msg="issue #12 sent: 1200 sent, 0 failed, 0 bounced"

(one line in the log). A call site gives its fields with `extra=fields(...)`; lines from
other libraries (APScheduler) get time, level, logger and msg. Values with spaces, quotes
or newlines are quoted with JSON escapes, so every event stays on one line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from digest.terminal import printable

FIELDS = "digest_fields"


def fields(**values: Any) -> dict[str, Any]:
    """Return the `extra=` of a log call carrying these key=value fields."""
    return {FIELDS: values}


def _plain(value: Any) -> Any:
    """A field value as JSON-friendly plain data."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _pairs(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    moment = datetime.fromtimestamp(record.created, UTC)
    pairs: dict[str, Any] = {
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    for key, value in getattr(record, FIELDS, {}).items():
        plain = _plain(value)
        pairs[key] = printable(plain) if isinstance(plain, str) else plain
    # A feed title or a server's error text may hold escapes that would rewrite a terminal.
    pairs["msg"] = printable(record.getMessage())
    if record.exc_info:
        pairs["error"] = formatter.formatException(record.exc_info)
    return pairs


def _text(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text


SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
"""Python level → syslog priority (crit, err, warning, info, debug)."""


def priority(level: int) -> int:
    """The syslog priority of a Python log level (levels between round down in severity)."""
    for threshold in sorted(SYSLOG_PRIORITY, reverse=True):
        if level >= threshold:
            return SYSLOG_PRIORITY[threshold]
    return 7


class _Prefixed(logging.Formatter):
    """A line, optionally led by "<N>", the syslog priority journald reads from a stream
    (so `journalctl -p err` finds our errors)."""

    def __init__(self, *, syslog_prefix: bool = False) -> None:
        super().__init__()
        self.syslog_prefix = syslog_prefix

    def line(self, record: logging.LogRecord) -> str:
        raise NotImplementedError

    def format(self, record: logging.LogRecord) -> str:
        text = self.line(record)
        return f"<{priority(record.levelno)}>{text}" if self.syslog_prefix else text


class KeyValueFormatter(_Prefixed):
    """Format a record as one logfmt line: time, level, logger, fields, msg."""

    def line(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_text(value)}" for key, value in _pairs(record, self).items())


class JsonFormatter(_Prefixed):
    """Format a record as one JSON object per line."""

    def line(self, record: logging.LogRecord) -> str:
        return json.dumps(_pairs(record, self), ensure_ascii=False, default=str)


FORMATS = ("text", "json")


def under_journald() -> bool:
    """Whether standard error is connected to the journal (systemd sets JOURNAL_STREAM to
    the device and inode of the stream it gave the service)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def configure(
    log_format: str = "text", level: str = "info", *, syslog_prefix: bool | None = None
) -> None:
    """Send every log line to standard error in `log_format` ("text" = key=value, or "json"),
    each led by its syslog priority ("<3>") when `syslog_prefix` (default: when standard
    error is the journal). Python warnings go to the log too, never to standard output."""
    prefix = under_journald() if syslog_prefix is None else syslog_prefix
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter if log_format == "json" else KeyValueFormatter
    handler.setFormatter(formatter(syslog_prefix=prefix))
    logging.captureWarnings(True)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler tells of every run at INFO ("Running job …"); our job lines say more.
    logging.getLogger("apscheduler").setLevel(max(root.level, logging.WARNING))
